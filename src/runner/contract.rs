//! The contract between the Job builder ([`super::job`], on the provider's side) and the helper
//! steps that run inside the run's pod ([`super::helper`]: `helper prepare`, `helper collect`
//! and git's askpass), and the provider's reading of what they leave behind ([`super::run`]).
//!
//! The two sides are built from one crate but run as two programs, in two places and at two
//! times; nothing but the names and shapes below tells one side what the other does. Each
//! item says who writes it and who reads it. Changing one is changing the protocol between a
//! provider and the helper image it starts (the image's tag is the provider's version, so both
//! sides always come from the same build).
//!
//! - The inputs Secret: written by the builder, mounted read-only at [`INPUTS_DIRECTORY`] in
//!   `prepare`; its [`Manifest`] names every other key `prepare` reads.
//! - The result files: written in [`RESULTS_DIRECTORY`] by `main` (the user's image) and by
//!   `prepare` (the commit), copied by `collect` into the run's result Secret under the same
//!   keys, and read from there by [`super::run`].
//! - The helper containers' command line and environment: set by the builder, read by the
//!   binary's command line ([`crate::command_line`]) and by `collect`.

use std::ffi::OsStr;

use serde::{Deserialize, Serialize};

// The pod's layout.

/// Where the inputs Secret is mounted in the `prepare` container. Builder: mounts it; `prepare`
/// and askpass: read the [`Manifest`] and the keys it names from here.
pub(crate) const INPUTS_DIRECTORY: &str = "/humanitec/inputs";

/// Where the result files are written (`main`, and `prepare` for the commit) and read
/// (`collect`). Builder: mounts one emptyDir here in all three containers.
pub(crate) const RESULTS_DIRECTORY: &str = "/humanitec/results";

/// The runner's container (the user's image). Builder: names it; [`super::run`]: tells its
/// failures and logs from the helper containers'.
pub(crate) const MAIN_CONTAINER: &str = "main";

/// The init container that runs `helper prepare`. Builder: names it; [`super::run`]: reports a
/// failed checkout from its status.
pub(crate) const PREPARE_CONTAINER: &str = "prepare";

/// The native sidecar that runs `helper collect`. Builder: names it; [`super::run`]: reports a
/// result Secret it could not write from its status.
pub(crate) const COLLECT_CONTAINER: &str = "collect";

// The helper containers' command line and environment.

/// The provider's binary in the helper image. Builder: the command of both helper containers,
/// followed by [`HELPER_ARGUMENT`] and the [`HelperStep`].
pub(crate) const HELPER_COMMAND: &str = "terraform-provider-humanitec";

/// The first argument that makes the binary run a helper step instead of serving the plugin.
/// Builder: writes it; the binary's command line: reads it.
pub(crate) const HELPER_ARGUMENT: &str = "helper";

/// A step the Job's helper containers run: `HELPER_COMMAND helper <step>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HelperStep {
    /// The init container: checks out the source and places the files.
    Prepare,
    /// The native sidecar: writes the result files into the result Secret.
    Collect,
}

impl HelperStep {
    /// The step's argument after [`HELPER_ARGUMENT`].
    pub(crate) fn name(self) -> &'static str {
        match self {
            HelperStep::Prepare => "prepare",
            HelperStep::Collect => "collect",
        }
    }

    /// The step an argument names.
    pub(crate) fn named(argument: &OsStr) -> Option<Self> {
        [HelperStep::Prepare, HelperStep::Collect]
            .into_iter()
            .find(|step| argument == step.name())
    }

    /// The helper container's command.
    pub(crate) fn command(self) -> [&'static str; 3] {
        [HELPER_COMMAND, HELPER_ARGUMENT, self.name()]
    }
}

/// Set (to `1`) in git's environment by `prepare`, whose `GIT_ASKPASS` is this binary: started
/// with it, the binary answers git's credential prompt instead of serving the plugin. `prepare`:
/// sets it; the binary's command line: reads it.
pub const HELPER_ASKPASS_ENV: &str = "HUMANITEC_HELPER_ASKPASS";

/// `collect`'s variable with the name of the result Secret to write. Builder: sets it;
/// `collect`: reads it.
pub(crate) const RESULT_SECRET_ENV: &str = "HUMANITEC_RESULT_SECRET";

/// `collect`'s variable with the Job's name, to own the result Secret. Builder: sets it;
/// `collect`: reads it.
pub(crate) const JOB_NAME_ENV: &str = "HUMANITEC_JOB_NAME";

/// `collect`'s variable with the Job's uid, to own the result Secret. Builder: sets it from the
/// pod's labels; `collect`: reads it.
pub(crate) const JOB_UID_ENV: &str = "HUMANITEC_JOB_UID";

/// `collect`'s variable with the pod's namespace. Builder: sets it; `collect`: reads it.
pub(crate) const NAMESPACE_ENV: &str = "HUMANITEC_NAMESPACE";

/// `collect`'s variable with [`super::naming::secrets_digest`], which it copies into the result
/// Secret under [`SECRETS_DIGEST_KEY`]. Builder: sets it from the inputs Secret; `collect`:
/// reads it.
pub(crate) const SECRETS_DIGEST_ENV: &str = "HUMANITEC_SECRETS_DIGEST";

// The inputs Secret. The builder writes every key; `prepare` and askpass read the ones the
// manifest names.

/// The inputs Secret's key of the [`Manifest`] (JSON).
pub(crate) const MANIFEST_KEY: &str = "manifest.json";

