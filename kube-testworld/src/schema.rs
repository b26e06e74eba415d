//! The official Kubernetes v1.31 schemas of the served kinds (vendored in `data/`, see its README)
//! and a validator for the subset of JSON Schema they use: `type` (with `null`), `properties`,
//! `additionalProperties`, `items`, `required`, `enum`, `$ref`, `oneOf` (int-or-string, quantity)
//! and the formats `int32`, `int64`, `byte` and `date-time`.
//!
//! Validation works as the API server's decoding does: an unknown field is dropped and reported
//! (a warning, or a 400 under `fieldValidation=Strict`), a value of the wrong JSON type is a 400
//! decoding error, and a missing required field is a 422 `Invalid` cause. `null` fields are dropped,
//! as decoding into Go structs drops them.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine;
use serde_json::{Map, Value};

use crate::status::Cause;

/// The vendored schema document.
const SCHEMAS: &str = include_str!("../data/schemas-v1.31.json");

/// The schemas, indexed by `apiVersion/kind`.
pub(crate) struct Schemas {
    defs: Map<String, Value>,
    kinds: HashMap<String, String>,
}

/// What validating one object found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Unknown fields (already removed from the object), as paths like `spec.foo`.
    pub(crate) unknown: Vec<String>,
    /// Wrong JSON types: each makes the request a 400.
    pub(crate) type_errors: Vec<String>,
    /// Semantic problems (missing required fields, bad formats): each makes it a 422.
    pub(crate) causes: Vec<Cause>,
}

/// The parsed vendored schemas (parsed once per process).
pub(crate) fn schemas() -> &'static Schemas {
    static CELL: OnceLock<Schemas> = OnceLock::new();
    CELL.get_or_init(|| {
        // Why: the file is compiled in and checked by a unit test, so a parse failure is a build
        // defect, not a runtime condition.
        let doc: Value = serde_json::from_str(SCHEMAS).unwrap_or_default();
        let defs = doc
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let kinds = doc
            .get("kinds")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Schemas { defs, kinds }
    })
}

impl Schemas {
    /// The root schema of a kind (`apiVersion` as `v1` or `group/version`).
    pub(crate) fn root(&self, api_version: &str, kind: &str) -> Option<&Value> {
        let name = self.kinds.get(&format!("{api_version}/{kind}"))?;
        self.defs.get(name)
    }

    /// Follows `$ref` (repeatedly) to the schema it names.
    pub(crate) fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.defs.get(r) {
                    Some(target) => node = target,
                    None => return node,
                },
                None => return node,
            }
        }
        node
    }

    /// The schema of field `name` inside an object schema.
    pub(crate) fn property<'a>(&'a self, node: &'a Value, name: &str) -> Option<&'a Value> {
        let node = self.resolve(node);
        if let Some(p) = node.get("properties").and_then(|p| p.get(name)) {
            return Some(p);
        }
        match node.get("additionalProperties") {
            Some(Value::Object(_)) => node.get("additionalProperties"),
            _ => None,
        }
    }

    /// The schema of an array's items.
    pub(crate) fn items<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        self.resolve(node).get("items")
    }

    /// Validates `object` against its kind's schema, removing unknown and `null` fields.
    pub(crate) fn validate(&self, api_version: &str, kind: &str, object: &mut Value) -> Findings {
        let mut findings = Findings::default();
        if let Some(root) = self.root(api_version, kind) {
            self.check(root, object, "", &mut findings);
        }
        findings
    }

    fn check(&self, schema: &Value, value: &mut Value, path: &str, out: &mut Findings) {
        let schema = self.resolve(schema);
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let fits = branches.iter().any(|b| type_fits(self.resolve(b), value));
            if !fits {
                out.type_errors
                    .push(type_error(path, value, "int-or-string"));
            }
            return;
        }
        if !type_fits(schema, value) {
            let expected = declared_types(schema).join(" or ");
            out.type_errors.push(type_error(path, value, &expected));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !value.is_null()
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            out.causes.push(Cause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {value}: supported values: {}",
                    list.join(", ")
                ),
            ));
        }
        match value {
            Value::Object(map) => self.check_object(schema, map, path, out),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), out);
                    }
                }
            }
            Value::String(s) => check_string_format(schema, s, path, out),
            Value::Number(n) => check_number_format(schema, n, path, out),
            _ => {}
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        map: &mut Map<String, Value>,
        path: &str,
        out: &mut Findings,
    ) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        // Why: decoding into Go structs turns `null` into the zero value, which is then omitted.
        map.retain(|_, v| !v.is_null());
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let child_schema = match (properties.and_then(|p| p.get(&key)), additional) {
                (Some(s), _) => Some(s),
                (None, Some(a @ Value::Object(_))) => Some(a),
                (None, Some(Value::Bool(false))) => None,
                // Free-form objects (RawExtension, FieldsV1) take anything.
                (None, _) if properties.is_none() => continue,
                (None, _) => None,
            };
            match child_schema {
                Some(s) => {
                    if let Some(child) = map.get_mut(&key) {
                        self.check(s, child, &join(&key), out);
                    }
                }
                None => {
                    map.remove(&key);
                    out.unknown.push(join(&key));
                }
            }
        }
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(req) {
                out.causes.push(Cause::required(join(req)));
            }
        }
    }
}

