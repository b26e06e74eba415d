//! A Container Runner definition: a definition of any resource type (`s3`, `postgres`, …) driven by
//! `humanitec/container-runner`, which runs a container (usually an IaC tool) as a Kubernetes Job on
//! the cluster a runner config names.
//!
//! Plain inputs go to `driver_inputs.values.{job, source, files, credentials_config}`. Secret inputs
//! sit at matching paths: plain values under `driver_inputs.secrets` (`source.password`,
//! `source.ssh_key`, `job.variables.X`, `files.<path>`), store references under
//! `driver_inputs.secret_refs`. There is never a `cluster` input: the runner config supplies it.
//!
//! The API never returns a secret, only a reference to where it is stored. Reading a definition
//! back therefore takes the prior model as a guide: a secret the prior model knew keeps its value
//! while the API still holds it at the same version, and becomes [`Secret::Hidden`] otherwise.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value as Json};

use crate::humanitec::{
    CriteriaRule, DEFAULT_CLASS, Definition, DefinitionCreate, DefinitionUpdate, DriverInputs,
    JsonObject,
};

/// The driver of every container runner definition.
pub(crate) const CONTAINER_RUNNER_DRIVER: &str = "humanitec/container-runner";

/// The `values` keys a container runner definition may have.
const VALUE_KEYS: [&str; 4] = ["job", "source", "files", "credentials_config"];

/// A reference to a secret kept in a secret store registered with the organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SecretRef {
    /// The secret store id.
    pub(crate) store: String,
    /// The secret's key, in the store's format.
    pub(crate) reference: String,
    /// The secret's version in the store; the latest when unset.
    pub(crate) version: Option<String>,
}

/// One secret input.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    /// A value for Humanitec to keep in the organization's primary secret store.
    Value(String),
    /// A reference to a secret in a registered store.
    Ref(SecretRef),
    /// Set in Humanitec, with a value this provider cannot know: after an import, or when it was
    /// changed outside Terraform.
    Hidden,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(<redacted>)"),
            Self::Ref(reference) => f.debug_tuple("Ref").field(reference).finish(),
            Self::Hidden => f.write_str("Hidden"),
        }
    }
}

/// The Kubernetes Job the runner image runs in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Job {
    /// The runner image.
    pub(crate) image: String,
    /// Overrides the image's entrypoint.
    pub(crate) command: Option<Vec<String>>,
    /// Where the shared volume is mounted.
    pub(crate) shared_directory: Option<String>,
    /// The Job's namespace.
    pub(crate) namespace: Option<String>,
    /// The Job pod's service account.
    pub(crate) service_account: Option<String>,
    /// A partial Pod template (YAML) merged into the Job's pod.
    pub(crate) pod_template: Option<String>,
    /// Environment variables.
    pub(crate) variables: Option<BTreeMap<String, String>>,
    /// Secret environment variables.
    pub(crate) secret_variables: Option<BTreeMap<String, Secret>>,
}

/// The git repository holding the code the runner image runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Source {
    /// Repository URL.
    pub(crate) url: Option<String>,
    /// Git ref, e.g. `refs/heads/main`.
    pub(crate) reference: Option<String>,
    /// Sub-directory of the repository.
    pub(crate) path: Option<String>,
    /// User name for HTTPS authentication.
    pub(crate) username: Option<String>,
    /// Password or token for HTTPS authentication.
    pub(crate) password: Option<Secret>,
    /// SSH private key, for `git@…` URLs.
    pub(crate) ssh_key: Option<Secret>,
}

/// How the driver account's cloud credentials reach the runner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CredentialsConfig {
    /// Environment variable name → credential key, e.g. `AWS_ACCESS_KEY_ID = "AccessKeyId"`.
    pub(crate) environment: Option<BTreeMap<String, String>>,
    /// A file to write the credentials to.
    pub(crate) file: Option<String>,
}

