//! The sandbox's data model: organisations, Resource Definitions, matching criteria, simulated Active
//! Resources and the primary secret store, plus how each one renders into the API's response schemas
//! (`ResourceDefinitionResponse`, `MatchingCriteriaResponse`, `ActiveResourceResponse`,
//! `ResourceDefinitionChangeResponse`). Everything here is also what `--data` saves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// All organisations by id. An org exists implicitly once its id is valid; an absent entry is an empty org.
pub(crate) type Orgs = BTreeMap<String, Org>;

/// One organisation's store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Org {
    /// Resource Definitions by id (soft-deleted ones included).
    #[serde(default)]
    pub(crate) defs: BTreeMap<String, Definition>,
    /// The primary secret store: secret values by ref.
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, StoredSecret>,
}

/// A secret value in the primary store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredSecret {
    /// The value as sent.
    pub(crate) value: Value,
    /// Incremented on every write that carries this secret.
    pub(crate) version: u64,
}

/// One `provision` entry (`ProvisionDependencies`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Provision {
    /// Whether the co-provisioned resource depends on this one.
    pub(crate) is_dependent: bool,
    /// Whether dependents of this resource also depend on the co-provisioned one.
    pub(crate) match_dependents: bool,
    /// Extra driver parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) params: Option<Map<String, Value>>,
}

impl Provision {
    /// The `ProvisionDependenciesResponse` body (`is_dependent` is required there, so it is always set).
    fn response(&self) -> Value {
        let mut out = json!({
            "is_dependent": self.is_dependent,
            "match_dependents": self.match_dependents,
        });
        if let (Some(params), Value::Object(map)) = (&self.params, &mut out) {
            map.insert("params".to_owned(), Value::Object(params.clone()));
        }
        out
    }
}

/// The identity of a matching-criteria rule: every field but the id. Absent fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rule {
    /// Application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<String>,
    /// Environment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_id: Option<String>,
    /// Environment type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_type: Option<String>,
    /// Resource id in the deployment set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) res_id: Option<String>,
    /// Resource class; `default` when not given.
    pub(crate) class: String,
}

/// The context of a (simulated) resource that a rule can match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatchContext<'a> {
    /// Application id.
    pub(crate) app_id: &'a str,
    /// Environment id.
    pub(crate) env_id: &'a str,
    /// Environment type.
    pub(crate) env_type: &'a str,
    /// Resource id.
    pub(crate) res_id: &'a str,
    /// Resource class.
    pub(crate) class: &'a str,
}

/// The `GET /resources/defs` filters that rules "may match".
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    /// `app`.
    pub(crate) app: Option<String>,
    /// `env`.
    pub(crate) env: Option<String>,
    /// `env_type`.
    pub(crate) env_type: Option<String>,
    /// `res`.
    pub(crate) res: Option<String>,
    /// `class`.
    pub(crate) class: Option<String>,
}

impl Filter {
    /// Whether no filter is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.app.is_none()
            && self.env.is_none()
            && self.env_type.is_none()
            && self.res.is_none()
            && self.class.is_none()
    }
}

/// Specificity of a rule, compared lexicographically: `res_id` beats `env_id` beats `app_id` beats
/// `env_type` (spec: `MatchingCriteriaResponse` description).
pub(crate) type Specificity = (bool, bool, bool, bool);

impl Rule {
    /// Whether the rule fully matches a resource context.
    pub(crate) fn matches(&self, ctx: &MatchContext<'_>) -> bool {
        let ok = |field: &Option<String>, value: &str| field.as_deref().is_none_or(|f| f == value);
        ok(&self.app_id, ctx.app_id)
            && ok(&self.env_id, ctx.env_id)
            && ok(&self.env_type, ctx.env_type)
            && ok(&self.res_id, ctx.res_id)
            && self.class == ctx.class
    }

