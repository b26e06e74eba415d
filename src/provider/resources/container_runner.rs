//! `humanitec_container_runner`: a definition of any resource type whose resources a container
//! (usually an IaC tool) provisions, run as a Kubernetes Job by the Container Runner Driver.
//!
//! In api mode the resource is a Humanitec definition with driver `humanitec/container-runner`.
//! Its secrets are sent but never read back; state keeps the configured values, and the refs the
//! API answers with are shown in the computed `secret_refs`. Direct mode, where the provider runs
//! the Job itself on the cluster of `runner_config`, is not part of this version: a plan in
//! direct mode fails with a diagnostic that says so.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::runner_config::kubernetes_block;
use super::{criteria_block, default_name_to_id, optional_string, set, set_items};
use crate::definition::container_runner::{
    ContainerRunner, CredentialsConfig, Job, Secret, SecretRef, Source, read_container_runner,
    sort_rules,
};
use crate::framework::validate::{env_names, humanitec_id, not_empty, yaml_mapping};
use crate::framework::{
    Attribute, Block, Diagnostics, NestedBlock, Nesting, Operation, Plan, Resource, Schema,
    plan::resolve_unknowns, timeouts,
};
use crate::humanitec::{self, CriteriaRule, DEFAULT_CLASS, Definition};
use crate::provider::Shared;
use crate::provider::api::{
    Lookup, api_error, client, create_failed, delete_definition, look_up, sync_criteria,
};
use crate::provider::backend::warn_stays_in_mode;
use crate::provider::config::Mode;
use crate::value::{AttributePath, Type, Value};

/// The `humanitec_container_runner` resource type.
pub(crate) struct ContainerRunnerResource {
    shared: Arc<Shared>,
}

