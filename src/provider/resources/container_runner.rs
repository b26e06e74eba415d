//! `humanitec_container_runner`: a definition of any resource type whose resources a container
//! (usually an IaC tool) provisions, run as a Kubernetes Job by the Container Runner Driver.
//!
//! This file holds the resource's schema, its checks and the plan both modes share; its typed
//! model is `crate::model::container_runner`. What a plan holds beyond that, and creating,
//! reading, updating and deleting, is up to the backend of the mode the object was created in
//! (`crate::provider::backend`): api-mode planning in `crate::provider::api::container_runner`,
//! direct-mode planning in `crate::provider::direct`.
//!
//! In api mode the resource is a Humanitec definition with driver `humanitec/container-runner`.
//! Its secrets are sent but never read back; state keeps the configured values, and the refs the
//! API answers with are shown in the computed `secret_refs`. In direct mode the resource is the
//! result of runs: the provider runs the Job itself on the cluster of `runner_config`
//! (`crate::provider::direct`, `crate::runner`), and the computed `outputs`, `secret_outputs`
//! and `last_run` hold what the last run wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::runner_config::kubernetes_block;
use super::{
    check_write_only, criteria_block, default_name_to_id, definition_shape, write_only_pair,
};
use crate::humanitec::DEFAULT_CLASS;
use crate::model::container_runner::{ContainerRunner, SECRETS, secrets_in};
use crate::provider::api::definition::container_runner::CONTAINER_RUNNER_DRIVER;
use crate::provider::backend::Backends;
use crate::provider::config::Mode;
use crate::provider::validate::{humanitec_id, yaml_mapping};
use crate::provider::{Shared, api, direct};
use terraform_plugin::framework::validate::{env_names, not_empty};
use terraform_plugin::framework::{
    Attribute, Block, Diagnostics, NestedBlock, Nesting, Operation, Plan, Resource, Schema,
    timeouts,
};
use terraform_plugin::value::{AttributePath, Type, Value};

/// The `humanitec_container_runner` resource type.
pub(crate) struct ContainerRunnerResource {
    backends: Backends<ContainerRunner>,
}

impl ContainerRunnerResource {
    /// The resource, sharing the provider's configuration.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let api = Arc::new(api::Api::new(Arc::clone(&shared)));
        // Why `driver_type`: the API always reports it, and direct mode always plans it null.
        // Earlier versions, which recorded no mode, created container runners in api mode only.
        let backends = Backends::new(
            "humanitec_container_runner",
            shared,
            api,
            Arc::new(direct::Direct),
            schema,
            |state| {
                Some(if state.get("driver_type").is_null() {
                    Mode::Direct
                } else {
                    Mode::Api
                })
            },
        );
        Self { backends }
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

/// A validator for a PEM bundle: at least one `CERTIFICATE` block, nothing but certificates.
fn pem_certificates() -> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    |value, path, diags| {
        let Some(text) = value.as_str() else {
            return;
        };
        let blocks: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
            .filter_map(|l| l.strip_suffix("-----"))
            .collect();
        let problem = if blocks.is_empty() {
            Some("has no PEM block".to_string())
        } else {
            blocks
                .iter()
                .find(|b| **b != "CERTIFICATE")
                .map(|b| format!("holds a {b} block, which is not a certificate"))
        };
        if let Some(problem) = problem {
            diags.error_at(
                path.clone(),
                format!("{path} is not a PEM certificate bundle"),
                format!(
                    "{path} {problem}; it takes CA certificates in PEM form, each between \
                     -----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- (for example \
                     file(\"corp-ca.pem\")). Never put a private key here."
                ),
            );
        }
    }
}

