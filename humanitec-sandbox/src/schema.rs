//! Strict request validation: hand-written copies of the spec's request schemas
//! (`CreateResourceDefinitionRequestRequest`, `UpdateResourceDefinitionRequestRequest`,
//! `PatchResourceDefinitionRequestRequest`, `MatchingCriteriaRuleRequest`, `ValuesSecretsRefsRequest`,
//! `ProvisionDependenciesRequest`), the sandbox's own admin bodies, the id patterns, and the
//! validator that applies them.
//!
//! The rules: an object schema with declared properties rejects unknown properties at any depth;
//! required properties must be present and not null; types must match; `id` and `driver_account`
//! must match the spec pattern. A `null` optional property counts as absent, as Go's JSON decoding in
//! the real API treats it. The spec-conformance test checks these copies against the spec file.

use serde_json::Value;

use crate::error::ApiError;

/// A property's or item's schema.
#[derive(Debug)]
pub(crate) enum Schema {
    /// `type: string`.
    Str,
    /// `type: string` with one of the spec's patterns.
    Pattern(Pattern),
    /// `type: boolean`.
    Bool,
    /// `type: number`.
    Number,
    /// `type: integer` (non-negative for the sandbox's uses).
    Integer,
    /// `type: object, additionalProperties: true`: any object.
    FreeObject,
    /// An object with declared properties and no additional ones.
    Object(&'static ObjectSchema),
    /// `type: object, additionalProperties: <schema>`: a map.
    Map(&'static Schema),
    /// `type: array, items: <schema>`.
    Array(&'static Schema),
}

/// A string pattern from the spec, checked without a regex engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `^[a-z0-9][a-z0-9-]+[a-z0-9]$` (definition ids).
    Identifier,
    /// The same pattern for `driver_account`, except that an empty string (which means "unset") and a
    /// value holding a `${…}` placeholder are accepted.
    DriverAccount,
}

impl Pattern {
    /// Whether `s` matches.
    pub(crate) fn accepts(self, s: &str) -> bool {
        match self {
            Pattern::Identifier => is_identifier(s),
            // Why: official examples set `driver_account` to placeholders such as
            // `${resources['config.default#app'].account}`, which the real API evidently accepts.
            Pattern::DriverAccount => s.is_empty() || s.contains("${") || is_identifier(s),
        }
    }

    /// The pattern text, for messages.
    pub(crate) fn text(self) -> &'static str {
        "^[a-z0-9][a-z0-9-]+[a-z0-9]$"
    }
}

/// An object schema: declared properties, required ones, nothing else allowed.
#[derive(Debug)]
pub(crate) struct ObjectSchema {
    /// The spec's schema name (or the sandbox's, for admin bodies).
    pub(crate) name: &'static str,
    /// Declared properties.
    pub(crate) properties: &'static [(&'static str, Schema)],
    /// Required property names.
    pub(crate) required: &'static [&'static str],
}

/// `MatchingCriteriaRuleRequest`.
pub(crate) static MATCHING_CRITERIA_RULE_REQUEST: ObjectSchema = ObjectSchema {
    name: "MatchingCriteriaRuleRequest",
    properties: &[
        ("app_id", Schema::Str),
        ("class", Schema::Str),
        ("env_id", Schema::Str),
        ("env_type", Schema::Str),
        ("res_id", Schema::Str),
    ],
    required: &[],
};

/// `ProvisionDependenciesRequest`.
pub(crate) static PROVISION_DEPENDENCIES_REQUEST: ObjectSchema = ObjectSchema {
    name: "ProvisionDependenciesRequest",
    properties: &[
        ("is_dependent", Schema::Bool),
        ("match_dependents", Schema::Bool),
        ("params", Schema::FreeObject),
    ],
    required: &[],
};

/// `ValuesSecretsRefsRequest`. The leaves of `secret_refs` are checked by `secrets.rs`, because the
/// spec declares `secret_refs` as a free object and describes its leaves in prose.
pub(crate) static VALUES_SECRETS_REFS_REQUEST: ObjectSchema = ObjectSchema {
    name: "ValuesSecretsRefsRequest",
    properties: &[
        ("secret_refs", Schema::FreeObject),
        ("secrets", Schema::FreeObject),
        ("values", Schema::FreeObject),
    ],
    required: &[],
};