impl ContainerRunnerResource {
    /// The resource, sharing the provider's configuration.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// A `password_ref` / `ssh_key_ref` block.
fn secret_ref_block(what: &str) -> NestedBlock {
    let name = format!("{what}_ref");
    NestedBlock::new(
        name,
        Nesting::Single,
        Block::new(format!(
            "The {what} as a reference to a secret store registered with the organization, instead of `{what}`."
        ))
        .attribute(
            Attribute::string("store")
                .required()
                .validate(not_empty())
                .description("The secret store id."),
        )
        .attribute(
            Attribute::string("ref")
                .required()
                .validate(not_empty())
                .description("The secret's key, in the store's format (e.g. `path/to/git/password`)."),
        )
        .attribute(
            Attribute::string("version")
                .optional_computed()
                .validate(not_empty())
                .description(
                    "The secret's version in the store. When unset, Humanitec uses the latest and the \
                     version it reports is recorded; a later move of that version is not a change.",
                ),
        ),
    )
}

/// The type of `runner_config`: the parts of a `humanitec_runner_config` that travel with a
/// container runner. Terraform converts a whole runner config object to it, dropping the rest.
fn runner_config_type() -> Type {
    Type::Object(BTreeMap::from([
        ("id".to_string(), Type::String),
        ("skip_permission_checks".to_string(), Type::Bool),
        ("kubernetes".to_string(), kubernetes_block().implied_type()),
    ]))
}

/// The type of `secret_refs`: input path → where Humanitec keeps that secret.
fn secret_refs_type() -> Type {
    Type::Map(Box::new(Type::Object(BTreeMap::from([
        ("store".to_string(), Type::String),
        ("ref".to_string(), Type::String),
        ("version".to_string(), Type::String),
    ]))))
}

fn schema() -> Schema {
    let criteria = criteria_block(
        "A matching criterion: which resources of this type the definition provisions. Each block \
         becomes one criterion; without blocks the definition matches nothing by itself.",
    )
    .attribute(
        Attribute::string("res_id")
            .validate(not_empty())
            .description("Match this resource id, e.g. `modules.my-workload.externals.my-bucket`."),
    )
    .attribute(
        Attribute::string("class")
            .default(Value::string(DEFAULT_CLASS))
            .validate(not_empty())
            .description("Match this resource class. Defaults to `default`."),
    );
    let job = Block::new("The Kubernetes Job that runs the container.")
        .attribute(Attribute::string("image").required().validate(not_empty()).description("The runner image, e.g. `ghcr.io/my-org/my-image:1.1.0`."))
        .attribute(Attribute::string_list("command").description("Overrides the image's entrypoint; leave it out to use the entrypoint."))
        .attribute(Attribute::string("shared_directory").validate(not_empty()).description("Where the shared volume is mounted; the source and files are placed under it."))
        .attribute(Attribute::string("namespace").validate(not_empty()).description("The namespace the Job runs in; it must exist."))
        .attribute(Attribute::string("service_account").validate(not_empty()).description("The service account of the Job's pod. It needs `create` on Secrets and ConfigMaps in the namespace."))
        .attribute(
            Attribute::string("pod_template")
                .validate(yaml_mapping("spec:\n  imagePullSecrets:\n    - name: my-registry\n"))
                .description("A partial Pod template, as a YAML mapping, merged into the Job's pod (e.g. `spec.imagePullSecrets`, labels, a node selector). Checked at plan time."),
        )
        .attribute(Attribute::string_map("variables").validate(env_names()).description("Environment variables of the container."))
        .attribute(
            Attribute::string_map("secret_variables")
                .sensitive()
                .validate(env_names())
                .description("Secret environment variables of the container. Sent as definition secrets (`job.variables.<NAME>`); the API never returns them."),
        );
    let source = Block::new("The git repository holding the code the container runs.")
        .attribute(
            Attribute::string("url")
                .required()
                .validate(not_empty())
                .description("The repository URL, `https://…` or `git@…`."),
        )
        .attribute(
            Attribute::string("ref")
                .validate(not_empty())
                .description("The git ref to check out, e.g. `refs/heads/main`."),
        )
        .attribute(
            Attribute::string("path")
                .validate(not_empty())
                .description("A sub-directory of the repository to run in."),
        )
        .attribute(
            Attribute::string("username")
                .validate(not_empty())
                .description("The user name for HTTPS authentication."),
        )
        .attribute(Attribute::string("password").sensitive().description(
            "The password or token for HTTPS authentication. Conflicts with `password_ref`.",
        ))
        .attribute(
            Attribute::string("ssh_key")
                .sensitive()
                .description("The SSH private key for `git@…` URLs. Conflicts with `ssh_key_ref`."),
        )
        .block(secret_ref_block("password"))
        .block(secret_ref_block("ssh_key"));
    let credentials = Block::new("How the cloud credentials of `driver_account` reach the container.")
        .attribute(Attribute::string_map("environment").validate(env_names()).description("Environment variable → credential key, e.g. `{ AWS_ACCESS_KEY_ID = \"AccessKeyId\" }`."))
        .attribute(Attribute::string("file").validate(not_empty()).description("A file the credentials are written to."));

    Schema::new(
        Block::new(
            "A Container Runner definition: a Humanitec Resource Definition (driver \
             `humanitec/container-runner`) whose resources a container, usually an IaC tool, \
             provisions as a Kubernetes Job. The cluster comes from the runner config that matches \
             (`humanitec_runner_config`), never from this definition.",
        )
        .attribute(Attribute::string("id").required().requires_replace().validate(humanitec_id()).description("The definition id. Changing it replaces the definition."))
        .attribute(Attribute::string("name").optional_computed().validate(not_empty()).description("The definition's display name. Defaults to `id`."))
        .attribute(Attribute::string("type").required().requires_replace().validate(not_empty()).description("The resource type the definition provisions, e.g. `s3` or `postgres`. Changing it replaces the definition."))
        .attribute(Attribute::string("driver_account").validate(not_empty()).description("The Humanitec cloud account whose credentials the container gets (see `credentials_config`)."))
        .attribute(Attribute::string_map("files").description("Inline files: path → content. Relative paths are placed in the scripts directory, absolute ones under `job.shared_directory`. Humanitec placeholders such as `$${context.app.id}` are written as `$${…}` in HCL."))
        .attribute(Attribute::string_map("secret_files").sensitive().description("Secret inline files, shaped like `files`. Sent as definition secrets (`files.<path>`); the API never returns them."))
        .attribute(
            Attribute::new("runner_config", runner_config_type())
                .description("The runner config this container runner runs with: set it to a `humanitec_runner_config` resource (`runner_config = humanitec_runner_config.dev`). In api mode it only orders the two resources, since Humanitec matches the runner config by its criteria; only its `id`, `skip_permission_checks` and `kubernetes` are kept."),
        )
        .attribute(Attribute::bool("force_delete").default(Value::Bool(false)).description("Delete the definition even while resources use it (`DELETE ?force=true`): Humanitec marks it deleted and moves those resources to another definition on their next deployment. When `false`, deleting an in-use definition is retried until `timeouts.delete`, then fails naming the resources."))
        .attribute(
            Attribute::new("secret_refs", secret_refs_type())
                .computed()
                .description("Where Humanitec keeps each secret input, by input path (`source.password`, `job.variables.<NAME>`, `files.<path>`): the store, the key in it and the version. Values sent in plain get a reference in the organization's primary store, whose version goes up with each update."),
        )
        .block(NestedBlock::new("criteria", Nesting::Set, criteria))
        .block(NestedBlock::new("job", Nesting::Single, job).required())
        .block(NestedBlock::new("source", Nesting::Single, source))
        .block(NestedBlock::new("credentials_config", Nesting::Single, credentials))
        .block(timeouts::block(Duration::from_secs(20 * 60))),
    )
}

// --- Terraform values ⇄ model -------------------------------------------------------------------

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

fn text_map(value: &Value) -> Option<BTreeMap<String, String>> {
    value.as_map().map(|map| {
        map.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    })
}

/// A map of secrets; a null element stands for a secret whose value is not known here.
fn secret_map(value: &Value) -> Option<BTreeMap<String, Secret>> {
    value.as_map().map(|map| {
        map.iter()
            .map(|(k, v)| {
                let secret = v
                    .as_str()
                    .map_or(Secret::Hidden, |s| Secret::Value(s.into()));
                (k.clone(), secret)
            })
            .collect()
    })
}

/// A secret given either as a value or as a `*_ref` block.
fn secret(value: &Value, reference: &Value) -> Option<Secret> {
    if let Some(value) = value.as_str() {
        return Some(Secret::Value(value.to_string()));
    }
    if reference.is_null() {
        return None;
    }
    Some(Secret::Ref(SecretRef {
        store: text(reference.get("store")).unwrap_or_default(),
        reference: text(reference.get("ref")).unwrap_or_default(),
        version: text(reference.get("version")),
    }))
}

/// Builds the model from a state or plan (unknowns read as absent).
fn model(state: &Value) -> ContainerRunner {
    let id = text(state.get("id")).unwrap_or_default();
    let mut criteria: Vec<CriteriaRule> = set_items(state.get("criteria"))
        .iter()
        .map(|c| CriteriaRule {
            app_id: text(c.get("app_id")),
            env_id: text(c.get("env_id")),
            env_type: text(c.get("env_type")),
            res_id: text(c.get("res_id")),
            class: Some(text(c.get("class")).unwrap_or_else(|| DEFAULT_CLASS.into())),
        })
        .collect();
    sort_rules(&mut criteria);
    let job = state.get("job");
    let job = (!job.is_null()).then(|| Job {
        image: text(job.get("image")).unwrap_or_default(),
        command: job
            .get("command")
            .as_list()
            .map(|items| items.iter().filter_map(text).collect()),
        shared_directory: text(job.get("shared_directory")),
        namespace: text(job.get("namespace")),
        service_account: text(job.get("service_account")),
        pod_template: text(job.get("pod_template")),
        variables: text_map(job.get("variables")),
        secret_variables: secret_map(job.get("secret_variables")),
    });
    let source = state.get("source");
    let source = (!source.is_null()).then(|| Source {
        url: text(source.get("url")),
        reference: text(source.get("ref")),
        path: text(source.get("path")),
        username: text(source.get("username")),
        password: secret(source.get("password"), source.get("password_ref")),
        ssh_key: secret(source.get("ssh_key"), source.get("ssh_key_ref")),
    });
    let credentials = state.get("credentials_config");
    let credentials_config = (!credentials.is_null()).then(|| CredentialsConfig {
        environment: text_map(credentials.get("environment")),
        file: text(credentials.get("file")),
    });
    let secret_refs = state
        .get("secret_refs")
        .as_map()
        .map(|refs| {
            refs.iter()
                .map(|(path, r)| {
                    let reference = SecretRef {
                        store: text(r.get("store")).unwrap_or_default(),
                        reference: text(r.get("ref")).unwrap_or_default(),
                        version: text(r.get("version")),
                    };
                    (path.clone(), reference)
                })
                .collect()
        })
        .unwrap_or_default();
    ContainerRunner {
        name: text(state.get("name")).unwrap_or_else(|| id.clone()),
        id,
        type_: text(state.get("type")).unwrap_or_default(),
        driver_account: text(state.get("driver_account")),
        criteria,
        job,
        source,
        files: text_map(state.get("files")),
        secret_files: secret_map(state.get("secret_files")),
        credentials_config,
        secret_refs,
    }
}

fn string_list(items: Option<&Vec<String>>) -> Value {
    items.map_or(Value::Null, |items| {
        Value::List(items.iter().cloned().map(Value::string).collect())
    })
}

fn string_map(map: Option<&BTreeMap<String, String>>) -> Value {
    map.map_or(Value::Null, |map| {
        Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), Value::string(v.clone())))
                .collect(),
        )
    })
}

