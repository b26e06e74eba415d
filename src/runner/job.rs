//! The Job of a run and its inputs Secret, built from a [`RunSpec`]: the pod's layout, the
//! Container Driver's environment contract, and the checks that make a bad input a plan-time
//! error instead of a failed pod.
//!
//! The pod: the `prepare` init container places the source and the files in the shared
//! directory from the inputs Secret, mounted at [`INPUTS_DIRECTORY`] and described by its
//! [`Manifest`]; the `collect` native sidecar copies the result files from [`RESULTS_DIRECTORY`]
//! into the run's result Secret once `main` has ended; `main` is the user's image. Secret values
//! travel in the inputs Secret only, never in the Job. The names, paths and keys the pod shares
//! with the helper steps are in [`super::contract`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec as KubeJobSpec};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::contract::{
    COLLECT_CONTAINER, ERROR_FILE_NAME, FILE_KEY_PREFIX, HelperStep, INPUTS_DIRECTORY,
    JOB_NAME_ENV, JOB_UID_ENV, MAIN_CONTAINER, MANIFEST_KEY, Manifest, ManifestFile,
    ManifestSource, NAMESPACE_ENV, OUTPUTS_FILE_NAME, PREPARE_CONTAINER, RESULT_SECRET_ENV,
    RESULTS_DIRECTORY, SECRET_FILE_KEY_PREFIX, SECRET_OUTPUTS_FILE_NAME, SECRETS_DIGEST_ENV,
    SECRETS_DIGEST_KEY, SOURCE_PASSWORD_KEY, SOURCE_SSH_KEY_KEY, VARIABLE_KEY_PREFIX,
};
use super::pod_template::{self, MergeError};
use super::resources::{self, ResourcesError};
use super::{GitSource, RunSpec, SecretValue, naming};

/// Where `collect` reads the Job's uid: the Job controller labels its pods with it.
const JOB_UID_FIELD: &str = "metadata.labels['batch.kubernetes.io/controller-uid']";

/// The proxy variables of `job.variables` and `job.secret_variables` that `prepare` gets too, so
/// that the checkout goes through the proxy the runner uses (git's libcurl reads them).
const PROXY_VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The variables of the Container Driver's contract, set on `main` for every run.
const CONTRACT_VARIABLES: [&str; 5] = [
    "ACTION",
    "SCRIPTS_DIRECTORY",
    "OUTPUTS_FILE",
    "SECRET_OUTPUTS_FILE",
    "ERROR_FILE",
];

/// The most bytes the inputs Secret's data may take. Why below 1 MiB: Kubernetes limits a
/// Secret's data to 1 MiB (keys and values), and the object's metadata needs room too.
const MAX_INPUTS_BYTES: usize = 1_000_000;

/// The user and group the pod runs as, the Container Driver's `runneruser`.
const RUN_AS: i64 = 1000;

/// How long after the deadline the Job may still run: `prepare` and `collect` need the time on
/// top of the runner's `timeout`.
const DEADLINE_MARGIN_SECONDS: i64 = 60;

/// Why a finished Job removes itself after a day: the provider deletes it once a later
/// operation finds its results recorded in the state; this is the backstop for a resource that
/// is never planned again.
const TTL_SECONDS: i32 = 86_400;

/// Why two minutes: an IaC tool stopped with SIGTERM needs the time to release its state lock.
const TERMINATION_GRACE_SECONDS: i64 = 120;

/// The shared volume, mounted at `job.shared_directory`.
const WORKSPACE_VOLUME: &str = "workspace";

/// The volume of the result files.
const RESULTS_VOLUME: &str = "results";

/// The inputs Secret's volume.
const INPUTS_VOLUME: &str = "inputs";

/// Where the results, inputs and workspace must not overlap: the provider's own mounts.
const PROVIDER_DIRECTORY: &str = "/humanitec";

/// What a run creates, before it is created.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Built {
    /// The Job.
    pub(crate) job: Job,
    /// Its inputs Secret (`{name}-inputs`).
    pub(crate) inputs: KubeSecret,
    /// The Job's name.
    pub(crate) name: String,
}