/// A container runner definition as the user describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ContainerRunner {
    /// Definition id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Resource type, e.g. `s3`.
    pub(crate) type_: String,
    /// Cloud account whose credentials the runner gets.
    pub(crate) driver_account: Option<String>,
    /// Matching criteria, sorted, each with its class.
    pub(crate) criteria: Vec<CriteriaRule>,
    /// The Job (always present in configuration; absent only in a definition made elsewhere).
    pub(crate) job: Option<Job>,
    /// The git source.
    pub(crate) source: Option<Source>,
    /// Inline files, path → content.
    pub(crate) files: Option<BTreeMap<String, String>>,
    /// Secret inline files, path → content.
    pub(crate) secret_files: Option<BTreeMap<String, Secret>>,
    /// Cloud credentials for the runner.
    pub(crate) credentials_config: Option<CredentialsConfig>,
    /// Where Humanitec keeps each secret input, by dotted input path (`source.password`); read
    /// back from the API only.
    pub(crate) secret_refs: BTreeMap<String, SecretRef>,
}

/// Where a secret input sits in `driver_inputs`: its path and, for messages and keys, its name.
type SecretPath = Vec<String>;

/// The dotted form of a secret path, as the `secret_refs` attribute's keys show it.
fn dotted(path: &[String]) -> String {
    path.join(".")
}

fn path(parts: &[&str]) -> SecretPath {
    parts.iter().map(|p| (*p).to_string()).collect()
}

impl ContainerRunner {
    /// Every secret input with its path in `driver_inputs`.
    pub(crate) fn secrets(&self) -> Vec<(SecretPath, &Secret)> {
        let mut out = Vec::new();
        if let Some(source) = &self.source {
            if let Some(secret) = &source.password {
                out.push((path(&["source", "password"]), secret));
            }
            if let Some(secret) = &source.ssh_key {
                out.push((path(&["source", "ssh_key"]), secret));
            }
        }
        if let Some(variables) = self.job.as_ref().and_then(|j| j.secret_variables.as_ref()) {
            for (name, secret) in variables {
                out.push((path(&["job", "variables", name]), secret));
            }
        }
        if let Some(files) = &self.secret_files {
            for (file, secret) in files {
                out.push((path(&["files", file]), secret));
            }
        }
        out
    }

    /// Every secret input by dotted path (`source.password`, `job.variables.X`, …), as the keys of
    /// `secret_refs` name them.
    pub(crate) fn secrets_by_path(&self) -> BTreeMap<String, &Secret> {
        self.secrets()
            .into_iter()
            .map(|(at, secret)| (dotted(&at), secret))
            .collect()
    }

    /// The plain inputs.
    fn values(&self) -> JsonObject {
        let mut values = Map::new();
        if let Some(job) = &self.job {
            let mut out = Map::new();
            out.insert("image".into(), Json::String(job.image.clone()));
            if let Some(command) = &job.command {
                out.insert(
                    "command".into(),
                    Json::Array(command.iter().cloned().map(Json::String).collect()),
                );
            }
            insert_text(&mut out, "shared_directory", &job.shared_directory);
            insert_text(&mut out, "namespace", &job.namespace);
            insert_text(&mut out, "service_account", &job.service_account);
            insert_text(&mut out, "pod_template", &job.pod_template);
            insert_map(&mut out, "variables", &job.variables);
            values.insert("job".into(), Json::Object(out));
        }
        if let Some(source) = &self.source {
            let mut out = Map::new();
            insert_text(&mut out, "url", &source.url);
            insert_text(&mut out, "ref", &source.reference);
            insert_text(&mut out, "path", &source.path);
            insert_text(&mut out, "username", &source.username);
            values.insert("source".into(), Json::Object(out));
        }
        insert_map(&mut values, "files", &self.files);
        if let Some(credentials) = &self.credentials_config {
            let mut out = Map::new();
            insert_map(&mut out, "environment", &credentials.environment);
            insert_text(&mut out, "file", &credentials.file);
            values.insert("credentials_config".into(), Json::Object(out));
        }
        values
    }

