//! The steps the provider's own binary runs inside a run's pod, from the helper image:
//! `helper prepare` (the init container: checks out the git source into the shared directory
//! and places the files there) and `helper collect` (the native sidecar: once the main
//! container has ended, writes the result files into the run's result Secret). It also answers
//! git's credential prompts for `prepare` (git runs this binary as its `GIT_ASKPASS`).
//!
//! The contract with the Job ([`super::job`]) is in [`super::contract`]: the inputs Secret
//! mounted read-only at [`INPUTS_DIRECTORY`] with its `manifest.json`, and the results emptyDir
//! at [`RESULTS_DIRECTORY`]. Nothing here prints a secret value: not the password, the SSH key,
//! the secret files or the secret outputs, and no URL user info.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use super::MANAGER;
use super::contract::{
    COMMIT_FILE_NAME as COMMIT_KEY, ERROR_FILE_LIMIT, ERROR_FILE_NAME as ERROR_KEY,
    HELPER_ASKPASS_ENV, HelperStep, INPUTS_DIRECTORY, JOB_NAME_ENV, JOB_UID_ENV, MANIFEST_KEY,
    Manifest, ManifestFile, ManifestSource, NAMESPACE_ENV, OMITTED_ANNOTATION,
    OUTPUTS_FILE_NAME as OUTPUTS_KEY, OUTPUTS_LIMIT, RESULT_SECRET_ENV, RESULTS_DIRECTORY,
    SECRET_OUTPUTS_FILE_NAME as SECRET_OUTPUTS_KEY, SECRETS_DIGEST_ENV, SECRETS_DIGEST_KEY,
    TRUNCATED_ANNOTATION,
};

/// The result files in the order they get their share of the Secret's size: the small ones
/// that explain a run first.
const RESULT_KEYS: [&str; 4] = [COMMIT_KEY, ERROR_KEY, OUTPUTS_KEY, SECRET_OUTPUTS_KEY];
/// The container's termination message, which Kubernetes reports in the container status.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// The most the commit file may put into the Secret (a commit id is 40 or 64 characters).
const COMMIT_LIMIT: u64 = 256;
/// How long `collect` keeps trying to write the Secret. Why 20 s: Kubernetes kills the sidecar
/// after the pod's grace period, 30 s by default.
const WRITE_DEADLINE: Duration = Duration::from_secs(20);

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
        /// The command, with any URL user info removed.
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
        keyscan_arguments(host)
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
    /// The result Secret could not be written within [`WRITE_DEADLINE`].
    #[error("the result Secret {namespace}/{name} was not written within {WRITE_DEADLINE:?}")]
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

/// Runs a helper step: `args` are the arguments after `helper` (`prepare` or `collect`; or
/// `askpass` and git's prompt, when [`HELPER_ASKPASS_ENV`] is set).
pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let step = args.first().map(OsString::as_os_str).unwrap_or_default();
    let result = match HelperStep::named(step) {
        Some(HelperStep::Prepare) => prepare(&Layout::pod()),
        Some(HelperStep::Collect) => collect(&Layout::pod()),
        // Why only with the variable: a person running `helper askpass` by hand inside a pod
        // gets nothing printed; only git, started by `prepare`, has it set.
        None if step == "askpass" && std::env::var_os(HELPER_ASKPASS_ENV).is_some() => {
            let prompt = args.get(1).map(|p| p.to_string_lossy()).unwrap_or_default();
            return askpass(&Layout::pod(), &prompt);
        }
        None => {
            eprintln!("usage: terraform-provider-humanitec helper prepare|collect");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let step = step.to_string_lossy();
            let line = format!("helper {step}: {}", crate::text::error_chain(&error));
            eprintln!("{line}");
            // Best effort: outside a pod there is no termination log, and the line is already
            // in the container log.
            let _ = fs::write(TERMINATION_LOG, format!("{line}\n"));
            ExitCode::FAILURE
        }
    }
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

/// `helper prepare`: checks out the source, places the files, and makes sure the scripts
/// directory exists.
fn prepare(layout: &Layout) -> Result<(), HelperError> {
    let manifest = read_manifest(&layout.inputs)?;
    match &manifest.source {
        Some(source) => {
            eprintln!(
                "helper prepare: checking out {} ({}) into {}",
                redact_userinfo(&source.url),
                source.reference.as_deref().unwrap_or("the remote's HEAD"),
                manifest.shared_directory
            );
            let commit = checkout(
                source,
                Path::new(&manifest.shared_directory),
                &layout.inputs,
            )?;
            let commit_file = layout.results.join(COMMIT_KEY);
            fs::write(&commit_file, format!("{commit}\n")).map_err(|source| {
                HelperError::Write {
                    path: commit_file,
                    source,
                }
            })?;
            eprintln!("helper prepare: checked out {commit}");
            // Why before placing the files: placing one under a missing scripts directory
            // would create it and hide a wrong `source.path`.
            if !Path::new(&manifest.scripts_directory).is_dir() {
                let path = source
                    .path
                    .clone()
                    .unwrap_or_else(|| manifest.scripts_directory.clone());
                return Err(HelperError::ScriptsDirectoryMissing { path, commit });
            }
        }
        None => create_dir_all(Path::new(&manifest.scripts_directory))?,
    }
    place_files(&manifest.files, &layout.inputs)?;
    eprintln!(
        "helper prepare: placed {} file(s); SCRIPTS_DIRECTORY is {}",
        manifest.files.len(),
        manifest.scripts_directory
    );
    Ok(())
}

