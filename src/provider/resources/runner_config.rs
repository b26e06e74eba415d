//! `humanitec_runner_config`: the `config` definition that tells the Container Runner which
//! cluster to run its Jobs on.
//!
//! This file holds the resource's schema, checks and plan (its typed model is
//! `crate::model::runner_config`); creating, reading, updating and deleting go through the
//! backend of the mode the object was created in.
//!
//! In api mode the resource is a Humanitec definition (type `config`, driver `humanitec/template`,
//! matching `res_id = container-runner`, `class = default`). In direct mode there is no platform:
//! the resource records the cluster (and how to reach it, and the helper image) for container
//! runners to use, and its create checks the cluster and the provider's permissions there.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    check_write_only, criteria_block, default_name_to_id, definition_shape, set_items,
    write_only_pair,
};
use crate::model::runner_config::{CLUSTER_FIELDS, ClusterType, RunnerConfig};
use crate::provider::Shared;
use crate::provider::api::definition::runner_config::TEMPLATE_DRIVER;
use crate::provider::backend::Backends;
use crate::provider::backend::set;
use crate::provider::validate::humanitec_id;
use crate::provider::{api, direct};
use crate::runner::DEFAULT_HELPER_IMAGE;
use terraform_plugin::framework::validate::{not_empty, one_of, quoted_list};
use terraform_plugin::framework::{
    Attribute, Block, Diagnostics, NestedBlock, Nesting, Operation, Plan, Resource, Schema,
    timeouts,
};
use terraform_plugin::value::{AttributePath, Type, Value};

/// The `humanitec_runner_config` resource type.
pub(crate) struct RunnerConfigResource {
    backends: Backends<RunnerConfig>,
}

impl RunnerConfigResource {
    /// The resource, sharing the provider's configuration.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let api = Arc::new(api::Api::new(Arc::clone(&shared)));
        let backends = Backends::new(
            "humanitec_runner_config",
            shared,
            api,
            Arc::new(direct::Direct),
            schema,
            |_| None,
        );
        Self { backends }
    }
}

/// Descriptions of the type-specific cluster fields.
fn cluster_field_description(field: &str) -> &'static str {
    match field {
        "name" => "The cluster's name. Required for every cluster type.",
        "loadbalancer" => "The cluster's load balancer IP address or host name.",
        "project_id" => "GKE only, required: the Google Cloud project id.",
        "zone" => "GKE only, required: the cluster's zone or region.",
        "region" => "EKS only, required: the AWS region.",
        "loadbalancer_hosted_zone" => "EKS only: the load balancer's hosted zone id.",
        "resource_group" => "AKS only, required: the Azure resource group.",
        "subscription_id" => "AKS only, required: the Azure subscription id.",
        "server_app_id" => {
            "AKS only: the AKS Entra ID server application id (`6dae42f8-4368-4678-94ff-3960e28e3630` for AKS-managed Entra ID)."
        }
        _ => "",
    }
}

/// The `kubernetes` block: how direct mode reaches the cluster. Container runners take its type
/// for their `runner_config` attribute, so the two always agree.
pub(super) fn kubernetes_block() -> Block {
    let exec = Block::new("A client-go credential plugin that prints a token, such as `gke-gcloud-auth-plugin`, `aws eks get-token` or `kubelogin`.")
        .attribute(Attribute::string("api_version").required().validate(not_empty()).description("The `client.authentication.k8s.io` API version the plugin speaks, e.g. `client.authentication.k8s.io/v1beta1`."))
        .attribute(Attribute::string("command").required().validate(not_empty()).description("The plugin command."))
        .attribute(Attribute::string_list("args").description("Arguments for the command."))
        .attribute(Attribute::string_map("env").description("Extra environment variables for the command."));
    Block::new(
        "Direct mode only: how the provider reaches the cluster: `host` with \
         `cluster_ca_certificate` and a `token` or an `exec` plugin, or a kubeconfig \
         (`config_path`, `config_context`). Without the block the cluster is found as kubectl \
         finds it: `KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account. \
         Exec plugins are run again when their token expires, so long runs keep working. Kept \
         in state and ignored in api mode, where Humanitec reaches the cluster through \
         `cluster.account`.",
    )
    .attribute(
        Attribute::string("config_path")
            .validate(not_empty())
            .description("Path to a kubeconfig file."),
    )
    .attribute(
        Attribute::string("config_context")
            .validate(not_empty())
            .description("The kubeconfig context to use."),
    )
    .attribute(
        Attribute::string("host")
            .validate(not_empty())
            .description("The API server URL, instead of a kubeconfig."),
    )
    .attribute(
        Attribute::string("cluster_ca_certificate")
            .validate(not_empty())
            .description("PEM CA certificate of the API server."),
    )
    .attribute(
        Attribute::string("token")
            .validate(not_empty())
            .sensitive()
            .description("A bearer token for the API server."),
    )
    .attribute(
        Attribute::bool("insecure")
            .description("Skip TLS verification of the API server (testing only)."),
    )
    .block(NestedBlock::new("exec", Nesting::Single, exec))
}