/// A validator for `known_hosts` text: each line that is not blank or a comment has a host
/// pattern, a key type and a key (an `@cert-authority` or `@revoked` marker may lead).
fn known_hosts_lines() -> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static
{
    |value, path, diags| {
        let Some(text) = value.as_str() else {
            return;
        };
        let bad = text.lines().enumerate().find(|(_, line)| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return false;
            }
            let mut fields = line.split_whitespace();
            if line.starts_with('@') {
                fields.next();
            }
            let (_host, kind, key) = (fields.next(), fields.next(), fields.next());
            !(kind.is_some_and(|k| {
                k.starts_with("ssh-") || k.starts_with("ecdsa-") || k.starts_with("sk-")
            }) && key.is_some_and(|k| k.len() > 16))
        });
        if let Some((number, _)) = bad {
            diags.error_at(
                path.clone(),
                format!("{path} is not known_hosts text"),
                format!(
                    "Line {} of {path} is not a known_hosts entry; each line is a host, a key \
                     type and a key, such as \"git.example.com ssh-ed25519 AAAAC3Nz…\" or \
                     \"[git.example.com]:2222 ssh-ed25519 AAAAC3Nz…\" (what ssh-keyscan prints).",
                    number + 1
                ),
            );
        }
    }
}

/// The type of `runner_config`: the parts of a `humanitec_runner_config` that travel with a
/// container runner. Terraform converts a whole runner config object to it, dropping the rest.
fn runner_config_type() -> Type {
    Type::Object(BTreeMap::from([
        ("id".to_string(), Type::String),
        ("skip_permission_checks".to_string(), Type::Bool),
        ("kubernetes".to_string(), kubernetes_block().implied_type()),
        ("helper_image".to_string(), Type::String),
        (
            "helper_resources".to_string(),
            super::runner_config::helper_resources_block().implied_type(),
        ),
    ]))
}

/// The type of `last_run`.
fn last_run_type() -> Type {
    let fields = [
        "job_name",
        "namespace",
        "started_at",
        "finished_at",
        "commit",
    ];
    Type::Object(
        fields
            .iter()
            .map(|f| (f.to_string(), Type::String))
            .collect(),
    )
}

/// The type of `secret_refs`: input path → where Humanitec keeps that secret.
/// What direct mode does with a container runner's write-only values, said in each one's docs.
const KEPT_FOR_THE_DESTROY_RUN: &str = "In direct mode the value is kept in the Secret \
     `<id>-write-only` in the Job's namespace for the destroy run, and deleted after it.";

fn secret_refs_type() -> Type {
    Type::Map(Box::new(Type::Object(BTreeMap::from([
        ("store".to_string(), Type::String),
        ("ref".to_string(), Type::String),
        ("version".to_string(), Type::String),
    ]))))
}

