//! Spec conformance: a small OpenAPI 3.0 schema validator, a test that drives every Resource
//! Definitions endpoint (success and error cases) and validates each response body against the
//! response schema the spec declares for that path, method and status, and a test that the sandbox's
//! hand-written request schemas (`schema.rs`) agree with the spec.
//!
//! The spec is test data: `tests/data/humanitec-openapi.json` (origin in `tests/data/README.md`).
//!
//! The validator covers what the definitions schemas use: `$ref`, `type`, `properties`, `required`,
//! `additionalProperties` (bool or schema), `items`, `nullable`, `enum`, `allOf`/`oneOf`/`anyOf`,
//! `minLength`/`maxLength` and `format: date-time`. `pattern` is not checked (no regex engine).
//! It is stricter than OpenAPI in one way, on purpose: an object schema with declared `properties`
//! and no `additionalProperties` rejects undeclared keys, so the sandbox can't answer fields the
//! spec doesn't know.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::Options;
use crate::schema::{self, ObjectSchema, Schema};
use crate::test_support::{Resp, TestServer, config};

/// Where the spec lives.
const SPEC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/humanitec-openapi.json"
);

/// Statuses the spec intro lists for every endpoint ("Response Codes"); when an operation doesn't
/// declare one of them, its body must be a `HumanitecErrorResponse`.
const GENERIC_ERROR_STATUSES: [u16; 9] = [400, 401, 403, 404, 405, 409, 422, 429, 500];

/// The collection path template.
const DEFS: &str = "/orgs/{orgId}/resources/defs";
/// The definition path template.
const DEF: &str = "/orgs/{orgId}/resources/defs/{defId}";
/// The criteria path template.
const CRITERIA: &str = "/orgs/{orgId}/resources/defs/{defId}/criteria";
/// The criterion path template.
const CRITERION: &str = "/orgs/{orgId}/resources/defs/{defId}/criteria/{criteriaId}";
/// The Active Resources path template.
const RESOURCES: &str = "/orgs/{orgId}/resources/defs/{defId}/resources";

/// The parsed spec.
struct Spec {
    /// The whole document.
    root: Value,
}

impl Spec {
    /// Loads the spec file.
    fn load() -> Spec {
        let text = std::fs::read_to_string(SPEC_PATH)
            .unwrap_or_else(|err| panic!("cannot read the spec at {SPEC_PATH}: {err}"));
        let root = serde_json::from_str(&text).expect("the spec is JSON");
        Spec { root }
    }

    /// Resolves a local `$ref` (`#/…`, a JSON pointer).
    fn resolve(&self, reference: &str) -> Option<&Value> {
        reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
    }

    /// A component schema by name.
    fn component(&self, name: &str) -> &Value {
        self.root
            .pointer(&format!("/components/schemas/{name}"))
            .unwrap_or_else(|| panic!("no component schema {name}"))
    }

    /// Validates `value` against `schema`; messages go to `errors`.
    fn validate(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        self.check(schema, value, path, errors, 0);
    }