/// A run that cannot be built. Each message says what is wrong and what would be right;
/// [`BuildError::attribute`] says where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum BuildError {
    /// `job.pod_template` does not merge, or does not make a Pod template.
    #[error(transparent)]
    PodTemplate(#[from] MergeError),
    /// The runner config's `helper_resources` would make a pod the API server refuses.
    #[error(transparent)]
    HelperResources(#[from] ResourcesError),
    /// `job.shared_directory` cannot be a mount path for the run.
    #[error(
        "job.shared_directory {path:?} {problem}; it is an absolute directory such as \
         \"/home/runneruser/workspace\""
    )]
    SharedDirectory {
        /// As written.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `source.path` does not name a directory inside the repository.
    #[error(
        "source.path {path:?} {problem}; it is a directory inside the repository, relative to \
         its root, such as \"terraform/aws\""
    )]
    SourcePath {
        /// As written.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A key of `files` or `secret_files` does not name a file in the shared directory.
    #[error(
        "{attribute} key {key:?} {problem}; a key is a file path relative to the scripts \
         directory ({scripts}) or absolute under job.shared_directory ({shared}), such as \
         \"main.tf\" or \"{shared}/config/main.tf\""
    )]
    FilePath {
        /// `files` or `secret_files`.
        attribute: &'static str,
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
        /// The scripts directory relative keys resolve against.
        scripts: String,
        /// The shared directory.
        shared: String,
    },
    /// Two keys name the same file.
    #[error(
        "{attribute} key {key:?} and {other_attribute} key {other:?} both name {path}; keep \
         one of them"
    )]
    SamePath {
        /// `files` or `secret_files`, of the later key.
        attribute: &'static str,
        /// The later key.
        key: String,
        /// Where the earlier key is.
        other_attribute: &'static str,
        /// The earlier key.
        other: String,
        /// The file both name.
        path: String,
    },
    /// User variables have the names of the contract's.
    #[error(
        "{attribute} sets {}, which the Container Driver's contract sets for every run ({}); \
         rename {}",
        names.join(", "),
        CONTRACT_VARIABLES.join(", "),
        if names.len() == 1 { "the variable" } else { "the variables" }
    )]
    ContractVariable {
        /// `job.variables` or `job.secret_variables`, of the first.
        attribute: &'static str,
        /// The variables, every one.
        names: Vec<String>,
    },
    /// A secret variable's name cannot be part of a Secret key.
    #[error(
        "job.secret_variables name {name:?} cannot reach the container through a Kubernetes \
         Secret; use only letters, digits, `-`, `_` and `.`"
    )]
    SecretVariableName {
        /// The variable.
        name: String,
    },
    /// The inputs do not fit in a Secret.
    #[error(
        "the run's inputs take {size} bytes, more than the {MAX_INPUTS_BYTES} that fit in its \
         inputs Secret (Kubernetes limits a Secret to 1 MiB); the largest: {largest}; keep \
         large content in the source repository instead"
    )]
    TooLarge {
        /// The bytes the inputs take.
        size: usize,
        /// The largest inputs and their sizes.
        largest: String,
        /// The attribute of the largest input.
        attribute: &'static str,
    },
}

impl BuildError {
    /// The attribute the error concerns, in the user's words (`job.pod_template`, `files`, …).
    pub(crate) fn attribute(&self) -> &str {
        match self {
            BuildError::PodTemplate(_) => "job.pod_template",
            BuildError::HelperResources(_) => "runner_config.helper_resources",
            BuildError::SharedDirectory { .. } => "job.shared_directory",
            BuildError::SourcePath { .. } => "source.path",
            BuildError::FilePath { attribute, .. }
            | BuildError::SamePath { attribute, .. }
            | BuildError::ContractVariable { attribute, .. }
            | BuildError::TooLarge { attribute, .. } => attribute,
            BuildError::SecretVariableName { .. } => "job.secret_variables",
        }
    }
}

/// The Job and inputs Secret of a run.
pub(crate) fn build(spec: &RunSpec) -> Result<Built, BuildError> {
    let name = naming::job_name(spec);
    let shared = shared_directory(&spec.job.shared_directory)?;
    let source_path = match spec.source.as_ref().and_then(|s| s.path.as_deref()) {
        Some(path) => source_path(path, &shared)?,
        None => None,
    };
    let scripts = match &source_path {
        Some(path) => format!("{shared}/{path}"),
        None => shared.clone(),
    };
    check_variables(spec)?;
    for (step, container) in [
        ("prepare", &spec.helper_resources.prepare),
        ("collect", &spec.helper_resources.collect),
    ] {
        let attribute = format!("runner_config.helper_resources.{step}");
        resources::check(&attribute, container, (true, true))?;
    }
    let data = inputs_data(spec, &shared, &scripts, source_path)?;

    let base = base_template(spec, &name, &shared, &scripts);
    let template = match &spec.job.pod_template {
        Some(user) => pod_template::merge(&base, user)?,
        None => base,
    };
    let template = pod_template::typed(&template)?;

    let metadata = |name: String, annotations: Option<BTreeMap<String, String>>| ObjectMeta {
        name: Some(name),
        namespace: Some(spec.job.namespace.clone()),
        labels: Some(naming::labels(spec)),
        annotations,
        ..ObjectMeta::default()
    };
    let job = Job {
        metadata: metadata(name.clone(), Some(naming::annotations(spec))),
        spec: Some(KubeJobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline_seconds(spec)),
            ttl_seconds_after_finished: Some(TTL_SECONDS),
            template,
            ..KubeJobSpec::default()
        }),
        status: None,
    };
    let inputs = KubeSecret {
        metadata: metadata(naming::inputs_secret_name(&name), None),
        type_: Some("Opaque".into()),
        // Why immutable: a run's inputs never change (new inputs are a new run), and the kubelet
        // need not watch an immutable Secret.
        immutable: Some(true),
        data: Some(data),
        ..KubeSecret::default()
    };
    Ok(Built { job, inputs, name })
}

/// The Job's `activeDeadlineSeconds`: the run's timeout and [`DEADLINE_MARGIN_SECONDS`].
fn deadline_seconds(spec: &RunSpec) -> i64 {
    let timeout = i64::try_from(spec.timeout.as_secs()).unwrap_or(i64::MAX);
    timeout
        .saturating_add(DEADLINE_MARGIN_SECONDS)
        .max(DEADLINE_MARGIN_SECONDS)
}

/// The shared directory, normalised, or why it cannot be one.
fn shared_directory(path: &str) -> Result<String, BuildError> {
    let error = |problem: String| BuildError::SharedDirectory {
        path: path.into(),
        problem,
    };
    if !path.starts_with('/') {
        return Err(error("is not absolute".into()));
    }
    let normal = normalize(path).unwrap_or_else(|| "/".into());
    if normal == "/" {
        return Err(error("is the root directory".into()));
    }
    if normal == PROVIDER_DIRECTORY || is_under(&normal, PROVIDER_DIRECTORY) {
        return Err(error(format!(
            "is inside {PROVIDER_DIRECTORY}, where the provider mounts its own volumes"
        )));
    }
    Ok(normal)
}

