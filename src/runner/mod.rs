//! Direct mode's runner: runs a container runner's image as a Kubernetes Job on a cluster, with
//! the Humanitec Container Driver's contract, and brings the run's results back.
//!
//! This layer knows Kubernetes (through `kube` and `k8s-openapi`) and nothing of Terraform: the
//! provider hands it a [`RunSpec`] and a [`Connection`] and gets a [`Finished`] run or a
//! [`RunError`](run::RunError) back.
//!
//! - [`naming`]: the deterministic names and the labels of what a run creates (pure).
//! - [`job`]: the Job and its inputs Secret, built from a [`RunSpec`] (pure).
//! - [`contract`]: what the Job builder and the helper steps agree on: the pod's names, paths,
//!   keys, variables and limits, and the inputs manifest.
//! - [`pod_template`]: the merge of the user's `job.pod_template` into the Job's pod (pure).
//! - [`cluster`]: the client from a [`Connection`], the cluster check and the permission check.
//! - [`run`]: create or re-attach, watch, stream logs, read the results, clean up.
//! - [`helper`]: the steps the provider's own binary runs inside the pod (`helper prepare`,
//!   `helper collect`), from the helper image.
//! - [`redact`]: removes known secret values from log lines and messages.
//! - [`resources`]: the requests and limits of the helper containers, and their checks.
//!
//! A run's pod, in order: the `prepare` init container (helper image) checks out the source
//! and places the files in the shared directory; the `collect` native sidecar (helper image)
//! waits for the main container to end and writes the result files into the run's result
//! Secret; the `main` container is the user's image with the contract's environment.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub(crate) mod cluster;
pub(crate) mod contract;
pub(crate) mod helper;
pub(crate) mod job;
pub(crate) mod naming;
pub(crate) mod pod_template;
pub(crate) mod redact;
pub(crate) mod resources;
pub(crate) mod run;

/// The helper image used when the runner config sets no `helper_image`: the name the release's
/// helper image archive (`scripts/helper-image.sh`) carries, and loads under. Its tag is the
/// provider version, so a provider always uses the helper steps it was built with.
pub(crate) const DEFAULT_HELPER_IMAGE: &str = concat!(
    "ghcr.io/container-runner/terraform-provider-humanitec-helper:",
    env!("CARGO_PKG_VERSION")
);

/// `job.shared_directory` when unset (the Container Driver's documented value).
pub(crate) const DEFAULT_SHARED_DIRECTORY: &str = "/home/runneruser/workspace";

/// `job.namespace` when unset (the Container Driver's default).
pub(crate) const DEFAULT_NAMESPACE: &str = "humanitec-runner";

/// The field manager and `app.kubernetes.io/managed-by` value of everything the runner writes.
pub(crate) const MANAGER: &str = "terraform-provider-humanitec";

/// A secret value: shown as the mask ([`crate::text::MASK`]) by `Debug`, so it cannot reach a
/// log line by accident.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct SecretValue(pub(crate) String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::text::MASK)
    }
}

/// What the runner image is asked to do (`ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// Create or update what the image manages.
    Create,
    /// Destroy it.
    Destroy,
}

impl Action {
    /// The value of `ACTION`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Destroy => "destroy",
        }
    }

    /// The action named `name` (a Job's action label).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "create" => Some(Action::Create),
            "destroy" => Some(Action::Destroy),
            _ => None,
        }
    }
}

