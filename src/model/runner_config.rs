//! The runner config's model: one field per attribute of `humanitec_runner_config`, with its
//! cluster types and criteria.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use terraform_plugin::framework::model::{
    Sensitive, list_without_nulls, map_without_nulls, null_as_default,
};
use terraform_plugin::framework::timeouts::Timeouts;

/// A runner config: one field per attribute of its schema (`crate::provider::resources`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct RunnerConfig {
    /// The definition id (empty while a plan does not know it).
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) id: String,
    /// The display name (see [`RunnerConfig::name`]).
    pub(crate) name: Option<String>,
    /// Matching criteria; res_id and class are implied.
    pub(crate) criteria: Option<Vec<Criterion>>,
    /// The cluster container runner Jobs run on.
    pub(crate) cluster: Option<ClusterSpec>,
    /// Whether the Container Driver skips its permission pre-checks.
    pub(crate) skip_permission_checks: Option<bool>,
    /// The Humanitec Agent URL, or empty.
    pub(crate) agent_url: Option<Sensitive<String>>,
    /// The write-only Agent URL: set only while a create or update runs (never in state).
    pub(crate) agent_url_wo: Option<Sensitive<String>>,
    /// The version of `agent_url_wo`.
    pub(crate) agent_url_wo_version: Option<String>,
    /// How direct mode reaches the cluster.
    pub(crate) kubernetes: Option<Kubernetes>,
    /// Direct mode: the image of the provider's own steps in a Job's pod.
    pub(crate) helper_image: Option<String>,
    /// Direct mode: the resources of the provider's own containers in a Job's pod.
    pub(crate) helper_resources: Option<HelperResources>,
    /// The definition's driver as Humanitec reports it.
    pub(crate) driver_type: Option<String>,
    /// Driver inputs the definition has that this resource does not manage.
    #[serde(default, deserialize_with = "list_without_nulls")]
    pub(crate) unmanaged_inputs: Option<Vec<String>>,
    /// Time limits.
    pub(crate) timeouts: Option<Timeouts>,
}

impl RunnerConfig {
    /// The display name: `name`, or the id when it is unset.
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The criteria blocks (none when unset).
    pub(crate) fn criteria(&self) -> &[Criterion] {
        self.criteria.as_deref().unwrap_or_default()
    }

    /// `skip_permission_checks`, false when unset.
    pub(crate) fn skip_permission_checks(&self) -> bool {
        self.skip_permission_checks.unwrap_or(false)
    }

    /// The Agent URL to send: the write-only one while a create or update has it, else
    /// `agent_url`, else empty.
    pub(crate) fn agent_url(&self) -> &str {
        self.agent_url_wo
            .as_ref()
            .or(self.agent_url.as_ref())
            .map_or("", |url| url.0.as_str())
    }
}

/// The `helper_resources` block: the requests and limits of the provider's own containers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct HelperResources {
    /// The `prepare` init container's.
    pub(crate) prepare: Option<StepResources>,
    /// The `collect` sidecar's.
    pub(crate) collect: Option<StepResources>,
}

/// A `helper_resources.prepare` or `.collect` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct StepResources {
    /// Resource name → quantity; replaces the default requests when set.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) requests: Option<BTreeMap<String, String>>,
    /// Resource name → quantity; replaces the default limits when set.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) limits: Option<BTreeMap<String, String>>,
}

/// The `kubernetes` block: how direct mode reaches the cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Kubernetes {
    /// A kubeconfig file.
    pub(crate) config_path: Option<String>,
    /// The kubeconfig context.
    pub(crate) config_context: Option<String>,
    /// The API server URL.
    pub(crate) host: Option<String>,
    /// The API server's CA certificate (PEM).
    pub(crate) cluster_ca_certificate: Option<String>,
    /// A bearer token.
    pub(crate) token: Option<Sensitive<String>>,
    /// A write-only bearer token: set only while a create or update of the runner config runs.
    /// Left out when unset: a container runner's `runner_config` has no such attribute, since
    /// Terraform keeps no copy it could pass on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_wo: Option<Sensitive<String>>,
    /// The version of `token_wo` (left out when unset, like `token_wo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_wo_version: Option<String>,
    /// Skip TLS verification.
    pub(crate) insecure: Option<bool>,
    /// A credential plugin.
    pub(crate) exec: Option<Exec>,
}

/// The `kubernetes.exec` block: a client-go credential plugin.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Exec {
    /// The `client.authentication.k8s.io` version the plugin speaks.
    pub(crate) api_version: Option<String>,
    /// The plugin command.
    pub(crate) command: Option<String>,
    /// Its arguments.
    #[serde(default, deserialize_with = "list_without_nulls")]
    pub(crate) args: Option<Vec<String>>,
    /// Extra environment variables.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) env: Option<BTreeMap<String, String>>,
}

/// The cluster types the Container Runner supports, and the fields each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterType {
    /// Google Kubernetes Engine.
    Gke,
    /// Amazon Elastic Kubernetes Service.
    Eks,
    /// Azure Kubernetes Service.
    Aks,
}

/// Every type-specific cluster field, in documentation order.
pub(crate) const CLUSTER_FIELDS: [&str; 9] = [
    "name",
    "loadbalancer",
    "project_id",
    "zone",
    "region",
    "loadbalancer_hosted_zone",
    "resource_group",
    "subscription_id",
    "server_app_id",
];

impl ClusterType {
    /// All supported types, as users write them.
    pub(crate) const NAMES: [&'static str; 3] = ["gke", "eks", "aks"];

    /// Parses `gke`, `eks` or `aks`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "gke" => Some(Self::Gke),
            "eks" => Some(Self::Eks),
            "aks" => Some(Self::Aks),
            _ => None,
        }
    }

    /// The name users write.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Gke => "gke",
            Self::Eks => "eks",
            Self::Aks => "aks",
        }
    }

    /// Fields a cluster of this type must have.
    pub(crate) fn required_fields(self) -> &'static [&'static str] {
        match self {
            Self::Gke => &["name", "project_id", "zone"],
            Self::Eks => &["name", "region"],
            Self::Aks => &["name", "resource_group", "subscription_id"],
        }
    }

    /// Fields a cluster of this type may have.
    pub(crate) fn allowed_fields(self) -> &'static [&'static str] {
        match self {
            Self::Gke => &["name", "loadbalancer", "project_id", "zone"],
            Self::Eks => &["name", "loadbalancer", "region", "loadbalancer_hosted_zone"],
            Self::Aks => &[
                "name",
                "loadbalancer",
                "resource_group",
                "subscription_id",
                "server_app_id",
            ],
        }
    }
}

/// The cluster a runner config points at: the `cluster` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct ClusterSpec {
    /// `gke`, `eks` or `aks` (kept as text so drift to an unsupported type still shows).
    pub(crate) cluster_type: Option<String>,
    /// The Humanitec cloud account used to reach the cluster, `<org>/<account>`.
    pub(crate) account: Option<String>,
    /// The type-specific fields, by the names in [`CLUSTER_FIELDS`] (the one list of them).
    #[serde(flatten)]
    pub(crate) fields: BTreeMap<String, Option<String>>,
}

impl ClusterSpec {
    /// The type-specific fields that are set.
    pub(crate) fn set_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)))
    }
}

/// One matching criterion of a runner config (res_id and class are implied).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub(crate) struct Criterion {
    /// Application id.
    pub(crate) app_id: Option<String>,
    /// Environment id.
    pub(crate) env_id: Option<String>,
    /// Environment type.
    pub(crate) env_type: Option<String>,
}