fn secret_map_value(map: Option<&BTreeMap<String, Secret>>) -> Value {
    map.map_or(Value::Null, |map| {
        Value::Map(
            map.iter()
                .map(|(k, secret)| (k.clone(), secret_value(Some(secret))))
                .collect(),
        )
    })
}

/// The value attribute of a secret: its value when known, else null.
fn secret_value(secret: Option<&Secret>) -> Value {
    match secret {
        Some(Secret::Value(value)) => Value::string(value.clone()),
        _ => Value::Null,
    }
}

/// The `*_ref` block of a secret: present for a store reference, else null.
fn secret_ref_value(secret: Option<&Secret>) -> Value {
    match secret {
        Some(Secret::Ref(r)) => Value::object([
            ("store", Value::string(r.store.clone())),
            ("ref", Value::string(r.reference.clone())),
            ("version", optional_string(r.version.as_ref())),
        ]),
        _ => Value::Null,
    }
}

/// The `criteria` set.
fn criteria_value(rules: &[CriteriaRule]) -> Value {
    Value::Set(
        rules
            .iter()
            .map(|c| {
                Value::object([
                    ("app_id", optional_string(c.app_id.as_ref())),
                    ("env_id", optional_string(c.env_id.as_ref())),
                    ("env_type", optional_string(c.env_type.as_ref())),
                    ("res_id", optional_string(c.res_id.as_ref())),
                    ("class", optional_string(c.class.as_ref())),
                ])
            })
            .collect(),
    )
}