    /// The driver inputs: values, and the secrets split into plain values and store references.
    pub(crate) fn driver_inputs(&self) -> DriverInputs {
        let secrets = self.secrets();
        let has_refs = secrets.iter().any(|(_, s)| matches!(s, Secret::Ref(_)));
        let mut plain = Map::new();
        let mut refs = Map::new();
        for (at, secret) in secrets {
            match secret {
                // Why: the spec says `secrets` "can't be used together with `secret_refs`", so when
                // a definition has store references its plain secrets travel as `{value}` leaves.
                Secret::Value(value) if has_refs => {
                    let mut leaf = Map::new();
                    leaf.insert("value".into(), Json::String(value.clone()));
                    insert_at(&mut refs, &at, Json::Object(leaf));
                }
                Secret::Value(value) => insert_at(&mut plain, &at, Json::String(value.clone())),
                Secret::Ref(reference) => {
                    let mut leaf = Map::new();
                    leaf.insert("store".into(), Json::String(reference.store.clone()));
                    leaf.insert("ref".into(), Json::String(reference.reference.clone()));
                    if let Some(version) = &reference.version {
                        leaf.insert("version".into(), Json::String(version.clone()));
                    }
                    insert_at(&mut refs, &at, Json::Object(leaf));
                }
                // A value nobody here knows cannot be sent; the plan warned about it.
                Secret::Hidden => {}
            }
        }
        DriverInputs {
            values: Some(self.values()),
            secrets: (!plain.is_empty()).then_some(plain),
            secret_refs: (!refs.is_empty()).then_some(refs),
        }
    }

    /// The create payload, criteria inline.
    pub(crate) fn to_create(&self) -> DefinitionCreate {
        DefinitionCreate {
            id: self.id.clone(),
            name: self.name.clone(),
            type_: self.type_.clone(),
            driver_type: CONTAINER_RUNNER_DRIVER.into(),
            driver_account: self.driver_account.clone(),
            driver_inputs: Some(self.driver_inputs()),
            provision: None,
            criteria: Some(self.criteria.clone()),
        }
    }

    /// The PUT payload (criteria are managed separately).
    pub(crate) fn to_update(&self) -> DefinitionUpdate {
        DefinitionUpdate {
            name: self.name.clone(),
            driver_type: CONTAINER_RUNNER_DRIVER.into(),
            driver_account: self.driver_account.clone(),
            driver_inputs: Some(self.driver_inputs()),
            provision: None,
        }
    }
}

fn insert_text(out: &mut JsonObject, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        out.insert(key.into(), Json::String(value.clone()));
    }
}

fn insert_map(out: &mut JsonObject, key: &str, value: &Option<BTreeMap<String, String>>) {
    if let Some(map) = value {
        let map = map
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        out.insert(key.into(), Json::Object(map));
    }
}

/// Inserts `value` at `path`, creating the objects on the way.
fn insert_at(root: &mut JsonObject, path: &[String], value: Json) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for part in parents {
        let entry = node
            .entry(part.clone())
            .or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Json::Object(next) = entry else {
            return;
        };
        node = next;
    }
    node.insert(last.clone(), value);
}

/// Whether two texts mean the same document: equal, or equal as JSON, or equal as a YAML mapping
/// or sequence (a plain-text file parses as a YAML string, so only structures count).
pub(crate) fn same_document(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if let (Ok(x), Ok(y)) = (
        serde_json::from_str::<Json>(a),
        serde_json::from_str::<Json>(b),
    ) {
        return x == y;
    }
    match (
        serde_yaml::from_str::<serde_yaml::Value>(a),
        serde_yaml::from_str::<serde_yaml::Value>(b),
    ) {
        (Ok(x), Ok(y)) if x.is_mapping() || x.is_sequence() => x == y,
        _ => false,
    }
}

/// Keeps the prior text when the API's text means the same, so formatting never shows as drift.
fn prefer_prior(api: Option<String>, prior: Option<&String>) -> Option<String> {
    match (api, prior) {
        (Some(api), Some(prior)) if same_document(&api, prior) => Some(prior.clone()),
        (api, _) => api,
    }
}

/// A JSON scalar as text (non-strings as their JSON form).
fn text(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn text_map(value: Option<&Json>) -> Option<BTreeMap<String, String>> {
    let object = value?.as_object()?;
    Some(
        object
            .iter()
            .map(|(k, v)| (k.clone(), text(Some(v)).unwrap_or_default()))
            .collect(),
    )
}

/// What reading a container runner definition found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ContainerRunnerRead {
    /// The definition as a model.
    pub(crate) runner: ContainerRunner,
    /// Problems with the definition's shape, for a warning.
    pub(crate) problems: Vec<String>,
}

/// Whether a reference points at the primary-store copy of one of this definition's own secrets
/// (how Humanitec answers a secret sent as a value).
fn is_stored_value(reference: &SecretRef, definition: &Definition) -> bool {
    reference.reference.contains(&format!(
        "--resources--defs--{}--driver_secrets--",
        definition.id
    ))
}