    /// Whether the rule could match some resource the filter describes: no set field contradicts it.
    pub(crate) fn may_match(&self, filter: &Filter) -> bool {
        let ok = |field: &Option<String>, query: &Option<String>| match (field, query) {
            (Some(field), Some(query)) => field == query,
            _ => true,
        };
        ok(&self.app_id, &filter.app)
            && ok(&self.env_id, &filter.env)
            && ok(&self.env_type, &filter.env_type)
            && ok(&self.res_id, &filter.res)
            && filter
                .class
                .as_ref()
                .is_none_or(|class| *class == self.class)
    }

    /// The rule's specificity.
    pub(crate) fn specificity(&self) -> Specificity {
        (
            self.res_id.is_some(),
            self.env_id.is_some(),
            self.app_id.is_some(),
            self.env_type.is_some(),
        )
    }

    /// The rule's fields as a JSON object (without `id`).
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (key, value) in [
            ("app_id", &self.app_id),
            ("env_id", &self.env_id),
            ("env_type", &self.env_type),
            ("res_id", &self.res_id),
        ] {
            if let Some(value) = value {
                map.insert(key.to_owned(), Value::String(value.clone()));
            }
        }
        map.insert("class".to_owned(), Value::String(self.class.clone()));
        map
    }
}

/// A stored matching criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Criterion {
    /// Server-generated id.
    pub(crate) id: String,
    /// The rule.
    pub(crate) rule: Rule,
}

impl Criterion {
    /// The `MatchingCriteriaResponse` body.
    pub(crate) fn response(&self) -> Value {
        let mut map = self.rule.fields();
        map.insert("id".to_owned(), Value::String(self.id.clone()));
        Value::Object(map)
    }
}

/// A simulated Active Resource provisioned from a definition (set through the sandbox admin endpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ActiveResource {
    /// Application id.
    pub(crate) app_id: String,
    /// Environment id.
    pub(crate) env_id: String,
    /// Environment type.
    pub(crate) env_type: String,
    /// Resource id.
    pub(crate) res_id: String,
    /// Resource class.
    pub(crate) class: String,
    /// `pending`, `active` or `deleting`.
    pub(crate) status: String,
    /// Provisioning outputs (values only).
    pub(crate) resource: Map<String, Value>,
    /// The definition version it was provisioned from.
    pub(crate) def_version_id: String,
    /// The driver that provisioned it.
    pub(crate) driver_type: String,
    /// The deployment that last provisioned it.
    pub(crate) deploy_id: String,
    /// Globally unique resource id.
    pub(crate) gu_res_id: String,
    /// When it was last provisioned.
    pub(crate) updated_at: String,
}

impl ActiveResource {
    /// Its matching context.
    pub(crate) fn context(&self) -> MatchContext<'_> {
        MatchContext {
            app_id: &self.app_id,
            env_id: &self.env_id,
            env_type: &self.env_type,
            res_id: &self.res_id,
            class: &self.class,
        }
    }

    /// The `ActiveResourceResponse` body.
    pub(crate) fn response(&self, org_id: &str, def: &Definition) -> Value {
        let mut out = json!({
            "org_id": org_id,
            "app_id": self.app_id,
            "env_id": self.env_id,
            "env_type": self.env_type,
            "res_id": self.res_id,
            "def_id": def.id,
            "def_version_id": self.def_version_id,
            "type": def.resource_type,
            "driver_type": self.driver_type,
            "class": self.class,
            "status": self.status,
            "resource": self.resource,
            "secret_refs": {},
            "updated_at": self.updated_at,
            "deploy_id": self.deploy_id,
            "gu_res_id": self.gu_res_id,
            // Why: a definition marked deleted hands its resources over at the next deployment.
            "scheduled_deletion": def.is_deleted,
        });
        if let Value::Object(map) = &mut out {
            if let Some(account) = &def.driver_account {
                map.insert("driver_account".to_owned(), Value::String(account.clone()));
            }
            if let Some(criterion) = def.best_criterion(&self.context()) {
                map.insert(
                    "criteria_id".to_owned(),
                    Value::String(criterion.id.clone()),
                );
            }
        }
        out
    }
}