/// Writes the model's attributes into a state (the rest, such as `timeouts`, stays).
fn write_state(state: &mut Value, runner: &ContainerRunner) {
    set(state, "id", Value::string(runner.id.clone()));
    set(state, "name", Value::string(runner.name.clone()));
    set(state, "type", Value::string(runner.type_.clone()));
    set(
        state,
        "driver_account",
        optional_string(runner.driver_account.as_ref()),
    );
    set(state, "criteria", criteria_value(&runner.criteria));
    let job = runner.job.as_ref().map_or(Value::Null, |job| {
        Value::object([
            ("image", Value::string(job.image.clone())),
            ("command", string_list(job.command.as_ref())),
            (
                "shared_directory",
                optional_string(job.shared_directory.as_ref()),
            ),
            ("namespace", optional_string(job.namespace.as_ref())),
            (
                "service_account",
                optional_string(job.service_account.as_ref()),
            ),
            ("pod_template", optional_string(job.pod_template.as_ref())),
            ("variables", string_map(job.variables.as_ref())),
            (
                "secret_variables",
                secret_map_value(job.secret_variables.as_ref()),
            ),
        ])
    });
    set(state, "job", job);
    let source = runner.source.as_ref().map_or(Value::Null, |source| {
        Value::object([
            ("url", optional_string(source.url.as_ref())),
            ("ref", optional_string(source.reference.as_ref())),
            ("path", optional_string(source.path.as_ref())),
            ("username", optional_string(source.username.as_ref())),
            ("password", secret_value(source.password.as_ref())),
            ("ssh_key", secret_value(source.ssh_key.as_ref())),
            ("password_ref", secret_ref_value(source.password.as_ref())),
            ("ssh_key_ref", secret_ref_value(source.ssh_key.as_ref())),
        ])
    });
    set(state, "source", source);
    set(state, "files", string_map(runner.files.as_ref()));
    set(
        state,
        "secret_files",
        secret_map_value(runner.secret_files.as_ref()),
    );
    let credentials = runner.credentials_config.as_ref().map_or(Value::Null, |c| {
        Value::object([
            ("environment", string_map(c.environment.as_ref())),
            ("file", optional_string(c.file.as_ref())),
        ])
    });
    set(state, "credentials_config", credentials);
    let refs = runner
        .secret_refs
        .iter()
        .map(|(path, r)| {
            let reference = Value::object([
                ("store", Value::string(r.store.clone())),
                ("ref", Value::string(r.reference.clone())),
                ("version", optional_string(r.version.as_ref())),
            ]);
            (path.clone(), reference)
        })
        .collect();
    set(state, "secret_refs", Value::Map(refs));
}

/// The state a definition answered by the API stands for, read with `known` as the guide.
fn state_from(definition: &Definition, known: &Value, diags: &mut Diagnostics) -> Value {
    let read = read_container_runner(definition, &model(known));
    if !read.problems.is_empty() {
        diags.warning(
            format!(
                "Definition {:?} is not a container runner as this provider writes it",
                definition.id
            ),
            format!("{}. The next apply rewrites it.", read.problems.join("; ")),
        );
    }
    let mut state = known.clone();
    write_state(&mut state, &read.runner);
    state
}

