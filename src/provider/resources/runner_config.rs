//! `humanitec_runner_config`: the `config` definition that tells the Container Runner which
//! cluster to run its Jobs on.
//!
//! In api mode the resource is a Humanitec definition (type `config`, driver `humanitec/template`,
//! matching `res_id = container-runner`, `class = default`). In direct mode there is no platform:
//! the resource only records the cluster (and how to reach it) for container runners to use.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Lookup, api_error, client, create_failed, criteria_block, default_name_to_id,
    delete_definition, look_up, optional_string, set, set_items, sync_criteria,
};
use crate::definition::{self, CLUSTER_FIELDS, Cluster, ClusterType, Criterion, RunnerConfig};
use crate::framework::validate::{humanitec_id, not_empty, one_of, quoted_list};
use crate::framework::{
    Attribute, Block, Diagnostics, NestedBlock, Nesting, Operation, Plan, Resource, Schema,
    timeouts,
};
use crate::provider::Shared;
use crate::provider::config::Mode;
use crate::value::{AttributePath, Value};

/// The `humanitec_runner_config` resource type.
pub(crate) struct RunnerConfigResource {
    shared: Arc<Shared>,
}

impl RunnerConfigResource {
    /// The resource, sharing the provider's configuration.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
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
        .attribute(Attribute::string("api_version").required().description("The `client.authentication.k8s.io` API version the plugin speaks, e.g. `client.authentication.k8s.io/v1beta1`."))
        .attribute(Attribute::string("command").required().description("The plugin command."))
        .attribute(Attribute::string_list("args").description("Arguments for the command."))
        .attribute(Attribute::string_map("env").description("Extra environment variables for the command."));
    Block::new(
        "Direct mode only: how the provider reaches the cluster (a kubeconfig path and context, or \
         host, CA certificate and token or exec plugin). Validated and kept in state; ignored in \
         api mode, where Humanitec reaches the cluster through `cluster.account`.",
    )
    .attribute(Attribute::string("config_path").description("Path to a kubeconfig file."))
    .attribute(Attribute::string("config_context").description("The kubeconfig context to use."))
    .attribute(
        Attribute::string("host").description("The API server URL, instead of a kubeconfig."),
    )
    .attribute(
        Attribute::string("cluster_ca_certificate")
            .description("PEM CA certificate of the API server."),
    )
    .attribute(
        Attribute::string("token")
            .sensitive()
            .description("A bearer token for the API server."),
    )
    .attribute(
        Attribute::bool("insecure")
            .description("Skip TLS verification of the API server (testing only)."),
    )
    .block(NestedBlock::new("exec", Nesting::Single, exec))
}

fn schema() -> Schema {
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
    let kubernetes = kubernetes_block();
    let criteria = criteria_block(
        "A matching criterion: which environments use this runner config. Each criterion also \
         matches `res_id = container-runner` and `class = default`, which the provider adds. \
         Without criteria blocks the config matches everywhere.",
    );

    Schema::new(
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
                .description("When `false` (the default), the Container Driver runs permission pre-checks in a sidecar before the runner container."),
        )
        .attribute(
            Attribute::string("agent_url")
                .sensitive()
                .default(Value::string(""))
                .description("The Humanitec Agent URL, usually `$${resources.agent.outputs.url}`, when the cluster is reachable only through the Agent; empty otherwise. Stored as a definition secret; the API never returns it."),
        )
        .block(NestedBlock::new("criteria", Nesting::Set, criteria))
        .block(NestedBlock::new("cluster", Nesting::Single, cluster).required())
        .block(NestedBlock::new("kubernetes", Nesting::Single, kubernetes))
        .block(timeouts::block(Duration::from_secs(20 * 60))),
    )
}

