//! A runner config: a `config` definition driven by `humanitec/template`. Its template renders the
//! `cluster` and `skip_permission_checks` outputs as YAML and the secret `agent_url` output from a
//! driver secret (see `upstream-docs/container-runner-driver.txt`). Reading a definition back
//! parses that YAML again, so a change made outside Terraform shows up as drift.

use serde_json::{Map, Value as Json, json};

use super::criteria_rules;
use crate::humanitec::{
    DEFAULT_CLASS, Definition, DefinitionCreate, DefinitionUpdate, DriverInputs,
};
use crate::model::container_runner::MatchingCriterion;
use crate::model::runner_config::{CLUSTER_FIELDS, ClusterSpec, Criterion, RunnerConfig};

/// The resource id every runner config matches (with class `default`).
pub(crate) const RUNNER_RES_ID: &str = "container-runner";
/// The resource type of a runner config definition.
pub(crate) const CONFIG_TYPE: &str = "config";
/// The driver of a runner config definition.
pub(crate) const TEMPLATE_DRIVER: &str = "humanitec/template";
/// The template of the secret `agent_url` output.
pub(crate) const AGENT_URL_TEMPLATE: &str = "agent_url: {{ .driver.secrets.agent_url }}\n";

/// The `templates.outputs` YAML: `skip_permission_checks` and `cluster`.
///
/// Why through [`crate::yaml`]: YAML 1.1 readers (Go's yaml.v2, PyYAML) read plain scalars such
/// as `yes`, `on` or `1e3` as bools and numbers, so a cluster named `yes` would reach the driver
/// as `true`; the writer quotes every such string.
///
/// ```ignore
/// cluster:
///   account: myOrg/myAccount
///   cluster:
///     cluster_type: gke
///     name: "yes"
/// skip_permission_checks: false
/// ```
pub(crate) fn outputs_yaml(config: &RunnerConfig) -> String {
    let cluster = config.cluster.clone().unwrap_or_default();
    let mut fields = Map::new();
    fields.insert(
        "cluster_type".into(),
        Json::String(cluster.cluster_type.clone().unwrap_or_default()),
    );
    for (field, value) in cluster.set_fields() {
        fields.insert(field.into(), Json::String(value.into()));
    }
    let mut outer = Map::new();
    if let Some(account) = &cluster.account {
        outer.insert("account".into(), Json::String(account.clone()));
    }
    outer.insert("cluster".into(), Json::Object(fields));
    crate::yaml::to_string(&json!({
        "skip_permission_checks": config.skip_permission_checks(),
        "cluster": outer,
    }))
}

/// The driver inputs: the two templates and the `agent_url` secret.
fn driver_inputs(config: &RunnerConfig) -> DriverInputs {
    let mut templates = Map::new();
    templates.insert("outputs".into(), Json::String(outputs_yaml(config)));
    templates.insert("secrets".into(), Json::String(AGENT_URL_TEMPLATE.into()));
    let mut values = Map::new();
    values.insert("templates".into(), Json::Object(templates));
    let mut secrets = Map::new();
    secrets.insert(
        "agent_url".into(),
        Json::String(config.agent_url().to_string()),
    );
    DriverInputs {
        values: Some(values),
        secrets: Some(secrets),
        secret_refs: None,
    }
}

/// The criteria to send: the user's (or one matching every application and environment), each
/// narrowed to the runner's res_id and class.
pub(crate) fn matching_criteria(config: &RunnerConfig) -> Vec<MatchingCriterion> {
    let base = match config.criteria() {
        [] => vec![Criterion::default()],
        some => some.to_vec(),
    };
    base.into_iter()
        .map(|c| MatchingCriterion {
            app_id: c.app_id,
            env_id: c.env_id,
            env_type: c.env_type,
            res_id: Some(RUNNER_RES_ID.into()),
            class: Some(DEFAULT_CLASS.into()),
        })
        .collect()
}

/// The create payload, criteria inline.
pub(crate) fn to_create(config: &RunnerConfig) -> DefinitionCreate {
    DefinitionCreate {
        id: config.id.clone(),
        name: config.name().to_string(),
        type_: CONFIG_TYPE.into(),
        driver_type: TEMPLATE_DRIVER.into(),
        driver_account: None,
        driver_inputs: Some(driver_inputs(config)),
        provision: None,
        criteria: Some(criteria_rules(matching_criteria(config))),
    }
}

/// The PUT payload (criteria are managed separately).
pub(crate) fn to_update(config: &RunnerConfig) -> DefinitionUpdate {
    DefinitionUpdate {
        name: config.name().to_string(),
        driver_type: TEMPLATE_DRIVER.into(),
        driver_account: None,
        driver_inputs: Some(driver_inputs(config)),
        provision: None,
    }
}