/// A Resource Definition as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Definition {
    /// Id (unique in the org, also among soft-deleted definitions).
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Resource Type.
    #[serde(rename = "type")]
    pub(crate) resource_type: String,
    /// Driver.
    pub(crate) driver_type: String,
    /// Cloud account for the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) driver_account: Option<String>,
    /// `driver_inputs.values`, exactly as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) values: Option<Map<String, Value>>,
    /// `driver_inputs.secret_refs` as answered: nested objects whose leaves are `{store, ref, version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret_refs: Option<Map<String, Value>>,
    /// Co-provisioned resources by `resType#resId`.
    #[serde(default)]
    pub(crate) provision: BTreeMap<String, Provision>,
    /// Matching criteria.
    #[serde(default)]
    pub(crate) criteria: Vec<Criterion>,
    /// Marked for deletion (force delete with Active Resources).
    #[serde(default)]
    pub(crate) is_deleted: bool,
    /// Creation time.
    pub(crate) created_at: String,
    /// Creator.
    pub(crate) created_by: String,
    /// Last update time.
    pub(crate) updated_at: String,
    /// Last updater.
    pub(crate) updated_by: String,
    /// Current active version.
    pub(crate) active_version_id: String,
    /// Whether a driver change is taken over in place.
    #[serde(default)]
    pub(crate) in_place_driver_change: bool,
    /// Simulated Active Resources.
    #[serde(default)]
    pub(crate) active_resources: Vec<ActiveResource>,
}

impl Definition {
    /// The most specific of this definition's criteria that matches `ctx`.
    pub(crate) fn best_criterion(&self, ctx: &MatchContext<'_>) -> Option<&Criterion> {
        self.criteria
            .iter()
            .filter(|c| c.rule.matches(ctx))
            .max_by_key(|c| c.rule.specificity())
    }

    /// The `ResourceDefinitionResponse` body. It never contains secret values nor a `secrets` key.
    pub(crate) fn response(&self, org_id: &str) -> Value {
        let mut map = Map::new();
        let mut put = |key: &str, value: Value| {
            map.insert(key.to_owned(), value);
        };
        put("org_id", Value::String(org_id.to_owned()));
        put("id", Value::String(self.id.clone()));
        put("name", Value::String(self.name.clone()));
        put("type", Value::String(self.resource_type.clone()));
        put("driver_type", Value::String(self.driver_type.clone()));
        if let Some(account) = &self.driver_account {
            put("driver_account", Value::String(account.clone()));
        }
        if self.values.is_some() || self.secret_refs.is_some() {
            let mut inputs = Map::new();
            if let Some(values) = &self.values {
                inputs.insert("values".to_owned(), Value::Object(values.clone()));
            }
            if let Some(refs) = &self.secret_refs {
                inputs.insert("secret_refs".to_owned(), Value::Object(refs.clone()));
            }
            put("driver_inputs", Value::Object(inputs));
        }
        // Why: the real API leaves `provision` out when it is empty (the official provider has a fix
        // for exactly that), so clients must cope with its absence.
        if !self.provision.is_empty() {
            let provision = self
                .provision
                .iter()
                .map(|(key, p)| (key.clone(), p.response()))
                .collect();
            put("provision", Value::Object(provision));
        }
        put(
            "criteria",
            Value::Array(self.criteria.iter().map(Criterion::response).collect()),
        );
        put("is_default", Value::Bool(false));
        put("is_deleted", Value::Bool(self.is_deleted));
        put("created_at", Value::String(self.created_at.clone()));
        put("created_by", Value::String(self.created_by.clone()));
        put("updated_at", Value::String(self.updated_at.clone()));
        put("updated_by", Value::String(self.updated_by.clone()));
        put(
            "active_version_id",
            Value::String(self.active_version_id.clone()),
        );
        put(
            "in_place_driver_change",
            Value::Bool(self.in_place_driver_change),
        );
        Value::Object(map)
    }
}