/// `source.path` normalised and relative (`None` for the repository's root), or why it does not
/// name a directory inside the repository.
fn source_path(path: &str, shared: &str) -> Result<Option<String>, BuildError> {
    let error = |problem: &str| BuildError::SourcePath {
        path: path.into(),
        problem: problem.into(),
    };
    if path.starts_with('/') {
        return Err(error("is absolute"));
    }
    if path.contains('\0') {
        return Err(error("contains a NUL character"));
    }
    let inside = normalize(&format!("{shared}/{path}"))
        .filter(|p| p == shared || is_under(p, shared))
        .ok_or_else(|| error("climbs out of the repository with `..`"))?;
    Ok(inside
        .strip_prefix(shared)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(str::to_string))
}

/// Where the file of a `files` or `secret_files` key goes: absolute and normalised.
fn file_path(
    attribute: &'static str,
    key: &str,
    shared: &str,
    scripts: &str,
) -> Result<String, BuildError> {
    let error = |problem: String| BuildError::FilePath {
        attribute,
        key: key.into(),
        problem,
        scripts: scripts.into(),
        shared: shared.into(),
    };
    if key.trim().is_empty() {
        return Err(error("is empty".into()));
    }
    if key.contains('\0') {
        return Err(error("contains a NUL character".into()));
    }
    if key.ends_with('/') {
        return Err(error("ends with `/`, so it names a directory".into()));
    }
    let joined = if key.starts_with('/') {
        key.to_string()
    } else {
        format!("{scripts}/{key}")
    };
    let Some(path) = normalize(&joined) else {
        return Err(error("climbs above `/` with `..`".into()));
    };
    if path == shared || path == scripts {
        return Err(error(format!(
            "names {path}, a directory of the run, not a file"
        )));
    }
    if !is_under(&path, shared) {
        return Err(error(format!("names {path}, outside job.shared_directory")));
    }
    Ok(path)
}

/// The user's variables, checked against the contract's and the Secret key rules.
fn check_variables(spec: &RunSpec) -> Result<(), BuildError> {
    let plain = spec.job.variables.keys().map(|n| ("job.variables", n));
    let secret = spec
        .job
        .secret_variables
        .keys()
        .map(|n| ("job.secret_variables", n));
    let reserved: Vec<(&'static str, &String)> = plain
        .chain(secret)
        .filter(|(_, name)| CONTRACT_VARIABLES.contains(&name.as_str()))
        .collect();
    if let Some((attribute, _)) = reserved.first() {
        return Err(BuildError::ContractVariable {
            attribute,
            names: reserved.iter().map(|(_, n)| (*n).clone()).collect(),
        });
    }
    // Why: a secret variable reaches the container as the Secret key `variable.<NAME>`, and a
    // Secret key may have only these characters.
    let key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(name) = spec
        .job
        .secret_variables
        .keys()
        .find(|n| n.is_empty() || !n.chars().all(key_char))
    {
        return Err(BuildError::SecretVariableName { name: name.clone() });
    }
    Ok(())
}

/// One entry of the inputs Secret's data, and who it is in the user's words (for the size
/// message).
struct Entry {
    /// The Secret key.
    key: String,
    /// The value.
    value: Vec<u8>,
    /// Who it is: `files["main.tf"]`, `source.password`, …
    who: String,
    /// The attribute an error concerns when this entry is the largest.
    attribute: &'static str,
}

impl Entry {
    /// The bytes it takes in the Secret. Why the key too: Kubernetes counts the keys' bytes
    /// into a Secret's size.
    fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }
}

/// The inputs Secret's data: the files, the source's credentials, the secret variables, the
/// manifest and the secrets' digest.
fn inputs_data(
    spec: &RunSpec,
    shared: &str,
    scripts: &str,
    source_path: Option<String>,
) -> Result<BTreeMap<String, ByteString>, BuildError> {
    let mut entries = Vec::new();
    let files = manifest_files(spec, shared, scripts, &mut entries)?;
    let source = spec
        .source
        .as_ref()
        .map(|source| manifest_source(source, source_path, &mut entries));
    entries.extend(secret_variable_entries(spec));
    let manifest = Manifest {
        shared_directory: shared.into(),
        scripts_directory: scripts.into(),
        source,
        files,
    };
    // Why no error path: a struct of strings always serializes to JSON.
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    entries.push(Entry {
        key: MANIFEST_KEY.into(),
        value: manifest,
        who: "the file list".into(),
        attribute: "files",
    });
    entries.push(Entry {
        key: SECRETS_DIGEST_KEY.into(),
        value: naming::secrets_digest(spec).into_bytes(),
        who: "the secrets' digest".into(),
        attribute: "secret_files",
    });
    check_size(&entries)?;
    Ok(entries
        .into_iter()
        .map(|entry| (entry.key, ByteString(entry.value)))
        .collect())
}