// --- the resource -------------------------------------------------------------------------------

/// The criteria a definition has now, as state, after a failed criteria update (`fallback` when
/// it cannot be read again).
async fn criteria_now(client: &humanitec::Client, fallback: &Definition) -> Value {
    let definition = match client.get_definition(&fallback.id).await {
        Ok(Some(definition)) => definition,
        _ => fallback.clone(),
    };
    let read = read_container_runner(&definition, &ContainerRunner::default());
    criteria_value(&read.runner.criteria)
}

/// The `secret_refs` an update will answer with. Every secret is written again, so versions move;
/// when the same paths are sent, each entry is planned from what is sent, otherwise the whole map
/// is unknown.
fn planned_secret_refs(prior: &Value, before: &ContainerRunner, after: &ContainerRunner) -> Value {
    let sent = sendable(after);
    let before_secrets = before.secrets_by_path();
    let Some(refs) = prior.as_map() else {
        return Value::Unknown;
    };
    if refs.len() != sent.len() || !sent.keys().all(|p| refs.contains_key(p)) {
        return Value::Unknown;
    }
    let entries = sent.iter().map(|(path, secret)| {
        let entry = match (secret, before_secrets.get(path)) {
            (Secret::Ref(r), _) => Value::object([
                ("store", Value::string(r.store.clone())),
                ("ref", Value::string(r.reference.clone())),
                (
                    "version",
                    r.version.clone().map_or(Value::Unknown, Value::string),
                ),
            ]),
            // A value stored before stays at the same primary-store key.
            (_, Some(Secret::Value(_) | Secret::Hidden)) => {
                let mut entry = refs[path].clone();
                set(&mut entry, "version", Value::Unknown);
                entry
            }
            _ => Value::Unknown,
        };
        (path.clone(), entry)
    });
    Value::Map(entries.collect())
}

/// The secrets an update can send: those with a value or a reference.
fn sendable(runner: &ContainerRunner) -> BTreeMap<String, &Secret> {
    let mut secrets = runner.secrets_by_path();
    secrets.retain(|_, secret| !matches!(secret, Secret::Hidden));
    secrets
}

/// Warns of each secret Humanitec holds that an update would drop because neither the state nor
/// the configuration has its value (secrets cannot be read back, for example after an import).
fn warn_of_dropped_secrets(
    before: &ContainerRunner,
    after: &ContainerRunner,
    diags: &mut Diagnostics,
) {
    let (known, sent) = (sendable(before), sendable(after));
    for path in before.secret_refs.keys() {
        if !sent.contains_key(path) && !known.contains_key(path) {
            diags.warning(
                format!("The definition's secret {path} is not in the configuration"),
                format!(
                    "Humanitec holds a secret input at {path}, but neither the state nor the \
                     configuration has its value (secrets cannot be read back, for example after \
                     an import). This update replaces the whole definition and so removes it; set \
                     it in the configuration to keep it."
                ),
            );
        }
    }
}

/// Paths of the source secrets: (value attribute, reference block).
const SOURCE_SECRETS: [(&str, &str); 2] =
    [("password", "password_ref"), ("ssh_key", "ssh_key_ref")];