/// One `ResourceDefinitionChangeResponse`: how an Active Resource would be re-linked.
pub(crate) fn change_response(
    resource: &ActiveResource,
    from_def: &str,
    to_def: Option<&str>,
) -> Value {
    json!({
        "app_id": resource.app_id,
        "env_id": resource.env_id,
        "res_id": resource.res_id,
        "from_def": from_def,
        // Why: `to_def` is a required string; with no other matching definition there is none, which
        // the sandbox answers as "" (the real API would name one of Humanitec's default definitions).
        "to_def": to_def.unwrap_or(""),
    })
}

/// Which definition (or one of its criteria) to leave out when re-matching.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Without<'a> {
    /// Leave out a whole definition (it is being deleted).
    Definition(&'a str),
    /// Leave out one criterion of a definition (it is being deleted).
    Criterion {
        /// The definition.
        def_id: &'a str,
        /// The criterion.
        criterion_id: &'a str,
    },
}

impl Org {
    /// The definition of type `resource_type` that would be chosen for `ctx`: the most specific fully
    /// matching criterion among live definitions wins; ties go to the smallest definition id.
    pub(crate) fn best_match(
        &self,
        resource_type: &str,
        ctx: &MatchContext<'_>,
        without: Without<'_>,
    ) -> Option<&str> {
        let mut best: Option<(Specificity, &str)> = None;
        for def in self
            .defs
            .values()
            .filter(|d| !d.is_deleted && d.resource_type == resource_type)
        {
            if matches!(without, Without::Definition(id) if id == def.id) {
                continue;
            }
            for criterion in &def.criteria {
                let skipped = matches!(without,
                    Without::Criterion { def_id, criterion_id }
                        if def_id == def.id && criterion_id == criterion.id);
                if skipped || !criterion.rule.matches(ctx) {
                    continue;
                }
                let candidate = (criterion.rule.specificity(), def.id.as_str());
                // Why: BTreeMap iteration is ordered by id, so `>` keeps the smallest id on ties.
                if best.is_none_or(|(spec, _)| candidate.0 > spec) {
                    best = Some(candidate);
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// Whether another live definition of the same type (or this one) already has `rule`.
    pub(crate) fn rule_owner(&self, resource_type: &str, rule: &Rule) -> Option<&str> {
        self.defs
            .values()
            .filter(|d| !d.is_deleted && d.resource_type == resource_type)
            .find(|d| d.criteria.iter().any(|c| c.rule == *rule))
            .map(|d| d.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(app: Option<&str>, env_type: Option<&str>, res: Option<&str>) -> Rule {
        Rule {
            app_id: app.map(str::to_owned),
            env_type: env_type.map(str::to_owned),
            res_id: res.map(str::to_owned),
            class: "default".to_owned(),
            ..Rule::default()
        }
    }

    #[test]
    fn matching_and_specificity() {
        let ctx = MatchContext {
            app_id: "app",
            env_id: "dev",
            env_type: "development",
            res_id: "db",
            class: "default",
        };
        assert!(rule(None, None, None).matches(&ctx));
        assert!(rule(Some("app"), Some("development"), None).matches(&ctx));
        assert!(!rule(Some("other"), None, None).matches(&ctx));
        assert!(
            rule(None, None, Some("db")).specificity()
                > rule(Some("app"), Some("development"), None).specificity()
        );
        let filter = Filter {
            app: Some("app".to_owned()),
            ..Filter::default()
        };
        assert!(rule(None, Some("x"), None).may_match(&filter));
        assert!(!rule(Some("zzz"), None, None).may_match(&filter));
    }
}