/// Every `SecretReference` leaf of a `secret_refs` tree, by path.
fn reference_leaves(
    tree: &JsonObject,
    at: &mut SecretPath,
    out: &mut Vec<(SecretPath, SecretRef)>,
) {
    for (key, value) in tree {
        let Json::Object(object) = value else {
            continue;
        };
        at.push(key.clone());
        let is_leaf = object.contains_key("ref") && !object.values().any(Json::is_object);
        if is_leaf {
            out.push((
                at.clone(),
                SecretRef {
                    store: text(object.get("store")).unwrap_or_default(),
                    reference: text(object.get("ref")).unwrap_or_default(),
                    version: text(object.get("version")),
                },
            ));
        } else {
            reference_leaves(object, at, out);
        }
        at.pop();
    }
}

/// Reads a container runner out of a definition, keeping from `prior` what the API cannot return
/// (secret values) or returns in another form (equivalent JSON or YAML text).
pub(crate) fn read_container_runner(
    definition: &Definition,
    prior: &ContainerRunner,
) -> ContainerRunnerRead {
    let mut problems = Vec::new();
    if definition.driver_type != CONTAINER_RUNNER_DRIVER {
        problems.push(format!(
            "its driver is {:?}, not {CONTAINER_RUNNER_DRIVER:?}",
            definition.driver_type
        ));
    }
    let inputs = definition.driver_inputs.clone().unwrap_or_default();
    let values = inputs.values.unwrap_or_default();
    for key in values.keys() {
        if !VALUE_KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "it has a `{key}` input, which this resource does not manage{}",
                if key == "cluster" {
                    " (the Container Runner takes its cluster from the runner config)"
                } else {
                    ""
                }
            ));
        }
    }
    let prior_job = prior.job.as_ref();
    let job = values.get("job").map(|job| Job {
        image: text(job.get("image")).unwrap_or_default(),
        command: job.get("command").and_then(Json::as_array).map(|items| {
            items
                .iter()
                .map(|i| text(Some(i)).unwrap_or_default())
                .collect()
        }),
        shared_directory: text(job.get("shared_directory")),
        namespace: text(job.get("namespace")),
        service_account: text(job.get("service_account")),
        pod_template: prefer_prior(
            text(job.get("pod_template")),
            prior_job.and_then(|j| j.pod_template.as_ref()),
        ),
        variables: text_map(job.get("variables")),
        secret_variables: None,
    });
    let source = values.get("source").map(|source| Source {
        url: text(source.get("url")),
        reference: text(source.get("ref")),
        path: text(source.get("path")),
        username: text(source.get("username")),
        password: None,
        ssh_key: None,
    });
    let files = text_map(values.get("files")).map(|files| {
        files
            .into_iter()
            .map(|(file, content)| {
                let prior_content = prior.files.as_ref().and_then(|f| f.get(&file));
                let content = prefer_prior(Some(content), prior_content).unwrap_or_default();
                (file, content)
            })
            .collect()
    });
    let credentials_config = values.get("credentials_config").map(|c| CredentialsConfig {
        environment: text_map(c.get("environment")),
        file: text(c.get("file")),
    });
    let mut runner = ContainerRunner {
        id: definition.id.clone(),
        name: definition.name.clone(),
        type_: definition.type_.clone(),
        driver_account: definition.driver_account.clone(),
        criteria: criteria_rules(&definition.criteria),
        job,
        source,
        files,
        secret_files: None,
        credentials_config,
        secret_refs: BTreeMap::new(),
    };

    let mut leaves = Vec::new();
    if let Some(tree) = &inputs.secret_refs {
        reference_leaves(tree, &mut Vec::new(), &mut leaves);
    }
    let prior_secrets = prior.secrets_by_path();
    for (at, reference) in leaves {
        let key = dotted(&at);
        let secret = if is_stored_value(&reference, definition) {
            // A version that moved without this provider writing means someone else wrote it.
            let unchanged = prior
                .secret_refs
                .get(&key)
                .is_none_or(|seen| seen.version == reference.version);
            match prior_secrets.get(&key) {
                Some(Secret::Value(value)) if unchanged => Secret::Value(value.clone()),
                _ => Secret::Hidden,
            }
        } else {
            Secret::Ref(reference.clone())
        };
        // Why skip: an unknown secret where the state had none (after an import) would differ
        // from a configuration that leaves it out; `secret_refs` still lists it.
        if secret != Secret::Hidden || prior.holds_secrets_at(&at) {
            runner.place_secret(&at, secret);
        }
        runner.secret_refs.insert(key, reference);
    }
    // Maps the prior model had stay maps (perhaps empty) rather than vanishing.
    if prior.secret_files.is_some() && runner.secret_files.is_none() {
        runner.secret_files = Some(BTreeMap::new());
    }
    if let (Some(job), Some(prior_job)) = (runner.job.as_mut(), prior_job)
        && prior_job.secret_variables.is_some()
        && job.secret_variables.is_none()
    {
        job.secret_variables = Some(BTreeMap::new());
    }
    ContainerRunnerRead { runner, problems }
}

