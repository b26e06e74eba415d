//! Wire types of the Humanitec Resource Definitions API (`/orgs/{orgId}/resources/defs`), named
//! after the spec's schemas.
//!
//! Requests are strict and minimal: a field that is `None` is not sent. Responses are lenient:
//! unknown fields are ignored and anything the API may omit, or send as `null`, falls back to a
//! default, because the response schema has grown fields over the API's versions.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A JSON object, as the API's free-form maps (`values`, `provision`, …) are.
pub(crate) type JsonObject = Map<String, Value>;

/// `driver_inputs` of a Definition (`ValuesSecretsRefsRequest` / `…Response`).
///
/// `Debug` prints the keys of `secrets` and `secret_refs`, never their values.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DriverInputs {
    /// Plain inputs, passed to the driver as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) values: Option<JsonObject>,
    /// Secret inputs; Humanitec stores them in the org's primary secret store and never returns
    /// them. Cannot be combined with `secret_refs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secrets: Option<JsonObject>,
    /// Nested object whose leaves are `SecretReference`s (`store`, `ref`, `version`, `value`).
    /// Responses carry the references Humanitec made of `secrets` here, never a `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret_refs: Option<JsonObject>,
}

impl fmt::Debug for DriverInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Shows an optional object as its keys, each with the mask for its value.
        struct Keys<'a>(&'a Option<JsonObject>);
        /// The mask, unquoted.
        struct Masked;
        impl fmt::Debug for Masked {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(crate::text::MASK)
            }
        }
        impl fmt::Debug for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    None => f.write_str("None"),
                    Some(map) => f
                        .debug_map()
                        .entries(map.keys().map(|key| (key, Masked)))
                        .finish(),
                }
            }
        }
        f.debug_struct("DriverInputs")
            .field("values", &self.values)
            .field("secrets", &Keys(&self.secrets))
            .field("secret_refs", &Keys(&self.secret_refs))
            .finish()
    }
}

/// One matching-criteria rule to send (`MatchingCriteriaRuleRequest`). All parts are optional;
/// the API sets `class` to `default` when it is not given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CriteriaRule {
    /// Application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<String>,
    /// Environment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_id: Option<String>,
    /// Environment type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_type: Option<String>,
    /// Resource id in the deployment set, e.g. `modules.my-module.externals.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) res_id: Option<String>,
    /// Resource class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) class: Option<String>,
}

impl CriteriaRule {
    /// Whether a stored criterion is this rule, as the API would see it: an empty part equals a
    /// missing one, and a missing class equals `default`.
    pub(crate) fn matches(&self, criteria: &Criteria) -> bool {
        /// A part that is missing or empty is "any".
        fn part(value: &Option<String>) -> Option<&str> {
            value.as_deref().filter(|v| !v.is_empty())
        }
        part(&self.app_id) == part(&criteria.app_id)
            && part(&self.env_id) == part(&criteria.env_id)
            && part(&self.env_type) == part(&criteria.env_type)
            && part(&self.res_id) == part(&criteria.res_id)
            && part(&self.class).unwrap_or(DEFAULT_CLASS)
                == Some(criteria.class.as_str())
                    .filter(|c| !c.is_empty())
                    .unwrap_or(DEFAULT_CLASS)
    }
}

/// The class the API gives a criterion that names none.
pub(crate) const DEFAULT_CLASS: &str = "default";

/// A stored matching-criteria rule (`MatchingCriteriaResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Criteria {
    /// Criterion id, assigned by Humanitec.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) id: String,
    /// Application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<String>,
    /// Environment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_id: Option<String>,
    /// Environment type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_type: Option<String>,
    /// Resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) res_id: Option<String>,
    /// Resource class; `default` when the API leaves it out.
    #[serde(default = "default_class", deserialize_with = "class_or_default")]
    pub(crate) class: String,
}

/// The body of `POST /orgs/{orgId}/resources/defs` (`CreateResourceDefinitionRequestRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DefinitionCreate {
    /// Definition id (`^[a-z0-9][a-z0-9-]+[a-z0-9]$`).
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Resource type, e.g. `config` or `s3`.
    #[serde(rename = "type")]
    pub(crate) type_: String,
    /// Driver, e.g. `humanitec/container-runner`.
    pub(crate) driver_type: String,
    /// Cloud account the driver uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) driver_account: Option<String>,
    /// Driver inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) driver_inputs: Option<DriverInputs>,
    /// Co-provisioned resources, keyed `resType#resId` (values are `ProvisionDependenciesRequest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provision: Option<JsonObject>,
    /// Matching criteria; only creation accepts them inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) criteria: Option<Vec<CriteriaRule>>,
}

/// The body of `PUT /orgs/{orgId}/resources/defs/{defId}` (`UpdateResourceDefinitionRequestRequest`).
///
/// PUT replaces the definition: a field left `None` is unset on the server. It never changes the
/// id, the type or the criteria.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DefinitionUpdate {
    /// Display name.
    pub(crate) name: String,
    /// Driver; an empty string keeps the current one.
    pub(crate) driver_type: String,
    /// Cloud account the driver uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) driver_account: Option<String>,
    /// Driver inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) driver_inputs: Option<DriverInputs>,
    /// Co-provisioned resources, keyed `resType#resId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provision: Option<JsonObject>,
}