/// Where each of `files` and `secret_files` goes, checked, for the manifest; the contents join
/// `entries`, under keys numbered per attribute in the keys' order.
fn manifest_files(
    spec: &RunSpec,
    shared: &str,
    scripts: &str,
    entries: &mut Vec<Entry>,
) -> Result<Vec<ManifestFile>, BuildError> {
    let mut files = Vec::new();
    let mut placed: BTreeMap<String, (&'static str, &str)> = BTreeMap::new();
    let plain = spec.files.iter().map(|(k, v)| (k, v.as_str(), false));
    let secret = spec
        .secret_files
        .iter()
        .map(|(k, v)| (k, v.0.as_str(), true));
    let (mut plain_index, mut secret_index) = (0, 0);
    for (key, content, is_secret) in plain.chain(secret) {
        let (attribute, data_key) = if is_secret {
            secret_index += 1;
            (
                "secret_files",
                format!("{SECRET_FILE_KEY_PREFIX}{}", secret_index - 1),
            )
        } else {
            plain_index += 1;
            ("files", format!("{FILE_KEY_PREFIX}{}", plain_index - 1))
        };
        let path = file_path(attribute, key, shared, scripts)?;
        if let Some((other_attribute, other)) = placed.get(&path) {
            return Err(BuildError::SamePath {
                attribute,
                key: key.clone(),
                other_attribute,
                other: (*other).to_string(),
                path,
            });
        }
        placed.insert(path.clone(), (attribute, key));
        files.push(ManifestFile {
            key: data_key.clone(),
            path,
            secret: is_secret,
        });
        entries.push(Entry {
            key: data_key,
            value: content.as_bytes().to_vec(),
            who: format!("{attribute}[{key:?}]"),
            attribute,
        });
    }
    Ok(files)
}

/// The source for the manifest, `path` being `source.path` checked; its credentials join
/// `entries`, and the manifest names their keys only.
fn manifest_source(
    source: &GitSource,
    path: Option<String>,
    entries: &mut Vec<Entry>,
) -> ManifestSource {
    let mut secret = |value: Option<&SecretValue>, key: &str, attribute: &'static str| {
        value.map(|v| {
            entries.push(Entry {
                key: key.into(),
                value: v.0.as_bytes().to_vec(),
                who: attribute.into(),
                attribute,
            });
            key.to_string()
        })
    };
    ManifestSource {
        url: source.url.clone(),
        reference: source.reference.clone(),
        path,
        username: source.username.clone(),
        password_key: secret(
            source.password.as_ref(),
            SOURCE_PASSWORD_KEY,
            "source.password",
        ),
        ssh_key_key: secret(
            source.ssh_key.as_ref(),
            SOURCE_SSH_KEY_KEY,
            "source.ssh_key",
        ),
        ca_certificates: source.ca_certificates.clone(),
        known_hosts: source.known_hosts.clone(),
    }
}

/// The values of `job.secret_variables`, which `main`'s environment refers to.
fn secret_variable_entries(spec: &RunSpec) -> impl Iterator<Item = Entry> + '_ {
    spec.job.secret_variables.iter().map(|(name, value)| Entry {
        key: format!("{VARIABLE_KEY_PREFIX}{name}"),
        value: value.0.as_bytes().to_vec(),
        who: format!("job.secret_variables[{name:?}]"),
        attribute: "job.secret_variables",
    })
}

/// Whether the entries fit in a Secret; if not, the error names the three largest (the first
/// of equal sizes in `entries`' order) and takes the attribute of the largest.
fn check_size(entries: &[Entry]) -> Result<(), BuildError> {
    let size: usize = entries.iter().map(Entry::size).sum();
    if size <= MAX_INPUTS_BYTES {
        return Ok(());
    }
    let mut largest: Vec<&Entry> = entries.iter().collect();
    largest.sort_by_key(|entry| std::cmp::Reverse(entry.size()));
    Err(BuildError::TooLarge {
        size,
        largest: largest
            .iter()
            .take(3)
            .map(|entry| format!("{} ({} bytes)", entry.who, entry.size()))
            .collect::<Vec<_>>()
            .join(", "),
        attribute: largest.first().map_or("files", |entry| entry.attribute),
    })
}

/// The provider's Pod template, as JSON for the merge with the user's.
fn base_template(spec: &RunSpec, name: &str, shared: &str, scripts: &str) -> Value {
    let inputs_secret = naming::inputs_secret_name(name);
    let main_env = main_env(spec, scripts, &inputs_secret);
    json!({
        "metadata": {
            "labels": naming::labels(spec),
            "annotations": naming::annotations(spec),
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": spec.job.service_account,
            // Why: the collect sidecar writes the result Secret with the pod's token.
            "automountServiceAccountToken": true,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
            "securityContext": pod_security_context(),
            "volumes": volumes(&inputs_secret),
            "initContainers": [
                prepare_container(spec, shared, &main_env),
                collect_container(spec, name, &inputs_secret),
            ],
            "containers": [main_container(spec, shared, main_env)],
        },
    })
}

/// The pod's security context: every container runs as [`RUN_AS`], never as root, and the
/// volumes' files belong to its group.
fn pod_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The pod's volumes: the workspace, the result files and the inputs Secret.
fn volumes(inputs_secret: &str) -> Value {
    json!([
        {"name": WORKSPACE_VOLUME, "emptyDir": {}},
        {"name": RESULTS_VOLUME, "emptyDir": {}},
        // Why 0440: the files are root's with the pod's group (fsGroup), so the pod's user reads
        // them through its group, and nobody can write them.
        {
            "name": INPUTS_VOLUME,
            "secret": {"secretName": inputs_secret, "defaultMode": 0o440},
        },
    ])
}