/// The `helper_resources` block. Container runners take its type in their `runner_config`.
pub(super) fn helper_resources_block() -> Block {
    let step = |name: &str, what: &str| {
        let defaults = crate::runner::resources::defaults_markdown(name);
        let quantities = |kind: &'static str| {
            Attribute::string_map(kind)
                .validate(move |value, path, diags| {
                    for (name, quantity) in value.as_map().into_iter().flatten() {
                        let Some(quantity) = quantity.as_str() else {
                            continue;
                        };
                        let one = BTreeMap::from([(name.clone(), quantity.to_string())]);
                        let resources = match kind {
                            "requests" => crate::runner::resources::ContainerResources {
                                requests: one,
                                ..Default::default()
                            },
                            _ => crate::runner::resources::ContainerResources {
                                limits: one,
                                ..Default::default()
                            },
                        };
                        if let Err(error) =
                            crate::runner::resources::check("", &resources, (true, true))
                        {
                            diags.error_at(
                                path.clone(),
                                format!("Invalid {path}"),
                                format!("{path}: {}.", error.problem),
                            );
                        }
                    }
                })
                .description(format!(
                    "`resources.{kind}` of `{name}`: resource name → quantity, as in a Pod spec \
                     (`{{ cpu = \"250m\", memory = \"256Mi\" }}`). When set, it replaces the \
                     default {kind} of `{name}` as a whole."
                ))
        };
        NestedBlock::new(
            name,
            Nesting::Single,
            Block::new(format!(
                "The resources of `{name}`, {what}. Default: {defaults}."
            ))
            .attribute(quantities("requests"))
            .attribute(quantities("limits")),
        )
    };
    Block::new(
        "Direct mode only: the resource requests and limits of the provider's own containers in \
         each Job's pod. They have defaults with CPU and memory requests and limits, so that a \
         namespace with a ResourceQuota (which refuses a pod any of whose containers leaves out \
         a resource it counts) or a LimitRange accepts the pod. The runner's own container, \
         `main`, takes its resources from `job.pod_template`. A change applies to the next run \
         and runs nothing. Ignored in api mode.",
    )
    .block(step(
        "prepare",
        "the init container that checks out the source and places the files",
    ))
    .block(step(
        "collect",
        "the sidecar that carries the results back once `main` has ended",
    ))
}

/// The `kubernetes` block with its write-only token: what the runner config itself takes. The
/// token reaches the runner config's own checks only: a container runner's `runner_config`
/// takes [`kubernetes_block`], without it, since Terraform keeps no copy to pass on.
fn kubernetes_block_with_token_wo() -> Block {
    let [token_wo, token_wo_version] = write_only_pair(
        "token",
        Type::String,
        "A bearer token for the API server, like `token`",
        &["token"],
        "In direct mode it serves this runner config's own checks of the cluster only: \
         container runners cannot get it (Terraform keeps no copy to pass on), so give them the \
         cluster through `token`, `exec` or a kubeconfig. Ignored in api mode.",
    );
    kubernetes_block()
        .attribute(token_wo.validate(not_empty()))
        .attribute(token_wo_version)
}

/// The `cluster` block: the cluster the Jobs run on, the definition's `cluster` output.
fn cluster_block() -> Block {
    let mut cluster = Block::new(
        "The cluster that container runner Jobs run on; it becomes the definition's `cluster` output.",
    )
    .attribute(
        Attribute::string("cluster_type")
            .required()
            .validate(one_of(&ClusterType::NAMES))
            .description("`gke`, `eks` or `aks`: the only cluster types the Container Runner supports."),
    )
    .attribute(Attribute::string("account").description(
        "The Humanitec cloud account used to reach the cluster, as `<org>/<account>` (e.g. `myOrg/myAccount`).",
    ));
    for field in CLUSTER_FIELDS {
        cluster = cluster.attribute(
            Attribute::string(field)
                .validate(not_empty())
                .description(cluster_field_description(field)),
        );
    }
    cluster
}

