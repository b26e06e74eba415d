//! The steps the provider's own binary runs inside a run's pod, from the helper image: a
//! program of its own (its own entry, runtime and Kubernetes writes) that shares the binary
//! with the plugin.
//!
//! - [`prepare`]: `helper prepare`, the init container: checks out the git source into the
//!   shared directory (with [`git`]) and places the files there.
//! - [`collect`]: `helper collect`, the native sidecar: once the main container has ended,
//!   writes the result files into the run's result Secret.
//! - [`askpass`](mod@askpass): answers git's credential prompts for `prepare` (git runs this
//!   binary as its `GIT_ASKPASS`).
//! - Here: what they share: the entry, the error, where the inputs and results are, and the
//!   reading of the inputs.
//!
//! The contract with the Job ([`super::job`]) is in [`super::contract`]: the inputs Secret
//! mounted read-only at [`INPUTS_DIRECTORY`] with its `manifest.json`, and the results emptyDir
//! at [`RESULTS_DIRECTORY`]. Nothing here prints a secret value: not the password, the SSH key,
//! the secret files or the secret outputs, and no URL user info.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};

use super::contract::{HelperStep, INPUTS_DIRECTORY, MANIFEST_KEY, Manifest, RESULTS_DIRECTORY};

mod askpass;
mod collect;
mod git;
mod prepare;

/// The container's termination message, which Kubernetes reports in the container status.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// Everything a helper step can fail with. Messages name paths, keys and commands, never
/// values.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HelperError {
    /// An input file could not be read.
    #[error("cannot read the input {path}")]
    ReadInput {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The manifest is not the JSON the Job builder writes.
    #[error("{MANIFEST_KEY} is not a valid manifest")]
    ManifestJson(#[source] serde_json::Error),
    /// The manifest parses but asks for something this step refuses.
    #[error("{MANIFEST_KEY}: {0}")]
    InvalidManifest(String),
    /// git could not be started.
    #[error("cannot run git (is it installed in the helper image?)")]
    GitSpawn(#[source] io::Error),
    /// This binary's own path, git's askpass, is unknown.
    #[error("cannot find this binary's path for git's askpass")]
    CurrentExe(#[source] io::Error),
    /// A git command failed.
    #[error("`{command}` failed ({status}){detail}")]
    Git {
        /// The command, redacted.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// `: ` and the last line git wrote to stderr (redacted), or nothing.
        detail: String,
    },
    /// The ssh server showed a host key that is not the one known.
    #[error(
        "the ssh server {host} showed a host key that {} ({said}); if it is the right server, \
         add its key to source.known_hosts (`ssh-keyscan{}` prints it)",
        if *pinned { "source.known_hosts does not hold" } else { "differs from the one known" },
        git::keyscan_arguments(host)
    )]
    HostKey {
        /// The server, as known_hosts names it (`host` or `[host]:port`).
        host: String,
        /// ssh's own line about it.
        said: String,
        /// Whether `source.known_hosts` was given.
        pinned: bool,
    },
    /// The checkout lacks the scripts directory.
    #[error("source.path {path} is not in the repository at {commit}")]
    ScriptsDirectoryMissing {
        /// `source.path`, or the scripts directory when the path is unset.
        path: String,
        /// The commit checked out.
        commit: String,
    },
    /// A file's path is a directory.
    #[error("cannot place a file at {0}: it is a directory")]
    PathIsDirectory(PathBuf),
    /// A file or directory could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A required environment variable of `collect` is unset or empty.
    #[error("the environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// The async runtime of `collect` could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    /// The SIGTERM handler could not be installed.
    #[error("cannot wait for SIGTERM")]
    Signal(#[source] io::Error),
    /// The pod's service account credentials could not be loaded.
    #[error("cannot load the in-cluster configuration")]
    InCluster(#[source] kube::config::InClusterError),
    /// The Kubernetes client could not be built.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// The result Secret could not be written.
    #[error("cannot write the result Secret {namespace}/{name}")]
    WriteSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The result Secret could not be written within [`collect::WRITE_DEADLINE`].
    #[error(
        "the result Secret {namespace}/{name} was not written within {:?}",
        collect::WRITE_DEADLINE
    )]
    WriteTimeout {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// git asked for something other than a user name or a password.
    #[error("cannot answer git's prompt {0:?}")]
    UnknownPrompt(String),
    /// git asked for a credential the source does not have.
    #[error("git asked for a {0}, but the source has none")]
    NoCredential(&'static str),
}

/// Where a step reads its inputs and leaves its results: the pod's fixed paths, or a test's
/// temporary directories.
struct Layout {
    /// The inputs directory.
    inputs: PathBuf,
    /// The results directory.
    results: PathBuf,
}

impl Layout {
    /// The paths of a run's pod.
    fn pod() -> Self {
        Layout {
            inputs: PathBuf::from(INPUTS_DIRECTORY),
            results: PathBuf::from(RESULTS_DIRECTORY),
        }
    }
}

/// Runs a helper step in a run's pod (the binary's command line chose it). A failure is
/// logged on stderr and left as the container's termination message, which the provider
/// reports.
pub(crate) fn run(step: HelperStep) -> ExitCode {
    let result = match step {
        HelperStep::Prepare => prepare::run(&Layout::pod()),
        HelperStep::Collect => collect::run(&Layout::pod()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let line = format!(
                "helper {}: {}",
                step.name(),
                crate::text::error_chain(&error)
            );
            eprintln!("{line}");
            // Best effort: outside a pod there is no termination log, and the line is already
            // in the container log.
            let _ = fs::write(TERMINATION_LOG, format!("{line}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Answers git's credential prompt on stdout: git runs this binary as `GIT_ASKPASS`, with
/// [`super::contract::HELPER_ASKPASS_ENV`] set by `prepare` (the binary's command line chose this).
pub(crate) fn askpass(prompt: &OsStr) -> ExitCode {
    askpass::answer(&Layout::pod(), &prompt.to_string_lossy())
}

/// Reads and parses the manifest.
fn read_manifest(inputs: &Path) -> Result<Manifest, HelperError> {
    let text = read_input(inputs, MANIFEST_KEY)?;
    serde_json::from_slice(&text).map_err(HelperError::ManifestJson)
}

/// Reads one input file by its key.
fn read_input(inputs: &Path, key: &str) -> Result<Vec<u8>, HelperError> {
    // Why: a key is a file name in the inputs directory; anything else would read elsewhere.
    if key.is_empty() || key == "." || key == ".." || key.contains('/') {
        return Err(HelperError::InvalidManifest(format!(
            "{key:?} is not an inputs key"
        )));
    }
    let path = inputs.join(key);
    fs::read(&path).map_err(|source| HelperError::ReadInput { path, source })
}