/// A resource definition as the API returns it (`ResourceDefinitionResponse`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "DefinitionWire")]
pub(crate) struct Definition {
    /// Organization id.
    pub(crate) org_id: String,
    /// Definition id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Resource type.
    #[serde(rename = "type")]
    pub(crate) type_: String,
    /// Driver.
    pub(crate) driver_type: String,
    /// Cloud account the driver uses; an empty string from the API becomes `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) driver_account: Option<String>,
    /// Driver inputs; secrets come back as `secret_refs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) driver_inputs: Option<DriverInputs>,
    /// Co-provisioned resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) provision: Option<JsonObject>,
    /// Matching criteria.
    pub(crate) criteria: Vec<Criteria>,
    /// Whether this is one of Humanitec's built-in definitions.
    pub(crate) is_default: bool,
    /// Whether the definition is marked deleted (force-deleted while in use).
    pub(crate) is_deleted: bool,
    /// Creation time (RFC 3339).
    pub(crate) created_at: String,
    /// Creator.
    pub(crate) created_by: String,
    /// Last update time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) updated_at: Option<String>,
    /// Last updater.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) updated_by: Option<String>,
    /// The active version's id.
    pub(crate) active_version_id: String,
}

/// The lenient reading of [`Definition`], tolerant of older field names.
///
/// Why a separate type: older API versions named `active_version_id` `current_version_id`, and a
/// serde `alias` would reject an answer that carries both.
#[derive(Deserialize)]
struct DefinitionWire {
    /// See [`Definition::org_id`].
    #[serde(default, deserialize_with = "null_as_default")]
    org_id: String,
    /// See [`Definition::id`].
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    /// See [`Definition::name`].
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    /// See [`Definition::type_`].
    #[serde(default, rename = "type", deserialize_with = "null_as_default")]
    type_: String,
    /// See [`Definition::driver_type`].
    #[serde(default, deserialize_with = "null_as_default")]
    driver_type: String,
    /// See [`Definition::driver_account`].
    #[serde(default)]
    driver_account: Option<String>,
    /// See [`Definition::driver_inputs`].
    #[serde(default)]
    driver_inputs: Option<DriverInputs>,
    /// See [`Definition::provision`].
    #[serde(default)]
    provision: Option<JsonObject>,
    /// See [`Definition::criteria`].
    #[serde(default, deserialize_with = "null_as_default")]
    criteria: Vec<Criteria>,
    /// See [`Definition::is_default`].
    #[serde(default, deserialize_with = "null_as_default")]
    is_default: bool,
    /// See [`Definition::is_deleted`].
    #[serde(default, deserialize_with = "null_as_default")]
    is_deleted: bool,
    /// See [`Definition::created_at`].
    #[serde(default, deserialize_with = "null_as_default")]
    created_at: String,
    /// See [`Definition::created_by`].
    #[serde(default, deserialize_with = "null_as_default")]
    created_by: String,
    /// See [`Definition::updated_at`].
    #[serde(default)]
    updated_at: Option<String>,
    /// See [`Definition::updated_by`].
    #[serde(default)]
    updated_by: Option<String>,
    /// See [`Definition::active_version_id`].
    #[serde(default)]
    active_version_id: Option<String>,
    /// The pre-2025 name of `active_version_id`.
    #[serde(default)]
    current_version_id: Option<String>,
}

impl From<DefinitionWire> for Definition {
    fn from(wire: DefinitionWire) -> Self {
        Self {
            org_id: wire.org_id,
            id: wire.id,
            name: wire.name,
            type_: wire.type_,
            driver_type: wire.driver_type,
            driver_account: wire.driver_account.filter(|a| !a.is_empty()),
            driver_inputs: wire.driver_inputs,
            provision: wire.provision,
            criteria: wire.criteria,
            is_default: wire.is_default,
            is_deleted: wire.is_deleted,
            created_at: wire.created_at,
            created_by: wire.created_by,
            updated_at: wire.updated_at,
            updated_by: wire.updated_by,
            active_version_id: wire
                .active_version_id
                .or(wire.current_version_id)
                .unwrap_or_default(),
        }
    }
}

/// One active resource affected by a deletion (`ResourceDefinitionChangeResponse`), as listed in
/// a 409 answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DefinitionChange {
    /// Application id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) app_id: String,
    /// Environment id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) env_id: String,
    /// Resource id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) res_id: String,
    /// The definition the resource was provisioned from.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) from_def: String,
    /// The definition it would be provisioned from after the change.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) to_def: String,
}

impl fmt::Display for DefinitionChange {
    /// `app/env/res`, the way Humanitec users name an active resource.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.app_id, self.env_id, self.res_id)
    }
}

/// Reads a value that the API may send as `null` as its type's default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The class of a criterion that names none.
fn default_class() -> String {
    DEFAULT_CLASS.to_owned()
}