impl ContainerRunner {
    /// Whether the attribute that would hold a secret at `at` is set (perhaps empty).
    fn holds_secrets_at(&self, at: &[String]) -> bool {
        match at.first().map(String::as_str) {
            Some("source") => self.source.is_some(),
            Some("job") => self
                .job
                .as_ref()
                .is_some_and(|j| j.secret_variables.is_some()),
            Some("files") => self.secret_files.is_some(),
            _ => false,
        }
    }

    /// Puts a secret read back from the API where its path says; paths this resource does not
    /// manage are only listed in `secret_refs`.
    fn place_secret(&mut self, at: &[String], secret: Secret) {
        match at {
            [group, name] if group == "source" && (name == "password" || name == "ssh_key") => {
                let source = self.source.get_or_insert_with(Source::default);
                if name == "password" {
                    source.password = Some(secret);
                } else {
                    source.ssh_key = Some(secret);
                }
            }
            [group, variables, name] if group == "job" && variables == "variables" => {
                let job = self.job.get_or_insert_with(Job::default);
                job.secret_variables
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.clone(), secret);
            }
            [group, file] if group == "files" => {
                self.secret_files
                    .get_or_insert_with(BTreeMap::new)
                    .insert(file.clone(), secret);
            }
            _ => {}
        }
    }
}

/// The definition's criteria as rules, each with its class, sorted and without duplicates.
fn criteria_rules(criteria: &[crate::humanitec::Criteria]) -> Vec<CriteriaRule> {
    let mut rules: Vec<CriteriaRule> = criteria
        .iter()
        .map(|c| CriteriaRule {
            app_id: c.app_id.clone(),
            env_id: c.env_id.clone(),
            env_type: c.env_type.clone(),
            res_id: c.res_id.clone(),
            class: Some(if c.class.is_empty() {
                DEFAULT_CLASS.to_string()
            } else {
                c.class.clone()
            }),
        })
        .collect();
    sort_rules(&mut rules);
    rules
}

/// Sorts rules into a stable order and drops duplicates.
pub(crate) fn sort_rules(rules: &mut Vec<CriteriaRule>) {
    let key = |r: &CriteriaRule| {
        (
            r.app_id.clone(),
            r.env_id.clone(),
            r.env_type.clone(),
            r.res_id.clone(),
            r.class.clone(),
        )
    };
    rules.sort_by_key(key);
    rules.dedup();
}

