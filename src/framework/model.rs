//! Typed models of resource values.
//!
//! A resource names each attribute once: as a field of a plain Rust struct whose serde names are
//! the attribute names. [`decode`] reads a Terraform value into that struct and [`encode`] writes
//! it back for the schema's type, so no resource converts values field by field, and
//! [`assert_model_fits`] fails a test when the struct and the schema disagree.
//!
//! Why through JSON: the value codec already turns JSON into values by the schema's type
//! (`crate::value::json`), and serde already turns structs into JSON. The two together are the
//! whole conversion, and JSON's shape (objects, arrays, strings, bools, numbers, null) is exactly
//! that of a known Terraform value.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::value::{AttributePath, DecodeError, Type, Value, json};

/// A sensitive value in a model: serialized as the value itself, shown as `<sensitive>` by
/// `Debug`, so that logging a model never logs a secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Sensitive<T>(pub(crate) T);

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<sensitive>")
    }
}

/// Reads a null (or an unknown, which reads as null) as the type's default: for the fields of
/// required attributes, which a plan may not know yet.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct Named {
///     #[serde(deserialize_with = "null_as_default")]
///     id: String,
/// }
/// ```
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Why a value and a model did not convert. Either way it is a bug in the provider: the schema
/// and the model describe the same attributes, so a value of the schema's type always fits.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelError {
    /// The value did not deserialize into the model.
    #[error("the value does not fit the model")]
    Decode(#[source] serde_json::Error),
    /// The model did not serialize.
    #[error("the model does not serialize")]
    Serialize(#[source] serde_json::Error),
    /// The model has a field that the schema lacks.
    #[error("the model has an attribute the schema lacks, at {0}")]
    NotInSchema(AttributePath),
    /// The model's JSON did not convert to the schema's type.
    #[error("the model does not fit the schema's type")]
    Encode(#[source] DecodeError),
}

/// Reads a value into a model. Unknown values read as null: a model of a plan holds only what is
/// known, and the plan rules keep track of the rest.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct Named { id: String, name: Option<String> }
/// let named: Named = decode(&Value::object([("id", Value::string("a")), ("name", Value::Unknown)]))?;
/// assert_eq!(named.name, None);
/// ```
pub(crate) fn decode<M: DeserializeOwned>(value: &Value) -> Result<M, ModelError> {
    serde_json::from_value(known_json(value)).map_err(ModelError::Decode)
}

/// Writes a model as a value of type `ty`. A `None` field becomes null; a field the type does not
/// have is an error rather than being dropped.
pub(crate) fn encode<M: Serialize>(model: &M, ty: &Type) -> Result<Value, ModelError> {
    let json = serde_json::to_value(model).map_err(ModelError::Serialize)?;
    check_fields(&json, ty, &AttributePath::root())?;
    json::decode_json(&json, ty).map_err(ModelError::Encode)
}

/// The JSON form of a value's known parts (unknown becomes null).
fn known_json(value: &Value) -> Json {
    match value {
        Value::Null | Value::Unknown => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => n
            .to_string()
            .parse::<serde_json::Number>()
            .map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            Json::Array(items.iter().map(known_json).collect())
        }
        Value::Map(fields) | Value::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), known_json(v)))
                .collect(),
        ),
        Value::Dynamic(_, inner) => known_json(inner),
    }
}

/// Fails on an object key that `ty` does not declare (the JSON decoder ignores such keys, on
/// purpose, for old states).
fn check_fields(json: &Json, ty: &Type, at: &AttributePath) -> Result<(), ModelError> {
    match (json, ty) {
        (Json::Object(fields), Type::Object(attributes)) => {
            for (name, value) in fields {
                let Some(inner) = attributes.get(name) else {
                    return Err(ModelError::NotInSchema(at.attribute(name.clone())));
                };
                check_fields(value, inner, &at.attribute(name.clone()))?;
            }
            Ok(())
        }
        (Json::Object(fields), Type::Map(element)) => fields
            .iter()
            .try_for_each(|(key, value)| check_fields(value, element, &at.key(key.clone()))),
        (Json::Array(items), Type::List(element) | Type::Set(element)) => items
            .iter()
            .try_for_each(|item| check_fields(item, element, at)),
        _ => Ok(()),
    }
}

