//! A Container Runner definition: a definition of any resource type (`s3`, `postgres`, …) driven by
//! `humanitec/container-runner`, which runs a container (usually an IaC tool) as a Kubernetes Job on
//! the cluster a runner config names.
//!
//! Plain inputs go to `driver_inputs.values.{job, source, files, credentials_config}`: the model's
//! own serde form, less the secret attributes. Secret inputs sit at matching paths: plain values
//! under `driver_inputs.secrets` (`source.password`, `source.ssh_key`, `job.variables.X`,
//! `files.<path>`), store references under `driver_inputs.secret_refs`. There is never a
//! `cluster` input: the runner config supplies it.
//!
//! The API never returns a secret, only a reference to where it is stored. Reading a definition
//! back therefore takes the prior model as a guide: a secret the prior model knew keeps its value
//! while the API still holds it at the same version, and becomes [`SecretInput::Hidden`] otherwise.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::{criteria_rules, normalized_criteria};
use crate::humanitec::{Definition, DefinitionCreate, DefinitionUpdate, DriverInputs, JsonObject};
use crate::model::container_runner::{
    ContainerRunner, Job, MatchingCriterion, SECRETS, SecretAttribute, SecretFields, SecretRef,
    Source, secrets_in,
};
use terraform_plugin::framework::model::Sensitive;

/// The driver of every container runner definition.
pub(crate) const CONTAINER_RUNNER_DRIVER: &str = "humanitec/container-runner";

/// The `values` keys a container runner definition may have.
const VALUE_KEYS: [&str; 4] = ["job", "source", "files", "credentials_config"];

/// One secret input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretInput {
    /// A value for Humanitec to keep in the organization's primary secret store.
    Value(Sensitive<String>),
    /// A write-only value, sent like [`SecretInput::Value`] but never read back into the model:
    /// Terraform keeps no trace of it but its version.
    WriteOnly(Sensitive<String>),
    /// A reference to a secret in a registered store.
    Ref(SecretRef),
    /// Set in Humanitec, with a value this provider cannot know: after an import, or when it was
    /// changed outside Terraform.
    Hidden,
}

/// Where a secret input sits in `driver_inputs`.
type SecretPath = Vec<String>;

/// The dotted form of a secret path, as the `secret_refs` attribute's keys show it.
fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Every secret input of a container runner, with its path in `driver_inputs`, in the order of
/// the table of secrets.
pub(crate) fn secrets(runner: &ContainerRunner) -> Vec<(SecretPath, SecretInput)> {
    let mut out = Vec::new();
    for secret in &SECRETS {
        let held = (secret.held)(runner);
        let at = |key: &str| {
            let mut at: SecretPath = secret.input.split('.').map(str::to_string).collect();
            if secret.by_key {
                at.push(key.to_string());
            }
            at
        };
        if secret.by_key {
            let write_only = held
                .write_only
                .iter()
                .map(|(key, value)| (*key, SecretInput::WriteOnly((*value).clone())));
            // A null entry is a secret whose value this provider cannot know.
            let plain = held.values.iter().map(|(key, value)| {
                let secret = value
                    .cloned()
                    .map_or(SecretInput::Hidden, SecretInput::Value);
                (*key, secret)
            });
            // Validation refuses both forms at once; were they both set, the plain one would win.
            out.extend(
                write_only
                    .chain(plain)
                    .map(|(key, secret)| (at(key), secret)),
            );
            continue;
        }
        let value = held.values.first().and_then(|(_, value)| *value);
        let write_only = held.write_only.first().map(|(_, value)| *value);
        let secret = match (value, write_only, held.reference) {
            (Some(value), _, _) => SecretInput::Value(value.clone()),
            (None, Some(value), _) => SecretInput::WriteOnly(value.clone()),
            (None, None, Some(reference)) => SecretInput::Ref(reference.clone()),
            (None, None, None) => continue,
        };
        out.push((at(""), secret));
    }
    out
}