fn schema() -> Schema {
    let [files_wo, files_wo_version] = write_only_pair(
        "secret_files",
        Type::Map(Box::new(Type::String)),
        "Secret inline files, shaped like `secret_files`",
        &["secret_files"],
        KEPT_FOR_THE_DESTROY_RUN,
    );

    Schema::new(definition_shape(
        Block::new(
            "A Container Runner definition: a Humanitec Resource Definition (driver \
             `humanitec/container-runner`) whose resources a container, usually an IaC tool, \
             provisions as a Kubernetes Job. The cluster comes from the runner config that matches \
             (`humanitec_runner_config`), never from this definition. With the provider in direct \
             mode there is no definition: the provider runs the Job itself on the runner \
             config's cluster, `ACTION=create` on create and update and `ACTION=destroy` on \
             delete, and the run's outputs come back as attributes.",
        )
        .attribute(Attribute::string("id").required().requires_replace().validate(humanitec_id()).description("The definition id. Changing it replaces the definition."))
        .attribute(Attribute::string("name").optional_computed().validate(not_empty()).description("The definition's display name. Defaults to `id`."))
        .attribute(Attribute::string("type").required().requires_replace().validate(not_empty()).description("The resource type the definition provisions, e.g. `s3` or `postgres`. Changing it replaces the definition."))
        .attribute(Attribute::string("driver_account").validate(not_empty()).description("The Humanitec cloud account whose credentials the container gets (see `credentials_config`)."))
        .attribute(Attribute::string_map("files").description("Inline files: path → content. Relative paths are placed in the scripts directory, absolute ones under `job.shared_directory`. Humanitec placeholders such as `$${context.app.id}` are written as `$${…}` in HCL."))
        .attribute(Attribute::string_map("secret_files").sensitive().description("Secret inline files, shaped like `files`. In api mode sent as definition secrets (`files.<path>`), which the API never returns; in direct mode placed from a Secret the provider owns."))
        .attribute(files_wo)
        .attribute(files_wo_version)
        .attribute(
            Attribute::new("runner_config", runner_config_type())
                .sensitive()
                .description("The runner config this container runner runs with: set it to a `humanitec_runner_config` resource (`runner_config = humanitec_runner_config.dev`). In api mode it only orders the two resources, since Humanitec matches the runner config by its criteria, and a change to the runner config (a rotated `kubernetes.token`, say) is no change here. In direct mode it is required: the Job runs on its cluster (`kubernetes`) with its `helper_image`, and unless its `skip_permission_checks` is true the provider's permissions in `job.namespace` are checked before each run; a change of its `id` or `helper_image` is a new run, a change of how the cluster is reached is not. Only its `id`, `skip_permission_checks`, `kubernetes`, `helper_image` and `helper_resources` are kept, and the attribute is sensitive because `kubernetes` may hold credentials; a change of `helper_resources` applies to the next run and runs nothing. A runner config managed in another workspace is referenced by writing the object out: `runner_config = { id = \"config-container-runner\", skip_permission_checks = false, kubernetes = null, helper_image = null, helper_resources = null }`."),
        )
        .attribute(Attribute::bool("force_delete").default(Value::Bool(false)).description("Delete the definition even while resources use it (`DELETE ?force=true`): Humanitec marks it deleted and moves those resources to another definition on their next deployment. When `false`, deleting an in-use definition is retried until `timeouts.delete`, then fails naming the resources."))
        .attribute(
            Attribute::new("secret_refs", secret_refs_type())
                .computed()
                .description("Where Humanitec keeps each secret input, by input path (`source.password`, `job.variables.<NAME>`, `files.<path>`): the store, the key in it and the version. Values sent in plain get a reference in the organization's primary store, whose version goes up with each update."),
        )
        .attribute(
            Attribute::string_map("triggers")
                .description("Direct mode only: any values; a change runs `ACTION=create` again without replacing the resource (like `terraform_data`'s `triggers_replace`, but in place). Not allowed in api mode, where Humanitec decides when the runner runs."),
        )
        .attribute(
            Attribute::string_map("outputs")
                .computed()
                .description("Direct mode: what the last run wrote to `OUTPUTS_FILE`. A string value is kept as it is; any other JSON value as its JSON text (`3`, `true`, `[\"a\"]`), so use `jsondecode` to get it back. Null in api mode."),
        )
        .attribute(
            Attribute::string_map("secret_outputs")
                .computed()
                .sensitive()
                .description("Direct mode: what the last run wrote to `SECRET_OUTPUTS_FILE`, shaped like `outputs`. Sensitive. Null in api mode."),
        )
        .attribute(
            Attribute::new("last_run", last_run_type())
                .computed()
                .description("Direct mode: the run whose results the state holds: `job_name`, `namespace`, `started_at` and `finished_at` (RFC 3339) and the checked-out `commit` when there is a source. The Job itself is deleted once its results are read. Null in api mode."),
        )
        .block(NestedBlock::new("criteria", Nesting::Set, criteria()))
        .block(NestedBlock::new("job", Nesting::Single, job_block()).required())
        .block(NestedBlock::new("source", Nesting::Single, source_block()))
        .block(NestedBlock::new("credentials_config", Nesting::Single, credentials_block()))
        .block(timeouts::block()),
        CONTAINER_RUNNER_DRIVER,
    ))
}

/// The `criteria` block: which resources of the type the definition provisions.
fn criteria() -> Block {
    criteria_block(
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
    )
}