/// Whether changing `before` into `after` writes the definition: its payload changes, or the
/// definition as read has another driver or inputs this resource does not manage (a PUT then
/// repairs it). Changes api mode ignores (`kubernetes`, `timeouts`) write nothing.
///
/// The write-only Agent URL is left out of the comparison (a state never has it, a plan being
/// applied always does); a change of its version is a write, which sends it again.
pub(crate) fn rewrites(before: &RunnerConfig, after: &RunnerConfig) -> bool {
    if before.agent_url_wo_version != after.agent_url_wo_version {
        return true;
    }
    let strip = |config: &RunnerConfig| RunnerConfig {
        agent_url_wo: None,
        ..config.clone()
    };
    let (before, after) = (&strip(before), &strip(after));
    let repaired = before
        .driver_type
        .as_deref()
        .is_some_and(|driver| driver != TEMPLATE_DRIVER)
        || before
            .unmanaged_inputs
            .as_ref()
            .is_some_and(|inputs| !inputs.is_empty());
    repaired || to_update(before) != to_update(after)
}

/// What a runner config definition read back from the API says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RunnerConfigRead {
    /// Display name.
    pub(crate) name: String,
    /// The cluster, when the outputs template could be read.
    pub(crate) cluster: Option<ClusterSpec>,
    /// `skip_permission_checks`, when the outputs template could be read.
    pub(crate) skip_permission_checks: Option<bool>,
    /// The criteria, reduced to what a runner config manages.
    pub(crate) criteria: Vec<Criterion>,
    /// Criteria that do not match `res_id = container-runner, class = default` (as text).
    pub(crate) foreign_criteria: Vec<String>,
    /// The version of the stored `agent_url` secret, when the definition has one.
    pub(crate) agent_url_version: Option<String>,
    /// Whether the definition has an `agent_url` secret.
    pub(crate) has_agent_url: bool,
    /// Driver inputs this resource does not manage: `values` keys besides `templates`, and
    /// templates besides `outputs` and `secrets` (as `templates.<name>`).
    pub(crate) unmanaged_inputs: Vec<String>,
    /// Problems with the definition's shape, for a warning.
    pub(crate) problems: Vec<String>,
}

/// Reads a runner config out of a definition.
pub(crate) fn read_runner_config(definition: &Definition) -> RunnerConfigRead {
    let mut read = RunnerConfigRead {
        name: definition.name.clone(),
        ..RunnerConfigRead::default()
    };
    if definition.type_ != CONFIG_TYPE {
        read.problems.push(format!(
            "its type is {:?}, not \"config\"",
            definition.type_
        ));
    }
    if definition.driver_type != TEMPLATE_DRIVER {
        read.problems.push(format!(
            "its driver is {:?}, not {TEMPLATE_DRIVER:?}",
            definition.driver_type
        ));
    }
    let inputs = definition.driver_inputs.as_ref();
    let outputs = inputs
        .and_then(|i| i.values.as_ref())
        .and_then(|v| v.get("templates"))
        .and_then(|t| t.get("outputs"));
    let outputs = outputs_template(outputs, &mut read.problems);
    if let Some(outputs) = &outputs {
        read.skip_permission_checks = match outputs.get("skip_permission_checks") {
            Some(Json::Bool(b)) => Some(*b),
            Some(Json::String(s)) => s.parse().ok(),
            _ => None,
        };
        read.cluster = outputs.get("cluster").map(cluster_from_json);
    }
    let agent_url = inputs
        .and_then(|i| i.secret_refs.as_ref())
        .and_then(|refs| refs.get("agent_url"));
    read.has_agent_url = agent_url.is_some();
    read.agent_url_version = agent_url
        .and_then(|r| r.get("version"))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    if let Some(values) = inputs.and_then(|i| i.values.as_ref()) {
        for (key, value) in values {
            if key != "templates" {
                read.unmanaged_inputs.push(key.clone());
            } else if let Some(templates) = value.as_object() {
                read.unmanaged_inputs.extend(
                    templates
                        .keys()
                        .filter(|t| *t != "outputs" && *t != "secrets")
                        .map(|t| format!("templates.{t}")),
                );
            }
        }
    }
    for criterion in &definition.criteria {
        let managed =
            criterion.res_id.as_deref() == Some(RUNNER_RES_ID) && criterion.class == DEFAULT_CLASS;
        if !managed {
            read.foreign_criteria
                .push(serde_json::to_string(criterion).unwrap_or_else(|_| criterion.id.clone()));
        }
        let reduced = Criterion {
            app_id: criterion.app_id.clone(),
            env_id: criterion.env_id.clone(),
            env_type: criterion.env_type.clone(),
        };
        // The catch-all criterion stands for "no criteria blocks".
        if reduced != Criterion::default() && !read.criteria.contains(&reduced) {
            read.criteria.push(reduced);
        }
    }
    read.criteria.sort();
    read
}