/// The versions of the write-only secrets, in the order of the table of secrets: what a change
/// of them is made of.
pub(crate) fn write_only_versions(runner: &ContainerRunner) -> [Option<&String>; SECRETS.len()] {
    SECRETS
        .each_ref()
        .map(|secret| (secret.held)(runner).write_only_version)
}

/// The runner without its write-only values (their versions stay): what a plan or a state holds.
pub(crate) fn without_write_only(runner: &ContainerRunner) -> ContainerRunner {
    let mut runner = runner.clone();
    for secret in &SECRETS {
        if let Some(fields) = (secret.fields)(&mut runner, false) {
            fields.forget_write_only();
        }
    }
    runner
}

/// Every secret input by dotted path (`source.password`, `job.variables.X`, …), as the keys of
/// `secret_refs` name them.
pub(crate) fn secrets_by_path(runner: &ContainerRunner) -> BTreeMap<String, SecretInput> {
    secrets(runner)
        .into_iter()
        .map(|(at, secret)| (dotted(&at), secret))
        .collect()
}

/// The attributes of a block that are secrets, in every form: they travel as secret inputs,
/// never in `values`.
fn secret_attributes(block: &str) -> Vec<&'static str> {
    secrets_in(Some(block))
        .flat_map(SecretAttribute::attributes)
        .collect()
}

/// A model part's serde form without its null attributes and without `left_out`.
fn plain_json<T: Serialize>(part: &T, left_out: &[&str]) -> Json {
    let mut json = serde_json::to_value(part).unwrap_or(Json::Null);
    if let Json::Object(fields) = &mut json {
        fields.retain(|name, value| !value.is_null() && !left_out.contains(&name.as_str()));
    }
    json
}

/// The plain inputs.
fn values(runner: &ContainerRunner) -> JsonObject {
    let mut values = Map::new();
    if let Some(job) = &runner.job {
        values.insert("job".into(), plain_json(job, &secret_attributes("job")));
    }
    if let Some(source) = &runner.source {
        values.insert(
            "source".into(),
            plain_json(source, &secret_attributes("source")),
        );
    }
    if let Some(files) = &runner.files {
        values.insert("files".into(), plain_json(files, &[]));
    }
    if let Some(credentials) = &runner.credentials_config {
        values.insert("credentials_config".into(), plain_json(credentials, &[]));
    }
    values
}

/// The driver inputs: values, and the secrets split into plain values and store references.
pub(crate) fn driver_inputs(runner: &ContainerRunner) -> DriverInputs {
    let secrets = secrets(runner);
    let has_refs = secrets
        .iter()
        .any(|(_, s)| matches!(s, SecretInput::Ref(_)));
    let mut plain = Map::new();
    let mut refs = Map::new();
    for (at, secret) in secrets {
        match secret {
            // Why: the spec says `secrets` "can't be used together with `secret_refs`", so when
            // a definition has store references its plain secrets travel as `{value}` leaves.
            SecretInput::Value(value) | SecretInput::WriteOnly(value) if has_refs => {
                let mut leaf = Map::new();
                leaf.insert("value".into(), Json::String(value.0));
                insert_at(&mut refs, &at, Json::Object(leaf));
            }
            SecretInput::Value(value) | SecretInput::WriteOnly(value) => {
                insert_at(&mut plain, &at, Json::String(value.0));
            }
            SecretInput::Ref(reference) => {
                insert_at(&mut refs, &at, plain_json(&reference, &[]));
            }
            // A value nobody here knows cannot be sent; the plan warned about it.
            SecretInput::Hidden => {}
        }
    }
    DriverInputs {
        values: Some(values(runner)),
        secrets: (!plain.is_empty()).then_some(plain),
        secret_refs: (!refs.is_empty()).then_some(refs),
    }
}