/// `main`'s environment: the Container Driver's contract, then `job.variables`, then
/// `job.secret_variables` as references to the inputs Secret.
fn main_env(spec: &RunSpec, scripts: &str, inputs_secret: &str) -> Vec<Value> {
    let results_file = |file: &str| format!("{RESULTS_DIRECTORY}/{file}");
    let mut env = vec![
        json!({"name": "ACTION", "value": spec.action.name()}),
        json!({"name": "SCRIPTS_DIRECTORY", "value": scripts}),
        json!({"name": "OUTPUTS_FILE", "value": results_file(OUTPUTS_FILE_NAME)}),
        json!({"name": "SECRET_OUTPUTS_FILE", "value": results_file(SECRET_OUTPUTS_FILE_NAME)}),
        json!({"name": "ERROR_FILE", "value": results_file(ERROR_FILE_NAME)}),
    ];
    env.extend(
        spec.job
            .variables
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value})),
    );
    // Why references: a secret value must never be part of the Job, which anyone allowed to
    // list Jobs can read.
    env.extend(spec.job.secret_variables.keys().map(|name| {
        json!({
            "name": name,
            "valueFrom": {"secretKeyRef": {
                "name": inputs_secret,
                "key": format!("{VARIABLE_KEY_PREFIX}{name}"),
            }},
        })
    }));
    env
}

/// The `prepare` init container: it places the source and the files in the shared directory.
fn prepare_container(spec: &RunSpec, shared: &str, main_env: &[Value]) -> Value {
    // Why the same entries: a proxy the runner needs, the checkout needs too.
    let proxy_env: Vec<Value> = main_env
        .iter()
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| PROXY_VARIABLES.contains(&n))
        })
        .cloned()
        .collect();
    json!({
        "name": PREPARE_CONTAINER,
        "image": spec.helper_image,
        "command": HelperStep::Prepare.command(),
        "env": (!proxy_env.is_empty()).then_some(proxy_env),
        "volumeMounts": [
            mount(WORKSPACE_VOLUME, shared),
            mount(RESULTS_VOLUME, RESULTS_DIRECTORY),
            {"name": INPUTS_VOLUME, "mountPath": INPUTS_DIRECTORY, "readOnly": true},
        ],
        // Why: a failed checkout's message is in the logs; this makes it the container's
        // termination message, which the provider reports.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
        "resources": spec.helper_resources.prepare.to_json(),
    })
}

/// The `collect` sidecar: it copies the result files into the run's result Secret.
fn collect_container(spec: &RunSpec, name: &str, inputs_secret: &str) -> Value {
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    json!({
        "name": COLLECT_CONTAINER,
        "image": spec.helper_image,
        // Why a native sidecar: it runs alongside `main` and is stopped after it, so it can read
        // the result files once `main` has ended.
        "restartPolicy": "Always",
        "command": HelperStep::Collect.command(),
        "env": [
            {"name": RESULT_SECRET_ENV, "value": naming::result_secret_name(name)},
            {"name": JOB_NAME_ENV, "value": name},
            {"name": JOB_UID_ENV, "valueFrom": field(JOB_UID_FIELD)},
            {"name": NAMESPACE_ENV, "valueFrom": field("metadata.namespace")},
            {"name": SECRETS_DIGEST_ENV, "valueFrom": {"secretKeyRef": {
                "name": inputs_secret, "key": SECRETS_DIGEST_KEY,
            }}},
        ],
        "volumeMounts": [mount(RESULTS_VOLUME, RESULTS_DIRECTORY)],
        "securityContext": container_security_context(),
        "resources": spec.helper_resources.collect.to_json(),
    })
}

/// The `main` container: the user's image, with the workspace and the result files.
fn main_container(spec: &RunSpec, shared: &str, env: Vec<Value>) -> Value {
    json!({
        "name": MAIN_CONTAINER,
        "image": spec.job.image,
        "command": spec.job.command,
        "env": env,
        "volumeMounts": [
            mount(WORKSPACE_VOLUME, shared),
            mount(RESULTS_VOLUME, RESULTS_DIRECTORY),
        ],
        "securityContext": container_security_context(),
    })
}

/// A volume mounted at `path`.
fn mount(volume: &str, path: &str) -> Value {
    json!({"name": volume, "mountPath": path})
}