/// The inputs Secret's keys of the files are this and an index (`file.0`, …), in path order.
pub(crate) const FILE_KEY_PREFIX: &str = "file.";

/// The inputs Secret's keys of the secret files are this and an index, in path order.
pub(crate) const SECRET_FILE_KEY_PREFIX: &str = "secret-file.";

/// The inputs Secret's key of the source's password.
pub(crate) const SOURCE_PASSWORD_KEY: &str = "source.password";

/// The inputs Secret's key of the source's SSH key.
pub(crate) const SOURCE_SSH_KEY_KEY: &str = "source.ssh-key";

/// The inputs Secret's keys of the secret variables are this and the variable's name. Only
/// `main` reads them, through its environment.
pub(crate) const VARIABLE_KEY_PREFIX: &str = "variable.";

/// The key of [`super::naming::secrets_digest`] in the inputs Secret (builder: writes it) and
/// in the result Secret (`collect`: copies it there; [`super::run`]: reads it from both).
pub(crate) const SECRETS_DIGEST_KEY: &str = "secrets.sha256";

/// What `prepare` places, under the inputs Secret's [`MANIFEST_KEY`]. Non-secret: it names the
/// keys of the secret values, not the values. Builder: writes it; `prepare` and askpass: read
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Where the shared volume is mounted.
    pub(crate) shared_directory: String,
    /// The directory the runner starts in (`SCRIPTS_DIRECTORY`).
    pub(crate) scripts_directory: String,
    /// The git source to check out into the shared directory, if any.
    pub(crate) source: Option<ManifestSource>,
    /// The files to place, in key order.
    #[serde(default)]
    pub(crate) files: Vec<ManifestFile>,
}

/// The git source in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestSource {
    /// The repository URL.
    pub(crate) url: String,
    /// The branch, tag, commit or ref; the remote's HEAD when unset.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<String>,
    /// The scripts directory inside the repository, normalised and relative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    /// The user name for HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    /// The inputs Secret's key of the password ([`SOURCE_PASSWORD_KEY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password_key: Option<String>,
    /// The inputs Secret's key of the SSH key ([`SOURCE_SSH_KEY_KEY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ssh_key_key: Option<String>,
    /// CA certificates (PEM) to trust for an `https` server, besides the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_certificates: Option<String>,
    /// `known_hosts` lines pinning an `ssh` server's host keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) known_hosts: Option<String>,
}

/// A file in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestFile {
    /// The inputs Secret's key of the content.
    pub(crate) key: String,
    /// Where to write it: absolute, normalised, under the shared directory.
    pub(crate) path: String,
    /// Whether it came from `secret_files`.
    pub(crate) secret: bool,
}

// The result files, in RESULTS_DIRECTORY and, under the same keys, in the result Secret.

/// The file of non-secret outputs (`OUTPUTS_FILE`). Builder: points `main`'s `OUTPUTS_FILE` at
/// it; `main`: writes it; `collect`: copies it; [`super::run`]: reads it.
pub(crate) const OUTPUTS_FILE_NAME: &str = "outputs.json";

/// The file of secret outputs (`SECRET_OUTPUTS_FILE`); written and read as
/// [`OUTPUTS_FILE_NAME`].
pub(crate) const SECRET_OUTPUTS_FILE_NAME: &str = "secret-outputs.json";

/// The file of the runner's error message (`ERROR_FILE`); written and read as
/// [`OUTPUTS_FILE_NAME`].
pub(crate) const ERROR_FILE_NAME: &str = "error.txt";

/// The file where `prepare` writes the commit it checked out; `collect`: copies it;
/// [`super::run`]: reads it.
pub(crate) const COMMIT_FILE_NAME: &str = "commit";

/// The most `OUTPUTS_FILE` and `SECRET_OUTPUTS_FILE` may take together (960 KiB). Why: the
/// result Secret holds them, and Kubernetes limits a Secret's data to 1 MiB; the rest is for
/// `ERROR_FILE`, the commit and the digest. A file that does not fit is left out and named in
/// [`OMITTED_ANNOTATION`]. `collect`: enforces it; [`super::run`]: names it in its message.
pub(crate) const OUTPUTS_LIMIT: u64 = 960 * 1024;

/// The most of `ERROR_FILE` the result Secret holds (63 KiB); a longer one is cut and named in
/// [`TRUNCATED_ANNOTATION`]. `collect`: enforces it.
pub(crate) const ERROR_FILE_LIMIT: u64 = 63 * 1024;

/// The result Secret's annotation naming the result files cut to their limit, with their real
/// sizes (`key=bytes,…`). `collect`: writes it.
pub(crate) const TRUNCATED_ANNOTATION: &str = "terraform-provider-humanitec/truncated";

/// The result Secret's annotation naming the result files left out because they did not fit,
/// with their real sizes (`key=bytes,…`). `collect`: writes it; [`super::run`]: reports it.
pub(crate) const OMITTED_ANNOTATION: &str = "terraform-provider-humanitec/omitted";

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
    fn helper_steps_are_named_as_the_job_starts_them() {
        for step in [HelperStep::Prepare, HelperStep::Collect] {
            let command = step.command();
            assert_eq!(command[..2], [HELPER_COMMAND, HELPER_ARGUMENT]);
            assert_eq!(HelperStep::named(OsStr::new(command[2])), Some(step));
        }
        assert_eq!(HelperStep::named(OsStr::new("askpass")), None);
    }
}