    /// The validator proper.
    fn check(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 64 {
            errors.push(format!("{path}: schema nesting too deep"));
            return;
        }
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                errors.push(format!("{path}: no value is allowed here"));
                return;
            }
            Value::Object(map) => map,
            _ => {
                errors.push(format!("{path}: malformed schema"));
                return;
            }
        };
        // OpenAPI 3.0: siblings of `$ref` are ignored.
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.check(target, value, path, errors, depth + 1),
                None => errors.push(format!("{path}: unresolved $ref {reference}")),
            }
            return;
        }
        if value.is_null() {
            if schema.get("nullable") == Some(&Value::Bool(true)) {
                return;
            }
            if schema.contains_key("type") {
                errors.push(format!(
                    "{path}: null is not allowed (schema is not nullable)"
                ));
                return;
            }
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for part in parts {
                self.check(part, value, path, errors, depth + 1);
            }
        }
        for (keyword, want_exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(parts) = schema.get(keyword).and_then(Value::as_array) {
                let passing = parts
                    .iter()
                    .filter(|part| {
                        let mut sub = Vec::new();
                        self.check(part, value, path, &mut sub, depth + 1);
                        sub.is_empty()
                    })
                    .count();
                let ok = if want_exactly_one {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    errors.push(format!("{path}: {passing} of the {keyword} schemas match"));
                }
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!("{path}: {value} is not one of {options:?}"));
        }
        let declared_type = schema.get("type").and_then(Value::as_str);
        let object_like = declared_type == Some("object")
            || (declared_type.is_none() && schema.contains_key("properties"));
        match declared_type {
            Some("string") => match value.as_str() {
                None => errors.push(format!("{path}: expected a string, got {value}")),
                Some(text) => {
                    if schema.get("format").and_then(Value::as_str) == Some("date-time")
                        && !is_rfc3339(text)
                    {
                        errors.push(format!("{path}: `{text}` is not an RFC 3339 date-time"));
                    }
                    let length = text.chars().count() as u64;
                    if schema
                        .get("minLength")
                        .and_then(Value::as_u64)
                        .is_some_and(|min| length < min)
                        || schema
                            .get("maxLength")
                            .and_then(Value::as_u64)
                            .is_some_and(|max| length > max)
                    {
                        errors.push(format!("{path}: `{text}` has the wrong length"));
                    }
                }
            },
            Some("boolean") if !value.is_boolean() => {
                errors.push(format!("{path}: expected a boolean, got {value}"));
            }
            Some("integer") if !(value.is_i64() || value.is_u64()) => {
                errors.push(format!("{path}: expected an integer, got {value}"));
            }
            Some("number") if !value.is_number() => {
                errors.push(format!("{path}: expected a number, got {value}"));
            }
            Some("array") => match value.as_array() {
                None => errors.push(format!("{path}: expected an array, got {value}")),
                Some(items) => {
                    if let Some(item_schema) = schema.get("items") {
                        for (index, item) in items.iter().enumerate() {
                            self.check(
                                item_schema,
                                item,
                                &format!("{path}[{index}]"),
                                errors,
                                depth + 1,
                            );
                        }
                    }
                }
            },
            _ => {}
        }
        if object_like {
            let Some(map) = value.as_object() else {
                errors.push(format!("{path}: expected an object, got {value}"));
                return;
            };
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        errors.push(format!("{path}: missing required property `{name}`"));
                    }
                }
            }
            for (key, item) in map {
                let at = format!("{path}.{key}");
                if let Some(property) = properties.and_then(|p| p.get(key)) {
                    self.check(property, item, &at, errors, depth + 1);
                    continue;
                }
                match schema.get("additionalProperties") {
                    Some(Value::Bool(true)) => {}
                    Some(extra @ Value::Object(_)) => {
                        self.check(extra, item, &at, errors, depth + 1)
                    }
                    // Strict: with declared properties, undeclared keys are errors.
                    Some(Value::Bool(false)) => errors.push(format!("{at}: property not allowed")),
                    _ if properties.is_some() => {
                        errors.push(format!("{at}: property not declared by the schema"));
                    }
                    _ => {}
                }
            }
        }
    }

    /// The response the spec declares for an operation and status.
    fn declared(&self, template: &str, method: &str, status: u16) -> Declared<'_> {
        assert!(
            self.root
                .get("paths")
                .and_then(|paths| paths.get(template))
                .is_some(),
            "the spec has no path {template}"
        );
        // A method the path doesn't have (405) declares nothing.
        let Some(operation) = self
            .root
            .get("paths")
            .and_then(|paths| paths.get(template))
            .and_then(|item| item.get(method.to_ascii_lowercase()))
        else {
            return Declared::Undeclared;
        };
        match operation
            .get("responses")
            .and_then(|responses| responses.get(status.to_string()))
        {
            None => Declared::Undeclared,
            Some(response) => match response.pointer("/content/application~1json/schema") {
                Some(schema) => Declared::Json(schema),
                None => Declared::NoContent,
            },
        }
    }
}