/// Every container's security context: no privilege, no capability.
fn container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// `path` (absolute) with `.`, `..` and repeated `/` resolved lexically; `None` when `..` climbs
/// above `/`.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Whether normalised `path` lies strictly inside normalised `directory` (not `/`).
fn is_under(path: &str, directory: &str) -> bool {
    path.strip_prefix(directory)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine as _;

    use super::*;
    use crate::runner::{Action, GitSource, JobSpec, SecretValue};

    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/runner/testdata/job.golden.json"
    );

    /// A run with every feature.
    fn spec() -> RunSpec {
        let pod_template = "metadata:\n  labels:\n    team: databases\nspec:\n  nodeSelector:\n    \
                            pool: runners\n  imagePullSecrets:\n  - name: ghcr\n";
        RunSpec {
            resource_id: "Orders_DB".into(),
            resource_type: "postgres".into(),
            action: Action::Create,
            runner_config_id: "eu-cluster".into(),
            helper_image: "ghcr.io/container-runner/terraform-provider-humanitec-helper:test"
                .into(),
            helper_resources: Default::default(),
            job: JobSpec {
                image: "ghcr.io/acme/terraform-runner:1.9".into(),
                command: Some(vec!["/opt/runner/run.sh".into(), "--verbose".into()]),
                shared_directory: "/home/runneruser/workspace".into(),
                namespace: "humanitec-runner".into(),
                service_account: Some("runner".into()),
                pod_template: Some(crate::yaml::from_str(pod_template).expect("test YAML")),
                variables: BTreeMap::from([
                    ("TF_IN_AUTOMATION".into(), "1".into()),
                    ("AWS_REGION".into(), "eu-west-1".into()),
                ]),
                secret_variables: BTreeMap::from([
                    (
                        "TF_VAR_db_password".into(),
                        SecretValue("hunter2-db-password".into()),
                    ),
                    (
                        "AWS_SECRET_ACCESS_KEY".into(),
                        SecretValue("aws-secret-value-42".into()),
                    ),
                ]),
            },
            source: Some(GitSource {
                url: "https://github.com/acme/infrastructure.git".into(),
                reference: Some("refs/tags/v1.2.0".into()),
                path: Some("./modules/postgres/".into()),
                username: Some("x-access-token".into()),
                password: Some(SecretValue("ghp-password-token-1234".into())),
                ssh_key: None,
                ca_certificates: None,
                known_hosts: None,
            }),
            files: BTreeMap::from([
                (
                    "terraform.tfvars".into(),
                    "instance_class = \"db.t4g.small\"\n".into(),
                ),
                (
                    "/home/runneruser/workspace/config/backend.hcl".into(),
                    "bucket = \"state\"\n".into(),
                ),
            ]),
            secret_files: BTreeMap::from([(
                "../credentials.auto.tfvars".into(),
                SecretValue("api_key = \"secret-file-content-77\"\n".into()),
            )]),
            triggers: BTreeMap::from([("rotation".into(), "2024-06".into())]),
            timeout: Duration::from_secs(1800),
            previous_run: None,
            attempt: 0,
            write_only: Default::default(),
        }
    }

    fn built(spec: &RunSpec) -> Built {
        build(spec).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn golden() {
        let built = built(&spec());
        let text = serde_json::to_string_pretty(&json!({"job": built.job, "secret": built.inputs}))
            .expect("JSON")
            + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(GOLDEN, &text).expect("write the golden file");
            return;
        }
        let want = std::fs::read_to_string(GOLDEN).unwrap_or_default();
        assert!(
            want == text,
            "the built Job differs from {GOLDEN}; check the difference and run with \
             UPDATE_GOLDEN=1 to accept it:\n{text}"
        );
    }

    #[test]
    fn the_job_has_no_secret_value() {
        let spec = with(|s| {
            s.source.as_mut().unwrap().ssh_key =
                Some(SecretValue("ssh-private-key-material".into()));
        });
        let built = built(&spec);
        let job = serde_json::to_string(&built.job).expect("JSON");
        let secret = serde_json::to_string(&built.inputs).expect("JSON");
        let values = spec.secret_values();
        assert_eq!(values.len(), 5);
        for value in values {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value);
            assert!(!job.contains(value), "{value:?} is in the Job");
            assert!(!job.contains(&encoded), "{value:?} is in the Job, base64");
            assert!(secret.contains(&encoded), "{value:?} is not in the Secret");
        }
        let data = built.inputs.data.expect("data");
        assert_eq!(data[SOURCE_SSH_KEY_KEY].0, b"ssh-private-key-material");
        assert_eq!(
            data[SECRETS_DIGEST_KEY].0,
            naming::secrets_digest(&spec).into_bytes()
        );
    }

    #[test]
    fn every_secret_the_pod_gets_is_one_the_run_redacts() {
        let spec = with(|s| {
            s.source.as_mut().unwrap().ssh_key =
                Some(SecretValue("ssh-private-key-material".into()));
        });
        let redacted = spec.secret_values();
        let data = built(&spec).inputs.data.expect("data");
        // Why by exclusion: a secret input added to the inputs Secret is checked here without
        // being named, so redaction cannot miss it.
        let plain = |key: &str| {
            key == MANIFEST_KEY || key == SECRETS_DIGEST_KEY || key.starts_with(FILE_KEY_PREFIX)
        };
        let secrets: Vec<_> = data.iter().filter(|(key, _)| !plain(key)).collect();
        let keys: Vec<&String> = secrets.iter().map(|(key, _)| *key).collect();
        assert_eq!(secrets.len(), redacted.len(), "{keys:?}");
        for (key, value) in secrets {
            let text = std::str::from_utf8(&value.0).expect("text");
            assert!(redacted.contains(&text), "{key} is not redacted");
        }
    }

    #[test]
    fn prepare_gets_the_proxy_variables() {
        let prepare_env = |spec: &RunSpec| {
            let job = serde_json::to_value(built(spec).job).expect("JSON");
            let init = job["spec"]["template"]["spec"]["initContainers"].clone();
            let init = init.as_array().expect("init containers").clone();
            let prepare = init.iter().find(|c| c["name"] == PREPARE_CONTAINER);
            (prepare.expect("prepare")["env"].clone(), job)
        };
        assert_eq!(prepare_env(&spec()).0, Value::Null);
        let spec = with(|s| {
            s.job
                .variables
                .insert("HTTPS_PROXY".into(), "http://proxy.internal:3128".into());
            s.job
                .variables
                .insert("no_proxy".into(), "10.0.0.0/8".into());
            s.job.secret_variables.insert(
                "ALL_PROXY".into(),
                SecretValue("http://user:proxy-password-9@proxy:3128".into()),
            );
        });
        let (env, job) = prepare_env(&spec);
        let inputs = naming::inputs_secret_name(&naming::job_name(&spec));
        assert_eq!(
            env,
            json!([
                {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"},
                {"name": "no_proxy", "value": "10.0.0.0/8"},
                {"name": "ALL_PROXY", "valueFrom": {"secretKeyRef": {
                    "name": inputs, "key": "variable.ALL_PROXY",
                }}},
            ])
        );
        assert!(!job.to_string().contains("proxy-password-9"), "{job}");
    }

    #[test]
    fn manifest_and_environment() {
        let built = built(&spec());
        let data = built.inputs.data.expect("data");
        let manifest: Manifest = serde_json::from_slice(&data[MANIFEST_KEY].0).expect("manifest");
        let shared = "/home/runneruser/workspace";
        let scripts = format!("{shared}/modules/postgres");
        assert_eq!(manifest.scripts_directory, scripts);
        assert_eq!(
            manifest.source.as_ref().and_then(|s| s.path.as_deref()),
            Some("modules/postgres")
        );
        let files: Vec<_> = manifest
            .files
            .iter()
            .map(|f| (f.key.as_str(), f.path.as_str(), f.secret))
            .collect();
        let backend = format!("{shared}/config/backend.hcl");
        let tfvars = format!("{scripts}/terraform.tfvars");
        let credentials = format!("{shared}/modules/credentials.auto.tfvars");
        assert_eq!(
            files,
            [
                ("file.0", backend.as_str(), false),
                ("file.1", tfvars.as_str(), false),
                ("secret-file.0", credentials.as_str(), true),
            ]
        );
        let template = built.job.spec.expect("spec").template;
        let pod = template.spec.expect("pod");
        let main = &pod.containers[0];
        let env: Vec<&str> = main.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert_eq!(
            env,
            [
                "ACTION",
                "SCRIPTS_DIRECTORY",
                "OUTPUTS_FILE",
                "SECRET_OUTPUTS_FILE",
                "ERROR_FILE",
                "AWS_REGION",
                "TF_IN_AUTOMATION",
                "AWS_SECRET_ACCESS_KEY",
                "TF_VAR_db_password",
            ]
        );
        let pull: Vec<_> = pod
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(pull, ["ghcr"]);
        assert_eq!(
            template.metadata.and_then(|m| m.labels).expect("labels")["team"],
            "databases"
        );
    }

    #[test]
    fn resolves_paths() {
        let shared = "/w";
        let cases: Vec<(&str, &str, Result<&str, &str>)> = vec![
            ("main.tf", "/w", Ok("/w/main.tf")),
            ("main.tf", "/w/s", Ok("/w/s/main.tf")),
            ("./a/../b/./c.tf", "/w/s", Ok("/w/s/b/c.tf")),
            ("../up.tf", "/w/s", Ok("/w/up.tf")),
            ("a//b.tf", "/w", Ok("/w/a/b.tf")),
            ("/w/abs.tf", "/w/s", Ok("/w/abs.tf")),
            ("/w/x/../abs.tf", "/w", Ok("/w/abs.tf")),
            (
                "../up.tf",
                "/w",
                Err("names /up.tf, outside job.shared_directory"),
            ),
            ("../../../../x", "/w", Err("climbs above `/`")),
            ("/etc/passwd", "/w", Err("names /etc/passwd, outside")),
            ("/wx/a.tf", "/w", Err("names /wx/a.tf, outside")),
            ("/w", "/w", Err("a directory of the run")),
            ("..", "/w/s", Err("names /w, a directory of the run")),
            (".", "/w/s", Err("names /w/s, a directory of the run")),
            ("dir/", "/w", Err("names a directory")),
            ("  ", "/w", Err("is empty")),
            ("a\0b", "/w", Err("NUL")),
        ];
        for (key, scripts, want) in cases {
            let got = file_path("files", key, shared, scripts);
            match (got, want) {
                (Ok(path), Ok(want)) => assert_eq!(path, want, "{key:?} in {scripts}"),
                (Err(error), Err(want)) => {
                    let text = error.to_string();
                    assert!(text.contains(want), "{key:?} in {scripts}: {text}");
                    assert!(text.starts_with(&format!("files key {key:?}")), "{text}");
                    assert!(text.contains("(/w)"), "{text}");
                    assert_eq!(error.attribute(), "files");
                }
                (got, want) => panic!("{key:?} in {scripts}: {got:?}, want {want:?}"),
            }
        }
        let sources: Vec<(&str, Result<Option<&str>, &str>)> = vec![
            ("modules/db", Ok(Some("modules/db"))),
            ("./modules//db/", Ok(Some("modules/db"))),
            ("a/../b", Ok(Some("b"))),
            (".", Ok(None)),
            ("", Ok(None)),
            ("/modules", Err("is absolute")),
            ("../other", Err("climbs out")),
            ("a/../../b", Err("climbs out")),
        ];
        for (path, want) in sources {
            let got = source_path(path, shared);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{path:?}"),
                (Err(error), Err(want)) => {
                    assert!(error.to_string().contains(want), "{path:?}: {error}");
                    assert_eq!(error.attribute(), "source.path");
                }
                (got, want) => panic!("{path:?}: {got:?}, want {want:?}"),
            }
        }
        for (path, want) in [
            ("/home/runner/", Ok("/home/runner")),
            ("/a/./b/..", Ok("/a")),
            ("relative", Err("is not absolute")),
            ("/..", Err("root")),
            ("/", Err("root")),
            ("/humanitec", Err("inside /humanitec")),
            ("/humanitec/results/x", Err("inside /humanitec")),
        ] {
            match (shared_directory(path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{path:?}"),
                (Err(error), Err(want)) => {
                    assert!(error.to_string().contains(want), "{path:?}: {error}");
                    assert_eq!(error.attribute(), "job.shared_directory");
                }
                (got, want) => panic!("{path:?}: {got:?}, want {want:?}"),
            }
        }
    }

    fn with(change: impl FnOnce(&mut RunSpec)) -> RunSpec {
        let mut s = spec();
        change(&mut s);
        s
    }

    fn error(spec: &RunSpec) -> BuildError {
        build(spec).expect_err("the build should fail")
    }

    #[test]
    fn refuses_bad_inputs() {
        type Change = fn(&mut RunSpec);
        let cases: Vec<(Change, &str, &str)> = vec![
            (
                |s| {
                    s.job.variables.insert("ACTION".into(), "x".into());
                },
                "job.variables",
                "job.variables sets ACTION, which the Container Driver's contract sets",
            ),
            (
                |s| {
                    s.job.variables.insert("ACTION".into(), "x".into());
                    s.job.variables.insert("ERROR_FILE".into(), "x".into());
                    s.job
                        .secret_variables
                        .insert("OUTPUTS_FILE".into(), SecretValue("x".into()));
                },
                "job.variables",
                "job.variables sets ACTION, ERROR_FILE, OUTPUTS_FILE, which",
            ),
            (
                |s| {
                    s.job
                        .secret_variables
                        .insert("OUTPUTS_FILE".into(), SecretValue("x".into()));
                },
                "job.secret_variables",
                "job.secret_variables sets OUTPUTS_FILE",
            ),
            (
                |s| {
                    s.job
                        .secret_variables
                        .insert("A B".into(), SecretValue("x".into()));
                },
                "job.secret_variables",
                "\"A B\" cannot reach the container",
            ),
            (
                |s| {
                    s.files.insert("../../../etc/x".into(), "x".into());
                },
                "files",
                "files key \"../../../etc/x\" names /home/runneruser/etc/x, outside",
            ),
            (
                |s| {
                    s.secret_files
                        .insert("/tmp/key".into(), SecretValue("x".into()));
                },
                "secret_files",
                "secret_files key \"/tmp/key\"",
            ),
            (
                |s| {
                    s.secret_files
                        .insert("terraform.tfvars".into(), SecretValue("x".into()));
                },
                "secret_files",
                "secret_files key \"terraform.tfvars\" and files key \"terraform.tfvars\" both",
            ),
            (
                |s| s.source.as_mut().unwrap().path = Some("../x".into()),
                "source.path",
                "source.path \"../x\" climbs out",
            ),
            (
                |s| s.job.shared_directory = "workspace".into(),
                "job.shared_directory",
                "is not absolute",
            ),
            (
                |s| {
                    s.job.pod_template = Some(json!({"spec": {"restartPolicy": "Always"}}));
                },
                "job.pod_template",
                "`spec.restartPolicy` is set by the provider",
            ),
            (
                |s| s.job.pod_template = Some(json!({"spec": {"nodeSelectr": {"a": "b"}}})),
                "job.pod_template",
                "`spec.nodeSelectr` is not a field of a Pod template",
            ),
            (
                |s| {
                    let env = json!([{"name": "TF_IN_AUTOMATION", "value": "0"}]);
                    s.job.pod_template =
                        Some(json!({"spec": {"containers": [{"name": "main", "env": env}]}}));
                },
                "job.pod_template",
                "`spec.containers[main].env[TF_IN_AUTOMATION]` is set by the provider",
            ),
        ];
        for (change, attribute, want) in cases {
            let error = error(&with(change));
            assert_eq!(error.attribute(), attribute, "{error}");
            assert!(error.to_string().contains(want), "{error}");
        }
    }

    #[test]
    fn refuses_inputs_too_large_for_a_secret() {
        let fits = with(|s| {
            s.files.insert("big.tf".into(), "x".repeat(900_000));
        });
        assert!(build(&fits).is_ok());
        let error = error(&with(|s| {
            s.files.insert("big.tf".into(), "x".repeat(600_000));
            s.secret_files
                .insert("big.key".into(), SecretValue("y".repeat(500_000)));
        }));
        assert_eq!(error.attribute(), "files");
        let text = error.to_string();
        assert!(
            text.contains("Kubernetes limits a Secret to 1 MiB"),
            "{text}"
        );
        assert!(
            text.contains(
                "the largest: files[\"big.tf\"] (600006 bytes), secret_files[\"big.key\"]"
            ),
            "{text}"
        );
        assert!(!text.contains("yyyy"), "{text}");
    }

    #[test]
    fn names_are_deterministic() {
        let (a, b) = (built(&spec()), built(&spec()));
        assert_eq!(a, b);
        assert_eq!(a.name, naming::job_name(&spec()));
        assert!(a.name.starts_with("orders-db-create-"), "{}", a.name);
        assert_eq!(a.inputs.metadata.name, Some(format!("{}-inputs", a.name)));
        let rotated = with(|s| {
            s.job
                .secret_variables
                .insert("TF_VAR_db_password".into(), SecretValue("new".into()));
        });
        let rotated = built(&rotated);
        assert_eq!(rotated.name, a.name);
        assert_ne!(rotated.inputs.data, a.inputs.data);
    }

    #[test]
    fn deadline() {
        assert_eq!(deadline_seconds(&with(|s| s.timeout = Duration::ZERO)), 60);
        assert_eq!(
            deadline_seconds(&with(|s| s.timeout = Duration::from_millis(999))),
            60
        );
        assert_eq!(
            deadline_seconds(&with(|s| s.timeout = Duration::from_secs(600))),
            660
        );
        assert_eq!(
            deadline_seconds(&with(|s| s.timeout = Duration::MAX)),
            i64::MAX
        );
    }
}