/// Reads a criterion's class, with `null` or `""` meaning `default`.
fn class_or_default<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?
        .filter(|c| !c.is_empty())
        .unwrap_or_else(default_class))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definition_parses_leniently() {
        let body = json!({
            "org_id": "my-org",
            "id": "my-s3",
            "name": "S3",
            "type": "s3",
            "driver_type": "humanitec/container-runner",
            "driver_account": "",
            "driver_inputs": {
                "values": {"job": {"image": "img:1"}},
                "secret_refs": {"source": {"password": {"ref": "r", "store": "s", "version": "1"}}},
                "something_new": true
            },
            "provision": null,
            "criteria": [{"id": "c1", "env_type": "development"}, {"id": "c2", "class": null, "res_id": "x"}],
            "is_default": false,
            "created_by": null,
            "current_version_id": "v-old",
            "in_place_driver_change": false,
            "future_field": {"nested": [1, 2, 3]}
        });
        let def: Definition = serde_json::from_value(body).expect("lenient parse");
        assert_eq!(def.type_, "s3");
        assert_eq!(def.driver_account, None);
        assert_eq!(def.provision, None);
        assert_eq!(def.created_by, "");
        assert_eq!(def.created_at, "");
        assert!(!def.is_deleted);
        assert_eq!(def.active_version_id, "v-old");
        assert_eq!(def.criteria.len(), 2);
        assert_eq!(def.criteria[0].class, "default");
        assert_eq!(def.criteria[1].class, "default");
        let inputs = def.driver_inputs.expect("inputs");
        assert!(inputs.secret_refs.is_some());
        assert!(inputs.secrets.is_none());
    }

    #[test]
    fn definition_parses_minimal_and_both_version_fields() {
        let def: Definition = serde_json::from_str(r#"{"id":"x"}"#).expect("minimal");
        assert_eq!(def.id, "x");
        assert!(def.criteria.is_empty());
        let def: Definition = serde_json::from_str(
            r#"{"id":"x","active_version_id":"new","current_version_id":"old","criteria":null}"#,
        )
        .expect("both names");
        assert_eq!(def.active_version_id, "new");
    }

    #[test]
    fn numbers_survive_unchanged() {
        // Why it matters: values are user data; arbitrary_precision keeps big and decimal numbers exact.
        let text =
            r#"{"id":"x","driver_inputs":{"values":{"n":12345678901234567890123,"f":0.10}}}"#;
        let def: Definition = serde_json::from_str(text).expect("parse");
        let values = def.driver_inputs.and_then(|i| i.values).expect("values");
        assert_eq!(values["n"].to_string(), "12345678901234567890123");
        assert_eq!(values["f"].to_string(), "0.10");
    }

    #[test]
    fn create_body_uses_spec_names_and_skips_none() {
        let create = DefinitionCreate {
            id: "config-container-runner".into(),
            name: "Config".into(),
            type_: "config".into(),
            driver_type: "humanitec/template".into(),
            driver_inputs: Some(DriverInputs {
                values: Some(JsonObject::new()),
                ..DriverInputs::default()
            }),
            criteria: Some(vec![CriteriaRule {
                res_id: Some("container-runner".into()),
                class: Some("default".into()),
                ..CriteriaRule::default()
            }]),
            ..DefinitionCreate::default()
        };
        assert_eq!(
            serde_json::to_value(&create).expect("serialize"),
            json!({
                "id": "config-container-runner",
                "name": "Config",
                "type": "config",
                "driver_type": "humanitec/template",
                "driver_inputs": {"values": {}},
                "criteria": [{"res_id": "container-runner", "class": "default"}]
            })
        );
    }

    #[test]
    fn rule_matching_follows_api_defaults() {
        let stored = Criteria {
            id: "c1".into(),
            app_id: None,
            env_id: Some(String::new()),
            env_type: Some("development".into()),
            res_id: None,
            class: "default".into(),
        };
        let cases = [
            (
                CriteriaRule {
                    env_type: Some("development".into()),
                    ..CriteriaRule::default()
                },
                true,
            ),
            (
                CriteriaRule {
                    env_type: Some("development".into()),
                    class: Some("default".into()),
                    app_id: Some(String::new()),
                    ..CriteriaRule::default()
                },
                true,
            ),
            (
                CriteriaRule {
                    env_type: Some("development".into()),
                    class: Some("large".into()),
                    ..CriteriaRule::default()
                },
                false,
            ),
            (
                CriteriaRule {
                    env_type: Some("production".into()),
                    ..CriteriaRule::default()
                },
                false,
            ),
            (CriteriaRule::default(), false),
        ];
        for (rule, want) in cases {
            assert_eq!(rule.matches(&stored), want, "{rule:?}");
        }
    }

    #[test]
    fn debug_hides_secret_values() {
        let inputs = DriverInputs {
            values: None,
            secrets: Some(
                json!({"agent_url": "https://hidden.example"})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
            secret_refs: Some(
                json!({"pw": {"value": "hunter2"}})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        };
        let text = format!("{inputs:?}");
        assert!(text.contains("agent_url"), "{text}");
        assert!(
            text.contains(&format!("{{\"agent_url\": {}}}", crate::text::MASK)),
            "{text}"
        );
        assert!(!text.contains("hidden.example"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