/// What the spec declares for a status.
enum Declared<'a> {
    /// A JSON body with this schema.
    Json(&'a Value),
    /// No body.
    NoContent,
    /// Not declared for the operation.
    Undeclared,
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (Some(_year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    let separators = bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && matches!(bytes.get(10), Some(b'T' | b't'))
        && bytes.get(13) == Some(&b':')
        && bytes.get(16) == Some(&b':');
    if !separators
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return false;
        }
        rest = &fraction[count..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Drives the sandbox and checks every answer against the spec.
struct Checker<'a> {
    /// The spec.
    spec: &'a Spec,
    /// The sandbox.
    server: &'a TestServer,
    /// (template, method, status) seen.
    covered: BTreeSet<(String, String, u16)>,
}

impl Checker<'_> {
    /// Calls with the test token and checks the answer.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let resp = self.server.call(method, path, body.as_ref()).await;
        self.check(method, template, path, &resp);
        resp
    }

    /// Calls with a raw Authorization header / body and checks the answer.
    async fn call_raw(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let resp = self
            .server
            .call_raw(method, path, authorization, body)
            .await;
        self.check(method, template, path, &resp);
        resp
    }

    /// Validates one answer.
    fn check(&mut self, method: &str, template: &str, path: &str, resp: &Resp) {
        let what = format!("{method} {path} -> {}", resp.status);
        let schema = match self.spec.declared(template, method, resp.status) {
            Declared::NoContent => {
                assert!(
                    resp.text.is_empty(),
                    "{what}: the spec declares no body: {}",
                    resp.text
                );
                self.covered
                    .insert((template.to_owned(), method.to_owned(), resp.status));
                return;
            }
            Declared::Json(schema) => {
                self.covered
                    .insert((template.to_owned(), method.to_owned(), resp.status));
                schema.clone()
            }
            Declared::Undeclared => {
                assert!(
                    GENERIC_ERROR_STATUSES.contains(&resp.status),
                    "{what}: status neither declared for the operation nor listed in the spec intro"
                );
                json!({"$ref": "#/components/schemas/HumanitecErrorResponse"})
            }
        };
        let Some(body) = &resp.json else {
            panic!("{what}: body is not JSON: {}", resp.text);
        };
        assert_eq!(
            resp.header("content-type").as_deref(),
            Some("application/json"),
            "{what}"
        );
        let mut errors = Vec::new();
        self.spec.validate(&schema, body, "$", &mut errors);
        assert!(errors.is_empty(), "{what}: {errors:#?}\nbody: {body}");
    }
}

/// The spec's request example for an operation, or a schema's example.
fn example(spec: &Spec, pointer: &str) -> Value {
    spec.root
        .pointer(pointer)
        .cloned()
        .unwrap_or_else(|| panic!("no example at {pointer}"))
}

