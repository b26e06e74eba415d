//! Schema-driven JSON codec, following go-cty's `cty/json`.
//!
//! Terraform sends JSON in one place that matters: `UpgradeResourceState.raw_state.json`, the
//! state as stored, written under the schema of the provider version that stored it. So the
//! decoder is deliberately lenient where cty is (numbers may be strings, strings may be numbers
//! or bools, bools may be `"true"`/`"false"`), and it **ignores** object attributes the type
//! does not declare: an attribute removed from the schema may still sit in old state, and the
//! upgrade must drop it rather than fail. Missing attributes are null. JSON has no unknowns.
//!
//! Numbers keep their exact text: the crate enables serde_json's `arbitrary_precision`, so a
//! `serde_json::Number` holds the digits as written.

use std::collections::BTreeMap;
#[cfg(test)]
use std::str::FromStr as _;

use serde_json::Value as Json;

use super::error::{DecodeError, DecodeErrorKind};
#[cfg(test)]
use super::error::{EncodeError, EncodeErrorKind};
use super::msgpack::MAX_DEPTH;
use super::number::Number;
use super::path::PathTrail;
use super::tree::Value;
use super::types::{Type, json_kind};

/// Decodes JSON `bytes` as a value of type `ty`.
///
/// Attributes not in an object type are ignored (see the module docs for why); nesting is
/// bounded by serde_json's recursion limit and by `msgpack::MAX_DEPTH` (200).
///
/// ```ignore
/// let ty = Type::object([("name", Type::String)]);
/// let v = decode(br#"{"name":"r1","removed_in_v2":true}"#, &ty)?;
/// assert_eq!(v, Value::object([("name", Value::string("r1"))]));
/// ```
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let json: Json = serde_json::from_slice(bytes)
        .map_err(|e| DecodeError::new(Default::default(), DecodeErrorKind::Json(e.to_string())))?;
    decode_json(&json, ty)
}

/// Decodes an already parsed JSON document as a value of type `ty` (same rules as [`decode`]).
pub(crate) fn decode_json(json: &Json, ty: &Type) -> Result<Value, DecodeError> {
    decode_value(json, ty, &PathTrail::Root, 0)
}

/// Encodes `value` as JSON for type `ty`.
///
/// Objects get every attribute of their type (null where the value has none), dynamic values
/// become `{"type": ..., "value": ...}`, and numbers keep their exact digits. Unknown values
/// and infinities have no JSON form and are errors.
///
/// Why test-only: Terraform sends JSON but never asks for it back, so the provider has no use for
/// an encoder; the decoder's round-trip tests do.
#[cfg(test)]
pub fn encode(value: &Value, ty: &Type) -> Result<Json, EncodeError> {
    encode_value(value, ty, &PathTrail::Root, 0)
}