/// An item of `criteria`.
static CRITERIA_ITEM: Schema = Schema::Object(&MATCHING_CRITERIA_RULE_REQUEST);
/// A value of `provision`.
static PROVISION_ITEM: Schema = Schema::Object(&PROVISION_DEPENDENCIES_REQUEST);

/// `CreateResourceDefinitionRequestRequest` (POST `/resources/defs`).
pub(crate) static CREATE_RESOURCE_DEFINITION_REQUEST: ObjectSchema = ObjectSchema {
    name: "CreateResourceDefinitionRequestRequest",
    properties: &[
        ("criteria", Schema::Array(&CRITERIA_ITEM)),
        ("driver_account", Schema::Pattern(Pattern::DriverAccount)),
        (
            "driver_inputs",
            Schema::Object(&VALUES_SECRETS_REFS_REQUEST),
        ),
        ("driver_type", Schema::Str),
        ("id", Schema::Pattern(Pattern::Identifier)),
        ("in_place_driver_change", Schema::Bool),
        ("name", Schema::Str),
        ("provision", Schema::Map(&PROVISION_ITEM)),
        ("type", Schema::Str),
    ],
    required: &["id", "name", "type", "driver_type"],
};

/// `UpdateResourceDefinitionRequestRequest` (PUT `/resources/defs/{defId}`).
pub(crate) static UPDATE_RESOURCE_DEFINITION_REQUEST: ObjectSchema = ObjectSchema {
    name: "UpdateResourceDefinitionRequestRequest",
    properties: &[
        ("driver_account", Schema::Pattern(Pattern::DriverAccount)),
        (
            "driver_inputs",
            Schema::Object(&VALUES_SECRETS_REFS_REQUEST),
        ),
        ("driver_type", Schema::Str),
        ("in_place_driver_change", Schema::Bool),
        ("name", Schema::Str),
        ("proposed", Schema::Bool),
        ("provision", Schema::Map(&PROVISION_ITEM)),
    ],
    required: &["name"],
};

/// `PatchResourceDefinitionRequestRequest` (PATCH `/resources/defs/{defId}`). Note: no `driver_type`.
pub(crate) static PATCH_RESOURCE_DEFINITION_REQUEST: ObjectSchema = ObjectSchema {
    name: "PatchResourceDefinitionRequestRequest",
    properties: &[
        ("driver_account", Schema::Pattern(Pattern::DriverAccount)),
        (
            "driver_inputs",
            Schema::Object(&VALUES_SECRETS_REFS_REQUEST),
        ),
        ("in_place_driver_change", Schema::Bool),
        ("name", Schema::Str),
        ("proposed", Schema::Bool),
        ("provision", Schema::Map(&PROVISION_ITEM)),
    ],
    required: &[],
};

/// The sandbox admin body item for simulated Active Resources.
pub(crate) static SANDBOX_ACTIVE_RESOURCE: ObjectSchema = ObjectSchema {
    name: "SandboxActiveResource",
    properties: &[
        ("app_id", Schema::Str),
        ("class", Schema::Str),
        ("env_id", Schema::Str),
        ("env_type", Schema::Str),
        ("res_id", Schema::Str),
        ("resource", Schema::FreeObject),
        ("status", Schema::Str),
    ],
    required: &["app_id", "env_id", "res_id"],
};

/// A string item of an array.
static STRING_ITEM: Schema = Schema::Str;

/// The sandbox admin body for fault settings.
pub(crate) static SANDBOX_FAULTS: ObjectSchema = ObjectSchema {
    name: "SandboxFaults",
    properties: &[
        ("after_delay_ms", Schema::Integer),
        ("after_kinds", Schema::Array(&STRING_ITEM)),
        ("after_methods", Schema::Array(&STRING_ITEM)),
        ("after_rate", Schema::Number),
        ("latency_ms", Schema::Integer),
        ("rate", Schema::Number),
        ("retry_after_secs", Schema::Integer),
    ],
    required: &[],
};