/// A value of type `ty` with everything set: one element in each collection, `"x"` for strings.
#[cfg(test)]
fn sample(ty: &Type) -> Value {
    match ty {
        Type::Bool => Value::Bool(true),
        Type::Number => Value::number(1),
        Type::String | Type::Dynamic => Value::string("x"),
        Type::List(element) => Value::List(vec![sample(element)]),
        Type::Set(element) => Value::Set(vec![sample(element)]),
        Type::Map(element) => Value::map([("k", sample(element))]),
        Type::Object(attributes) => Value::Object(
            attributes
                .iter()
                .map(|(name, inner)| (name.clone(), sample(inner)))
                .collect(),
        ),
        Type::Tuple(elements) => Value::Tuple(elements.iter().map(sample).collect()),
    }
}

/// Fails unless model `M` holds every attribute of `ty`, and nothing else: a value with every
/// attribute set must come back unchanged through the model.
#[cfg(test)]
pub(crate) fn assert_model_fits<M: Serialize + DeserializeOwned>(ty: &Type) {
    let full = sample(ty);
    let model: M = decode(&full).unwrap_or_else(|e| panic!("{}", crate::error_chain(&e)));
    let back = encode(&model, ty).unwrap_or_else(|e| panic!("{}", crate::error_chain(&e)));
    if let (Value::Object(want), Value::Object(got)) = (&full, &back) {
        for (name, value) in want {
            assert_eq!(
                got.get(name),
                Some(value),
                "attribute {name} is lost by the model"
            );
        }
    }
    assert_eq!(back, full);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        #[serde(rename = "ref")]
        reference: Option<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Outer {
        id: String,
        flag: Option<bool>,
        tags: Option<Vec<String>>,
        labels: Option<BTreeMap<String, String>>,
        inner: Option<Inner>,
        items: Option<Vec<Inner>>,
    }

    fn outer_type() -> Type {
        let inner = Type::object([("ref", Type::String)]);
        Type::object([
            ("id", Type::String),
            ("flag", Type::Bool),
            ("tags", Type::list(Type::String)),
            ("labels", Type::map(Type::String)),
            ("inner", inner.clone()),
            ("items", Type::set(inner)),
        ])
    }

    #[test]
    fn round_trips_and_reads_unknowns_as_absent() {
        assert_model_fits::<Outer>(&outer_type());
        let value = Value::object([
            ("id", Value::string("a")),
            ("flag", Value::Unknown),
            ("inner", Value::object([("ref", Value::Unknown)])),
        ]);
        let model: Outer = decode(&value).unwrap();
        assert_eq!(model.flag, None);
        assert_eq!(model.inner, Some(Inner { reference: None }));
        let back = encode(&model, &outer_type()).unwrap();
        assert!(back.get("flag").is_null());
        assert!(back.get("items").is_null());
    }

    #[derive(Serialize, Deserialize)]
    struct Extra {
        id: String,
        stray: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct Missing {
        id: String,
    }

    #[test]
    fn a_model_and_schema_that_disagree_are_caught() {
        let ty = Type::object([("id", Type::String)]);
        let extra = Extra {
            id: "a".into(),
            stray: Some("b".into()),
        };
        assert!(matches!(
            encode(&extra, &ty),
            Err(ModelError::NotInSchema(path)) if path.to_string() == "stray"
        ));
        let wider = Type::object([("id", Type::String), ("name", Type::String)]);
        let lost = std::panic::catch_unwind(|| assert_model_fits::<Missing>(&wider));
        assert!(
            lost.is_err(),
            "a schema attribute the model lacks must fail the check"
        );
    }
}