/// The create payload, criteria inline.
pub(crate) fn to_create(runner: &ContainerRunner) -> DefinitionCreate {
    DefinitionCreate {
        id: runner.id.clone(),
        name: runner.name().to_string(),
        type_: runner.type_.clone(),
        driver_type: CONTAINER_RUNNER_DRIVER.into(),
        driver_account: runner.driver_account.clone(),
        driver_inputs: Some(driver_inputs(runner)),
        provision: None,
        criteria: Some(criteria_rules(runner.criteria().iter().cloned())),
    }
}

/// The PUT payload (criteria are managed separately).
pub(crate) fn to_update(runner: &ContainerRunner) -> DefinitionUpdate {
    DefinitionUpdate {
        name: runner.name().to_string(),
        driver_type: CONTAINER_RUNNER_DRIVER.into(),
        driver_account: runner.driver_account.clone(),
        driver_inputs: Some(driver_inputs(runner)),
        provision: None,
    }
}

/// Whether changing `before` into `after` writes the definition: its payload changes, a
/// write-only secret's version changes (to send it again), or the definition as read has another
/// driver or inputs this resource does not manage (a PUT then repairs it). Every write stores
/// each secret again, so their versions move.
///
/// Write-only values are left out of the comparison: a state never has them, and a plan being
/// applied always does, so only their versions say whether they changed.
pub(crate) fn rewrites(before: &ContainerRunner, after: &ContainerRunner) -> bool {
    if write_only_versions(before) != write_only_versions(after) {
        return true;
    }
    let (before, after) = (&without_write_only(before), &without_write_only(after));
    let repaired = before
        .driver_type
        .as_deref()
        .is_some_and(|driver| driver != CONTAINER_RUNNER_DRIVER)
        || before
            .unmanaged_inputs
            .as_ref()
            .is_some_and(|inputs| !inputs.is_empty());
    repaired || to_update(before) != to_update(after)
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
        crate::yaml::from_str::<Json>(a),
        crate::yaml::from_str::<Json>(b),
    ) {
        (Ok(x), Ok(y)) if x.is_object() || x.is_array() => x == y,
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

/// What reading a container runner definition found.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ContainerRunnerRead {
    /// The definition as a model.
    pub(crate) runner: ContainerRunner,
    /// Problems with the definition's shape, for a warning.
    pub(crate) problems: Vec<String>,
}

/// Whether a reference points at the primary-store copy of one of this definition's own secrets
/// (how Humanitec answers a secret sent as a value).
fn is_stored_value(reference: &SecretRef, definition: &Definition) -> bool {
    is_stored_value_ref(&reference.reference, &definition.id)
}

/// Whether the key `reference` is the primary-store copy of a secret of definition `id`.
pub(crate) fn is_stored_value_ref(reference: &str, id: &str) -> bool {
    reference.contains(&format!("--resources--defs--{id}--driver_secrets--"))
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
            let text = |name: &str| match object.get(name) {
                Some(Json::String(s)) => Some(s.clone()),
                Some(Json::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            out.push((
                at.clone(),
                SecretRef {
                    store: text("store").unwrap_or_default(),
                    reference: text("ref").unwrap_or_default(),
                    version: text("version"),
                },
            ));
        } else {
            reference_leaves(object, at, out);
        }
        at.pop();
    }
}

/// Reads one input of `values` into its model part; one that does not fit is a problem, and reads
/// as empty (which differs from any configuration, so it shows as drift).
fn input<T: DeserializeOwned + Default>(
    values: &JsonObject,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let json = values.get(key)?;
    match serde_json::from_value(json.clone()) {
        Ok(part) => Some(part),
        Err(e) => {
            problems.push(format!("its `{key}` input cannot be read ({e})"));
            Some(T::default())
        }
    }
}