#[async_trait]
impl Resource for ContainerRunnerResource {
    fn type_name(&self) -> &'static str {
        "humanitec_container_runner"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let root = AttributePath::root();
        let source = config.get("source");
        for (value, reference) in SOURCE_SECRETS {
            if !source.get(value).is_null() && !source.get(reference).is_null() {
                diags.error_at(
                    root.attribute("source").attribute(reference),
                    format!("Both source.{value} and source.{reference} are set"),
                    format!(
                        "The {value} is either a value (source.{value}) or a reference to a secret \
                         store (source.{reference} {{ store, ref }}); remove one of them."
                    ),
                );
            }
        }
        let job = config.get("job");
        let pairs = [
            (
                job.get("variables"),
                job.get("secret_variables"),
                "job.variables",
                "job.secret_variables",
                root.attribute("job").attribute("secret_variables"),
            ),
            (
                config.get("files"),
                config.get("secret_files"),
                "files",
                "secret_files",
                root.attribute("secret_files"),
            ),
        ];
        for (plain, secret, plain_name, secret_name, path) in pairs {
            let (Some(plain), Some(secret)) = (plain.as_map(), secret.as_map()) else {
                continue;
            };
            for key in secret.keys().filter(|k| plain.contains_key(*k)) {
                diags.error_at(
                    path.key(key.clone()),
                    format!("{key:?} is in both {plain_name} and {secret_name}"),
                    format!("Each entry is either plain ({plain_name}) or secret ({secret_name}); remove it from one of them."),
                );
            }
        }
        for (name, files) in [
            ("files", config.get("files")),
            ("secret_files", config.get("secret_files")),
        ] {
            if files
                .as_map()
                .is_some_and(|m| m.keys().any(|k| k.trim().is_empty()))
            {
                diags.error_at(
                    root.attribute(name).key(""),
                    format!("Empty file path in {name}"),
                    format!("Each key of {name} is a file path, relative to the scripts directory or absolute under job.shared_directory."),
                );
            }
        }
    }

    fn modify_plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        // Why only new objects: every container runner in state was created in api mode (the only
        // mode this version runs them in), and stays there, so that a destroy after a switch works.
        if self.shared.mode() == Mode::Direct && !plan.prior.is_null() {
            warn_stays_in_mode(self.type_name(), Mode::Api, Mode::Direct, diags);
        } else if self.shared.mode() == Mode::Direct {
            diags.error(
                "humanitec_container_runner does not support direct mode yet",
                "In this version a container runner is a Humanitec definition only: configure its \
                 provider with mode = \"api\" (the default). Running the Job directly on the runner \
                 config's cluster comes with a later version.",
            );
            return;
        }
        default_name_to_id(plan);
        if plan.prior.is_null() {
            return;
        }
        // A reference moved to another secret: its recorded version no longer applies.
        for (_, reference) in SOURCE_SECRETS {
            let configured = plan.config.get("source").get(reference);
            let before = plan.prior.get("source").get(reference);
            let moved = ["store", "ref"]
                .iter()
                .any(|k| configured.get(k) != before.get(k));
            if !configured.is_null()
                && configured.get("version").is_null()
                && moved
                && let Value::Object(source) = &mut plan.planned
                && let Some(Value::Object(source)) = source.get_mut("source")
                && let Some(Value::Object(block)) = source.get_mut(reference)
            {
                block.insert("version".into(), Value::Unknown);
            }
        }
        let before = model(plan.prior);
        let after = model(&plan.planned);
        if before.to_update() == after.to_update() {
            return;
        }
        set(
            &mut plan.planned,
            "secret_refs",
            planned_secret_refs(plan.prior.get("secret_refs"), &before, &after),
        );
        warn_of_dropped_secrets(&before, &after, diags);
    }

    async fn create(&self, _op: &mut Operation, planned: &Value, diags: &mut Diagnostics) -> Value {
        let runner = model(planned);
        let Some(client) = client(&self.shared, diags) else {
            return Value::Null;
        };
        match client.create_definition(&runner.to_create()).await {
            Ok(definition) => resolve_unknowns(planned, &state_from(&definition, planned, diags)),
            Err(e) => {
                create_failed(diags, &e, self.type_name(), "container runner", &runner.id);
                Value::Null
            }
        }
    }

    async fn read(&self, _op: &mut Operation, current: &Value, diags: &mut Diagnostics) -> Value {
        let Some(client) = client(&self.shared, diags) else {
            return current.clone();
        };
        let id = text(current.get("id")).unwrap_or_default();
        let definition = match look_up(&client, &id, "container runner", diags).await {
            Lookup::Found(definition) => definition,
            Lookup::Gone => return Value::Null,
            Lookup::Failed => return current.clone(),
        };
        let mut state = state_from(&definition, current, diags);
        if state.get("force_delete").is_null() {
            set(&mut state, "force_delete", Value::Bool(false));
        }
        state
    }

    async fn update(
        &self,
        _op: &mut Operation,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let before = model(prior);
        let after = model(planned);
        let Some(client) = client(&self.shared, diags) else {
            return prior.clone();
        };
        let mut definition = None;
        let mut state = if before.to_update() == after.to_update() {
            // Nothing to send: only `runner_config`, `force_delete`, `timeouts` or criteria changed.
            resolve_unknowns(planned, prior)
        } else {
            match client
                .update_definition(&after.id, &after.to_update())
                .await
            {
                Ok(updated) => {
                    let state = resolve_unknowns(planned, &state_from(&updated, planned, diags));
                    definition = Some(updated);
                    state
                }
                Err(e) => {
                    api_error(
                        diags,
                        format!("Could not update container runner {:?}", after.id),
                        &e,
                    );
                    return prior.clone();
                }
            }
        };
        if before.criteria != after.criteria {
            let current = match definition {
                Some(definition) => Ok(definition),
                None => client.get_definition(&after.id).await.and_then(|d| {
                    d.ok_or_else(|| humanitec::Error::NotFound {
                        what: format!("definition {:?}", after.id),
                    })
                }),
            };
            let result = match &current {
                Ok(current) => {
                    sync_criteria(&client, &after.id, &after.criteria, &current.criteria).await
                }
                Err(_) => Ok(()),
            };
            let failure = match (&current, result) {
                (Err(e), _) => Some(e.to_string()),
                (Ok(_), Err(e)) => Some(crate::error_chain(&e)),
                (Ok(_), Ok(())) => None,
            };
            if let Some(failure) = failure {
                diags.error(
                    format!(
                        "Could not update the criteria of container runner {:?}",
                        after.id
                    ),
                    failure,
                );
                // Whatever was sent is recorded, with the criteria as they are now.
                match &current {
                    Ok(current) => {
                        set(&mut state, "criteria", criteria_now(&client, current).await)
                    }
                    Err(_) => set(&mut state, "criteria", prior.get("criteria").clone()),
                }
            }
        }
        state
    }

    async fn delete(&self, op: &mut Operation, prior: &Value, diags: &mut Diagnostics) {
        let Some(client) = client(&self.shared, diags) else {
            return;
        };
        let id = text(prior.get("id")).unwrap_or_default();
        let force = prior.get("force_delete").as_bool().unwrap_or(false);
        let hint = "Set force_delete = true (and apply) to delete it anyway, or raise timeouts.delete to wait longer.";
        delete_definition(&client, op, &id, force, "container runner", hint, diags).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::plan::null_object;
    use crate::framework::validate::validate_block;

    fn object(block: &Block, pairs: Vec<(&str, Value)>) -> Value {
        let mut value = null_object(block);
        for (k, v) in pairs {
            set(&mut value, k, v);
        }
        value
    }

    fn nested(name: &str) -> Block {
        fn find(block: &Block, name: &str) -> Option<Block> {
            for nested in &block.blocks {
                if nested.name == name {
                    return Some(nested.block.clone());
                }
                if let Some(found) = find(&nested.block, name) {
                    return Some(found);
                }
            }
            None
        }
        find(&schema().block, name).expect("nested block")
    }

    /// A configuration with every attribute set.
    fn everything() -> Value {
        let block = schema().block;
        let job = object(
            &nested("job"),
            vec![
                ("image", Value::string("ghcr.io/my-org/my-image:1.1.0")),
                ("command", Value::list([Value::string("/opt/container")])),
                (
                    "shared_directory",
                    Value::string("/home/runneruser/workspace"),
                ),
                ("namespace", Value::string("humanitec-runner")),
                ("service_account", Value::string("humanitec-runner-job")),
                (
                    "pod_template",
                    Value::string(
                        "spec:\n  imagePullSecrets:\n    - name: ghcr-private-registry\n",
                    ),
                ),
                ("variables", Value::map([("TF_LOG", Value::string("info"))])),
                (
                    "secret_variables",
                    Value::map([("AWS_SECRET_ACCESS_KEY", Value::string("k3y"))]),
                ),
            ],
        );
        let source = object(
            &nested("source"),
            vec![
                (
                    "url",
                    Value::string("https://my-domain.com/my-org/my-repo.git"),
                ),
                ("ref", Value::string("refs/heads/main")),
                ("path", Value::string("s3")),
                ("username", Value::string("my-git-handler")),
                (
                    "password_ref",
                    Value::object([
                        ("store", Value::string("my-store")),
                        ("ref", Value::string("path/to/git/password")),
                        ("version", Value::Null),
                    ]),
                ),
                ("ssh_key", Value::string("-----BEGIN KEY-----")),
            ],
        );
        let criterion = object(
            &nested("criteria"),
            vec![
                ("env_type", Value::string("development")),
                ("class", Value::string("default")),
            ],
        );
        object(
            &block,
            vec![
                ("id", Value::string("my-s3-bucket")),
                ("name", Value::string("S3 Bucket")),
                ("type", Value::string("s3")),
                ("driver_account", Value::string("aws-account")),
                ("criteria", Value::Set(vec![criterion])),
                ("job", job),
                ("source", source),
                ("files", Value::map([("main.tf", Value::string("# empty"))])),
                (
                    "secret_files",
                    Value::map([("secret.tfvars", Value::string("x=1"))]),
                ),
                (
                    "credentials_config",
                    object(
                        &nested("credentials_config"),
                        vec![(
                            "environment",
                            Value::map([("AWS_ACCESS_KEY_ID", Value::string("AccessKeyId"))]),
                        )],
                    ),
                ),
                ("force_delete", Value::Bool(false)),
                ("secret_refs", Value::Map(BTreeMap::new())),
            ],
        )
    }

    fn errors(config: &Value) -> Vec<String> {
        let resource = ContainerRunnerResource::new(Arc::new(Shared::default()));
        let mut diags = Diagnostics::new();
        validate_block(&schema().block, config, &AttributePath::root(), &mut diags);
        resource.validate(config, &mut diags);
        diags
            .iter()
            .map(|d| {
                format!(
                    "{} | {}",
                    d.attribute
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    d.detail
                )
            })
            .collect()
    }

    fn with(mut config: Value, block: &str, attribute: &str, value: Value) -> Value {
        if let Value::Object(fields) = &mut config
            && let Some(inner) = fields.get_mut(block)
        {
            set(inner, attribute, value);
        }
        config
    }

    #[test]
    fn a_full_configuration_is_valid_and_round_trips() {
        let config = everything();
        assert!(errors(&config).is_empty(), "{:?}", errors(&config));
        let runner = model(&config);
        let mut state = null_object(&schema().block);
        write_state(&mut state, &runner);
        for attribute in [
            "id",
            "name",
            "type",
            "driver_account",
            "criteria",
            "job",
            "source",
            "files",
            "secret_files",
            "credentials_config",
        ] {
            assert_eq!(state.get(attribute), config.get(attribute), "{attribute}");
        }
        assert_eq!(model(&state), runner);
    }

    #[test]
    fn bad_input_names_its_attribute() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                with(
                    everything(),
                    "job",
                    "pod_template",
                    Value::string("- a\n- b\n"),
                ),
                "job.pod_template",
                "a list",
            ),
            (
                with(
                    everything(),
                    "job",
                    "pod_template",
                    Value::string("spec:\n  containers: [unclosed\n"),
                ),
                "job.pod_template",
                "line",
            ),
            (
                with(everything(), "source", "password", Value::string("pat")),
                "source.password_ref",
                "remove one",
            ),
            (
                with(
                    everything(),
                    "job",
                    "variables",
                    Value::map([("AWS_SECRET_ACCESS_KEY", Value::string("x"))]),
                ),
                "job.secret_variables[\"AWS_SECRET_ACCESS_KEY\"]",
                "remove it from one",
            ),
            (
                with(
                    everything(),
                    "job",
                    "variables",
                    Value::map([("1BAD", Value::string("x"))]),
                ),
                "job.variables[\"1BAD\"]",
                "environment variable",
            ),
        ];
        for (config, path, words) in cases {
            let found = errors(&config);
            assert!(
                found
                    .iter()
                    .any(|e| e.starts_with(&format!("{path} |")) && e.contains(words)),
                "{path}: {found:?}"
            );
        }
    }

    #[test]
    fn secrets_are_shown_where_they_are_and_refs_keep_their_version() {
        let mut runner = model(&everything());
        runner.secret_refs.insert(
            "source.password".into(),
            SecretRef {
                store: "my-store".into(),
                reference: "path/to/git/password".into(),
                version: Some("3".into()),
            },
        );
        if let Some(Secret::Ref(r)) = runner.source.as_mut().and_then(|s| s.password.as_mut()) {
            r.version = Some("3".into());
        }
        runner
            .job
            .as_mut()
            .unwrap()
            .secret_variables
            .as_mut()
            .unwrap()
            .insert("HIDDEN".into(), Secret::Hidden);
        let mut state = null_object(&schema().block);
        write_state(&mut state, &runner);
        let source = state.get("source");
        assert!(source.get("password").is_null());
        assert_eq!(
            source.get("password_ref").get("version"),
            &Value::string("3")
        );
        assert_eq!(source.get("ssh_key"), &Value::string("-----BEGIN KEY-----"));
        let variables = state.get("job").get("secret_variables").as_map().unwrap();
        assert!(variables["HIDDEN"].is_null());
        assert_eq!(state.get("secret_refs").as_map().unwrap().len(), 1);
    }

    #[test]
    fn nothing_sends_a_cluster_input() {
        let payload = serde_json::to_value(model(&everything()).to_create()).unwrap();
        let text = payload.to_string();
        assert!(!text.contains("\"cluster\""), "{text}");
        assert_eq!(
            payload["driver_type"],
            crate::definition::container_runner::CONTAINER_RUNNER_DRIVER
        );
    }
}