/// The `type` list of a schema (`["string", "null"]` → both).
fn declared_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether `value` has one of the schema's types (no `type` means any).
fn type_fits(schema: &Value, value: &Value) -> bool {
    let types = declared_types(schema);
    if types.is_empty() {
        return true;
    }
    types.iter().any(|t| match *t {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        _ => false,
    })
}

/// A decoding error message in the shape Go's `encoding/json` gives.
fn type_error(path: &str, value: &Value, expected: &str) -> String {
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("json: cannot unmarshal {got} into Go struct field {path} of type {expected}")
}

fn check_string_format(schema: &Value, s: &str, path: &str, out: &mut Findings) {
    match schema.get("format").and_then(Value::as_str) {
        Some("byte") if base64::engine::general_purpose::STANDARD.decode(s).is_err() => {
            out.type_errors.push(format!(
                "json: cannot unmarshal base64 into Go struct field {path}: illegal base64 data"
            ));
        }
        Some("date-time") if crate::clock::parse_rfc3339(s).is_none() => {
            out.type_errors.push(format!(
                "parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse (field {path})"
            ));
        }
        _ => {}
    }
}

fn check_number_format(schema: &Value, n: &serde_json::Number, path: &str, out: &mut Findings) {
    let fits = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
        Some("int64") => n.as_i64().is_some(),
        _ => true,
    };
    if !fits {
        out.type_errors.push(format!(
            "json: cannot unmarshal number {n} into Go struct field {path} of type int"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_served_kind_has_a_schema() {
        let s = schemas();
        for r in crate::resources::RESOURCES {
            assert!(s.root(&r.api_version(), r.kind).is_some(), "{}", r.kind);
        }
    }

    #[test]
    fn unknown_fields_are_removed_and_reported() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "foo": "bar",
                "ports": [{"containerPort": 80}]}], "nodeSelector": {"a": "b"}}
        });
        let f = schemas().validate("v1", "Pod", &mut pod);
        assert_eq!(f.unknown, vec!["metadata.bogus", "spec.containers[0].foo"]);
        assert!(f.type_errors.is_empty() && f.causes.is_empty(), "{f:?}");
        assert!(pod["spec"]["containers"][0].get("foo").is_none());
    }

    #[test]
    fn types_required_and_formats_are_checked() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"image": "i", "ports": [{"containerPort": "80"}]}],
                "terminationGracePeriodSeconds": 10, "activeDeadlineSeconds": null}});
        let f = schemas().validate("v1", "Pod", &mut pod);
        assert_eq!(f.causes, vec![Cause::required("spec.containers[0].name")]);
        assert_eq!(f.type_errors.len(), 1, "{f:?}");
        assert!(f.type_errors[0].contains("spec.containers[0].ports[0].containerPort"));
        assert!(pod["spec"].get("activeDeadlineSeconds").is_none());

        let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"k": "not base64!"}});
        assert_eq!(
            schemas()
                .validate("v1", "Secret", &mut secret)
                .type_errors
                .len(),
            1
        );

        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "labels": {"a": "b"}}, "data": {"k": "v"}});
        let f = schemas().validate("v1", "ConfigMap", &mut cm);
        assert!(f.unknown.is_empty() && f.type_errors.is_empty() && f.causes.is_empty());

        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"cpu": "1", "memory": 1000}}}]}},
                "backoffLimit": 99999999999_i64}});
        let f = schemas().validate("batch/v1", "Job", &mut job);
        assert_eq!(f.type_errors.len(), 1, "{f:?}");
    }
}