/// Reads a container runner out of a definition, keeping from `prior` what the API cannot return
/// (secret values, the attributes that exist only in Terraform) or returns in another form
/// (equivalent JSON or YAML text).
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
    let unmanaged: Vec<String> = values
        .keys()
        .filter(|key| !VALUE_KEYS.contains(&key.as_str()))
        .cloned()
        .collect();
    for key in &unmanaged {
        problems.push(format!(
            "it has a `{key}` input, which this resource does not manage{}",
            if key == "cluster" {
                " (the Container Runner takes its cluster from the runner config)"
            } else {
                ""
            }
        ));
    }
    let prior_job = prior.job.as_ref();
    let job = input(&values, "job", &mut problems).map(|mut job: Job| {
        job.pod_template = prefer_prior(
            job.pod_template.take(),
            prior_job.and_then(|j| j.pod_template.as_ref()),
        );
        job
    });
    let source: Option<Source> = input(&values, "source", &mut problems);
    let files = input::<BTreeMap<String, String>>(&values, "files", &mut problems).map(|files| {
        files
            .into_iter()
            .map(|(file, content)| {
                let prior_content = prior.files.as_ref().and_then(|f| f.get(&file));
                let content = prefer_prior(Some(content), prior_content).unwrap_or_default();
                (file, content)
            })
            .collect()
    });
    let mut runner = ContainerRunner {
        id: definition.id.clone(),
        name: Some(definition.name.clone()),
        type_: definition.type_.clone(),
        driver_account: definition.driver_account.clone(),
        criteria: Some(criteria_read(&definition.criteria)),
        job,
        source,
        files,
        // The secrets come from the references below, the versions from the prior model.
        secret_files: None,
        secret_files_wo: None,
        secret_files_wo_version: None,
        credentials_config: input(&values, "credentials_config", &mut problems),
        runner_config: prior.runner_config.clone(),
        // After an import there is no prior value: the default.
        force_delete: prior.force_delete.or(Some(false)),
        secret_refs: Some(BTreeMap::new()),
        driver_type: Some(definition.driver_type.clone()),
        unmanaged_inputs: Some(unmanaged),
        timeouts: prior.timeouts.clone(),
        // Direct mode only: api mode has no triggers and no run results.
        triggers: prior.triggers.clone(),
        outputs: None,
        secret_outputs: None,
        last_run: None,
    };

    read_secrets(&mut runner, inputs.secret_refs.as_ref(), definition, prior);
    ContainerRunnerRead { runner, problems }
}

/// Reads a definition's secrets into `runner`: each secret input by its reference (the value
/// itself stays as the prior state had it while its version did not move), the write-only
/// versions from the prior state.
fn read_secrets(
    runner: &mut ContainerRunner,
    secret_refs: Option<&JsonObject>,
    definition: &Definition,
    prior: &ContainerRunner,
) {
    // Why: `values` never carries a secret (the API keeps them apart), and one that did would
    // not be this provider's to read; a write-only version exists only in Terraform.
    for secret in &SECRETS {
        if let Some(mut fields) = (secret.fields)(runner, false) {
            *fields.write_only_version() = (secret.held)(prior).write_only_version.cloned();
            fields.forget_values();
        }
    }
    let mut leaves = Vec::new();
    if let Some(tree) = secret_refs {
        reference_leaves(tree, &mut Vec::new(), &mut leaves);
    }
    let prior_secrets = secrets_by_path(prior);
    let prior_refs = prior.secret_refs.clone().unwrap_or_default();
    let mut refs = BTreeMap::new();
    for (at, reference) in leaves {
        let key = dotted(&at);
        let secret = if is_stored_value(&reference, definition) {
            // A version that moved without this provider writing means someone else wrote it.
            let unchanged = prior_refs
                .get(&key)
                .is_none_or(|seen| seen.version == reference.version);
            match prior_secrets.get(&key) {
                Some(SecretInput::Value(value)) if unchanged => SecretInput::Value(value.clone()),
                _ => SecretInput::Hidden,
            }
        } else {
            SecretInput::Ref(reference.clone())
        };
        // Why skip: an unknown secret where the state had none (after an import) would differ
        // from a configuration that leaves it out; `secret_refs` still lists it.
        if secret != SecretInput::Hidden || holds_secrets_at(prior, &at) {
            place_secret(runner, &at, secret);
        }
        refs.insert(key, reference);
    }
    forget_changed_write_only(runner, &prior_refs, &refs);
    runner.secret_refs = Some(refs);
    // Maps the prior model had stay maps (perhaps empty) rather than vanishing.
    for secret in SECRETS.iter().filter(|secret| secret.by_key) {
        if let Some(SecretFields::ByKey { values, .. }) = (secret.fields)(runner, false)
            && (secret.held)(prior).set
            && values.is_none()
        {
            *values = Some(BTreeMap::new());
        }
    }
}