/// One run: everything the Job is built from. Plain data; the provider fills it from a
/// container runner's state with the defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunSpec {
    /// The container runner's id; it leads the Job's name.
    pub(crate) resource_id: String,
    /// The container runner's resource type (`type`), recorded in a label.
    pub(crate) resource_type: String,
    /// The action to run.
    pub(crate) action: Action,
    /// The runner config the run uses (its id), part of the inputs: another cluster is another
    /// run.
    pub(crate) runner_config_id: String,
    /// The image for the provider's own steps in the pod.
    pub(crate) helper_image: String,
    /// The resources of the provider's own containers (`prepare`, `collect`). Not a run input:
    /// a change applies to the next run without making one.
    pub(crate) helper_resources: resources::HelperResources,
    /// The `job` block, with defaults applied.
    pub(crate) job: JobSpec,
    /// The git source, if any.
    pub(crate) source: Option<GitSource>,
    /// Files to place: path (relative to the scripts directory, or absolute under the shared
    /// directory) → content.
    pub(crate) files: BTreeMap<String, String>,
    /// Secret files, shaped like `files`.
    pub(crate) secret_files: BTreeMap<String, SecretValue>,
    /// User values whose change alone makes a new run; only part of the inputs hash.
    pub(crate) triggers: BTreeMap<String, String>,
    /// The time the run may take; the Job's `activeDeadlineSeconds` is derived from it.
    pub(crate) timeout: Duration,
    /// The run before this one: the Job whose results the state holds, if any. Part of the
    /// run's name, so that the results of a run are never taken for a later transition that
    /// happens to have the same inputs (v1, v2, v1 again runs v1 again).
    pub(crate) previous_run: Option<String>,
    /// Which attempt at this transition the run is: 0, or one more than a failed attempt (or an
    /// attempt with other secret values) found under the earlier name.
    pub(crate) attempt: u32,
    /// The secret values the state does not hold (Terraform's write-only attributes).
    pub(crate) write_only: WriteOnly,
}

/// Secret values the state does not hold (Terraform's write-only attributes), and their
/// versions, which it does. The destroy run needs the values when Terraform no longer sends
/// them, so a run keeps them in a Secret of the resource's own in the Job's namespace
/// (`run::write_only`), and the run's inputs are built from them as from the other secrets.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct WriteOnly {
    /// Attribute (`source.password`, `job.secret_variables`, …) → its `_wo_version`; a new
    /// version is a new run.
    pub(crate) versions: BTreeMap<String, String>,
    /// The values, when Terraform sent them (create and update); none on delete.
    pub(crate) values: Option<WriteOnlyValues>,
}

/// The values of the write-only attributes of one resource.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct WriteOnlyValues {
    /// `source.password_wo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<SecretValue>,
    /// `source.ssh_key_wo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ssh_key: Option<SecretValue>,
    /// `job.secret_variables_wo`.
    #[serde(default)]
    pub(crate) secret_variables: BTreeMap<String, SecretValue>,
    /// `secret_files_wo`.
    #[serde(default)]
    pub(crate) secret_files: BTreeMap<String, SecretValue>,
}

impl WriteOnlyValues {
    /// Whether there is no value at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.password.is_none()
            && self.ssh_key.is_none()
            && self.secret_variables.is_empty()
            && self.secret_files.is_empty()
    }
}

/// The `job` block of a run, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobSpec {
    /// The runner image.
    pub(crate) image: String,
    /// Overrides the image's entrypoint.
    pub(crate) command: Option<Vec<String>>,
    /// Where the shared volume is mounted ([`DEFAULT_SHARED_DIRECTORY`] when unset).
    pub(crate) shared_directory: String,
    /// The namespace ([`DEFAULT_NAMESPACE`] when unset).
    pub(crate) namespace: String,
    /// The pod's service account; the namespace's `default` when unset.
    pub(crate) service_account: Option<String>,
    /// The user's partial pod template, parsed: a mapping with `metadata` and/or `spec`.
    pub(crate) pod_template: Option<serde_json::Value>,
    /// Plain environment variables.
    pub(crate) variables: BTreeMap<String, String>,
    /// Secret environment variables; they reach the container through the inputs Secret.
    pub(crate) secret_variables: BTreeMap<String, SecretValue>,
}

/// The git source of a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GitSource {
    /// The repository URL (`https://…`, `ssh://…` or `git@host:path`).
    pub(crate) url: String,
    /// A branch, a tag, a commit or a full ref (`refs/…`); the remote's HEAD when unset.
    pub(crate) reference: Option<String>,
    /// The sub-directory the scripts directory points at.
    pub(crate) path: Option<String>,
    /// The user name for HTTPS.
    pub(crate) username: Option<String>,
    /// The password or token for HTTPS.
    pub(crate) password: Option<SecretValue>,
    /// The SSH private key.
    pub(crate) ssh_key: Option<SecretValue>,
    /// CA certificates (PEM) an `https` server's certificate may chain to, besides the helper
    /// image's. Not a run input: it says how the source is reached, not what it is.
    pub(crate) ca_certificates: Option<String>,
    /// `known_hosts` lines that pin an `ssh` server's host keys; with them, any other key fails
    /// the checkout. Not a run input, like `ca_certificates`.
    pub(crate) known_hosts: Option<String>,
}