fn schema() -> Schema {
    let cluster = cluster_block();
    let kubernetes = kubernetes_block_with_token_wo();
    let [agent_url_wo, agent_url_wo_version] = write_only_pair(
        "agent_url",
        Type::String,
        "The Humanitec Agent URL, like `agent_url`",
        &["agent_url"],
        "",
    );
    let criteria = criteria_block(
        "A matching criterion: which environments use this runner config. Each criterion also \
         matches `res_id = container-runner` and `class = default`, which the provider adds. \
         Without criteria blocks the config matches everywhere.",
    );

    Schema::new(definition_shape(
        Block::new(
            "A Container Runner configuration: the `config` Resource Definition (driver \
             `humanitec/template`) that tells the Container Runner Driver which cluster its Jobs \
             run on. It matches `res_id = container-runner` and `class = default`, narrowed by the \
             criteria blocks, and outputs `cluster`, `skip_permission_checks` and the secret \
             `agent_url`.",
        )
        .attribute(
            Attribute::string("id")
                .required()
                .requires_replace()
                .validate(humanitec_id())
                .description("The definition id. Changing it replaces the definition."),
        )
        .attribute(
            Attribute::string("name")
                .optional_computed()
                .validate(not_empty())
                .description("The definition's display name. Defaults to `id`."),
        )
        .attribute(
            Attribute::bool("skip_permission_checks")
                .default(Value::Bool(false))
                .description("When `false` (the default), permissions are checked before anything runs: in api mode the Container Driver runs pre-checks in a sidecar; in direct mode the provider checks its own permissions with SelfSubjectAccessReview, in `humanitec-runner` when the runner config is created and in `job.namespace` before each run of a container runner."),
        )
        .attribute(
            Attribute::string("agent_url")
                .sensitive()
                .default(Value::string(""))
                .description("The Humanitec Agent URL, usually `$${resources.agent.outputs.url}`, when the cluster is reachable only through the Agent; empty otherwise. Stored as a definition secret; the API never returns it. Null in the state when `agent_url_wo` is used instead."),
        )
        .attribute(agent_url_wo)
        .attribute(agent_url_wo_version)
        .attribute(
            Attribute::string("helper_image")
                .validate(not_empty())
                .description(format!(
                    "Direct mode only: the image the provider runs its own steps in, inside each \
                     Job's pod (checking out the source, placing the files, carrying the results \
                     back). Every release carries it as an OCI image archive, \
                     `terraform-provider-humanitec-helper_<version>_linux_<arch>.oci.tar`; push \
                     it to a registry the cluster pulls from (`skopeo copy oci-archive:<file> \
                     docker://<registry>/terraform-provider-humanitec-helper:<version>`) and set \
                     that name here. Defaults to `{DEFAULT_HELPER_IMAGE}`, the name the archive \
                     loads under (`podman load`, `ctr images import`). A change is a new run. \
                     Ignored in api mode."
                )),
        )
        .block(NestedBlock::new("criteria", Nesting::Set, criteria))
        .block(NestedBlock::new("cluster", Nesting::Single, cluster).required())
        .block(NestedBlock::new("kubernetes", Nesting::Single, kubernetes))
        .block(NestedBlock::new(
            "helper_resources",
            Nesting::Single,
            helper_resources_block(),
        ))
        .block(timeouts::block()),
        TEMPLATE_DRIVER,
    ))
}

/// Checks each step's requests against its limits (the given ones, or the defaults), where
/// both are known; the quantities themselves are checked by the attributes' validators.
fn check_helper_resources(config: &Value, diags: &mut Diagnostics) {
    let defaults = crate::runner::resources::HelperResources::default();
    for (step, default) in [
        ("prepare", &defaults.prepare),
        ("collect", &defaults.collect),
    ] {
        let block = config.get(step);
        let known_map = |kind: &str, default: &BTreeMap<String, String>| {
            let value = block.get(kind);
            if value.is_null() {
                return Some((default.clone(), false));
            }
            let map = value.as_map()?;
            let known: Option<BTreeMap<String, String>> = map
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            known.map(|m| (m, true))
        };
        let (Some((requests, requests_set)), Some((limits, limits_set))) = (
            known_map("requests", &default.requests),
            known_map("limits", &default.limits),
        ) else {
            continue;
        };
        let resources = crate::runner::resources::ContainerResources { requests, limits };
        let attribute = format!("helper_resources.{step}");
        if let Err(error) =
            crate::runner::resources::check(&attribute, &resources, (requests_set, limits_set))
        {
            // Why only this one: the validators already named a bad quantity or name.
            if error.problem.contains("is more than its limit") {
                diags.error_at(
                    AttributePath::root()
                        .attribute("helper_resources")
                        .attribute(step)
                        .attribute("requests"),
                    format!("A request of helper_resources.{step} is above its limit"),
                    format!("{error}."),
                );
            }
        }
    }
}