/// Builds the model from a planned (wholly known) state.
fn model(state: &Value) -> RunnerConfig {
    let id = state.get("id").as_str().unwrap_or_default().to_string();
    let name = state
        .get("name")
        .as_str()
        .map_or_else(|| id.clone(), str::to_string);
    let cluster_value = state.get("cluster");
    let mut fields = BTreeMap::new();
    for field in CLUSTER_FIELDS {
        if let Some(v) = cluster_value.get(field).as_str() {
            fields.insert(field.to_string(), v.to_string());
        }
    }
    let mut criteria: Vec<Criterion> = set_items(state.get("criteria"))
        .iter()
        .map(|c| Criterion {
            app_id: c.get("app_id").as_str().map(str::to_string),
            env_id: c.get("env_id").as_str().map(str::to_string),
            env_type: c.get("env_type").as_str().map(str::to_string),
        })
        .collect();
    criteria.sort();
    criteria.dedup();
    RunnerConfig {
        id,
        name,
        criteria,
        cluster: Cluster {
            cluster_type: cluster_value
                .get("cluster_type")
                .as_str()
                .unwrap_or_default()
                .to_string(),
            account: cluster_value.get("account").as_str().map(str::to_string),
            fields,
        },
        skip_permission_checks: state
            .get("skip_permission_checks")
            .as_bool()
            .unwrap_or(false),
        agent_url: state
            .get("agent_url")
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

fn criteria_value(criteria: &[Criterion]) -> Value {
    Value::Set(
        criteria
            .iter()
            .map(|c| {
                Value::object([
                    ("app_id", optional_string(c.app_id.as_ref())),
                    ("env_id", optional_string(c.env_id.as_ref())),
                    ("env_type", optional_string(c.env_type.as_ref())),
                ])
            })
            .collect(),
    )
}

fn cluster_value(cluster: &Cluster) -> Value {
    let mut fields: Vec<(&str, Value)> = vec![
        ("cluster_type", Value::string(cluster.cluster_type.clone())),
        ("account", optional_string(cluster.account.as_ref())),
    ];
    for field in CLUSTER_FIELDS {
        fields.push((field, optional_string(cluster.fields.get(field))));
    }
    Value::object(fields)
}

#[async_trait]
impl Resource for RunnerConfigResource {
    fn type_name(&self) -> &'static str {
        "humanitec_runner_config"
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
                            quoted_list(kind.required_fields())
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
                            quoted_list(kind.allowed_fields())
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
        let kubernetes = config.get("kubernetes");
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

    fn modify_plan(&self, plan: &mut Plan<'_>, _diags: &mut Diagnostics) {
        default_name_to_id(plan);
    }

    async fn create(&self, _op: &mut Operation, planned: &Value, diags: &mut Diagnostics) -> Value {
        let config = model(planned);
        let mut state = planned.clone();
        set(&mut state, "name", Value::string(config.name.clone()));
        if self.shared.mode() == Mode::Direct {
            return state;
        }
        let Some(client) = client(&self.shared, diags) else {
            return Value::Null;
        };
        match client.create_definition(&config.to_create()).await {
            Ok(_) => state,
            Err(e) => {
                create_failed(diags, &e, self.type_name(), "runner config", &config.id);
                Value::Null
            }
        }
    }

    async fn read(&self, _op: &mut Operation, current: &Value, diags: &mut Diagnostics) -> Value {
        if self.shared.mode() == Mode::Direct {
            return current.clone();
        }
        let Some(client) = client(&self.shared, diags) else {
            return current.clone();
        };
        let id = current.get("id").as_str().unwrap_or_default().to_string();
        let definition = match look_up(&client, &id, "runner config", diags).await {
            Lookup::Found(definition) => definition,
            Lookup::Gone => return Value::Null,
            Lookup::Failed => return current.clone(),
        };
        let read = definition::read_runner_config(&definition);
        if !read.problems.is_empty() {
            diags.warning(
                format!("Definition {id:?} is not a runner config as this provider writes it"),
                format!("{}. The next apply rewrites it.", read.problems.join("; ")),
            );
        }
        if !read.foreign_criteria.is_empty() {
            diags.warning(
                format!("Definition {id:?} has criteria this resource does not manage"),
                format!(
                    "These criteria do not match res_id \"container-runner\" and class \"default\": {}. \
                     The next apply that changes criteria replaces them.",
                    read.foreign_criteria.join(", ")
                ),
            );
        }
        let mut state = current.clone();
        set(&mut state, "id", Value::string(definition.id.clone()));
        set(&mut state, "name", Value::string(read.name.clone()));
        set(&mut state, "criteria", criteria_value(&read.criteria));
        // Unreadable outputs become nulls, which differ from any valid configuration: drift.
        let cluster = read.cluster.clone().unwrap_or_default();
        set(&mut state, "cluster", cluster_value(&cluster));
        set(
            &mut state,
            "skip_permission_checks",
            read.skip_permission_checks.map_or(Value::Null, Value::Bool),
        );
        // The API never returns secrets. After an import (no prior value) an absent secret reads
        // as "", the default; a present one stays null, since its value cannot be known.
        if current.get("agent_url").is_null() && !read.has_agent_url {
            set(&mut state, "agent_url", Value::string(""));
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
        let config = model(planned);
        if self.shared.mode() == Mode::Direct {
            return planned.clone();
        }
        let Some(client) = client(&self.shared, diags) else {
            return prior.clone();
        };
        let updated = match client
            .update_definition(&config.id, &config.to_update())
            .await
        {
            Ok(definition) => definition,
            Err(e) => {
                api_error(
                    diags,
                    format!("Could not update runner config {:?}", config.id),
                    &e,
                );
                return prior.clone();
            }
        };
        if let Err(e) = sync_criteria(
            &client,
            &config.id,
            &config.criteria_rules(),
            &updated.criteria,
        )
        .await
        {
            api_error(
                diags,
                format!(
                    "Could not update the criteria of runner config {:?}",
                    config.id
                ),
                &e,
            );
            // The definition itself was updated; record that, with the criteria as they are now.
            let mut state = planned.clone();
            let criteria = match client.get_definition(&config.id).await {
                Ok(Some(definition)) => definition::read_runner_config(&definition).criteria,
                _ => definition::read_runner_config(&updated).criteria,
            };
            set(&mut state, "criteria", criteria_value(&criteria));
            return state;
        }
        planned.clone()
    }

    async fn delete(&self, op: &mut Operation, prior: &Value, diags: &mut Diagnostics) {
        if self.shared.mode() == Mode::Direct {
            return;
        }
        let Some(client) = client(&self.shared, diags) else {
            return;
        };
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        delete_definition(
            &client,
            op,
            &id,
            false,
            "runner config",
            "Raise timeouts.delete to wait longer.",
            diags,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_value(cluster: Value) -> Value {
        let mut value = crate::framework::plan::null_object(&schema().block);
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
        crate::framework::validate::validate_block(
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
            criteria_value(&[Criterion {
                env_type: Some("development".into()),
                ..Criterion::default()
            }]),
        );
        set(&mut state, "agent_url", Value::string("https://agent"));
        let m = model(&state);
        assert_eq!(m.name, "runner", "name defaults to id");
        assert_eq!(m.cluster.account.as_deref(), Some("o/a"));
        assert_eq!(cluster_value(&m.cluster), state.get("cluster").clone());
        assert_eq!(criteria_value(&m.criteria), state.get("criteria").clone());
        assert_eq!(m.agent_url, "https://agent");
    }
}