/// The outputs template of a definition, parsed; a problem when it is missing or not YAML.
///
/// Why accept both forms: the doc page itself sends the outputs template as a YAML string in
/// one example and as a map in the other.
fn outputs_template(outputs: Option<&Json>, problems: &mut Vec<String>) -> Option<Json> {
    match outputs {
        Some(Json::String(text)) => match crate::yaml::from_str::<Json>(text) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                problems.push(format!("its outputs template is not YAML ({e})"));
                None
            }
        },
        Some(other) => Some(other.clone()),
        None => {
            problems.push("it has no outputs template".into());
            None
        }
    }
}

fn cluster_from_json(cluster: &Json) -> ClusterSpec {
    let text = |v: Option<&Json>| match v {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Number(n)) => Some(n.to_string()),
        Some(Json::Bool(b)) => Some(b.to_string()),
        _ => None,
    };
    let inner = cluster.get("cluster");
    let fields = CLUSTER_FIELDS
        .iter()
        .map(|field| (field.to_string(), text(inner.and_then(|i| i.get(*field)))))
        .collect();
    ClusterSpec {
        cluster_type: text(inner.and_then(|i| i.get("cluster_type"))),
        account: text(cluster.get("account")),
        fields,
    }
}

/// The doc page's config definition, for golden tests.
#[cfg(test)]
pub(crate) fn doc_page_config_payload() -> Json {
    json!({
        "id": "config-container-runner",
        "name": "Config For Container Driver Runner",
        "type": "config",
        "driver_type": "humanitec/template",
        "driver_inputs": {
            "values": {"templates": {
                "outputs": "skip_permission_checks: false\ncluster:\n  account: myOrg/myAccount\n  cluster:\n    cluster_type: gke\n    loadbalancer: 10.10.10.10\n    name: my-cluster\n    project_id: my-gcp-project\n    zone: cluster-zone\n",
                "secrets": "agent_url: {{ .driver.secrets.agent_url }}\n"}},
            "secrets": {"agent_url": "${resources.agent.outputs.url}"}
        },
        "criteria": [{"env_type": "development", "res_id": "container-runner", "class": "default"}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use terraform_plugin::framework::model::Sensitive;

    fn doc_page_runner_config() -> RunnerConfig {
        let set = [
            ("name", "my-cluster"),
            ("loadbalancer", "10.10.10.10"),
            ("project_id", "my-gcp-project"),
            ("zone", "cluster-zone"),
        ];
        let fields = CLUSTER_FIELDS
            .iter()
            .map(|f| {
                let value = set.iter().find(|(k, _)| k == f).map(|(_, v)| v.to_string());
                (f.to_string(), value)
            })
            .collect();
        RunnerConfig {
            id: "config-container-runner".into(),
            name: Some("Config For Container Driver Runner".into()),
            criteria: Some(vec![Criterion {
                env_type: Some("development".into()),
                ..Criterion::default()
            }]),
            cluster: Some(ClusterSpec {
                cluster_type: Some("gke".into()),
                account: Some("myOrg/myAccount".into()),
                fields,
            }),
            skip_permission_checks: Some(false),
            agent_url: Some(Sensitive("${resources.agent.outputs.url}".into())),
            ..RunnerConfig::default()
        }
    }

    /// Parses YAML strings inside a payload so that two payloads compare by meaning.
    fn by_meaning(mut payload: Json) -> Json {
        if let Some(outputs) = payload.pointer_mut("/driver_inputs/values/templates/outputs")
            && let Json::String(text) = outputs
        {
            *outputs = crate::yaml::from_str(text).unwrap();
        }
        payload
    }

    #[test]
    fn golden_doc_page_config_payload() {
        let ours = serde_json::to_value(to_create(&doc_page_runner_config())).unwrap();
        assert_eq!(by_meaning(ours), by_meaning(doc_page_config_payload()));
    }

    #[test]
    fn a_yaml_1_1_reader_reads_back_every_string_configured_in_the_outputs_template() {
        for tricky in crate::yaml::tests::RETYPED_BY_YAML_1_1 {
            let mut config = doc_page_runner_config();
            if let Some(cluster) = config.cluster.as_mut() {
                cluster.account = Some((*tricky).into());
                for field in ["name", "zone", "project_id", "loadbalancer"] {
                    cluster.fields.insert(field.into(), Some((*tricky).into()));
                }
            }
            let yaml = outputs_yaml(&config);
            let read = crate::yaml::tests::read_by_pyyaml(&yaml);
            assert_eq!(read["cluster"]["account"], *tricky, "{yaml}");
            for field in ["name", "zone", "project_id", "loadbalancer"] {
                assert_eq!(read["cluster"]["cluster"][field], *tricky, "{yaml}");
            }
            assert_eq!(read["skip_permission_checks"], false, "{yaml}");
        }
    }

    #[test]
    fn every_yaml_reader_reads_back_the_strings_configured() {
        let mut config = doc_page_runner_config();
        let tricky = [
            "yes",
            "on",
            "0123",
            "1e3",
            "null",
            "a: b",
            "\"quoted\"",
            "#x",
        ];
        if let Some(cluster) = config.cluster.as_mut() {
            for (field, value) in ["name", "loadbalancer", "project_id", "zone"]
                .iter()
                .zip(tricky.iter().cycle())
            {
                cluster
                    .fields
                    .insert((*field).into(), Some((*value).into()));
            }
            cluster.account = Some(tricky[4].into());
        }
        let yaml = outputs_yaml(&config);
        let parsed: Json = crate::yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed["cluster"]["cluster"]["name"], "yes", "{yaml}");
        assert_eq!(parsed["cluster"]["cluster"]["loadbalancer"], "on", "{yaml}");
        assert_eq!(parsed["cluster"]["cluster"]["project_id"], "0123", "{yaml}");
        assert_eq!(parsed["cluster"]["cluster"]["zone"], "1e3", "{yaml}");
        assert_eq!(parsed["cluster"]["account"], "null", "{yaml}");
        assert_eq!(parsed["skip_permission_checks"], false);
        // No plain scalar that a YAML 1.1 reader could take for anything but a string.
        for line in yaml.lines().filter(|l| l.trim_end().ends_with('"')) {
            assert!(line.contains(": \""), "{line}");
        }
    }

    #[test]
    fn no_criteria_means_one_catch_all_runner_criterion() {
        let mut config = doc_page_runner_config();
        config.criteria = None;
        let rules = serde_json::to_value(criteria_rules(matching_criteria(&config))).unwrap();
        assert_eq!(
            rules,
            json!([{"res_id": "container-runner", "class": "default"}])
        );
    }

    #[test]
    fn update_payload_has_no_criteria_and_no_id() {
        let update = serde_json::to_value(to_update(&doc_page_runner_config())).unwrap();
        assert!(update.get("criteria").is_none());
        assert!(update.get("id").is_none());
        assert_eq!(update["driver_type"], "humanitec/template");
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let config = doc_page_runner_config();
        let mut definition: Definition = serde_json::from_value(json!({
            "org_id": "o", "id": config.id, "name": config.name, "type": "config",
            "driver_type": "humanitec/template",
            "driver_inputs": {
                "values": to_create(&config).driver_inputs.unwrap().values,
                "secret_refs": {"agent_url": {"store": "s", "ref": "r", "version": "1"}}
            },
            "criteria": [{"id": "c1", "env_type": "development", "res_id": "container-runner", "class": "default"}],
        }))
        .unwrap();
        let read = read_runner_config(&definition);
        assert_eq!(read.cluster, config.cluster);
        assert_eq!(read.skip_permission_checks, Some(false));
        assert_eq!(Some(read.criteria), config.criteria);
        assert!(read.has_agent_url);
        assert!(read.problems.is_empty() && read.foreign_criteria.is_empty());

        // The doc page's other form: outputs as a map.
        if let Some(values) = definition
            .driver_inputs
            .as_mut()
            .and_then(|i| i.values.as_mut())
        {
            values.insert(
                "templates".into(),
                json!({"outputs": {"skip_permission_checks": true, "cluster": {"cluster": {"cluster_type": "eks", "name": "x", "region": "r"}}}}),
            );
        }
        let read = read_runner_config(&definition);
        assert_eq!(read.skip_permission_checks, Some(true));
        assert_eq!(read.cluster.unwrap().cluster_type.as_deref(), Some("eks"));
    }

    #[test]
    fn foreign_criteria_and_bad_yaml_are_reported() {
        let definition: Definition = serde_json::from_value(json!({
            "org_id": "o", "id": "x", "name": "x", "type": "config", "driver_type": "humanitec/echo",
            "driver_inputs": {"values": {"templates": {"outputs": "cluster: [unclosed"}}},
            "criteria": [
                {"id": "c1", "res_id": "container-runner", "class": "default"},
                {"id": "c2", "env_type": "prod", "res_id": "other", "class": "default"}
            ],
        }))
        .unwrap();
        let read = read_runner_config(&definition);
        assert_eq!(read.cluster, None);
        assert_eq!(read.problems.len(), 2, "{:?}", read.problems);
        assert_eq!(read.foreign_criteria.len(), 1);
        assert_eq!(
            read.criteria,
            vec![Criterion {
                env_type: Some("prod".into()),
                ..Criterion::default()
            }]
        );
    }
}