#[async_trait]
impl Resource for RunnerConfigResource {
    fn type_name(&self) -> &'static str {
        "humanitec_runner_config"
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
        let cluster = config.get("cluster");
        let cluster_path = AttributePath::root().attribute("cluster");
        if let Some(kind) = cluster
            .get("cluster_type")
            .as_str()
            .and_then(ClusterType::parse)
        {
            for field in kind.required_fields() {
                if cluster.get(field).is_null() {
                    diags.error_at(
                        cluster_path.attribute(*field),
                        format!("Missing cluster.{field}"),
                        format!(
                            "A {} cluster needs {}; set cluster.{field}.",
                            kind.name(),
                            quoted_list(kind.required_fields(), "and")
                        ),
                    );
                }
            }
            for field in CLUSTER_FIELDS {
                if !kind.allowed_fields().contains(&field) && !cluster.get(field).is_null() {
                    diags.error_at(
                        cluster_path.attribute(field),
                        format!("cluster.{field} does not apply to {} clusters", kind.name()),
                        format!(
                            "A {} cluster takes {}; remove cluster.{field}.",
                            kind.name(),
                            quoted_list(kind.allowed_fields(), "and")
                        ),
                    );
                }
            }
        }
        for criterion in set_items(config.get("criteria")) {
            let all_null = ["app_id", "env_id", "env_type"]
                .iter()
                .all(|k| criterion.get(k).is_null());
            if all_null {
                diags.error_at(
                    AttributePath::root().attribute("criteria"),
                    "Empty criteria block",
                    "A criteria block needs at least one of app_id, env_id or env_type. To match \
                     everywhere, leave out criteria blocks altogether.",
                );
            }
        }
        let root = AttributePath::root();
        check_helper_resources(config.get("helper_resources"), diags);
        check_write_only(config, &root, "", "agent_url", &["agent_url"], diags);
        let kubernetes = config.get("kubernetes");
        let at = root.attribute("kubernetes");
        check_write_only(kubernetes, &at, "kubernetes.", "token", &["token"], diags);
        if !kubernetes.get("host").is_null() && !kubernetes.get("config_path").is_null() {
            diags.error_at(
                AttributePath::root()
                    .attribute("kubernetes")
                    .attribute("host"),
                "Conflicting cluster access settings",
                "Set either kubernetes.host (with cluster_ca_certificate and token or exec) or \
                 kubernetes.config_path, not both.",
            );
        }
    }

    fn modify_plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        default_name_to_id(plan);
        self.backends.check_plan(plan, self.type_name(), diags);
        // With the write-only form in use, agent_url stays null: "" would say that the Agent
        // URL is empty.
        if !plan.config.get("agent_url_wo").is_null() {
            set(&mut plan.planned, "agent_url", Value::Null);
        }
        // Why the backend: what is planned beyond the schema's rules depends on the mode.
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

    fn config_value(cluster: Value) -> Value {
        let mut value = terraform_plugin::framework::plan::null_object(&schema().block);
        set(&mut value, "id", Value::string("runner"));
        set(&mut value, "cluster", cluster);
        value
    }

    fn cluster(pairs: &[(&str, &str)]) -> Value {
        let mut all: Vec<(&str, Value)> =
            vec![("cluster_type", Value::Null), ("account", Value::Null)];
        all.extend(CLUSTER_FIELDS.iter().map(|f| (*f, Value::Null)));
        for (k, v) in pairs {
            if let Some(slot) = all.iter_mut().find(|(name, _)| name == k) {
                slot.1 = Value::string(*v);
            }
        }
        Value::object(all)
    }

    fn errors_at(config: &Value) -> Vec<String> {
        let resource = RunnerConfigResource::new(Arc::new(Shared::default()));
        let mut diags = Diagnostics::new();
        resource.validate(config, &mut diags);
        diags
            .iter()
            .map(|d| {
                d.attribute
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn each_cluster_type_needs_its_fields() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (
                &[
                    ("cluster_type", "gke"),
                    ("name", "c"),
                    ("project_id", "p"),
                    ("zone", "z"),
                ],
                &[],
            ),
            (
                &[("cluster_type", "gke"), ("name", "c")],
                &["cluster.project_id", "cluster.zone"],
            ),
            (
                &[
                    ("cluster_type", "eks"),
                    ("name", "c"),
                    ("region", "r"),
                    ("zone", "z"),
                ],
                &["cluster.zone"],
            ),
            (
                &[
                    ("cluster_type", "aks"),
                    ("name", "c"),
                    ("resource_group", "g"),
                ],
                &["cluster.subscription_id"],
            ),
            (&[("cluster_type", "k3s")], &[]),
        ];
        for (fields, want) in cases {
            assert_eq!(
                errors_at(&config_value(cluster(fields))),
                *want,
                "{fields:?}"
            );
        }
    }

    #[test]
    fn unknown_cluster_type_is_checked_by_the_schema_validator() {
        let mut diags = Diagnostics::new();
        let config = config_value(cluster(&[("cluster_type", "k3s"), ("name", "c")]));
        terraform_plugin::framework::validate::validate_block(
            &schema().block,
            &config,
            &AttributePath::root(),
            &mut diags,
        );
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.attribute.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, vec!["cluster.cluster_type"]);
    }

    #[test]
    fn write_only_forms_conflict_with_their_plain_forms_and_need_a_version() {
        let mut config = config_value(cluster(&[
            ("cluster_type", "gke"),
            ("name", "c"),
            ("project_id", "p"),
            ("zone", "z"),
        ]));
        set(&mut config, "agent_url", Value::string("https://agent"));
        set(&mut config, "agent_url_wo", Value::string("https://agent"));
        let mut kubernetes =
            terraform_plugin::framework::plan::null_object(&kubernetes_block_with_token_wo());
        set(&mut kubernetes, "token_wo", Value::Unknown);
        set(&mut config, "kubernetes", kubernetes);
        let resource = RunnerConfigResource::new(Arc::new(Shared::default()));
        let mut diags = Diagnostics::new();
        resource.validate(&config, &mut diags);
        let found: Vec<String> = diags
            .iter()
            .map(|d| format!("{} | {}", d.attribute.as_ref().unwrap(), d.summary))
            .collect();
        assert_eq!(
            found,
            [
                "agent_url_wo | Both agent_url and agent_url_wo are set",
                "agent_url_wo | agent_url_wo needs agent_url_wo_version",
                "kubernetes.token_wo | kubernetes.token_wo needs kubernetes.token_wo_version",
            ]
        );
        assert_eq!(schema().block.write_only_problems(), Vec::<String>::new());
    }

    #[test]
    fn the_model_fits_the_schema() {
        terraform_plugin::framework::model::assert_model_fits::<RunnerConfig>(
            &schema().implied_type(),
        );
    }

    /// Any value the schema admits, as Terraform sends it in a configuration, a plan, a prior
    /// state or an import, converts to the model and back.
    #[test]
    fn every_value_the_schema_admits_fits_the_model() {
        terraform_plugin::framework::arbitrary::assert_every_value_fits::<RunnerConfig>(&schema());
    }

    #[test]
    fn model_round_trips_through_state_values() {
        let mut state = config_value(cluster(&[
            ("cluster_type", "gke"),
            ("name", "c"),
            ("project_id", "p"),
            ("zone", "z"),
            ("account", "o/a"),
        ]));
        set(
            &mut state,
            "criteria",
            Value::set([Value::object([
                ("app_id", Value::Null),
                ("env_id", Value::Null),
                ("env_type", Value::string("development")),
            ])]),
        );
        set(&mut state, "agent_url", Value::string("https://agent"));
        let m: RunnerConfig = terraform_plugin::framework::model::decode(&state).unwrap();
        assert_eq!(m.name(), "runner", "name defaults to id");
        let cluster = m.cluster.as_ref().unwrap();
        assert_eq!(cluster.account.as_deref(), Some("o/a"));
        assert_eq!(cluster.set_fields().count(), 3);
        assert_eq!(m.agent_url(), "https://agent");
        assert!(
            !format!("{m:?}").contains("https://agent"),
            "Debug hides the secret"
        );
        let back =
            terraform_plugin::framework::model::encode(&m, &schema().implied_type()).unwrap();
        assert_eq!(back, state);
    }
}