/// Whether `c` is `[a-z0-9]`.
fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `^[a-z0-9][a-z0-9-]+[a-z0-9]$`.
pub(crate) fn is_identifier(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() >= 3
                && is_lower_alnum(first)
                && is_lower_alnum(last)
                && bytes.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// The org id pattern `^[a-z0-9](?:-?[a-z0-9]+)+$`, max 50 characters.
///
/// Why this form: the regex means "at least two characters of `[a-z0-9-]`, starting and ending with a
/// letter or digit, with no two dashes in a row", which is what is checked here.
pub(crate) fn is_org_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            (2..=50).contains(&bytes.len())
                && is_lower_alnum(first)
                && is_lower_alnum(last)
                && bytes.iter().all(|&c| is_lower_alnum(c) || c == b'-')
                && !s.contains("--")
        }
        _ => false,
    }
}

/// Validates a request body that must be an object of `schema`.
///
/// A body that is not an object is a 422 (spec intro: "contained an object different from what was
/// expected"); every schema violation inside it is a 400. With `nulls_in_maps`, map values may be
/// `null` (PATCH: "a map property set to null is removed").
pub(crate) fn validate_object(
    schema: &ObjectSchema,
    body: &Value,
    nulls_in_maps: bool,
) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::unprocessable(format!(
            "The request body must be a JSON object ({}), not {}.",
            schema.name,
            kind(body)
        )));
    }
    check_object(schema, body, "", nulls_in_maps)
}

/// Validates a request body that must be an array of `item` objects.
pub(crate) fn validate_array(item: &ObjectSchema, body: &Value) -> Result<(), ApiError> {
    let Value::Array(items) = body else {
        return Err(ApiError::unprocessable(format!(
            "The request body must be a JSON array of {}, not {}.",
            item.name,
            kind(body)
        )));
    };
    for (index, value) in items.iter().enumerate() {
        let path = format!("[{index}]");
        if value.is_null() {
            return Err(ApiError::bad_request_at(
                &path,
                format!("`{path}` must be a {} object, not null.", item.name),
            ));
        }
        check_object(item, value, &path, false)?;
    }
    Ok(())
}

/// The JSON kind of a value, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Joins a property name onto a path.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Shown for the body itself in messages.
fn display(path: &str) -> &str {
    if path.is_empty() { "(body)" } else { path }
}

/// Checks an object against an object schema.
fn check_object(
    schema: &ObjectSchema,
    value: &Value,
    path: &str,
    nulls_in_maps: bool,
) -> Result<(), ApiError> {
    let Value::Object(map) = value else {
        return Err(type_error(path, schema.name, value));
    };
    for key in map.keys() {
        if !schema.properties.iter().any(|(name, _)| name == key) {
            let at = join(path, key);
            return Err(ApiError::bad_request_at(
                &at,
                format!(
                    "Unknown property `{at}`: {} has no property `{key}`.",
                    schema.name
                ),
            ));
        }
    }
    for required in schema.required {
        if map.get(*required).is_none_or(Value::is_null) {
            let at = join(path, required);
            return Err(ApiError::bad_request_at(
                &at,
                format!(
                    "Missing required property `{at}` ({} requires `{required}`).",
                    schema.name
                ),
            ));
        }
    }
    for (name, property) in schema.properties {
        match map.get(*name) {
            // Why: Go's encoding/json (the real API) decodes `null` into an optional field as "not
            // set", so an explicit null is accepted as absent rather than rejected.
            None | Some(Value::Null) => {}
            Some(value) => check(property, value, &join(path, name), nulls_in_maps)?,
        }
    }
    Ok(())
}

/// The 400 for a value of the wrong type.
fn type_error(path: &str, expected: &str, value: &Value) -> ApiError {
    ApiError::bad_request_at(
        path,
        format!(
            "`{}` must be {expected}, not {}.",
            display(path),
            kind(value)
        ),
    )
}