/// The `job` block: the Job that runs the container, with its secret variables in each form.
fn job_block() -> Block {
    let job = Block::new("The Kubernetes Job that runs the container.")
        .attribute(Attribute::string("image").required().validate(not_empty()).description("The runner image, e.g. `ghcr.io/my-org/my-image:1.1.0`."))
        .attribute(Attribute::string_list("command").description("Overrides the image's entrypoint; leave it out to use the entrypoint."))
        .attribute(Attribute::string("shared_directory").validate(not_empty()).description("Where the shared volume is mounted; the source and files are placed under it. Defaults to `/home/runneruser/workspace`, the Container Driver's value."))
        .attribute(Attribute::string("namespace").validate(not_empty()).description("The namespace the Job runs in; it must exist. Defaults to `humanitec-runner`, the Container Driver's default."))
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
                .description("Secret environment variables of the container. In api mode sent as definition secrets (`job.variables.<NAME>`), which the API never returns; in direct mode given to the container from a Secret the provider owns (`secretKeyRef`), never inline in the Job."),
        );
    let [variables_wo, variables_wo_version] = write_only_pair(
        "secret_variables",
        Type::Map(Box::new(Type::String)),
        "Secret environment variables of the container, like `secret_variables`",
        &["secret_variables"],
        KEPT_FOR_THE_DESTROY_RUN,
    );
    job.attribute(variables_wo.validate(env_names()))
        .attribute(variables_wo_version)
}

/// The `source` block: the git repository, with its password and SSH key in each form.
fn source_block() -> Block {
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
        .attribute(Attribute::string("password").sensitive().validate(not_empty()).description(
            "The password or token for HTTPS authentication. Conflicts with `password_ref`.",
        ))
        .attribute(
            Attribute::string("ssh_key")
                .sensitive()
                .validate(not_empty())
                .description("The SSH private key for `git@…` URLs. Conflicts with `ssh_key_ref`."),
        )
        .attribute(
            Attribute::string("ca_certificates")
                .validate(not_empty())
                .validate(pem_certificates())
                .description(
                    "Direct mode only: CA certificates (PEM, one or more) that an `https://` git \
                     server's certificate may chain to, for a server with a private CA. They are \
                     trusted besides the public CAs of the helper image. Not a run input: a new \
                     bundle is recorded without a run. Refused in api mode, where the Container \
                     Driver has no such input.",
                ),
        )
        .attribute(
            Attribute::string("known_hosts")
                .validate(not_empty())
                .validate(known_hosts_lines())
                .description(
                    "Direct mode only: the `ssh` server's host keys, as OpenSSH `known_hosts` \
                     lines (`git.example.com ssh-ed25519 AAAA…`; `[host]:port …` for a port \
                     other than 22; the output of `ssh-keyscan`). With it, the checkout connects \
                     only to a server that shows one of these keys, and fails naming the host \
                     otherwise. Without it, the server's key is accepted on first use, and every \
                     run's pod is new. Not a run input: new keys are recorded without a run. \
                     Refused in api mode, where the Container Driver has no such input.",
                ),
        )
        .block(secret_ref_block("password"))
        .block(secret_ref_block("ssh_key"));
    let [password_wo, password_wo_version] = write_only_pair(
        "password",
        Type::String,
        "The password or token for HTTPS authentication",
        &["password", "password_ref"],
        KEPT_FOR_THE_DESTROY_RUN,
    );
    let [ssh_key_wo, ssh_key_wo_version] = write_only_pair(
        "ssh_key",
        Type::String,
        "The SSH private key for `git@…` URLs",
        &["ssh_key", "ssh_key_ref"],
        KEPT_FOR_THE_DESTROY_RUN,
    );
    source
        .attribute(password_wo.validate(not_empty()))
        .attribute(password_wo_version)
        .attribute(ssh_key_wo.validate(not_empty()))
        .attribute(ssh_key_wo_version)
}

/// The `credentials_config` block.
fn credentials_block() -> Block {
    Block::new("How the cloud credentials of `driver_account` reach the container.")
        .attribute(Attribute::string_map("environment").validate(env_names()).description("Environment variable → credential key, e.g. `{ AWS_ACCESS_KEY_ID = \"AccessKeyId\" }`."))
        .attribute(Attribute::string("file").validate(not_empty()).description("A file the credentials are written to."))
}