/// Converts `json` to a value of type `ty` at `path`, `depth` containers deep.
fn decode_value(
    json: &Json,
    ty: &Type,
    path: &PathTrail<'_>,
    depth: usize,
) -> Result<Value, DecodeError> {
    let at = |kind| DecodeError::new(path.to_path(), kind);
    if depth > MAX_DEPTH {
        return Err(at(DecodeErrorKind::TooDeep(MAX_DEPTH)));
    }
    let mismatch = || {
        at(DecodeErrorKind::TypeMismatch {
            expected: ty.to_string(),
            found: json_kind(json),
        })
    };
    let number = |text: &str| {
        Number::parse(text)
            .map(Value::Number)
            .map_err(|e| at(DecodeErrorKind::InvalidNumber(e)))
    };
    match (json, ty) {
        (Json::Null, _) => Ok(Value::Null),
        (Json::Object(fields), Type::Dynamic) => {
            if fields.keys().any(|k| k != "type" && k != "value") {
                return Err(at(DecodeErrorKind::DynamicShape(
                    "only \"type\" and \"value\" properties are allowed",
                )));
            }
            let (Some(type_json), Some(value_json)) = (fields.get("type"), fields.get("value"))
            else {
                return Err(at(DecodeErrorKind::DynamicShape(
                    "both \"type\" and \"value\" properties are required",
                )));
            };
            let inner_ty =
                Type::from_json(type_json).map_err(|e| at(DecodeErrorKind::DynamicType(e)))?;
            let inner = decode_value(value_json, &inner_ty, path, depth + 1)?;
            Ok(Value::dynamic(inner_ty, inner))
        }
        (Json::Bool(b), Type::Bool) => Ok(Value::Bool(*b)),
        // cty converts these strings to bools.
        (Json::String(s), Type::Bool) => match s.as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(mismatch()),
        },
        (Json::Number(n), Type::Number) => number(&n.to_string()),
        (Json::String(s), Type::Number) => number(s),
        (Json::String(s), Type::String) => Ok(Value::string(s.as_str())),
        (Json::Number(n), Type::String) => Ok(Value::string(n.to_string())),
        (Json::Bool(b), Type::String) => Ok(Value::string(b.to_string())),
        (Json::Array(items), Type::List(element)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| decode_value(item, element, &path.index(i), depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::List),
        (Json::Array(items), Type::Set(element)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| decode_value(item, element, &path.set_element(i), depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Set),
        (Json::Array(items), Type::Tuple(elements)) => {
            if items.len() != elements.len() {
                return Err(at(DecodeErrorKind::TupleLength {
                    expected: elements.len(),
                    found: items.len(),
                }));
            }
            items
                .iter()
                .zip(elements)
                .enumerate()
                .map(|(i, (item, element))| decode_value(item, element, &path.index(i), depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::Tuple)
        }
        (Json::Object(fields), Type::Map(element)) => fields
            .iter()
            .map(|(key, item)| {
                let item = decode_value(item, element, &path.key(key), depth + 1)?;
                Ok((key.clone(), item))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Value::Map),
        (Json::Object(fields), Type::Object(attribute_types)) => attribute_types
            .iter()
            .map(|(name, attribute_type)| {
                let item = match fields.get(name) {
                    Some(item) => {
                        decode_value(item, attribute_type, &path.attribute(name), depth + 1)?
                    }
                    None => Value::Null,
                };
                Ok((name.clone(), item))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Value::Object),
        _ => Err(mismatch()),
    }
}

/// Converts `value` of type `ty` at `path` to JSON, `depth` containers deep.
#[cfg(test)]
fn encode_value(
    value: &Value,
    ty: &Type,
    path: &PathTrail<'_>,
    depth: usize,
) -> Result<Json, EncodeError> {
    let at = |kind| EncodeError::new(path.to_path(), kind);
    if depth > MAX_DEPTH {
        return Err(at(EncodeErrorKind::TooDeep(MAX_DEPTH)));
    }
    match (value, ty) {
        (Value::Null, _) => Ok(Json::Null),
        (Value::Unknown, _) => Err(at(EncodeErrorKind::UnknownInJson)),
        (Value::Dynamic(actual, inner), Type::Dynamic) => {
            encode_dynamic(inner, actual, path, depth)
        }
        (Value::Dynamic(actual, inner), _) => {
            if **actual != *ty {
                return Err(at(EncodeErrorKind::DynamicTypeMismatch {
                    expected: ty.to_string(),
                    actual: actual.to_string(),
                }));
            }
            encode_value(inner, ty, path, depth)
        }
        (_, Type::Dynamic) => {
            let actual = value
                .infer_type()
                .ok_or_else(|| at(EncodeErrorKind::CannotInferType))?;
            encode_dynamic(value, &actual, path, depth)
        }
        (Value::Bool(b), Type::Bool) => Ok(Json::Bool(*b)),
        (Value::Number(n), Type::Number) => {
            if n.is_infinite() {
                return Err(at(EncodeErrorKind::InfinityInJson));
            }
            let text = n.to_string();
            // With `arbitrary_precision` this keeps the text as is; it can only fail if that
            // feature were off and the number overflowed an f64.
            serde_json::Number::from_str(&text)
                .map(Json::Number)
                .map_err(|_| at(EncodeErrorKind::JsonNumber(text)))
        }
        (Value::String(s), Type::String) => Ok(Json::String(s.clone())),
        (Value::List(items), Type::List(element)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| encode_value(item, element, &path.index(i), depth + 1))
            .collect::<Result<_, _>>()
            .map(Json::Array),
        (Value::Set(items), Type::Set(element)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| encode_value(item, element, &path.set_element(i), depth + 1))
            .collect::<Result<_, _>>()
            .map(Json::Array),
        (Value::Tuple(items), Type::Tuple(elements)) => {
            if items.len() != elements.len() {
                return Err(at(EncodeErrorKind::TupleLength {
                    expected: elements.len(),
                    found: items.len(),
                }));
            }
            items
                .iter()
                .zip(elements)
                .enumerate()
                .map(|(i, (item, element))| encode_value(item, element, &path.index(i), depth + 1))
                .collect::<Result<_, _>>()
                .map(Json::Array)
        }
        (Value::Map(entries), Type::Map(element)) => entries
            .iter()
            .map(|(key, item)| {
                let item = encode_value(item, element, &path.key(key), depth + 1)?;
                Ok((key.clone(), item))
            })
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(Json::Object),
        (Value::Object(attributes), Type::Object(attribute_types)) => {
            if let Some(extra) = attributes
                .keys()
                .find(|k| !attribute_types.contains_key(*k))
            {
                return Err(at(EncodeErrorKind::UnexpectedAttribute(extra.clone())));
            }
            attribute_types
                .iter()
                .map(|(name, attribute_type)| {
                    let item = attributes.get(name).unwrap_or(&Value::Null);
                    let item =
                        encode_value(item, attribute_type, &path.attribute(name), depth + 1)?;
                    Ok((name.clone(), item))
                })
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(Json::Object)
        }
        _ => Err(at(EncodeErrorKind::TypeMismatch {
            expected: ty.to_string(),
            found: value.kind_name(),
        })),
    }
}

/// `{"type": <type JSON>, "value": <value>}` for a value of concrete type `actual`.
#[cfg(test)]
fn encode_dynamic(
    value: &Value,
    actual: &Type,
    path: &PathTrail<'_>,
    depth: usize,
) -> Result<Json, EncodeError> {
    let inner = encode_value(value, actual, path, depth + 1)?;
    let mut fields = serde_json::Map::new();
    fields.insert("type".to_owned(), actual.to_json());
    fields.insert("value".to_owned(), inner);
    Ok(Json::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::super::error::DecodeErrorKind as K;
    use super::super::testing::{arb_type, arb_type_and_value, mutate};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn num(text: &str) -> Value {
        Value::Number(Number::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn decode_table() {
        let cases: Vec<(&str, Type, Value)> = vec![
            ("null", Type::String, Value::Null),
            ("null", Type::Dynamic, Value::Null),
            ("true", Type::Bool, Value::Bool(true)),
            ("\"false\"", Type::Bool, Value::Bool(false)),
            ("\"1\"", Type::Bool, Value::Bool(true)),
            ("1", Type::Number, num("1")),
            ("1.50", Type::Number, num("1.5")),
            ("1E400", Type::Number, num("1e400")),
            ("-0.000000000000000000000001", Type::Number, num("-1e-24")),
            (
                "3.14159265358979323846264338327950288",
                Type::Number,
                num("3.14159265358979323846264338327950288"),
            ),
            (
                "123456789012345678901234567890",
                Type::Number,
                num("123456789012345678901234567890"),
            ),
            ("\"42\"", Type::Number, num("42")),
            ("\"x\"", Type::String, Value::string("x")),
            ("12.0", Type::String, Value::string("12.0")),
            ("true", Type::String, Value::string("true")),
            (
                "[1, null]",
                Type::list(Type::Number),
                Value::list([num("1"), Value::Null]),
            ),
            (
                "[\"b\", \"a\"]",
                Type::set(Type::String),
                Value::set([Value::string("b"), Value::string("a")]),
            ),
            (
                "[true, \"x\"]",
                Type::tuple([Type::Bool, Type::String]),
                Value::Tuple(vec![Value::Bool(true), Value::string("x")]),
            ),
            (
                "{\"k\": \"v\"}",
                Type::map(Type::String),
                Value::map([("k", Value::string("v"))]),
            ),
            (
                r#"{"type": ["list", "string"], "value": ["a"]}"#,
                Type::Dynamic,
                Value::dynamic(Type::list(Type::String), Value::list([Value::string("a")])),
            ),
            (
                r#"{"type": "number", "value": null}"#,
                Type::Dynamic,
                Value::dynamic(Type::Number, Value::Null),
            ),
        ];
        for (text, ty, want) in cases {
            let got = decode(text.as_bytes(), &ty);
            assert_eq!(got, Ok(want), "{text} as {ty}");
        }
    }

    #[test]
    fn decode_ignores_unknown_attributes_and_fills_missing_ones() {
        let ty = Type::object([("name", Type::String), ("size", Type::Number)]);
        let got = decode(br#"{"name": "r1", "removed_in_v2": {"deep": [1, 2]}}"#, &ty);
        assert_eq!(
            got,
            Ok(Value::object([
                ("name", Value::string("r1")),
                ("size", Value::Null)
            ]))
        );
    }

    #[test]
    fn decode_errors_name_the_path() {
        let ty = Type::object([
            ("cluster", Type::object([("zone", Type::String)])),
            ("files", Type::map(Type::Number)),
            (
                "criteria",
                Type::list(Type::object([("env_type", Type::Bool)])),
            ),
            ("pair", Type::tuple([Type::Bool])),
            ("any", Type::Dynamic),
        ]);
        let cases: Vec<(serde_json::Value, &str, K)> = vec![
            (
                json!({"cluster": {"zone": [1]}}),
                "cluster.zone",
                K::TypeMismatch {
                    expected: "string".into(),
                    found: "array",
                },
            ),
            (
                json!({"files": {"a.txt": "many"}}),
                "files[\"a.txt\"]",
                K::InvalidNumber(super::super::number::NumberError::Syntax("many".into())),
            ),
            (
                json!({"criteria": [{"env_type": true}, {"env_type": "maybe"}]}),
                "criteria[1].env_type",
                K::TypeMismatch {
                    expected: "bool".into(),
                    found: "string",
                },
            ),
            (
                json!({"pair": []}),
                "pair",
                K::TupleLength {
                    expected: 1,
                    found: 0,
                },
            ),
            (
                json!({"any": {"type": "string"}}),
                "any",
                K::DynamicShape("both \"type\" and \"value\" properties are required"),
            ),
            (
                json!({"any": {"type": "string", "value": "x", "extra": 1}}),
                "any",
                K::DynamicShape("only \"type\" and \"value\" properties are allowed"),
            ),
            (
                json!({"any": "plain"}),
                "any",
                K::TypeMismatch {
                    expected: "dynamic".into(),
                    found: "string",
                },
            ),
            (
                json!({"any": {"type": "nope", "value": 1}}),
                "any",
                K::DynamicType(super::super::types::TypeError::UnknownPrimitive(
                    "nope".into(),
                )),
            ),
            (
                json!({"cluster": 5}),
                "cluster",
                K::TypeMismatch {
                    expected: "object".into(),
                    found: "number",
                },
            ),
        ];
        for (json, want_path, want_kind) in cases {
            match decode_json(&json, &ty) {
                Ok(v) => panic!("{json} decoded as {v:?}"),
                Err(e) => {
                    assert_eq!(e.path.to_string(), want_path, "{e}");
                    assert_eq!(e.kind, want_kind, "{e}");
                }
            }
        }
    }

    #[test]
    fn decode_rejects_invalid_json() {
        for text in ["", "{", "[1,]", "nul", "1 2"] {
            let got = decode(text.as_bytes(), &Type::list(Type::Number));
            assert!(
                matches!(
                    got,
                    Err(DecodeError {
                        kind: K::Json(_),
                        ..
                    })
                ),
                "{text}: {got:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let got = decode(deep.as_bytes(), &Type::Dynamic);
        assert!(got.is_err());
        let nested_dynamic = format!(
            "{}null{}",
            r#"{"type":"dynamic","value":"#.repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(decode(nested_dynamic.as_bytes(), &Type::Dynamic).is_err());
        // Our own bound holds for parsed documents deeper than it, too.
        let mut json = Json::Null;
        for _ in 0..(MAX_DEPTH + 5) {
            json = json!({"type": "dynamic", "value": json});
        }
        let got = decode_json(&json, &Type::Dynamic);
        assert!(
            matches!(
                got,
                Err(DecodeError {
                    kind: K::TooDeep(_),
                    ..
                })
            ),
            "{got:?}"
        );
    }

    #[test]
    fn encode_table() {
        let cases: Vec<(Value, Type, Json)> = vec![
            (Value::Null, Type::String, json!(null)),
            (
                num("1e400"),
                Type::Number,
                serde_json::from_str("1e400").unwrap_or(Json::Null),
            ),
            (
                num("3.14159265358979323846264338327950288"),
                Type::Number,
                serde_json::from_str("3.14159265358979323846264338327950288").unwrap_or(Json::Null),
            ),
            (num("-7"), Type::Number, json!(-7)),
            (
                Value::object([("b", Value::string("x"))]),
                Type::object([("a", Type::list(Type::String)), ("b", Type::String)]),
                json!({"a": null, "b": "x"}),
            ),
            (
                Value::dynamic(
                    Type::map(Type::Bool),
                    Value::map([("k", Value::Bool(true))]),
                ),
                Type::Dynamic,
                json!({"type": ["map", "bool"], "value": {"k": true}}),
            ),
            (
                Value::Tuple(vec![Value::string("a"), num("1")]),
                Type::Dynamic,
                json!({"type": ["tuple", ["string", "number"]], "value": ["a", 1]}),
            ),
            (
                Value::set([Value::Bool(false)]),
                Type::set(Type::Bool),
                json!([false]),
            ),
        ];
        for (value, ty, want) in cases {
            assert_eq!(encode(&value, &ty), Ok(want), "{value:?} as {ty}");
        }
        // The exact digits survive serialization.
        let text =
            encode(&num("0.1000000000000000000000000000001"), &Type::Number).map(|j| j.to_string());
        assert_eq!(text, Ok("0.1000000000000000000000000000001".to_owned()));
    }

    #[test]
    fn encode_errors() {
        let ty = Type::object([("a", Type::list(Type::Number))]);
        let cases: Vec<(Value, &str, EncodeErrorKind)> = vec![
            (
                Value::object([("a", Value::list([num("1"), Value::Unknown]))]),
                "a[1]",
                EncodeErrorKind::UnknownInJson,
            ),
            (
                Value::object([("a", Value::list([Value::Number(Number::infinity(false))]))]),
                "a[0]",
                EncodeErrorKind::InfinityInJson,
            ),
            (
                Value::object([("b", Value::Null)]),
                "",
                EncodeErrorKind::UnexpectedAttribute("b".into()),
            ),
            (
                Value::object([("a", Value::string("x"))]),
                "a",
                EncodeErrorKind::TypeMismatch {
                    expected: "list of number".into(),
                    found: "string",
                },
            ),
        ];
        for (value, want_path, want_kind) in cases {
            match encode(&value, &ty) {
                Ok(j) => panic!("{value:?} encoded as {j}"),
                Err(e) => {
                    assert_eq!(e.path.to_string(), want_path, "{e}");
                    assert_eq!(e.kind, want_kind, "{e}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn round_trip((ty, value) in arb_type_and_value(false)) {
            let json = encode(&value, &ty);
            prop_assert!(json.is_ok(), "{:?}", json);
            let bytes = serde_json::to_vec(&json.unwrap_or(Json::Null));
            prop_assert!(bytes.is_ok());
            let decoded = decode(&bytes.unwrap_or_default(), &ty);
            prop_assert!(decoded.is_ok(), "{:?}", decoded);
            let decoded = decoded.unwrap_or(Value::Unknown);
            prop_assert!(decoded.semantically_equal(&value), "{:?}\n!=\n{:?}", decoded, value);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), ty in arb_type()) {
            let _ = decode(&bytes, &ty);
        }

        #[test]
        fn mutated_documents_never_panic(
            (ty, value) in arb_type_and_value(false),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let bytes = encode(&value, &ty)
                .ok()
                .and_then(|j| serde_json::to_vec(&j).ok())
                .unwrap_or_default();
            if let Ok(decoded) = decode(&mutate(bytes, &edits), &ty) {
                prop_assert!(decoded.is_wholly_known());
            }
        }
    }
}