/// Forgets the version of each write-only secret that changed outside Terraform: gone, moved
/// to another version, or (for the maps) with keys added or removed, compared with the
/// references the state recorded. The plan then shows the version changing back, and the
/// update sends the configured value again: the drift rule plain secrets follow, for values
/// Terraform never sees.
fn forget_changed_write_only(
    runner: &mut ContainerRunner,
    before: &BTreeMap<String, SecretRef>,
    now: &BTreeMap<String, SecretRef>,
) {
    // The references under a dotted prefix, by path, with their versions.
    let under = |refs: &BTreeMap<String, SecretRef>, prefix: &str| {
        refs.iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(path, r)| (path.clone(), r.version.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    // Why compare only what the state recorded: right after an import the state has no
    // references, and nothing is known to have changed.
    let changed = |prefix: &str, exact: bool| {
        let (was, is) = (under(before, prefix), under(now, prefix));
        if exact {
            let (was, is) = (was.get(prefix), is.get(prefix));
            is.is_none() || was.is_some_and(|was| Some(was) != is)
        } else {
            !before.is_empty() && was != is
        }
    };
    for secret in &SECRETS {
        let Some(mut fields) = (secret.fields)(runner, false) else {
            continue;
        };
        let version = fields.write_only_version();
        // A map's secrets are the paths under `<input>.`, a single secret's is its path.
        let changed = if secret.by_key {
            changed(&format!("{}.", secret.input), false)
        } else {
            changed(secret.input, true)
        };
        if version.is_some() && changed {
            *version = None;
        }
    }
}

/// Whether the attribute that would hold a secret at `at` is set (perhaps empty).
fn holds_secrets_at(runner: &ContainerRunner, at: &[String]) -> bool {
    SECRETS
        .iter()
        .find(|secret| secret.key_at(at).is_some())
        .is_some_and(|secret| (secret.held)(runner).set)
}

/// Puts a secret read back from the API where its path says; paths this resource does not
/// manage are only listed in `secret_refs`.
fn place_secret(runner: &mut ContainerRunner, at: &[String], secret: SecretInput) {
    // In a map, a secret whose value is not known here (or a reference, which a map cannot
    // hold) is a null entry.
    let entry = |secret: SecretInput| match secret {
        SecretInput::Value(value) => Some(value),
        SecretInput::Ref(_) | SecretInput::Hidden | SecretInput::WriteOnly(_) => None,
    };
    let Some((attribute, key)) = SECRETS
        .iter()
        .find_map(|attribute| Some((attribute, attribute.key_at(at)?)))
    else {
        return;
    };
    match (attribute.fields)(runner, true) {
        Some(SecretFields::One {
            value, reference, ..
        }) => match secret {
            SecretInput::Value(known) => *value = Some(known),
            SecretInput::Ref(found) => *reference = Some(found),
            SecretInput::Hidden | SecretInput::WriteOnly(_) => {}
        },
        Some(SecretFields::ByKey { values, .. }) => {
            values
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_string(), entry(secret));
        }
        None => {}
    }
}

/// A definition's criteria, read back as the model's.
fn criteria_read(criteria: &[crate::humanitec::Criteria]) -> Vec<MatchingCriterion> {
    normalized_criteria(criteria.iter().map(|c| MatchingCriterion {
        app_id: c.app_id.clone(),
        env_id: c.env_id.clone(),
        env_type: c.env_type.clone(),
        res_id: c.res_id.clone(),
        // An empty class is the default one.
        class: Some(c.class.clone()).filter(|class| !class.is_empty()),
    }))
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
    use crate::model::container_runner::CredentialsConfig;

    fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn secret(value: &str) -> Sensitive<String> {
        Sensitive(value.to_string())
    }

    /// The doc page's S3 example as a model, the way the resource builds it from the HCL.
    fn doc_page_s3() -> ContainerRunner {
        ContainerRunner {
            id: "my-s3-bucket".into(),
            name: Some("S3 Bucket".into()),
            type_: "s3".into(),
            criteria: Some(vec![MatchingCriterion {
                env_type: Some("development".into()),
                class: Some("default".into()),
                ..MatchingCriterion::default()
            }]),
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
                password_ref: Some(SecretRef {
                    store: "my-store".into(),
                    reference: "path/to/git/password".into(),
                    version: None,
                }),
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
            let parsed: Json = crate::yaml::from_str(text).unwrap();
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
        let ours = serde_json::to_value(to_create(&doc_page_s3())).unwrap();
        assert_eq!(by_meaning(ours), by_meaning(doc_page_s3_payload()));
    }

    /// A definition with every attribute set.
    fn everything() -> ContainerRunner {
        let mut runner = doc_page_s3();
        runner.driver_account = Some("aws-account".into());
        runner
            .criteria
            .get_or_insert_with(Vec::new)
            .push(MatchingCriterion {
                app_id: Some("app".into()),
                env_id: Some("dev".into()),
                env_type: Some("development".into()),
                res_id: Some("modules.api.externals.bucket".into()),
                class: Some("large".into()),
            });
        let job = runner.job.as_mut().unwrap();
        job.variables = Some(strings(&[("TF_LOG", "info")]));
        job.secret_variables =
            Some([("AWS_SECRET_ACCESS_KEY".to_string(), Some(secret("k3y")))].into());
        let source = runner.source.as_mut().unwrap();
        source.path = Some("s3".into());
        source.ssh_key = Some(secret("-----BEGIN KEY-----"));
        runner.secret_files = Some([("secret.tfvars".to_string(), Some(secret("x=1")))].into());
        runner.credentials_config = Some(CredentialsConfig {
            environment: Some(strings(&[("AWS_ACCESS_KEY_ID", "AccessKeyId")])),
            file: Some("/home/runneruser/credentials".into()),
        });
        runner
    }

    #[test]
    fn golden_payload_with_every_attribute() {
        let payload = serde_json::to_value(to_create(&everything())).unwrap();
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
        let update = serde_json::to_value(to_update(&everything())).unwrap();
        assert_eq!(update["driver_inputs"], expected["driver_inputs"]);
        assert!(update.get("criteria").is_none() && update.get("id").is_none());
    }

    #[test]
    fn plain_secrets_without_refs_go_under_secrets() {
        let mut runner = everything();
        let source = runner.source.as_mut().unwrap();
        source.password_ref = None;
        source.password = Some(secret("pat"));
        let inputs = serde_json::to_value(driver_inputs(&runner)).unwrap();
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
        let inputs = driver_inputs(runner);
        let mut refs = Map::new();
        for (at, secret) in secrets(runner) {
            let leaf = match secret {
                SecretInput::Ref(r) => {
                    json!({"store": r.store, "ref": r.reference, "version": r.version.clone().unwrap_or("1".into())})
                }
                _ => {
                    json!({"store": "primary", "ref": format!("orgs--o--resources--defs--{}--driver_secrets--{}", runner.id, at.join("--")), "version": version})
                }
            };
            insert_at(&mut refs, &at, leaf);
        }
        serde_json::from_value(json!({
            "org_id": "o", "id": runner.id, "name": runner.name(), "type": runner.type_,
            "driver_type": CONTAINER_RUNNER_DRIVER, "driver_account": runner.driver_account,
            "driver_inputs": {"values": inputs.values, "secret_refs": refs},
            "criteria": criteria_rules(runner.criteria().iter().cloned()).iter().enumerate().map(|(i, c)| {
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
        let refs = read.runner.secret_refs.clone().unwrap();
        assert_eq!(refs.len(), 4);
        assert_eq!(refs["source.password"].version.as_deref(), Some("1"));
        // What the API assigned (the ref's version) is now known; the rest is as written.
        prior.source.as_mut().unwrap().password_ref = Some(SecretRef {
            store: "my-store".into(),
            reference: "path/to/git/password".into(),
            version: Some("1".into()),
        });
        prior.secret_refs = Some(refs);
        prior.criteria = Some(normalized_criteria(
            prior.criteria.clone().into_iter().flatten(),
        ));
        prior.force_delete = Some(false);
        prior.driver_type = Some(CONTAINER_RUNNER_DRIVER.into());
        prior.unmanaged_inputs = Some(Vec::new());
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
    fn an_input_of_another_shape_is_a_problem_not_a_failure() {
        let prior = everything();
        let mut definition = answered(&prior, "1");
        let values = definition
            .driver_inputs
            .as_mut()
            .and_then(|i| i.values.as_mut())
            .unwrap();
        values["job"]["command"] = json!("not a list");
        let read = read_container_runner(&definition, &prior);
        assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
        assert!(read.problems[0].contains("`job`"), "{:?}", read.problems);
        assert_ne!(read.runner.job, prior.job, "shows as drift");
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
            None
        );
        assert!(read.runner.source.as_ref().unwrap().password_ref.is_some());

        // Imported: nothing known before, so nothing to compare a configuration with; the refs
        // still show what exists.
        let read = read_container_runner(&answered(&prior, "1"), &ContainerRunner::default());
        assert_eq!(read.runner.secret_files, None);
        assert!(
            read.runner
                .secret_refs
                .as_ref()
                .unwrap()
                .contains_key("files.secret.tfvars")
        );
        // Imported into a configuration that sets the map: the unknown value shows as a change.
        let configured = ContainerRunner {
            secret_files: Some(BTreeMap::new()),
            ..ContainerRunner::default()
        };
        let read = read_container_runner(&answered(&prior, "1"), &configured);
        assert_eq!(
            read.runner.secret_files.as_ref().unwrap()["secret.tfvars"],
            None
        );

        // Removed elsewhere: the secret is gone, the map stays.
        let mut without = prior.clone();
        without.secret_files = Some(BTreeMap::new());
        let read = read_container_runner(&answered(&without, "1"), &prior);
        assert_eq!(read.runner.secret_files, Some(BTreeMap::new()));
    }

    /// `everything()` with each secret in its write-only form instead.
    fn write_only() -> ContainerRunner {
        let mut runner = everything();
        let source = runner.source.as_mut().unwrap();
        source.password_ref = None;
        source.ssh_key = None;
        source.password_wo = Some(secret("pw-wo"));
        source.password_wo_version = Some("1".into());
        source.ssh_key_wo = Some(secret("key-wo"));
        source.ssh_key_wo_version = Some("1".into());
        let job = runner.job.as_mut().unwrap();
        job.secret_variables = None;
        job.secret_variables_wo = Some(BTreeMap::from([("TOKEN".into(), secret("var-wo"))]));
        job.secret_variables_wo_version = Some("1".into());
        runner.secret_files = None;
        runner.secret_files_wo = Some(BTreeMap::from([("s.tfvars".into(), secret("file-wo"))]));
        runner.secret_files_wo_version = Some("1".into());
        runner
    }

    #[test]
    fn write_only_secrets_are_sent_as_secrets_and_nowhere_else() {
        let runner = write_only();
        let inputs = serde_json::to_value(driver_inputs(&runner)).unwrap();
        assert_eq!(
            inputs["secrets"],
            json!({
                "source": {"password": "pw-wo", "ssh_key": "key-wo"},
                "job": {"variables": {"TOKEN": "var-wo"}},
                "files": {"s.tfvars": "file-wo"}
            })
        );
        let values = inputs["values"].to_string();
        for trace in ["-wo", "wo_version"] {
            assert!(!values.contains(trace), "{trace} in the values: {values}");
        }
        // With a store reference in the definition, they travel as `{value}` references.
        let mut mixed = runner.clone();
        mixed.source.as_mut().unwrap().ssh_key_wo = None;
        mixed.source.as_mut().unwrap().ssh_key_ref = Some(SecretRef {
            store: "my-store".into(),
            reference: "git/key".into(),
            version: None,
        });
        let inputs = serde_json::to_value(driver_inputs(&mixed)).unwrap();
        assert_eq!(
            inputs["secret_refs"]["source"]["password"],
            json!({"value": "pw-wo"})
        );
    }

    #[test]
    fn only_a_version_change_of_a_write_only_secret_rewrites() {
        let applied = write_only();
        let state = without_write_only(&applied);
        // A plan being applied has the values, the state has not: no write for that alone.
        assert!(!rewrites(&state, &applied));
        let mut new_value = applied.clone();
        new_value.job.as_mut().unwrap().secret_variables_wo =
            Some(BTreeMap::from([("TOKEN".into(), secret("other"))]));
        assert!(!rewrites(&state, &new_value), "a new value alone");
        let mut bumped = new_value.clone();
        bumped.job.as_mut().unwrap().secret_variables_wo_version = Some("2".into());
        assert!(rewrites(&state, &bumped), "a new version");
        let mut dropped = state.clone();
        dropped.secret_files_wo_version = None;
        assert!(rewrites(&state, &dropped), "a write-only secret removed");
    }

    #[test]
    fn write_only_secrets_are_never_read_back_and_drift_forgets_their_version() {
        let applied = write_only();
        let definition = answered(&applied, "1");
        // Read back right after the write, with the values at hand: none of them lands in a
        // plain attribute, and the versions stay.
        let read = read_container_runner(&definition, &applied).runner;
        let text = format!("{:?}", serde_json::to_value(&read).unwrap());
        for value in ["pw-wo", "key-wo", "var-wo", "file-wo"] {
            assert!(!text.contains(value), "{value} read back: {text}");
        }
        assert_eq!(write_only_versions(&read), write_only_versions(&applied));
        let source = read.source.as_ref().unwrap();
        assert_eq!((&source.password, &source.ssh_key), (&None, &None));
        assert_eq!(read.job.as_ref().unwrap().secret_variables, None);
        assert_eq!(read.secret_files, None);

        // A refresh of the state: nothing changed.
        let state = read.clone();
        let again = read_container_runner(&definition, &state).runner;
        assert_eq!(write_only_versions(&again), write_only_versions(&applied));

        // Written again elsewhere (every stored version moved): every version is forgotten.
        let moved = read_container_runner(&answered(&applied, "2"), &state).runner;
        assert_eq!(write_only_versions(&moved), [None; 4]);

        // A secret variable added elsewhere, or a secret file removed: that map's version only.
        let mut other = applied.clone();
        other
            .job
            .as_mut()
            .unwrap()
            .secret_variables_wo
            .as_mut()
            .unwrap()
            .insert("EXTRA".into(), secret("x"));
        other.secret_files_wo = Some(BTreeMap::new());
        let changed = read_container_runner(&answered(&other, "1"), &state).runner;
        let versions = write_only_versions(&changed);
        assert_eq!(versions[0].map(String::as_str), Some("1"));
        assert_eq!(versions[1].map(String::as_str), Some("1"));
        assert_eq!((versions[2], versions[3]), (None, None));

        // After an import nothing is known, and nothing is forgotten.
        let imported = read_container_runner(&definition, &ContainerRunner::default()).runner;
        assert_eq!(write_only_versions(&imported), [None; 4]);
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