/// Refuses an entry that is both plain and secret: an environment variable in `job.variables`
/// and `job.secret_variables` (or its write-only form), a file in `files` and `secret_files`.
fn refuse_plain_and_secret_at_once(config: &Value, diags: &mut Diagnostics) {
    let root = AttributePath::root();
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
            job.get("variables"),
            job.get("secret_variables_wo"),
            "job.variables",
            "job.secret_variables_wo",
            root.attribute("job").attribute("secret_variables_wo"),
        ),
        (
            config.get("files"),
            config.get("secret_files"),
            "files",
            "secret_files",
            root.attribute("secret_files"),
        ),
        (
            config.get("files"),
            config.get("secret_files_wo"),
            "files",
            "secret_files_wo",
            root.attribute("secret_files_wo"),
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
}

#[async_trait]
impl Resource for ContainerRunnerResource {
    fn type_name(&self) -> &'static str {
        "humanitec_container_runner"
    }

    fn import_state(&self, id: &str, schema: &Schema, diags: &mut Diagnostics) -> Value {
        if self.backends.refuses_import(self.type_name(), diags) {
            return Value::Null;
        }
        terraform_plugin::framework::plan::with_id(id, schema)
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let root = AttributePath::root();
        let source = config.get("source");
        for secret in secrets_in(Some("source")) {
            let (value, Some(reference)) = (secret.name, secret.reference) else {
                continue;
            };
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
        for secret in &SECRETS {
            let value = secret.block.map_or(config, |b| config.get(b));
            let path = secret
                .block
                .map_or_else(AttributePath::root, |b| root.attribute(b));
            check_write_only(
                value,
                &path,
                secret.prefix(),
                secret.name,
                &secret.conflicts(),
                diags,
            );
        }
        refuse_plain_and_secret_at_once(config, diags);
        for (name, files) in [
            ("files", config.get("files")),
            ("secret_files", config.get("secret_files")),
            ("secret_files_wo", config.get("secret_files_wo")),
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
        self.backends.check_plan(plan, self.type_name(), diags);
        default_name_to_id(plan);
        // Why the backend: what is planned beyond the schema's rules depends on the mode (api
        // mode plans a definition, direct mode a run).
        self.backends.plan(plan, diags);
    }

    async fn create(&self, op: &mut Operation, planned: &Value, diags: &mut Diagnostics) -> Value {
        self.backends.create(op, planned, diags).await
    }

    async fn read(&self, op: &mut Operation, current: &Value, diags: &mut Diagnostics) -> Value {
        self.backends.read(op, current, diags).await
    }

    async fn update(
        &self,
        op: &mut Operation,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        self.backends.update(op, prior, planned, diags).await
    }

    async fn delete(&self, op: &mut Operation, prior: &Value, diags: &mut Diagnostics) {
        self.backends.delete(op, prior, diags).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container_runner::SecretRef;
    use crate::provider::api::container_runner::warn_of_dropped_secrets;
    use crate::provider::backend::set;
    use terraform_plugin::framework::plan::null_object;
    use terraform_plugin::framework::validate::validate_block;

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

    fn model(value: &Value) -> ContainerRunner {
        terraform_plugin::framework::model::decode(value).unwrap()
    }

    fn state(runner: &ContainerRunner) -> Value {
        terraform_plugin::framework::model::encode(runner, &schema().implied_type()).unwrap()
    }

    #[test]
    fn the_model_fits_the_schema() {
        terraform_plugin::framework::model::assert_model_fits::<ContainerRunner>(
            &schema().implied_type(),
        );
    }

    /// Any value the schema admits, as Terraform sends it in a configuration, a plan, a prior
    /// state or an import, converts to the model and back.
    #[test]
    fn every_value_the_schema_admits_fits_the_model() {
        terraform_plugin::framework::arbitrary::assert_every_value_fits::<ContainerRunner>(
            &schema(),
        );
    }

    #[test]
    fn a_plan_with_unknowns_reads_into_the_model() {
        let mut planned = everything();
        set(&mut planned, "id", Value::Unknown);
        set(&mut planned, "secret_refs", Value::Unknown);
        let runner = model(&planned);
        assert_eq!(runner.id, "");
        assert_eq!(runner.secret_refs, None);
    }

    /// The plan of a switch from `password_ref` to `password` leaves the new reference unknown
    /// inside a known `secret_refs` map; that plan, and the state from it, must read.
    #[test]
    fn a_plan_with_an_unknown_secret_ref_entry_reads_into_the_model() {
        let mut planned = everything();
        set(
            &mut planned,
            "secret_refs",
            Value::map([("source.password", Value::Unknown)]),
        );
        let runner = model(&planned);
        assert_eq!(runner.secret_refs, Some(BTreeMap::new()));
        let mut diags = Diagnostics::new();
        let resource = ContainerRunnerResource::new(Arc::new(Shared::default()));
        assert!(resource.backends.model(&planned, &mut diags).is_some());
        assert!(diags.is_empty());
    }

    #[test]
    fn a_full_configuration_is_valid_and_round_trips() {
        let config = everything();
        assert!(errors(&config).is_empty(), "{:?}", errors(&config));
        let runner = model(&config);
        let state = state(&runner);
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
        let wo = |config: Value, block: &str, name: &str, version: bool| {
            let config = with(config, block, &format!("{name}_wo"), Value::string("x"));
            if version {
                with(
                    config,
                    block,
                    &format!("{name}_wo_version"),
                    Value::string("1"),
                )
            } else {
                config
            }
        };
        let cases: Vec<(Value, &str, &str)> = cases
            .into_iter()
            .chain([
                (
                    wo(everything(), "source", "password", true),
                    "source.password_wo",
                    "source.password_ref and source.password_wo are two forms",
                ),
                (
                    wo(everything(), "source", "ssh_key", true),
                    "source.ssh_key_wo",
                    "source.ssh_key and source.ssh_key_wo are two forms",
                ),
                (
                    wo(
                        with(everything(), "job", "secret_variables", Value::Null),
                        "job",
                        "secret_variables",
                        false,
                    ),
                    "job.secret_variables_wo",
                    "set job.secret_variables_wo_version",
                ),
                (
                    with(
                        everything(),
                        "source",
                        "password_wo_version",
                        Value::string("1"),
                    ),
                    "source.password_wo_version",
                    "set source.password_wo or remove it",
                ),
            ])
            .collect();
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
    fn write_only_conflicts_name_both_attributes_at_the_top_level_too() {
        let mut config = everything();
        set(
            &mut config,
            "secret_files_wo",
            Value::map([("secret.tfvars", Value::string("x=2"))]),
        );
        set(&mut config, "secret_files_wo_version", Value::string("1"));
        let found = errors(&config);
        assert!(
            found.iter().any(|e| e.starts_with("secret_files_wo |")
                && e.contains("secret_files and secret_files_wo are two forms")),
            "{found:?}"
        );
    }

    #[test]
    fn dropping_a_write_only_secret_is_no_oversight_but_an_unknown_one_is() {
        let reference = |path: &str| SecretRef {
            store: "primary".into(),
            reference: format!("orgs--o--resources--defs--s3--driver_secrets--{path}"),
            version: Some("1".into()),
        };
        let mut before = model(&everything());
        before.source.as_mut().unwrap().password_ref = None;
        before.job.as_mut().unwrap().secret_variables = None;
        before.job.as_mut().unwrap().secret_variables_wo_version = Some("1".into());
        before.secret_refs = Some(BTreeMap::from([
            (
                "job.variables.TOKEN".into(),
                reference("job--variables--TOKEN"),
            ),
            ("source.password".into(), reference("source--password")),
        ]));
        let mut after = before.clone();
        after.job.as_mut().unwrap().secret_variables_wo_version = None;
        let mut diags = Diagnostics::new();
        warn_of_dropped_secrets(&before, &after, &mut diags);
        let warned: Vec<_> = diags.iter().map(|d| d.summary.clone()).collect();
        assert_eq!(
            warned,
            ["The definition's secret source.password is not in the configuration"]
        );
    }

    /// The table of secrets (`model::container_runner::SECRETS`) is the one list of what is
    /// secret: the schema declares every form of each row (the sensitive value, the write-only
    /// value and its version, the `_ref` block) and nothing else sensitive or write-only but
    /// the two attributes that are no secret input.
    #[test]
    fn the_schema_declares_every_form_of_each_secret_of_the_table_and_no_other() {
        fn walk(block: &Block, prefix: &str, found: &mut Vec<String>) {
            for attribute in &block.attributes {
                // A write-only attribute is sensitive too; it is listed as write-only.
                if attribute.write_only {
                    found.push(format!("{prefix}{} (write-only)", attribute.name));
                } else if attribute.sensitive {
                    found.push(format!("{prefix}{} (sensitive)", attribute.name));
                }
            }
            for nested in &block.blocks {
                if nested.name.ends_with("_ref") {
                    found.push(format!("{prefix}{} (reference)", nested.name));
                }
                walk(&nested.block, &format!("{prefix}{}.", nested.name), found);
            }
        }
        let schema = schema();
        let mut declared = Vec::new();
        walk(&schema.block, "", &mut declared);
        declared.sort();
        let mut expected: Vec<String> = SECRETS
            .iter()
            .flat_map(|secret| {
                let prefix = secret.prefix();
                [
                    Some(format!("{prefix}{} (sensitive)", secret.name)),
                    Some(format!("{prefix}{} (write-only)", secret.write_only)),
                    secret.reference.map(|r| format!("{prefix}{r} (reference)")),
                ]
                .into_iter()
                .flatten()
            })
            // Why these two: the runner config holds cluster credentials, not a secret input,
            // and the secret outputs are what a run returns.
            .chain([
                "runner_config (sensitive)".to_string(),
                "secret_outputs (sensitive)".to_string(),
            ])
            .collect();
        expected.sort();
        assert_eq!(declared, expected);
        for secret in &SECRETS {
            let block = match secret.block {
                Some(name) => {
                    let nested = schema.block.blocks.iter().find(|b| b.name == name);
                    &nested.expect("the secret's block").block
                }
                None => &schema.block,
            };
            let version = block
                .attributes
                .iter()
                .find(|a| a.name == secret.write_only_version);
            assert!(
                version.is_some_and(|v| !v.sensitive && !v.write_only),
                "{}{} is declared, in plain",
                secret.prefix(),
                secret.write_only_version
            );
        }
    }

    #[test]
    fn every_write_only_attribute_is_one_the_framework_serves() {
        assert_eq!(schema().block.write_only_problems(), Vec::<String>::new());
        let names: Vec<String> = SECRETS
            .iter()
            .map(|secret| format!("{}{}", secret.prefix(), secret.write_only))
            .collect();
        assert_eq!(
            names,
            [
                "source.password_wo",
                "source.ssh_key_wo",
                "job.secret_variables_wo",
                "secret_files_wo"
            ]
        );
    }

    #[test]
    fn secrets_are_shown_where_they_are_and_refs_keep_their_version() {
        let mut runner = model(&everything());
        runner.secret_refs = Some(BTreeMap::from([(
            "source.password".to_string(),
            SecretRef {
                store: "my-store".into(),
                reference: "path/to/git/password".into(),
                version: Some("3".into()),
            },
        )]));
        if let Some(r) = runner.source.as_mut().and_then(|s| s.password_ref.as_mut()) {
            r.version = Some("3".into());
        }
        runner
            .job
            .as_mut()
            .unwrap()
            .secret_variables
            .as_mut()
            .unwrap()
            .insert("HIDDEN".into(), None);
        assert!(
            !format!("{runner:?}").contains("k3y"),
            "Debug hides secret values"
        );
        let state = state(&runner);
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
        let payload = serde_json::to_value(
            crate::provider::api::definition::container_runner::to_create(&model(&everything())),
        )
        .unwrap();
        let text = payload.to_string();
        assert!(!text.contains("\"cluster\""), "{text}");
        assert_eq!(
            payload["driver_type"],
            crate::provider::api::definition::container_runner::CONTAINER_RUNNER_DRIVER
        );
    }
}