#[tokio::test]
async fn every_endpoint_answers_as_the_spec_declares() {
    let spec = Spec::load();
    let server = TestServer::start(Options {
        seed: Some(7),
        ..config()
    })
    .await;
    let mut c = Checker {
        spec: &spec,
        server: &server,
        covered: BTreeSet::new(),
    };
    let org = "/orgs/conf-org/resources/defs";

    // List, empty and generic errors.
    assert_eq!(c.call("GET", DEFS, org, None).await.status, 200);
    assert_eq!(c.call_raw("GET", DEFS, org, None, None).await.status, 401);
    assert_eq!(
        c.call("GET", DEFS, "/orgs/Bad_Org/resources/defs", None)
            .await
            .status,
        404
    );
    assert_eq!(
        c.call("GET", DEFS, &format!("{org}?deleted=maybe"), None)
            .await
            .status,
        400
    );

    // Create: the spec's own example, a full body, and the error cases.
    let create_example = example(
        &spec,
        "/components/schemas/CreateResourceDefinitionRequestRequest/example",
    );
    let resp = c.call("POST", DEFS, org, Some(create_example)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let full = json!({
        "id": "conf-def", "name": "Conformance", "type": "s3", "driver_type": "humanitec/container-runner",
        "driver_account": "aws-dev", "in_place_driver_change": true,
        "driver_inputs": {
            "values": {"job": {"image": "img:1", "command": ["/opt/container"]}},
            "secrets": {"source": {"password": "pw"}},
            "secret_refs": {"files": {"key": {"store": "vault", "ref": "a/b", "version": "2"}},
                            "job": {"variables": {"TOKEN": {"value": "t"}}}}
        },
        "provision": {"aws-policy": {"is_dependent": true, "params": {"a": 1}}, "dns#my-dns": {}},
        "criteria": [{"env_type": "development"}, {"app_id": "shop", "res_id": "db", "class": "large"}]
    });
    assert_eq!(
        c.call("POST", DEFS, org, Some(full.clone())).await.status,
        200
    );
    assert_eq!(c.call("POST", DEFS, org, Some(full)).await.status, 409);
    assert_eq!(
        c.call(
            "POST",
            DEFS,
            org,
            Some(json!({"id": "x-y-z", "name": "n", "type": "t", "driver_type": "d", "zzz": 1}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        c.call(
            "POST",
            DEFS,
            org,
            Some(json!({"id": "x-y-z", "name": "n", "type": "t"}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        c.call_raw(
            "POST",
            DEFS,
            org,
            Some("Bearer test-token"),
            Some("{nope".to_owned())
        )
        .await
        .status,
        422
    );
    assert_eq!(c.call("DELETE", DEFS, org, None).await.status, 405);

    // Lists with filters and deleted.
    for query in [
        "",
        "?res_type=s3",
        "?app=shop&env_type=development&class=large",
        "?deleted=true",
    ] {
        let resp = c.call("GET", DEFS, &format!("{org}{query}"), None).await;
        assert_eq!(resp.status, 200);
    }

    // Get.
    let def_path = format!("{org}/conf-def");
    assert_eq!(c.call("GET", DEF, &def_path, None).await.status, 200);
    assert_eq!(
        c.call("GET", DEF, &format!("{org}/missing"), None)
            .await
            .status,
        404
    );

    // Put: the spec's example, a replacement, errors.
    let update_example = example(
        &spec,
        "/components/schemas/UpdateResourceDefinitionRequestRequest/example",
    );
    assert_eq!(
        c.call(
            "PUT",
            DEF,
            &format!("{org}/dev-postgres"),
            Some(update_example)
        )
        .await
        .status,
        200
    );
    let put = json!({"name": "Renamed", "driver_inputs": {"values": {"a": "b"}, "secrets": {"s": "1"}},
                     "provision": {"x": {"match_dependents": true}}});
    assert_eq!(c.call("PUT", DEF, &def_path, Some(put)).await.status, 200);
    assert_eq!(
        c.call("PUT", DEF, &def_path, Some(json!({"type": "s3"})))
            .await
            .status,
        400
    );
    assert_eq!(
        c.call(
            "PUT",
            DEF,
            &format!("{org}/missing"),
            Some(json!({"name": "n"}))
        )
        .await
        .status,
        404
    );

    // Patch: the spec's example, a merge, errors.
    let patch_example = example(
        &spec,
        "/components/schemas/PatchResourceDefinitionRequestRequest/example",
    );
    assert_eq!(
        c.call(
            "PATCH",
            DEF,
            &format!("{org}/dev-postgres"),
            Some(patch_example)
        )
        .await
        .status,
        200
    );
    let patch = json!({"driver_inputs": {"values": {"a": null, "c": 1}, "secret_refs": {"t": {"value": "v"}}}});
    assert_eq!(
        c.call("PATCH", DEF, &def_path, Some(patch)).await.status,
        200
    );
    assert_eq!(
        c.call("PATCH", DEF, &def_path, Some(json!({"driver_type": "x"})))
            .await
            .status,
        400
    );
    assert_eq!(
        c.call("PATCH", DEF, &format!("{org}/missing"), Some(json!({})))
            .await
            .status,
        404
    );

    // Criteria: the spec's examples, duplicates, errors.
    let criteria_path = format!("{def_path}/criteria");
    let post_example = example(
        &spec,
        "/paths/~1orgs~1{orgId}~1resources~1defs~1{defId}~1criteria/post/requestBody/content/application~1json/example",
    );
    let put_example = example(
        &spec,
        "/paths/~1orgs~1{orgId}~1resources~1defs~1{defId}~1criteria/put/requestBody/content/application~1json/example",
    );
    let added = c
        .call("POST", CRITERIA, &criteria_path, Some(post_example.clone()))
        .await;
    assert_eq!(added.status, 200, "{}", added.text);
    assert_eq!(
        c.call("POST", CRITERIA, &criteria_path, Some(post_example))
            .await
            .status,
        409
    );
    assert_eq!(
        c.call(
            "POST",
            CRITERIA,
            &criteria_path,
            Some(json!({"colour": "x"}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        c.call(
            "POST",
            CRITERIA,
            &format!("{org}/missing/criteria"),
            Some(json!({}))
        )
        .await
        .status,
        404
    );
    let replaced = c
        .call(
            "PUT",
            CRITERIA,
            &criteria_path,
            Some(json!([{"env_type": "development"}, {"env_id": "staging"}])),
        )
        .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(
        c.call("PUT", CRITERIA, &criteria_path, Some(put_example))
            .await
            .status,
        200
    );
    assert_eq!(
        c.call(
            "PUT",
            CRITERIA,
            &criteria_path,
            Some(json!([{"env_id": "a"}, {"env_id": "a"}]))
        )
        .await
        .status,
        409
    );
    assert_eq!(
        c.call("PUT", CRITERIA, &criteria_path, Some(json!([{"bad": 1}])))
            .await
            .status,
        400
    );
    assert_eq!(
        c.call(
            "PUT",
            CRITERIA,
            &format!("{org}/missing/criteria"),
            Some(json!([]))
        )
        .await
        .status,
        404
    );
    let criterion_id = c.call("GET", DEF, &def_path, None).await.body()["criteria"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!criterion_id.is_empty());

    // Active Resources (through the sandbox admin endpoint) make deletes conflict.
    let set = server
        .call(
            "PUT",
            "/_sandbox/orgs/conf-org/resources/defs/conf-def/active-resources",
            Some(&json!([{"app_id": "shop", "env_id": "production", "res_id": "db", "resource": {"host": "h"}}])),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let mut errors = Vec::new();
    spec.validate(
        &json!({"type": "array", "items": {"$ref": "#/components/schemas/ActiveResourceResponse"}}),
        &set.body(),
        "$",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let listed = c
        .call("GET", RESOURCES, &format!("{def_path}/resources"), None)
        .await;
    assert_eq!(listed.body().as_array().map(Vec::len), Some(1));
    assert_eq!(
        c.call("GET", RESOURCES, &format!("{org}/missing/resources"), None)
            .await
            .status,
        200
    );
    let criterion_path = format!("{criteria_path}/{criterion_id}");
    assert_eq!(
        c.call("DELETE", CRITERION, &criterion_path, None)
            .await
            .status,
        409
    );
    assert_eq!(
        c.call("DELETE", CRITERION, &format!("{criteria_path}/nope"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        c.call(
            "DELETE",
            CRITERION,
            &format!("{criterion_path}?force=true"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(c.call("DELETE", DEF, &def_path, None).await.status, 409);
    assert_eq!(
        c.call("DELETE", DEF, &format!("{def_path}?force=true"), None)
            .await
            .status,
        204
    );
    let deleted = c
        .call("GET", DEF, &format!("{def_path}?deleted=true"), None)
        .await;
    assert_eq!(deleted.body()["is_deleted"], true);
    assert_eq!(
        c.call("GET", RESOURCES, &format!("{def_path}/resources"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        c.call("DELETE", DEF, &format!("{org}/missing"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        c.call("DELETE", DEF, &format!("{org}/dev-postgres"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        c.call("GET", DEFS, &format!("{org}?deleted=true"), None)
            .await
            .status,
        200
    );

    // 500s, through fault injection (only the "before" 500 has a JSON body the spec declares).
    server
        .call("PUT", "/_sandbox/faults", Some(&json!({"rate": 1.0})))
        .await;
    let ops: [(&str, &str, String, Option<Value>); 10] = [
        ("GET", DEFS, org.to_owned(), None),
        (
            "POST",
            DEFS,
            org.to_owned(),
            Some(json!({"id": "f-def", "name": "n", "type": "t", "driver_type": "d"})),
        ),
        ("GET", DEF, format!("{org}/f-def"), None),
        (
            "PUT",
            DEF,
            format!("{org}/f-def"),
            Some(json!({"name": "n"})),
        ),
        ("PATCH", DEF, format!("{org}/f-def"), Some(json!({}))),
        ("DELETE", DEF, format!("{org}/f-def"), None),
        (
            "PUT",
            CRITERIA,
            format!("{org}/f-def/criteria"),
            Some(json!([])),
        ),
        (
            "POST",
            CRITERIA,
            format!("{org}/f-def/criteria"),
            Some(json!({})),
        ),
        ("DELETE", CRITERION, format!("{org}/f-def/criteria/x"), None),
        ("GET", RESOURCES, format!("{org}/f-def/resources"), None),
    ];
    for (method, template, path, body) in ops {
        let mut got_500 = false;
        for _ in 0..200 {
            let resp = server.call(method, &path, body.as_ref()).await;
            if resp.status == 500 {
                c.check(method, template, &path, &resp);
                got_500 = true;
                break;
            }
        }
        assert!(got_500, "no 500 for {method} {path}");
    }
    server
        .call("PUT", "/_sandbox/faults", Some(&json!({"rate": 0})))
        .await;

    // Every status the spec declares for these operations was produced and checked.
    let mut missing = Vec::new();
    for template in [DEFS, DEF, CRITERIA, CRITERION, RESOURCES] {
        let item = spec.root["paths"][template]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (method, operation) in item {
            let statuses = operation["responses"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for status in statuses.keys() {
                let key = (
                    template.to_owned(),
                    method.to_ascii_uppercase(),
                    status.parse::<u16>().unwrap_or(0),
                );
                if !c.covered.contains(&key) {
                    missing.push(key);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "declared but never produced: {missing:?}"
    );
    server.stop().await;
}

/// Compares one of the sandbox's property schemas with the spec's.
fn compare_schema(spec: &Spec, spec_schema: &Value, mine: &Schema, at: &str) {
    let ty = spec_schema.get("type").and_then(Value::as_str);
    match mine {
        Schema::Str => {
            assert_eq!(ty, Some("string"), "{at}");
            assert!(
                spec_schema.get("pattern").is_none(),
                "{at}: the spec has a pattern"
            );
        }
        Schema::Pattern(pattern) => {
            assert_eq!(ty, Some("string"), "{at}");
            assert_eq!(
                spec_schema.get("pattern").and_then(Value::as_str),
                Some(pattern.text()),
                "{at}"
            );
        }
        Schema::Bool => assert_eq!(ty, Some("boolean"), "{at}"),
        Schema::Number | Schema::Integer => panic!("{at}: no spec request schema uses numbers"),
        Schema::FreeObject => {
            assert_eq!(ty, Some("object"), "{at}");
            assert_eq!(
                spec_schema.get("additionalProperties"),
                Some(&Value::Bool(true)),
                "{at}"
            );
            assert!(spec_schema.get("properties").is_none(), "{at}");
        }
        Schema::Object(object) => {
            let reference = spec_schema
                .get("$ref")
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert_eq!(
                reference,
                format!("#/components/schemas/{}", object.name),
                "{at}"
            );
            compare_object(spec, object);
        }
        Schema::Map(item) => {
            assert_eq!(ty, Some("object"), "{at}");
            let extra = spec_schema
                .get("additionalProperties")
                .unwrap_or(&Value::Null);
            assert!(
                extra.is_object(),
                "{at}: additionalProperties is not a schema"
            );
            compare_schema(spec, extra, item, &format!("{at}.*"));
        }
        Schema::Array(item) => {
            assert_eq!(ty, Some("array"), "{at}");
            compare_schema(spec, &spec_schema["items"], item, &format!("{at}[]"));
        }
    }
}

/// Compares one of the sandbox's object schemas with the spec component of the same name.
fn compare_object(spec: &Spec, mine: &ObjectSchema) {
    let theirs = spec.component(mine.name);
    assert_eq!(theirs["type"], "object", "{}", mine.name);
    assert!(
        theirs.get("additionalProperties").is_none(),
        "{}",
        mine.name
    );
    let properties = theirs["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let their_names: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
    let my_names: BTreeSet<&str> = mine.properties.iter().map(|(name, _)| *name).collect();
    assert_eq!(my_names, their_names, "{} properties", mine.name);
    let their_required: BTreeSet<&str> = theirs["required"]
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let my_required: BTreeSet<&str> = mine.required.iter().copied().collect();
    assert_eq!(my_required, their_required, "{} required", mine.name);
    for (name, schema) in mine.properties {
        compare_schema(
            spec,
            &properties[*name],
            schema,
            &format!("{}.{name}", mine.name),
        );
    }
}

#[test]
fn request_schemas_match_the_spec() {
    let spec = Spec::load();
    for mine in [
        &schema::CREATE_RESOURCE_DEFINITION_REQUEST,
        &schema::UPDATE_RESOURCE_DEFINITION_REQUEST,
        &schema::PATCH_RESOURCE_DEFINITION_REQUEST,
        &schema::MATCHING_CRITERIA_RULE_REQUEST,
        &schema::VALUES_SECRETS_REFS_REQUEST,
        &schema::PROVISION_DEPENDENCIES_REQUEST,
    ] {
        compare_object(&spec, mine);
    }
    // The criteria endpoints take MatchingCriteriaRuleRequest (one, or an array of them).
    let criteria = &spec.root["paths"]["/orgs/{orgId}/resources/defs/{defId}/criteria"];
    assert_eq!(
        criteria["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/MatchingCriteriaRuleRequest"
    );
    assert_eq!(
        criteria["put"]["requestBody"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/MatchingCriteriaRuleRequest"
    );
}

#[test]
fn the_validator_catches_violations() {
    let spec = Spec::load();
    let schema = json!({"$ref": "#/components/schemas/ResourceDefinitionResponse"});
    let good = json!({
        "org_id": "o", "id": "abc", "name": "n", "type": "t", "driver_type": "d",
        "created_at": "2024-01-02T03:04:05.678Z", "created_by": "u", "is_default": false,
        "is_deleted": false, "active_version_id": "v", "in_place_driver_change": false,
        "criteria": [{"id": "c", "class": "default"}],
        "driver_inputs": {"values": {"any": [1, {"x": null}]},
                          "secret_refs": {"a": {"store": "s", "ref": "r", "version": "1"}}},
        "provision": {"p": {"is_dependent": true}}
    });
    let mut errors = Vec::new();
    spec.validate(&schema, &good, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let bad_cases = [
        ("/created_at", json!("yesterday")),
        ("/criteria/0/class", Value::Null),
        ("/is_deleted", json!("no")),
        ("/provision/p", json!({})),
        ("/unknown", json!(1)),
        ("/criteria/0/extra", json!("x")),
    ];
    for (pointer, replacement) in bad_cases {
        let mut value = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap_or_default();
        let target = if parent.is_empty() {
            Some(&mut value)
        } else {
            value.pointer_mut(parent)
        };
        if let Some(Value::Object(map)) = target {
            if replacement.is_null() {
                map.remove(key);
            } else {
                map.insert(key.to_owned(), replacement.clone());
            }
        }
        let mut errors = Vec::new();
        spec.validate(&schema, &value, "$", &mut errors);
        assert!(!errors.is_empty(), "{pointer} = {replacement} passed");
    }
    for ok in [
        "2024-01-02T03:04:05Z",
        "2024-01-02t03:04:05.1+01:00",
        "2024-12-31T23:59:60-05:30",
    ] {
        assert!(is_rfc3339(ok), "{ok}");
    }
    for bad in [
        "2024-01-02",
        "2024-13-02T03:04:05Z",
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.Z",
        "x",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
    // nullable, enum and oneOf.
    let nullable = json!({"type": "string", "nullable": true, "enum": ["a", "b"]});
    let mut errors = Vec::new();
    spec.validate(&nullable, &Value::Null, "$", &mut errors);
    spec.validate(&nullable, &json!("a"), "$", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    spec.validate(&nullable, &json!("c"), "$", &mut errors);
    assert_eq!(errors.len(), 1);
    let one_of = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    let mut errors = Vec::new();
    spec.validate(&one_of, &json!(3), "$", &mut errors);
    assert!(errors.is_empty());
    spec.validate(&one_of, &json!(true), "$", &mut errors);
    assert_eq!(errors.len(), 1);
}