/// Checks one value against a schema.
fn check(schema: &Schema, value: &Value, path: &str, nulls_in_maps: bool) -> Result<(), ApiError> {
    match schema {
        Schema::Str => {
            if !value.is_string() {
                return Err(type_error(path, "a string", value));
            }
        }
        Schema::Pattern(pattern) => {
            let Value::String(s) = value else {
                return Err(type_error(path, "a string", value));
            };
            if !pattern.accepts(s) {
                return Err(ApiError::bad_request_at(
                    path,
                    format!(
                        "`{path}` value `{s}` does not match the pattern {}.",
                        pattern.text()
                    ),
                ));
            }
        }
        Schema::Bool => {
            if !value.is_boolean() {
                return Err(type_error(path, "a boolean", value));
            }
        }
        Schema::Number => {
            if value.as_f64().is_none() {
                return Err(type_error(path, "a number", value));
            }
        }
        Schema::Integer => {
            if value.as_u64().is_none() {
                return Err(type_error(path, "a non-negative integer", value));
            }
        }
        Schema::FreeObject => {
            if !value.is_object() {
                return Err(type_error(path, "an object", value));
            }
        }
        Schema::Object(object) => {
            if !value.is_object() {
                return Err(type_error(path, "an object", value));
            }
            check_object(object, value, path, nulls_in_maps)?;
        }
        Schema::Map(item) => {
            let Value::Object(map) = value else {
                return Err(type_error(path, "an object", value));
            };
            for (key, entry) in map {
                let at = join(path, key);
                if entry.is_null() {
                    if nulls_in_maps {
                        continue;
                    }
                    return Err(ApiError::bad_request_at(
                        &at,
                        format!("`{at}` must not be null."),
                    ));
                }
                check(item, entry, &at, nulls_in_maps)?;
            }
        }
        Schema::Array(item) => {
            let Value::Array(items) = value else {
                return Err(type_error(path, "an array", value));
            };
            for (index, entry) in items.iter().enumerate() {
                let at = format!("{path}[{index}]");
                if entry.is_null() {
                    return Err(ApiError::bad_request_at(
                        &at,
                        format!("`{at}` must not be null."),
                    ));
                }
                check(item, entry, &at, nulls_in_maps)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifier_pattern() {
        for ok in ["abc", "a-b", "my-s3-bucket", "a--b", "000"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "ab", "-ab", "ab-", "Abc", "a_b", "a.b", "äbc"] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(Pattern::DriverAccount.accepts(""));
        assert!(Pattern::DriverAccount.accepts("${resources['config.default#app'].account}"));
        assert!(!Pattern::DriverAccount.accepts("Not Valid"));
    }

    #[test]
    fn org_pattern() {
        for ok in ["ab", "a-b", "my-org-1", "x9"] {
            assert!(is_org_id(ok), "{ok}");
        }
        let long = "a".repeat(51);
        for bad in ["a", "a--b", "-ab", "ab-", "AB", "a_b", long.as_str()] {
            assert!(!is_org_id(bad), "{bad}");
        }
    }

    #[test]
    fn validation_errors_name_the_path() {
        let body = json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
            "criteria": [{"env_type": "dev", "colour": "red"}]});
        let err = validate_object(&CREATE_RESOURCE_DEFINITION_REQUEST, &body, false)
            .expect_err("unknown nested property");
        assert_eq!(err.status.as_u16(), 400);
        assert_eq!(
            err.details.and_then(|d| d.get("path").cloned()),
            Some(json!("criteria[0].colour"))
        );
        let err = validate_object(
            &CREATE_RESOURCE_DEFINITION_REQUEST,
            &json!({"id": "abc", "name": "n", "type": "t", "driver_type": null}),
            false,
        )
        .expect_err("null required");
        assert!(err.message.contains("driver_type"));
        let err = validate_object(&CREATE_RESOURCE_DEFINITION_REQUEST, &json!([]), false)
            .expect_err("array body");
        assert_eq!(err.status.as_u16(), 422);
        assert!(
            validate_object(
                &PATCH_RESOURCE_DEFINITION_REQUEST,
                &json!({"provision": {"a": null}}),
                true
            )
            .is_ok()
        );
        assert!(
            validate_object(
                &UPDATE_RESOURCE_DEFINITION_REQUEST,
                &json!({"name": "n", "provision": {"a": null}}),
                false
            )
            .is_err()
        );
    }
}