/// Creates a directory and its parents.
fn create_dir_all(path: &Path) -> Result<(), HelperError> {
    fs::create_dir_all(path).map_err(|source| HelperError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes every file of the manifest from its inputs key.
fn place_files(files: &[ManifestFile], inputs: &Path) -> Result<(), HelperError> {
    for file in files {
        if !Path::new(&file.path).is_absolute() {
            return Err(HelperError::InvalidManifest(format!(
                "the file path {} is not absolute",
                file.path
            )));
        }
        let content = read_input(inputs, &file.key)?;
        let mode = if file.secret { 0o600 } else { 0o644 };
        place_file(Path::new(&file.path), &content, mode)?;
        eprintln!(
            "helper prepare: placed {}{}",
            file.path,
            if file.secret { " (secret)" } else { "" }
        );
    }
    Ok(())
}

/// Writes one file with `mode`, creating its parent directories.
fn place_file(path: &Path, content: &[u8], mode: u32) -> Result<(), HelperError> {
    if path.is_dir() {
        return Err(HelperError::PathIsDirectory(path.to_path_buf()));
    }
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    let write_error = |source| HelperError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(write_error)?;
    // Why set the mode again, before writing: a file the checkout already has keeps its own
    // mode, and the umask narrows a new one; a secret must never sit in a readable file.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(write_error)?;
    file.write_all(content).map_err(write_error)
}

/// What a source's `ref` asks git to fetch.
#[derive(Debug, PartialEq, Eq)]
enum RefKind<'a> {
    /// No ref: the remote's HEAD.
    Head,
    /// A branch, a tag or a full ref, fetched by name.
    Named(&'a str),
    /// Looks like a commit (7–40 hex digits): fetched by name first, since it may also be a
    /// branch or the server may allow it, else from the whole repository.
    Commit(&'a str),
}

/// Classifies a source's `ref`.
fn classify_ref(reference: Option<&str>) -> RefKind<'_> {
    match reference {
        None | Some("") => RefKind::Head,
        Some(r) if (7..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit()) => {
            RefKind::Commit(r)
        }
        Some(r) => RefKind::Named(r),
    }
}

/// Checks the source out into `directory` (the repository's root) and returns the commit.
fn checkout(
    source: &ManifestSource,
    directory: &Path,
    inputs: &Path,
) -> Result<String, HelperError> {
    // Why: these become git arguments; a leading `-` would be read as an option.
    if source.url.starts_with('-') {
        return Err(HelperError::InvalidManifest(
            "the source URL starts with '-'".to_string(),
        ));
    }
    if source
        .reference
        .as_deref()
        .is_some_and(|r| r.starts_with('-'))
    {
        return Err(HelperError::InvalidManifest(
            "the source ref starts with '-'".to_string(),
        ));
    }
    let scratch = Scratch::create()?;
    let git = Git::new(source, directory, inputs, &scratch)?;
    git.run(&["init", "-q"])?;
    git.run(&["remote", "add", "origin", &source.url])?;
    let fetched = |name: &str| -> Result<(), HelperError> {
        git.run(&["fetch", "--depth", "1", "origin", name])?;
        git.run(&["checkout", "-q", "--detach", "FETCH_HEAD"])
    };
    match classify_ref(source.reference.as_deref()) {
        RefKind::Head => fetched("HEAD")?,
        RefKind::Named(name) => fetched(name)?,
        RefKind::Commit(sha) => {
            if fetched(sha).is_err() {
                // Why: many servers refuse a shallow fetch of a commit by its id, and an
                // abbreviated id cannot be fetched at all; the whole repository has it.
                eprintln!(
                    "helper prepare: fetching {sha} alone failed; fetching every branch and tag"
                );
                git.run(&["fetch", "--tags", "origin"])?;
                git.run(&["checkout", "-q", "--detach", sha])?;
            }
        }
    }
    let commit = git.output(&["rev-parse", "HEAD"])?;
    Ok(commit.trim().to_string())
}

/// A private temporary directory (mode 0700, not in the shared directory) for the SSH key, the
/// known hosts and, when needed, `HOME`; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    /// Creates it under the temporary directory (`TMPDIR`, else `/tmp`).
    fn create() -> Result<Self, HelperError> {
        let base = std::env::temp_dir();
        let mut n = 0u64;
        loop {
            let path = base.join(format!("humanitec-helper-{}-{n}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(source) => return Err(HelperError::Write { path, source }),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// git in the checkout directory, with the environment that supplies the credentials.
struct Git<'a> {
    /// The checkout directory.
    directory: &'a Path,
    /// Environment variables for every git command.
    env: Vec<(&'static str, OsString)>,
    /// The source's URL, to name its host when its key is refused.
    url: String,
    /// Whether `source.known_hosts` pins the host keys.
    pinned: bool,
}

impl<'a> Git<'a> {
    /// Prepares the environment: no prompts, askpass for HTTPS credentials, the SSH command.
    fn new(
        source: &ManifestSource,
        directory: &'a Path,
        inputs: &Path,
        scratch: &Scratch,
    ) -> Result<Self, HelperError> {
        let mut env: Vec<(&'static str, OsString)> = vec![("GIT_TERMINAL_PROMPT", "0".into())];
        if !home_is_writable() {
            let home = scratch.0.join("home");
            create_dir_all(&home)?;
            env.push(("HOME", home.into()));
        }
        if source.username.is_some() || source.password_key.is_some() {
            // Why askpass: credentials on git's command line or in the URL would show in the
            // process list and in git's messages; git asks this binary for them instead.
            let exe = std::env::current_exe().map_err(HelperError::CurrentExe)?;
            env.push(("GIT_ASKPASS", exe.into()));
            env.push((HELPER_ASKPASS_ENV, "1".into()));
        }
        // Why accept-new without source.known_hosts: no known_hosts can be shipped for every
        // server, so the key is taken on first use (and every pod is a first use). With it, the
        // server must show one of its keys (`yes`). BatchMode: nothing can answer a prompt
        // here, so ssh must fail instead of waiting.
        let known_hosts = scratch.0.join("known_hosts");
        let checking = match &source.known_hosts {
            Some(lines) => {
                let mut content = lines.clone().into_bytes();
                if !content.ends_with(b"\n") {
                    content.push(b'\n');
                }
                place_file(&known_hosts, &content, 0o600)?;
                "yes"
            }
            None => "accept-new",
        };
        let mut ssh = format!(
            "ssh -o IdentitiesOnly=yes -o StrictHostKeyChecking={checking} -o BatchMode=yes -o UserKnownHostsFile={}",
            shell_quote(&known_hosts.to_string_lossy())
        );
        if let Some(pem) = &source.ca_certificates {
            // Why the image's bundle too: GIT_SSL_CAINFO replaces it, and the private CA comes
            // in addition to the public ones (a proxy or a mirror may use a public CA).
            let mut bundle = fs::read(SYSTEM_CA_BUNDLE).unwrap_or_default();
            if !bundle.is_empty() && !bundle.ends_with(b"\n") {
                bundle.push(b'\n');
            }
            bundle.extend_from_slice(pem.as_bytes());
            bundle.push(b'\n');
            let file = scratch.0.join("ca-certificates.pem");
            place_file(&file, &bundle, 0o600)?;
            env.push(("GIT_SSL_CAINFO", file.into()));
            eprintln!("helper prepare: trusting the CA certificates of source.ca_certificates");
        }
        if let Some(key) = &source.ssh_key_key {
            let mut content = read_input(inputs, key)?;
            // Why: OpenSSH refuses a key file without its final newline, which a key pasted
            // into HCL often lacks.
            if !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            // Why a copy: ssh refuses a key others can read, and the mounted Secret's files
            // are group-readable.
            let key_file = scratch.0.join("ssh-key");
            place_file(&key_file, &content, 0o600)?;
            ssh.push_str(&format!(" -i {}", shell_quote(&key_file.to_string_lossy())));
        }
        env.push(("GIT_SSH_COMMAND", ssh.into()));
        Ok(Git {
            directory,
            env,
            url: source.url.clone(),
            pinned: source.known_hosts.is_some(),
        })
    }

    /// The command for `args`, in the checkout directory.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        // Why safe.directory: the shared emptyDir belongs to root (with the pod's fsGroup), not
        // to the user git runs as, and git refuses such a repository otherwise.
        let safe = format!("safe.directory={}", self.directory.display());
        command
            .args(["-c", &safe, "-c", "init.defaultBranch=main"])
            .args(["-c", "advice.detachedHead=false"])
            .args(args)
            .current_dir(self.directory)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs git; its output goes to the container log, redacted.
    fn run(&self, args: &[&str]) -> Result<(), HelperError> {
        self.output(args).map(drop)
    }

    /// Runs git and returns its stdout; stderr (and stdout) also go to the container log,
    /// redacted.
    fn output(&self, args: &[&str]) -> Result<String, HelperError> {
        let output = self.command(args).output().map_err(HelperError::GitSpawn)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = redact_userinfo(&String::from_utf8_lossy(&output.stderr));
        if !stderr.is_empty() {
            eprint!("{stderr}");
        }
        if output.status.success() {
            return Ok(stdout.into_owned());
        }
        if !stdout.is_empty() {
            eprint!("{}", redact_userinfo(&stdout));
        }
        if stderr.contains("Host key verification failed") {
            let host = ssh_host(&self.url).unwrap_or_else(|| redact_userinfo(&self.url));
            // Why ssh's own line: it says whether the key is unknown or differs, and names
            // the key type.
            let said = stderr
                .lines()
                .map(str::trim)
                .find(|l| {
                    l.starts_with("No ") && l.contains("host key is known")
                        || l.starts_with("Host key for") && l.contains("has changed")
                })
                .unwrap_or("Host key verification failed.")
                .to_string();
            return Err(HelperError::HostKey {
                host,
                said,
                pinned: self.pinned,
            });
        }
        let detail = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        Err(HelperError::Git {
            command: redact_userinfo(&format!("git {}", args.join(" "))),
            status: output.status,
            detail,
        })
    }
}

/// The image's CA bundle (Debian's `ca-certificates`).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host of an ssh URL as known_hosts names it: `host`, or `[host]:port` for a port other
/// than 22 (`ssh://user@host:port/path`, or scp-like `user@host:path`); `None` for other URLs.
fn ssh_host(url: &str) -> Option<String> {
    let authority = if let Some(rest) = url.strip_prefix("ssh://") {
        rest.split('/').next()?
    } else if url.contains("://") {
        return None;
    } else {
        url.split_once(':')?.0
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, rest) = bracketed.split_once(']')?;
            (host, rest.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) if url.starts_with("ssh://") => (host, Some(port)),
            _ => (host_port, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    Some(match port {
        Some(port) if port != "22" && !port.is_empty() => format!("[{host}]:{port}"),
        _ => host.to_string(),
    })
}

/// `ssh-keyscan`'s arguments for a known_hosts host name, with a leading space.
fn keyscan_arguments(host: &str) -> String {
    match host
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
    {
        Some((host, port)) => format!(" -p {port} {host}"),
        None => format!(" {host}"),
    }
}

/// Whether `HOME` is set and a directory can be created in it (git and ssh write there).
fn home_is_writable() -> bool {
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return false;
    };
    let probe = Path::new(&home).join(format!(".humanitec-helper-{}", std::process::id()));
    let writable = fs::create_dir(&probe).is_ok();
    let _ = fs::remove_dir(&probe);
    writable
}

/// Quotes `text` for `sh` (git runs `GIT_SSH_COMMAND` through the shell).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Replaces the user info of every URL in `text` (`scheme://user:password@host`) with `***`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c == '/' || c.is_whitespace() || "'\"<>".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(sign) => {
                out.push_str("***");
                out.push_str(&authority[sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// What git's askpass prompt asks for.
#[derive(Debug, PartialEq, Eq)]
enum Prompt {
    /// `Username for 'https://…': `
    Username,
    /// `Password for 'https://…': `
    Password,
}

/// Reads git's prompt.
fn prompt_kind(prompt: &str) -> Option<Prompt> {
    if prompt.starts_with("Username") {
        Some(Prompt::Username)
    } else if prompt.starts_with("Password") {
        Some(Prompt::Password)
    } else {
        None
    }
}

/// The answer to git's prompt, from the manifest's source and the inputs.
fn askpass_answer(layout: &Layout, prompt: &str) -> Result<Vec<u8>, HelperError> {
    let kind = prompt_kind(prompt).ok_or_else(|| HelperError::UnknownPrompt(prompt.to_string()))?;
    let manifest = read_manifest(&layout.inputs)?;
    let source = manifest.source.as_ref();
    match kind {
        Prompt::Username => source
            .and_then(|s| s.username.clone())
            .map(String::into_bytes)
            .ok_or(HelperError::NoCredential("user name")),
        Prompt::Password => {
            let key = source
                .and_then(|s| s.password_key.as_deref())
                .ok_or(HelperError::NoCredential("password"))?;
            read_input(&layout.inputs, key)
        }
    }
}

/// Answers git's credential prompt on stdout (git runs this binary as `GIT_ASKPASS`).
fn askpass(layout: &Layout, prompt: &str) -> ExitCode {
    let answer = match askpass_answer(layout, prompt) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("helper askpass: {}", crate::text::error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    // Why stdout: it is how askpass answers git, the one place this binary writes a secret
    // there. git reads up to the first line break.
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(&answer)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("helper askpass: cannot answer git: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Where `collect` writes: from its environment.
#[derive(Debug, Clone, PartialEq)]
struct ResultTarget {
    /// The result Secret's name.
    secret: String,
    /// The namespace.
    namespace: String,
    /// The Job's name.
    job_name: String,
    /// The Job's uid.
    job_uid: String,
    /// The digest of the run's secret values, copied into the results so that a later apply
    /// can tell, once the inputs Secret is gone, which secret values the run used.
    secrets_digest: Option<String>,
}

impl ResultTarget {
    /// Reads [`RESULT_SECRET_ENV`], [`NAMESPACE_ENV`], [`JOB_NAME_ENV`] and [`JOB_UID_ENV`].
    fn from_env() -> Result<Self, HelperError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(HelperError::MissingEnv(name))
        };
        Ok(ResultTarget {
            secret: var(RESULT_SECRET_ENV)?,
            namespace: var(NAMESPACE_ENV)?,
            job_name: var(JOB_NAME_ENV)?,
            job_uid: var(JOB_UID_ENV)?,
            secrets_digest: var(SECRETS_DIGEST_ENV).ok(),
        })
    }
}

/// The result files read for the Secret.
#[derive(Debug, Default, PartialEq)]
struct Collected {
    /// Key → content (`ERROR_FILE` possibly cut).
    data: BTreeMap<String, Vec<u8>>,
    /// Keys of files cut to their limit → their real size in bytes (`ERROR_FILE` only, which is
    /// read by people).
    truncated: BTreeMap<String, u64>,
    /// Keys of files left out because they do not fit → their real size in bytes. Why not cut
    /// them: a cut JSON file is not JSON, and the provider should say that it was too large.
    omitted: BTreeMap<String, u64>,
}

/// Reads the result files that exist: the commit and `ERROR_FILE` each cut to its limit,
/// `OUTPUTS_FILE` and `SECRET_OUTPUTS_FILE` whole, together within [`OUTPUTS_LIMIT`], or left
/// out. A file that cannot be read is logged and left out: the others still matter.
fn read_results(results: &Path) -> Collected {
    let mut collected = Collected::default();
    let mut outputs_budget = OUTPUTS_LIMIT;
    for key in RESULT_KEYS {
        let path = results.join(key);
        let (limit, cut) = match key {
            COMMIT_KEY => (COMMIT_LIMIT, true),
            ERROR_KEY => (ERROR_FILE_LIMIT, true),
            _ => (outputs_budget, false),
        };
        let mut content = Vec::new();
        let read = fs::File::open(&path).and_then(|file| {
            let size = file.metadata()?.len();
            // Why `take`: a runaway result file must not be read whole into memory.
            file.take(limit + 1).read_to_end(&mut content)?;
            Ok(size)
        });
        let size = match read {
            Ok(size) => size,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                eprintln!("helper collect: cannot read {}: {e}", path.display());
                continue;
            }
        };
        if content.len() as u64 > limit {
            let size = size.max(limit + 1);
            if cut {
                content.truncate(limit as usize);
                collected.truncated.insert(key.to_string(), size);
            } else {
                collected.omitted.insert(key.to_string(), size);
                continue;
            }
        }
        if !cut {
            outputs_budget -= content.len() as u64;
        }
        collected.data.insert(key.to_string(), content);
    }
    collected
}

/// One log line about what was collected: keys and sizes, never content.
fn collected_summary(collected: &Collected) -> String {
    let mut parts: Vec<String> = collected
        .data
        .iter()
        .map(|(key, content)| match collected.truncated.get(key) {
            Some(size) => format!("{key} ({} bytes, truncated from {size})", content.len()),
            None => format!("{key} ({} bytes)", content.len()),
        })
        .chain(collected.omitted.iter().map(|(key, size)| {
            format!("{key} left out ({size} bytes do not fit in the {OUTPUTS_LIMIT} bytes of the outputs)")
        }))
        .collect();
    if parts.is_empty() {
        parts.push("no result files".to_string());
    }
    let absent: Vec<&str> = RESULT_KEYS
        .into_iter()
        .filter(|k| !collected.data.contains_key(*k) && !collected.omitted.contains_key(*k))
        .collect();
    let mut line = format!("collected {}", parts.join(", "));
    if !absent.is_empty() && !collected.data.is_empty() {
        line.push_str(&format!("; absent: {}", absent.join(", ")));
    }
    line
}

/// The result Secret for `collected`, owned by the Job (without blocking its deletion), so it
/// goes when the Job goes.
fn result_secret(target: &ResultTarget, collected: &Collected) -> KubeSecret {
    let sizes = |files: &BTreeMap<String, u64>| {
        files
            .iter()
            .map(|(key, size)| format!("{key}={size}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let annotations: BTreeMap<String, String> = [
        (TRUNCATED_ANNOTATION, &collected.truncated),
        (OMITTED_ANNOTATION, &collected.omitted),
    ]
    .into_iter()
    .filter(|(_, files)| !files.is_empty())
    .map(|(name, files)| (name.to_string(), sizes(files)))
    .collect();
    let annotations = (!annotations.is_empty()).then_some(annotations);
    let mut data: BTreeMap<String, ByteString> = collected
        .data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect();
    if let Some(digest) = &target.secrets_digest {
        data.insert(
            SECRETS_DIGEST_KEY.to_string(),
            ByteString(digest.clone().into_bytes()),
        );
    }
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(target.secret.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                MANAGER.to_string(),
            )])),
            annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".to_string(),
                kind: "Job".to_string(),
                name: target.job_name.clone(),
                uid: target.job_uid.clone(),
                controller: Some(false),
                block_owner_deletion: Some(false),
            }]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data),
        ..KubeSecret::default()
    }
}

/// `helper collect`: waits for SIGTERM, then writes the result files into the result Secret.
fn collect(layout: &Layout) -> Result<(), HelperError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HelperError::Runtime)?
        .block_on(collect_async(layout))
}

/// The async body of [`collect`].
async fn collect_async(layout: &Layout) -> Result<(), HelperError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Why first: the main container may end, and Kubernetes send SIGTERM, right after this
    // container started; as PID 1 without a handler the signal would be dropped, and the
    // sidecar would wait until it is killed.
    let mut terminate = signal(SignalKind::terminate()).map_err(HelperError::Signal)?;
    let target = ResultTarget::from_env()?;
    // Why now: a pod without service account credentials fails here, at its start, rather
    // than after the run.
    let config = kube::Config::incluster().map_err(HelperError::InCluster)?;
    eprintln!(
        "helper collect: waiting for the main container to end; results go to Secret {}/{}",
        target.namespace, target.secret
    );
    terminate.recv().await;
    let collected = read_results(&layout.results);
    eprintln!("helper collect: {}", collected_summary(&collected));
    let client = kube::Client::try_from(config).map_err(HelperError::Client)?;
    let secret = result_secret(&target, &collected);
    let timeout = || HelperError::WriteTimeout {
        namespace: target.namespace.clone(),
        name: target.secret.clone(),
    };
    tokio::time::timeout(WRITE_DEADLINE, write_secret(client, &target, &secret))
        .await
        .map_err(|_| timeout())?
}

/// Creates the result Secret, retrying transient failures; replaces it when it exists (a
/// retried pod of the same Job).
async fn write_secret(
    client: kube::Client,
    target: &ResultTarget,
    secret: &KubeSecret,
) -> Result<(), HelperError> {
    let api: Api<KubeSecret> = Api::namespaced(client, &target.namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..PostParams::default()
    };
    let failed = |source| HelperError::WriteSecret {
        namespace: target.namespace.clone(),
        name: target.secret.clone(),
        source,
    };
    loop {
        match api.create(&params, secret).await {
            Ok(_) => {
                eprintln!("helper collect: wrote Secret {}", target.secret);
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 409 => break,
            Err(e) if is_transient(&e) => {
                eprintln!("helper collect: writing the Secret failed, retrying: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(failed(e)),
        }
    }
    // Why PUT and no GET: the Job's service account may only create Secrets (Humanitec's
    // runner RBAC); a replace is tried, and without `update` the earlier attempt's results
    // stay. An unconditional update needs no resourceVersion, so nothing is read first.
    eprintln!(
        "helper collect: Secret {} exists (an earlier attempt of this Job); replacing it",
        target.secret
    );
    match api.replace(&target.secret, &params, secret).await {
        Ok(_) => {
            eprintln!("helper collect: replaced Secret {}", target.secret);
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            eprintln!(
                "helper collect: may not replace Secret {} (no `update` on secrets); it keeps the earlier results",
                target.secret
            );
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

/// Whether a failed write may succeed when tried again: no answer, or the server's own
/// trouble.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(json: &str) -> Manifest {
        serde_json::from_str(json).expect("manifest parses")
    }

    #[test]
    fn the_manifest_parses_with_and_without_a_source() {
        let m = manifest(
            r#"{"shared_directory": "/w", "scripts_directory": "/w/infra",
                "source": {"url": "https://example.com/r.git", "ref": "main", "path": "infra",
                           "username": "me", "password_key": "source.password"},
                "files": [{"key": "file.0", "path": "/w/infra/a.tf", "secret": false},
                          {"key": "secret-file.0", "path": "/w/s.json", "secret": true}]}"#,
        );
        assert_eq!(m.shared_directory, "/w");
        assert_eq!(m.scripts_directory, "/w/infra");
        let source = m.source.expect("a source");
        assert_eq!(source.reference.as_deref(), Some("main"));
        assert_eq!(source.path.as_deref(), Some("infra"));
        assert_eq!(source.password_key.as_deref(), Some("source.password"));
        assert_eq!(source.ssh_key_key, None);
        assert_eq!(m.files.len(), 2);
        assert!(m.files[1].secret && !m.files[0].secret);

        let m =
            manifest(r#"{"shared_directory": "/w", "scripts_directory": "/w", "source": null}"#);
        assert!(m.source.is_none() && m.files.is_empty());
        assert!(serde_json::from_str::<Manifest>(r#"{"source": null}"#).is_err());
    }

    #[test]
    fn refs_are_classified() {
        assert_eq!(classify_ref(None), RefKind::Head);
        assert_eq!(classify_ref(Some("")), RefKind::Head);
        for named in [
            "main",
            "v1.2",
            "refs/heads/main",
            "refs/tags/v1",
            "refs/pull/1/head",
        ] {
            assert_eq!(classify_ref(Some(named)), RefKind::Named(named));
        }
        let full = "0123456789abcdef0123456789ABCDEF01234567";
        for commit in ["abc1234", full] {
            assert_eq!(classify_ref(Some(commit)), RefKind::Commit(commit));
        }
        // Too short, too long, not hex: names.
        for named in [
            "abc123",
            "0123456789abcdef0123456789abcdef012345678",
            "deadbeefx",
        ] {
            assert_eq!(classify_ref(Some(named)), RefKind::Named(named));
        }
    }

    #[test]
    fn askpass_prompts_are_told_apart() {
        assert_eq!(
            prompt_kind("Username for 'https://example.com': "),
            Some(Prompt::Username)
        );
        assert_eq!(
            prompt_kind("Password for 'https://me@example.com': "),
            Some(Prompt::Password)
        );
        assert_eq!(prompt_kind("Are you sure (yes/no)? "), None);
    }

    #[test]
    fn askpass_answers_from_the_manifest_and_the_inputs() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let layout = Layout {
            inputs: inputs.path().to_path_buf(),
            results: inputs.path().to_path_buf(),
        };
        fs::write(
            inputs.path().join(MANIFEST_KEY),
            r#"{"shared_directory": "/w", "scripts_directory": "/w",
                "source": {"url": "https://example.com/r.git", "username": "me",
                           "password_key": "source.password"}}"#,
        )
        .expect("manifest");
        fs::write(inputs.path().join("source.password"), "t0ken").expect("password");
        let answer = |p| askpass_answer(&layout, p).map(|a| String::from_utf8(a).expect("utf-8"));
        assert_eq!(
            answer("Username for 'https://example.com': ").expect("user"),
            "me"
        );
        assert_eq!(
            answer("Password for 'https://me@example.com': ").expect("pw"),
            "t0ken"
        );
        let unknown = answer("Passphrase? ").expect_err("unknown prompt");
        assert!(matches!(unknown, HelperError::UnknownPrompt(_)));

        fs::write(
            inputs.path().join(MANIFEST_KEY),
            r#"{"shared_directory": "/w", "scripts_directory": "/w",
                "source": {"url": "https://example.com/r.git"}}"#,
        )
        .expect("manifest");
        let missing = answer("Password for 'https://example.com': ").expect_err("no password");
        assert!(matches!(missing, HelperError::NoCredential("password")));
        let missing = answer("Username for 'https://example.com': ").expect_err("no user");
        assert!(matches!(missing, HelperError::NoCredential("user name")));
    }

    #[test]
    fn url_userinfo_is_redacted() {
        assert_eq!(
            redact_userinfo("fatal: unable to access 'https://me:t0ken@example.com/r.git/': 403"),
            "fatal: unable to access 'https://***@example.com/r.git/': 403"
        );
        assert_eq!(
            redact_userinfo("git remote add origin https://x:y@h:8443/r and ssh://git@h/r"),
            "git remote add origin https://***@h:8443/r and ssh://***@h/r"
        );
        let clean = "From https://example.com/r\n * branch main -> FETCH_HEAD\ngit@host:r.git";
        assert_eq!(redact_userinfo(clean), clean);
        assert_eq!(redact_userinfo("https://a:b@c"), "https://***@c");
    }

    #[test]
    fn ssh_hosts_are_named_as_known_hosts_names_them() {
        for (url, want) in [
            ("ssh://git@example.com/r.git", Some("example.com")),
            ("ssh://git@example.com:22/r.git", Some("example.com")),
            (
                "ssh://git@127.0.0.1:2222/srv/r.git",
                Some("[127.0.0.1]:2222"),
            ),
            ("ssh://example.com:2222/r.git", Some("[example.com]:2222")),
            ("ssh://git@[::1]:2222/r.git", Some("[::1]:2222")),
            ("git@github.com:acme/infra.git", Some("github.com")),
            ("https://example.com/r.git", None),
        ] {
            assert_eq!(ssh_host(url).as_deref(), want, "{url}");
        }
        assert_eq!(keyscan_arguments("[127.0.0.1]:2222"), " -p 2222 127.0.0.1");
        assert_eq!(keyscan_arguments("github.com"), " github.com");
        let error = HelperError::HostKey {
            host: "[127.0.0.1]:2222".into(),
            said: "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.".into(),
            pinned: true,
        };
        assert_eq!(
            error.to_string(),
            "the ssh server [127.0.0.1]:2222 showed a host key that source.known_hosts does not \
             hold (No ED25519 host key is known for [127.0.0.1]:2222 and you have requested \
             strict checking.); if it is the right server, add its key to source.known_hosts \
             (`ssh-keyscan -p 2222 127.0.0.1` prints it)"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn files_are_placed_with_their_modes() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        fs::write(inputs.path().join("file.0"), "plain").expect("input");
        fs::write(inputs.path().join("secret-file.0"), "hidden").expect("input");
        let plain = shared.path().join("scripts/deep/a.tf");
        let secret = shared.path().join("s.json");
        // An existing readable file keeps neither its content nor its mode.
        fs::write(&secret, "old content that is longer").expect("existing");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o666)).expect("chmod");
        let files = vec![
            ManifestFile {
                key: "file.0".into(),
                path: plain.display().to_string(),
                secret: false,
            },
            ManifestFile {
                key: "secret-file.0".into(),
                path: secret.display().to_string(),
                secret: true,
            },
        ];
        place_files(&files, inputs.path()).expect("placed");
        assert_eq!(fs::read_to_string(&plain).expect("plain"), "plain");
        assert_eq!(fs::read_to_string(&secret).expect("secret"), "hidden");
        assert_eq!(mode(&plain), 0o644);
        assert_eq!(mode(&secret), 0o600);
    }

    #[test]
    fn placing_refuses_directories_relative_paths_and_odd_keys() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        fs::write(inputs.path().join("file.0"), "x").expect("input");
        let file = |key: &str, path: PathBuf| ManifestFile {
            key: key.into(),
            path: path.display().to_string(),
            secret: false,
        };
        let dir = shared.path().join("dir");
        fs::create_dir(&dir).expect("dir");
        let error = place_files(&[file("file.0", dir.clone())], inputs.path()).expect_err("dir");
        assert_eq!(
            error.to_string(),
            format!(
                "cannot place a file at {}: it is a directory",
                dir.display()
            )
        );
        let error = place_files(&[file("file.0", "rel/a".into())], inputs.path()).expect_err("rel");
        assert!(matches!(error, HelperError::InvalidManifest(_)), "{error}");
        let error = place_files(&[file("../file.0", shared.path().join("a"))], inputs.path())
            .expect_err("key");
        assert!(matches!(error, HelperError::InvalidManifest(_)), "{error}");
    }

    #[test]
    fn prepare_without_a_source_creates_the_scripts_directory() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let results = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        let scripts = shared.path().join("scripts");
        let manifest = serde_json::json!({
            "shared_directory": shared.path(), "scripts_directory": scripts, "source": null,
            "files": [{"key": "file.0", "path": shared.path().join("other/f"), "secret": false}]
        });
        fs::write(inputs.path().join(MANIFEST_KEY), manifest.to_string()).expect("manifest");
        fs::write(inputs.path().join("file.0"), "f").expect("input");
        let layout = Layout {
            inputs: inputs.path().to_path_buf(),
            results: results.path().to_path_buf(),
        };
        prepare(&layout).expect("prepared");
        assert!(scripts.is_dir());
        assert_eq!(
            fs::read_to_string(shared.path().join("other/f")).expect("f"),
            "f"
        );
        assert!(!results.path().join(COMMIT_KEY).exists());
    }

    /// Runs git in `dir` for the test fixtures.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .expect("git is on PATH");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repository with two commits on `main` (the second tagged `v2`, the first reachable only
    /// through history) and an `infra` directory; returns its file:// URL and both commits.
    fn repository(dir: &Path) -> (String, String, String) {
        let work = dir.join("work");
        fs::create_dir_all(work.join("infra")).expect("dirs");
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["config", "user.email", "t@example.com"]);
        git(&work, &["config", "user.name", "t"]);
        fs::write(work.join("infra/run.sh"), "one").expect("file");
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        let first = git(&work, &["rev-parse", "HEAD"]);
        fs::write(work.join("infra/run.sh"), "two").expect("file");
        git(&work, &["commit", "-q", "-am", "two"]);
        git(&work, &["tag", "-a", "v2", "-m", "v2"]);
        let second = git(&work, &["rev-parse", "HEAD"]);
        git(dir, &["clone", "-q", "--bare", "work", "repo.git"]);
        (
            format!("file://{}", dir.join("repo.git").display()),
            first,
            second,
        )
    }

    /// Runs `prepare` for `reference`; returns the commit file's content and run.sh's.
    fn prepare_ref(
        url: &str,
        reference: Option<&str>,
        path: &str,
    ) -> Result<(String, String), HelperError> {
        let inputs = tempfile::tempdir().expect("temp dir");
        let results = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        let manifest = serde_json::json!({
            "shared_directory": shared.path(), "scripts_directory": shared.path().join(path),
            "source": {"url": url, "ref": reference, "path": path}, "files": []
        });
        fs::write(inputs.path().join(MANIFEST_KEY), manifest.to_string()).expect("manifest");
        let layout = Layout {
            inputs: inputs.path().to_path_buf(),
            results: results.path().to_path_buf(),
        };
        prepare(&layout)?;
        let commit = fs::read_to_string(results.path().join(COMMIT_KEY)).expect("commit");
        let script = fs::read_to_string(shared.path().join("infra/run.sh")).expect("run.sh");
        Ok((commit.trim().to_string(), script))
    }

    #[test]
    fn every_kind_of_ref_is_checked_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, first, second) = repository(dir.path());
        let two = (second.clone(), "two".to_string());
        let one = (first.clone(), "one".to_string());
        for reference in [
            None,
            Some("main"),
            Some("v2"),
            Some("refs/heads/main"),
            Some("refs/tags/v2"),
        ] {
            assert_eq!(
                prepare_ref(&url, reference, "infra").expect("checked out"),
                two,
                "{reference:?}"
            );
        }
        // A commit behind the tip, full and abbreviated (the latter only from a full fetch).
        assert_eq!(
            prepare_ref(&url, Some(&first), "infra").expect("full id"),
            one
        );
        assert_eq!(
            prepare_ref(&url, Some(&first[..9]), "infra").expect("short id"),
            one
        );

        let error = prepare_ref(&url, Some("nope"), "infra").expect_err("no such ref");
        let text = crate::text::error_chain(&error);
        assert!(
            text.starts_with("`git fetch --depth 1 origin nope` failed"),
            "{text}"
        );
        let error = prepare_ref(&url, None, "missing").expect_err("no such path");
        assert_eq!(
            error.to_string(),
            format!("source.path missing is not in the repository at {second}")
        );
    }

    fn target() -> ResultTarget {
        ResultTarget {
            secret: "run-result".into(),
            namespace: "ns".into(),
            job_name: "run".into(),
            job_uid: "uid-1".into(),
            secrets_digest: None,
        }
    }

    #[test]
    fn results_are_read_within_the_limits() {
        let results = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_results(results.path()), Collected::default());
        assert_eq!(
            collected_summary(&Collected::default()),
            "collected no result files"
        );

        fs::write(results.path().join(OUTPUTS_KEY), r#"{"a": 1}"#).expect("outputs");
        fs::write(results.path().join(ERROR_KEY), "boom\n").expect("error");
        let collected = read_results(results.path());
        assert_eq!(
            collected.data.keys().collect::<Vec<_>>(),
            [ERROR_KEY, OUTPUTS_KEY]
        );
        assert_eq!(
            collected_summary(&collected),
            "collected error.txt (5 bytes), outputs.json (8 bytes); absent: commit, secret-outputs.json"
        );

        // Outputs up to the limit come back whole; a file that does not fit is left out, with
        // its size; ERROR_FILE is cut.
        let whole = vec![b'x'; OUTPUTS_LIMIT as usize - 5];
        fs::write(results.path().join(OUTPUTS_KEY), &whole).expect("outputs");
        fs::write(results.path().join(SECRET_OUTPUTS_KEY), b"{\"a\": \"b\"}").expect("secret");
        let long_error = vec![b'e'; ERROR_FILE_LIMIT as usize + 1];
        fs::write(results.path().join(ERROR_KEY), &long_error).expect("error");
        let collected = read_results(results.path());
        assert_eq!(collected.data[OUTPUTS_KEY].len(), whole.len());
        assert_eq!(
            collected.omitted,
            BTreeMap::from([(SECRET_OUTPUTS_KEY.to_string(), 10)])
        );
        assert_eq!(
            collected.data[ERROR_KEY].len() as u64,
            ERROR_FILE_LIMIT,
            "ERROR_FILE is cut"
        );
        assert_eq!(
            collected.truncated,
            BTreeMap::from([(ERROR_KEY.to_string(), ERROR_FILE_LIMIT + 1)])
        );
        let summary = collected_summary(&collected);
        assert!(
            summary.contains("secret-outputs.json left out (10 bytes do not fit"),
            "{summary}"
        );
        let total: u64 = collected.data.values().map(|v| v.len() as u64).sum();
        assert!(total + 64 <= 1024 * 1024, "the Secret's data fits in 1 MiB");
    }

    #[test]
    fn the_result_secret_is_owned_by_the_job() {
        let collected = Collected {
            data: BTreeMap::from([(OUTPUTS_KEY.to_string(), b"{}".to_vec())]),
            ..Collected::default()
        };
        let secret = serde_json::to_value(result_secret(&target(), &collected)).expect("JSON");
        assert_eq!(
            secret,
            serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {
                    "name": "run-result", "namespace": "ns",
                    "labels": {"app.kubernetes.io/managed-by": "terraform-provider-humanitec"},
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "run",
                        "uid": "uid-1", "controller": false, "blockOwnerDeletion": false}]
                },
                "data": {"outputs.json": "e30="}
            })
        );
        let omitted = Collected {
            omitted: BTreeMap::from([(OUTPUTS_KEY.to_string(), 2_000_000)]),
            ..collected
        };
        let with_digest = ResultTarget {
            secrets_digest: Some("d1g3st".into()),
            ..target()
        };
        let secret = result_secret(&with_digest, &omitted);
        assert_eq!(
            secret.metadata.annotations,
            Some(BTreeMap::from([(
                OMITTED_ANNOTATION.to_string(),
                "outputs.json=2000000".to_string()
            )]))
        );
        let data = secret.data.unwrap_or_default();
        assert_eq!(data[SECRETS_DIGEST_KEY].0, b"d1g3st");
    }
}
