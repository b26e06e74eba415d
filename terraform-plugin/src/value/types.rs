//! Terraform (cty) types and their compact JSON form.
//!
//! The same JSON form appears in three places: `Schema.Attribute.type` in GetSchema responses,
//! the first element of a dynamic value in msgpack, and `"type"` of a dynamic value in JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

/// Deepest type we accept from JSON. Real schemas nest a handful of levels; the bound keeps
/// the recursion in [`Type::from_json`] (and in dropping the result) shallow on hostile input.
const MAX_TYPE_DEPTH: usize = 64;

/// A cty type.
///
/// ```ignore
/// let ty = Type::object([("name", Type::String), ("ports", Type::list(Type::Number))]);
/// assert_eq!(ty.to_json(), serde_json::json!(["object", {"name": "string", "ports": ["list", "number"]}]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`.
    Bool,
    /// `number` (arbitrary-precision decimal).
    Number,
    /// `string`.
    String,
    /// `dynamic`: the concrete type travels with each value.
    Dynamic,
    /// `list(T)`.
    List(Box<Type>),
    /// `set(T)`.
    Set(Box<Type>),
    /// `map(T)` with string keys.
    Map(Box<Type>),
    /// `object({...})`: a fixed set of named attributes (also every schema block).
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`: a fixed sequence of element types.
    Tuple(Vec<Type>),
}

/// Why a JSON document is not a cty type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// A primitive type name we do not know (cty has only bool, number, string, dynamic).
    #[error("unknown primitive type {0:?}")]
    UnknownPrimitive(String),
    /// A `[kind, ...]` array whose kind we do not know.
    #[error("unknown type kind {0:?}")]
    UnknownKind(String),
    /// A `[kind, ...]` array with the wrong argument shape.
    #[error("invalid {kind} type: {problem}")]
    InvalidArguments {
        /// The type kind, e.g. `list`.
        kind: &'static str,
        /// What is wrong with its arguments.
        problem: &'static str,
    },
    /// Neither a string nor an array.
    #[error("a type must be a string or an array, found {0}")]
    NotAType(&'static str),
    /// Nested deeper than we accept.
    #[error("type nested more than {MAX_TYPE_DEPTH} levels deep")]
    TooDeep,
    /// The bytes are not JSON at all.
    #[error("type is not valid JSON: {0}")]
    Json(String),
}

impl Type {
    /// `list(element)`.
    pub fn list(element: Type) -> Self {
        Type::List(Box::new(element))
    }

    /// `set(element)`.
    pub fn set(element: Type) -> Self {
        Type::Set(Box::new(element))
    }

    /// `map(element)`.
    pub fn map(element: Type) -> Self {
        Type::Map(Box::new(element))
    }

    /// `object({...})` from `(name, type)` pairs.
    #[cfg(any(test, feature = "testing"))]
    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Self {
        Type::Object(
            attributes
                .into_iter()
                .map(|(name, ty)| (name.into(), ty))
                .collect(),
        )
    }

    /// `tuple([...])`.
    #[cfg(any(test, feature = "testing"))]
    pub fn tuple(elements: impl IntoIterator<Item = Type>) -> Self {
        Type::Tuple(elements.into_iter().collect())
    }

    /// cty's compact JSON form: `"string"`, `["list","string"]`, `["object",{"a":"string"}]`.
    pub fn to_json(&self) -> Json {
        match self {
            Type::Bool => Json::from("bool"),
            Type::Number => Json::from("number"),
            Type::String => Json::from("string"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(t) => Json::Array(vec!["list".into(), t.to_json()]),
            Type::Set(t) => Json::Array(vec!["set".into(), t.to_json()]),
            Type::Map(t) => Json::Array(vec!["map".into(), t.to_json()]),
            Type::Object(attributes) => {
                let attributes = attributes
                    .iter()
                    .map(|(name, ty)| (name.clone(), ty.to_json()))
                    .collect();
                Json::Array(vec!["object".into(), Json::Object(attributes)])
            }
            Type::Tuple(elements) => Json::Array(vec![
                "tuple".into(),
                Json::Array(elements.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// The JSON form as bytes (for `Schema.Attribute.type` and dynamic values).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing a `serde_json::Value` cannot fail (all keys are strings).
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }

    /// Parses cty's compact JSON form.
    ///
    /// An object type may carry a third element listing its optional attributes
    /// (`["object",{...},["a"]]`); it only matters to Terraform's type conversion, so it is
    /// accepted and ignored.
    pub fn from_json(json: &Json) -> Result<Type, TypeError> {
        Self::from_json_at(json, 0)
    }

    /// Parses the JSON form from bytes.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, TypeError> {
        let json: Json =
            serde_json::from_slice(bytes).map_err(|e| TypeError::Json(e.to_string()))?;
        Self::from_json(&json)
    }

    /// [`Type::from_json`] at nesting level `depth`.
    fn from_json_at(json: &Json, depth: usize) -> Result<Type, TypeError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(TypeError::TooDeep);
        }
        let items = match json {
            Json::String(name) => {
                return match name.as_str() {
                    "bool" => Ok(Type::Bool),
                    "number" => Ok(Type::Number),
                    "string" => Ok(Type::String),
                    "dynamic" => Ok(Type::Dynamic),
                    _ => Err(TypeError::UnknownPrimitive(name.clone())),
                };
            }
            Json::Array(items) => items.as_slice(),
            other => return Err(TypeError::NotAType(json_kind(other))),
        };
        let (kind, args) = match items {
            [Json::String(kind), args @ ..] => (kind.as_str(), args),
            _ => {
                return Err(TypeError::InvalidArguments {
                    kind: "compound",
                    problem: "the first element must be the kind name",
                });
            }
        };
        let element = |kind: &'static str| match args {
            [inner] => Self::from_json_at(inner, depth + 1).map(Box::new),
            _ => Err(TypeError::InvalidArguments {
                kind,
                problem: "exactly one element type is required",
            }),
        };
        match kind {
            "list" => Ok(Type::List(element("list")?)),
            "set" => Ok(Type::Set(element("set")?)),
            "map" => Ok(Type::Map(element("map")?)),
            "object" => match args {
                [Json::Object(attributes)] | [Json::Object(attributes), Json::Array(_)] => {
                    let mut out = BTreeMap::new();
                    for (name, ty) in attributes {
                        out.insert(name.clone(), Self::from_json_at(ty, depth + 1)?);
                    }
                    Ok(Type::Object(out))
                }
                _ => Err(TypeError::InvalidArguments {
                    kind: "object",
                    problem: "expected an attribute map and an optional list of optional attributes",
                }),
            },
            "tuple" => match args {
                [Json::Array(elements)] => elements
                    .iter()
                    .map(|e| Self::from_json_at(e, depth + 1))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Type::Tuple),
                _ => Err(TypeError::InvalidArguments {
                    kind: "tuple",
                    problem: "expected an array of element types",
                }),
            },
            other => Err(TypeError::UnknownKind(other.to_owned())),
        }
    }
}

impl fmt::Display for Type {
    /// Terraform's friendly name: `string`, `list of string`, `map of object`, `tuple`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(t) => write!(f, "list of {t}"),
            Type::Set(t) => write!(f, "set of {t}"),
            Type::Map(t) => write!(f, "map of {t}"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}

/// A short name for the kind of a JSON value, for error messages.
pub(crate) fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested_list(depth: usize) -> Type {
        let mut ty = Type::String;
        for _ in 0..depth {
            ty = Type::list(ty);
        }
        ty
    }

    #[test]
    fn json_round_trip_table() {
        let cases = [
            (Type::Bool, json!("bool")),
            (Type::Number, json!("number")),
            (Type::String, json!("string")),
            (Type::Dynamic, json!("dynamic")),
            (Type::list(Type::String), json!(["list", "string"])),
            (Type::set(Type::Number), json!(["set", "number"])),
            (Type::map(Type::Bool), json!(["map", "bool"])),
            (
                Type::object([("a", Type::String), ("b", Type::list(Type::Dynamic))]),
                json!(["object", {"a": "string", "b": ["list", "dynamic"]}]),
            ),
            (Type::object::<&str>([]), json!(["object", {}])),
            (
                Type::tuple([Type::String, Type::Number]),
                json!(["tuple", ["string", "number"]]),
            ),
            (Type::tuple([]), json!(["tuple", []])),
        ];
        for (ty, want) in cases {
            assert_eq!(ty.to_json(), want, "{ty:?}");
            assert_eq!(Type::from_json(&want), Ok(ty.clone()), "{want}");
            assert_eq!(Type::from_json_bytes(&ty.to_json_bytes()), Ok(ty));
        }
    }

    #[test]
    fn optional_attributes_are_ignored() {
        let json = json!(["object", {"a": "string", "b": "number"}, ["b"]]);
        assert_eq!(
            Type::from_json(&json),
            Ok(Type::object([("a", Type::String), ("b", Type::Number)]))
        );
    }

    #[test]
    fn invalid_types_are_rejected() {
        let cases = [
            (json!("strin"), "unknown primitive type \"strin\""),
            (json!(["lisst", "string"]), "unknown type kind \"lisst\""),
            (json!(["list"]), "invalid list type"),
            (json!(["list", "string", "string"]), "invalid list type"),
            (json!(["object", ["a"]]), "invalid object type"),
            (
                json!(["object", {"a": "string"}, "b"]),
                "invalid object type",
            ),
            (json!(["tuple", "string"]), "invalid tuple type"),
            (json!([]), "first element must be the kind name"),
            (json!([1, "string"]), "first element must be the kind name"),
            (json!(3), "found number"),
            (json!(null), "found null"),
            (
                json!(["map", ["set", "nope"]]),
                "unknown primitive type \"nope\"",
            ),
        ];
        for (json, want) in cases {
            let message = match Type::from_json(&json) {
                Ok(ty) => panic!("{json} parsed as {ty:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains(want), "{json}: {message}");
        }
        assert!(matches!(
            Type::from_json_bytes(b"[\"list\""),
            Err(TypeError::Json(_))
        ));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = nested_list(MAX_TYPE_DEPTH);
        assert_eq!(Type::from_json(&deep.to_json()), Ok(deep));
        let too_deep = nested_list(MAX_TYPE_DEPTH + 1).to_json();
        assert_eq!(Type::from_json(&too_deep), Err(TypeError::TooDeep));
    }

    #[test]
    fn friendly_names() {
        let cases = [
            (Type::list(Type::String), "list of string"),
            (Type::map(Type::set(Type::Number)), "map of set of number"),
            (Type::object([("a", Type::Bool)]), "object"),
            (Type::tuple([Type::Bool]), "tuple"),
            (Type::Dynamic, "dynamic"),
        ];
        for (ty, want) in cases {
            assert_eq!(ty.to_string(), want);
        }
    }
}