/// The doc page's S3 container runner definition, for golden tests.
#[cfg(test)]
pub(crate) fn doc_page_s3_payload() -> Json {
    serde_json::json!({
        "id": "my-s3-bucket", "name": "S3 Bucket", "type": "s3",
        "driver_type": "humanitec/container-runner",
        "driver_inputs": {
            "values": {
                "job": {"image": "ghcr.io/my-org/my-image:1.1.0", "command": ["/opt/container"],
                        "shared_directory": "/home/runneruser/workspace", "namespace": "humanitec-runner",
                        "service_account": "humanitec-runner-job",
                        "pod_template": "spec:\n  imagePullSecrets:\n    - name: ghcr-private-registry\n"},
                "source": {"url": "https://my-domain.com/my-org/my-repo.git", "ref": "refs/heads/main", "username": "my-git-handler"},
                "files": {"/home/runneruser/workspace/s3/terraform.tfvars.json": "{\"bucket\": \"${context.app.id}-${context.env.id}\"}\n"}
            },
            "secret_refs": {"source": {"password": {"store": "my-store", "ref": "path/to/git/password"}}}
        },
        "criteria": [{"env_type": "development"}]
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// The doc page's S3 example as a model, the way the resource builds it from the HCL.
    fn doc_page_s3() -> ContainerRunner {
        ContainerRunner {
            id: "my-s3-bucket".into(),
            name: "S3 Bucket".into(),
            type_: "s3".into(),
            criteria: vec![CriteriaRule {
                env_type: Some("development".into()),
                class: Some("default".into()),
                ..CriteriaRule::default()
            }],
            job: Some(Job {
                image: "ghcr.io/my-org/my-image:1.1.0".into(),
                command: Some(vec!["/opt/container".into()]),
                shared_directory: Some("/home/runneruser/workspace".into()),
                namespace: Some("humanitec-runner".into()),
                service_account: Some("humanitec-runner-job".into()),
                pod_template: Some(
                    "spec:\n  imagePullSecrets:\n  - name: ghcr-private-registry\n".into(),
                ),
                ..Job::default()
            }),
            source: Some(Source {
                url: Some("https://my-domain.com/my-org/my-repo.git".into()),
                reference: Some("refs/heads/main".into()),
                username: Some("my-git-handler".into()),
                password: Some(Secret::Ref(SecretRef {
                    store: "my-store".into(),
                    reference: "path/to/git/password".into(),
                    version: None,
                })),
                ..Source::default()
            }),
            // What HCL's jsonencode produces: compact, unlike the doc page's text.
            files: Some(strings(&[(
                "/home/runneruser/workspace/s3/terraform.tfvars.json",
                r#"{"bucket":"${context.app.id}-${context.env.id}"}"#,
            )])),
            ..ContainerRunner::default()
        }
    }

    /// Parses the YAML and JSON strings inside a payload, and drops the class the API defaults,
    /// so that two payloads compare by meaning.
    fn by_meaning(mut payload: Json) -> Json {
        if let Some(Json::String(text)) = payload.pointer("/driver_inputs/values/job/pod_template")
        {
            let parsed: Json = serde_yaml::from_str(text).unwrap();
            payload["driver_inputs"]["values"]["job"]["pod_template"] = parsed;
        }
        if let Some(Json::Object(files)) = payload.pointer_mut("/driver_inputs/values/files") {
            for content in files.values_mut() {
                if let Json::String(text) = content
                    && let Ok(parsed) = serde_json::from_str::<Json>(text)
                {
                    *content = parsed;
                }
            }
        }
        if let Some(Json::Array(rules)) = payload.get_mut("criteria") {
            for rule in rules {
                if rule.get("class") == Some(&json!("default")) {
                    rule.as_object_mut().unwrap().remove("class");
                }
            }
        }
        payload
    }

    #[test]
    fn golden_doc_page_s3_payload() {
        let ours = serde_json::to_value(doc_page_s3().to_create()).unwrap();
        assert_eq!(by_meaning(ours), by_meaning(doc_page_s3_payload()));
    }

    /// A definition with every attribute set.
    fn everything() -> ContainerRunner {
        let mut runner = doc_page_s3();
        runner.driver_account = Some("aws-account".into());
        runner.criteria.push(CriteriaRule {
            app_id: Some("app".into()),
            env_id: Some("dev".into()),
            env_type: Some("development".into()),
            res_id: Some("modules.api.externals.bucket".into()),
            class: Some("large".into()),
        });
        let job = runner.job.as_mut().unwrap();
        job.variables = Some(strings(&[("TF_LOG", "info")]));
        job.secret_variables = Some(
            [(
                "AWS_SECRET_ACCESS_KEY".to_string(),
                Secret::Value("k3y".into()),
            )]
            .into(),
        );
        let source = runner.source.as_mut().unwrap();
        source.path = Some("s3".into());
        source.ssh_key = Some(Secret::Value("-----BEGIN KEY-----".into()));
        runner.secret_files =
            Some([("secret.tfvars".to_string(), Secret::Value("x=1".into()))].into());
        runner.credentials_config = Some(CredentialsConfig {
            environment: Some(strings(&[("AWS_ACCESS_KEY_ID", "AccessKeyId")])),
            file: Some("/home/runneruser/credentials".into()),
        });
        runner
    }

    #[test]
    fn golden_payload_with_every_attribute() {
        let payload = serde_json::to_value(everything().to_create()).unwrap();
        let expected = json!({
            "id": "my-s3-bucket", "name": "S3 Bucket", "type": "s3",
            "driver_type": "humanitec/container-runner",
            "driver_account": "aws-account",
            "driver_inputs": {
                "values": {
                    "job": {"image": "ghcr.io/my-org/my-image:1.1.0", "command": ["/opt/container"],
                            "shared_directory": "/home/runneruser/workspace", "namespace": "humanitec-runner",
                            "service_account": "humanitec-runner-job",
                            "pod_template": "spec:\n  imagePullSecrets:\n  - name: ghcr-private-registry\n",
                            "variables": {"TF_LOG": "info"}},
                    "source": {"url": "https://my-domain.com/my-org/my-repo.git", "ref": "refs/heads/main",
                               "path": "s3", "username": "my-git-handler"},
                    "files": {"/home/runneruser/workspace/s3/terraform.tfvars.json": "{\"bucket\":\"${context.app.id}-${context.env.id}\"}"},
                    "credentials_config": {"environment": {"AWS_ACCESS_KEY_ID": "AccessKeyId"},
                                           "file": "/home/runneruser/credentials"}
                },
                // A store reference is present, so the plain secrets travel as `{value}` refs.
                "secret_refs": {
                    "source": {"password": {"store": "my-store", "ref": "path/to/git/password"},
                               "ssh_key": {"value": "-----BEGIN KEY-----"}},
                    "job": {"variables": {"AWS_SECRET_ACCESS_KEY": {"value": "k3y"}}},
                    "files": {"secret.tfvars": {"value": "x=1"}}
                }
            },
            "criteria": [
                {"env_type": "development", "class": "default"},
                {"app_id": "app", "env_id": "dev", "env_type": "development",
                 "res_id": "modules.api.externals.bucket", "class": "large"}
            ]
        });
        assert_eq!(payload, expected);
        // The PUT carries the same inputs, and neither id nor criteria.
        let update = serde_json::to_value(everything().to_update()).unwrap();
        assert_eq!(update["driver_inputs"], expected["driver_inputs"]);
        assert!(update.get("criteria").is_none() && update.get("id").is_none());
    }

    #[test]
    fn plain_secrets_without_refs_go_under_secrets() {
        let mut runner = everything();
        runner.source.as_mut().unwrap().password = Some(Secret::Value("pat".into()));
        let inputs = serde_json::to_value(runner.driver_inputs()).unwrap();
        assert_eq!(
            inputs["secrets"],
            json!({
                "source": {"password": "pat", "ssh_key": "-----BEGIN KEY-----"},
                "job": {"variables": {"AWS_SECRET_ACCESS_KEY": "k3y"}},
                "files": {"secret.tfvars": "x=1"}
            })
        );
        assert!(inputs.get("secret_refs").is_none());
        assert!(inputs["values"].get("cluster").is_none());
    }

    /// The definition the sandbox would answer for `runner` (secrets as primary-store refs).
    fn answered(runner: &ContainerRunner, version: &str) -> Definition {
        let inputs = runner.driver_inputs();
        let mut refs = Map::new();
        for (at, secret) in runner.secrets() {
            let leaf = match secret {
                Secret::Ref(r) => {
                    json!({"store": r.store, "ref": r.reference, "version": r.version.clone().unwrap_or("1".into())})
                }
                _ => {
                    json!({"store": "primary", "ref": format!("orgs--o--resources--defs--{}--driver_secrets--{}", runner.id, at.join("--")), "version": version})
                }
            };
            insert_at(&mut refs, &at, leaf);
        }
        serde_json::from_value(json!({
            "org_id": "o", "id": runner.id, "name": runner.name, "type": runner.type_,
            "driver_type": CONTAINER_RUNNER_DRIVER, "driver_account": runner.driver_account,
            "driver_inputs": {"values": inputs.values, "secret_refs": refs},
            "criteria": runner.criteria.iter().enumerate().map(|(i, c)| {
                let mut c = serde_json::to_value(c).unwrap();
                c["id"] = json!(format!("c{i}"));
                c
            }).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn reads_back_what_it_wrote_keeping_secret_values() {
        let mut prior = everything();
        let definition = answered(&prior, "1");
        let read = read_container_runner(&definition, &prior);
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        assert_eq!(read.runner.secret_refs.len(), 4);
        assert_eq!(
            read.runner.secret_refs["source.password"]
                .version
                .as_deref(),
            Some("1")
        );
        // What the API assigned (the ref's version) is now known; the rest is as written.
        prior.source.as_mut().unwrap().password = Some(Secret::Ref(SecretRef {
            store: "my-store".into(),
            reference: "path/to/git/password".into(),
            version: Some("1".into()),
        }));
        prior.secret_refs = read.runner.secret_refs.clone();
        assert_eq!(read.runner, prior);
    }

    #[test]
    fn equivalent_text_is_kept_and_changed_text_is_drift() {
        let prior = everything();
        let mut definition = answered(&prior, "1");
        let values = definition
            .driver_inputs
            .as_mut()
            .and_then(|i| i.values.as_mut())
            .unwrap();
        values["job"]["pod_template"] =
            json!("spec: {imagePullSecrets: [{name: ghcr-private-registry}]}");
        values["files"]["/home/runneruser/workspace/s3/terraform.tfvars.json"] =
            json!("{\n  \"bucket\": \"${context.app.id}-${context.env.id}\"\n}\n");
        let read = read_container_runner(&definition, &prior);
        assert_eq!(read.runner.job, prior.job);
        assert_eq!(read.runner.files, prior.files);

        let values = definition
            .driver_inputs
            .as_mut()
            .and_then(|i| i.values.as_mut())
            .unwrap();
        values["job"]["pod_template"] = json!("spec: {}");
        values.insert("cluster".into(), json!({"account": "a"}));
        let read = read_container_runner(&definition, &prior);
        assert_eq!(
            read.runner.job.unwrap().pod_template.as_deref(),
            Some("spec: {}")
        );
        assert_eq!(read.problems.len(), 1);
        assert!(read.problems[0].contains("cluster"));
    }

    #[test]
    fn secrets_changed_or_added_elsewhere_are_hidden_and_removed_ones_vanish() {
        let mut prior = everything();
        prior.secret_refs = read_container_runner(&answered(&prior, "1"), &prior)
            .runner
            .secret_refs;
        // Written again outside Terraform: every primary-store version moved.
        let read = read_container_runner(&answered(&prior, "2"), &prior);
        let job = read.runner.job.as_ref().unwrap();
        assert_eq!(
            job.secret_variables.as_ref().unwrap()["AWS_SECRET_ACCESS_KEY"],
            Secret::Hidden
        );
        assert!(matches!(
            read.runner.source.as_ref().unwrap().password,
            Some(Secret::Ref(_))
        ));

        // Imported: nothing known before, so nothing to compare a configuration with; the refs
        // still show what exists.
        let read = read_container_runner(&answered(&prior, "1"), &ContainerRunner::default());
        assert_eq!(read.runner.secret_files, None);
        assert!(read.runner.secret_refs.contains_key("files.secret.tfvars"));
        // Imported into a configuration that sets the map: the unknown value shows as a change.
        let configured = ContainerRunner {
            secret_files: Some(BTreeMap::new()),
            ..ContainerRunner::default()
        };
        let read = read_container_runner(&answered(&prior, "1"), &configured);
        assert_eq!(
            read.runner.secret_files.as_ref().unwrap()["secret.tfvars"],
            Secret::Hidden
        );

        // Removed elsewhere: the secret is gone, the map stays.
        let mut without = prior.clone();
        without.secret_files = Some(BTreeMap::new());
        let read = read_container_runner(&answered(&without, "1"), &prior);
        assert_eq!(read.runner.secret_files, Some(BTreeMap::new()));
    }

    #[test]
    fn documents_compare_by_meaning() {
        assert!(same_document("{\"a\":1}", "{ \"a\": 1 }\n"));
        assert!(same_document("a: [1, 2]", "a:\n- 1\n- 2\n"));
        assert!(!same_document("a: 1", "a: 2"));
        // Plain text is compared as text.
        assert!(!same_document("x = 1", "x  = 1"));
    }
}