impl RunSpec {
    /// The spec with the write-only values folded into the source, the secret variables and
    /// the secret files, as the Job is built from them.
    pub(crate) fn with_write_only(mut self, values: &WriteOnlyValues) -> Self {
        if let Some(source) = self.source.as_mut() {
            if values.password.is_some() {
                source.password.clone_from(&values.password);
            }
            if values.ssh_key.is_some() {
                source.ssh_key.clone_from(&values.ssh_key);
            }
        }
        self.job
            .secret_variables
            .extend(values.secret_variables.clone());
        self.secret_files.extend(values.secret_files.clone());
        self
    }

    /// The spec without the write-only values: what compares two states' runs, since a plan
    /// never has the values.
    pub(crate) fn without_write_only_values(mut self) -> Self {
        self.write_only.values = None;
        self
    }

    /// The spec without what says how a run is carried out rather than what it runs (the
    /// helper containers' resources, how the source's server is trusted): two specs that
    /// differ only there are the same run.
    pub(crate) fn without_how(mut self) -> Self {
        self.helper_resources = resources::HelperResources::default();
        if let Some(source) = self.source.as_mut() {
            source.ca_certificates = None;
            source.known_hosts = None;
        }
        self
    }

    /// Every secret value of the run, for redaction: the runner's one list of its secrets by
    /// role (the model's table of secrets is the provider's; this layer cannot name it). A test
    /// of the Job builder checks that it holds every secret entry of the inputs Secret.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
        let source = self.source.iter().flat_map(|s| [&s.password, &s.ssh_key]);
        source
            .flatten()
            .chain(self.secret_files.values())
            .chain(self.job.secret_variables.values())
            .map(|s| s.0.as_str())
            .collect()
    }
}

/// How to reach a cluster: the runner config's `kubernetes` block. All unset means "as kubectl
/// does" (`KUBECONFIG`, `~/.kube/config`, then in-cluster).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Connection {
    /// A kubeconfig file.
    pub(crate) config_path: Option<String>,
    /// The kubeconfig context.
    pub(crate) config_context: Option<String>,
    /// The API server URL.
    pub(crate) host: Option<String>,
    /// The API server's CA certificate, PEM.
    pub(crate) cluster_ca_certificate: Option<String>,
    /// A bearer token.
    pub(crate) token: Option<SecretValue>,
    /// Skip TLS verification.
    pub(crate) insecure: bool,
    /// A client-go credential plugin.
    pub(crate) exec: Option<ExecPlugin>,
}

/// A client-go credential plugin.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ExecPlugin {
    /// The `client.authentication.k8s.io` version.
    pub(crate) api_version: String,
    /// The command.
    pub(crate) command: String,
    /// Its arguments.
    pub(crate) args: Vec<String>,
    /// Extra environment variables.
    pub(crate) env: BTreeMap<String, String>,
}

/// A finished, successful run.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Finished {
    /// The Job's name.
    pub(crate) job_name: String,
    /// When the Job started (RFC 3339).
    pub(crate) started_at: String,
    /// When it completed (RFC 3339).
    pub(crate) finished_at: String,
    /// The commit checked out, when there was a source.
    pub(crate) commit: Option<String>,
    /// `OUTPUTS_FILE`: name → value (non-string JSON values as JSON text).
    pub(crate) outputs: BTreeMap<String, String>,
    /// `SECRET_OUTPUTS_FILE`, shaped like `outputs`.
    pub(crate) secret_outputs: BTreeMap<String, SecretValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_value_debugs_as_the_mask() {
        let value = SecretValue("hunter2".into());
        assert_eq!(format!("{value:?}"), crate::text::MASK);
        assert_eq!(
            format!("{:?}", Some(value)),
            format!("Some({})", crate::text::MASK)
        );
    }
}
