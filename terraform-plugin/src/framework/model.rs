//! Typed models of resource values.
//!
//! A resource names each attribute once: as a field of a plain Rust struct whose serde names are
//! the attribute names. [`decode`] reads a Terraform value into that struct and [`encode`] writes
//! it back for the schema's type, so no resource converts values field by field, and
//! `assert_model_fits` (feature `testing`) fails a test when the struct and the schema disagree.
//!
//! Why through JSON: the value codec already turns JSON into values by the schema's type
//! (`crate::value::json`), and serde already turns structs into JSON. The two together are the
//! whole conversion, and JSON's shape (objects, arrays, strings, bools, numbers, null) is exactly
//! that of a known Terraform value.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::value::{AttributePath, DecodeError, Type, Value, json};

/// How a secret is shown wherever its value must not be (a `Debug` form, a log line, an error):
/// the words Terraform's own plans use, so that a user meets one mask.
pub const MASK: &str = "(sensitive value)";

/// A sensitive value in a model: serialized as the value itself, shown as [`MASK`] by `Debug`,
/// so that logging a model never logs a secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(pub T);

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
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
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Reads a map whose entries may be null (or unknown), leaving those entries out: for the maps
/// of plain values, where a null entry means nothing (validation refuses one in a
/// configuration, see `crate::framework::validate`), and a plan may not know an entry yet.
pub fn map_without_nulls<'de, D, T>(
    deserializer: D,
) -> Result<Option<std::collections::BTreeMap<String, T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let map = Option::<std::collections::BTreeMap<String, Option<T>>>::deserialize(deserializer)?;
    Ok(map.map(|entries| {
        entries
            .into_iter()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect()
    }))
}

/// Reads a list whose elements may be null (or unknown), leaving those out, as
/// [`map_without_nulls`] does for maps.
pub fn list_without_nulls<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let list = Option::<Vec<Option<T>>>::deserialize(deserializer)?;
    Ok(list.map(|items| items.into_iter().flatten().collect()))
}

/// Why a value and a model did not convert. Either way it is a bug in the provider: the schema
/// and the model describe the same attributes, so a value of the schema's type always fits.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
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
pub fn decode<M: DeserializeOwned>(value: &Value) -> Result<M, ModelError> {
    serde_json::from_value(known_json(value)).map_err(ModelError::Decode)
}

/// Writes a model as a value of type `ty`. A `None` field becomes null; a field the type does not
/// have is an error rather than being dropped.
pub fn encode<M: Serialize>(model: &M, ty: &Type) -> Result<Value, ModelError> {
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
fn sample(ty: &Type) -> Value {
    match ty {
        Type::Bool => Value::Bool(true),
        Type::Number => Value::Number(1.into()),
        Type::String | Type::Dynamic => Value::string("x"),
        Type::List(element) => Value::List(vec![sample(element)]),
        Type::Set(element) => Value::Set(vec![sample(element)]),
        Type::Map(element) => Value::Map([("k".to_string(), sample(element))].into()),
        Type::Object(attributes) => Value::Object(
            attributes
                .iter()
                .map(|(name, inner)| (name.clone(), sample(inner)))
                .collect(),
        ),
        Type::Tuple(elements) => Value::Tuple(elements.iter().map(sample).collect()),
    }
}

/// Where a value that does not fit model `M` goes wrong: the deepest attribute, map entry or
/// list element whose replacement by a value that fits (see `sample`) makes the whole value
/// read. `None` when the value fits, or when no single part is to blame.
///
/// Why this way: serde's errors say what was expected but not where, and the diagnostic must
/// name the attribute. This runs only after a failure, so its cost (one decode per part
/// tried) never touches a working plan.
pub fn failing_path<M: DeserializeOwned>(value: &Value, ty: &Type) -> Option<AttributePath> {
    if decode::<M>(value).is_ok() {
        return None;
    }
    let steps = narrow::<M>(value, &mut Vec::new(), value, ty);
    let path = to_attribute_path(&steps);
    (!path.is_root()).then_some(path)
}

/// One step into a value; sets are stepped into by position, which Terraform cannot address.
#[derive(Debug, Clone)]
enum Step {
    Field(String),
    Key(String),
    Index(usize),
    SetElement(usize),
}

/// The steps to the part of `current` (at `at` inside `root`) that `M` cannot read.
fn narrow<M: DeserializeOwned>(
    root: &Value,
    at: &mut Vec<Step>,
    current: &Value,
    ty: &Type,
) -> Vec<Step> {
    for (step, child, child_ty) in children(current, ty) {
        at.push(step);
        let mended = replaced(root, at, sample(child_ty));
        if decode::<M>(&mended).is_ok() {
            return narrow::<M>(root, at, child, child_ty);
        }
        at.pop();
    }
    at.clone()
}

/// The parts of a value, with their types.
fn children<'a>(value: &'a Value, ty: &'a Type) -> Vec<(Step, &'a Value, &'a Type)> {
    match (value, ty) {
        (Value::Object(fields), Type::Object(types)) => types
            .iter()
            .map(|(name, inner)| {
                let child = fields.get(name).unwrap_or(&Value::Null);
                (Step::Field(name.clone()), child, inner)
            })
            .collect(),
        (Value::Map(entries), Type::Map(inner)) => entries
            .iter()
            .map(|(key, child)| (Step::Key(key.clone()), child, inner.as_ref()))
            .collect(),
        (Value::List(items), Type::List(inner)) => items
            .iter()
            .enumerate()
            .map(|(i, child)| (Step::Index(i), child, inner.as_ref()))
            .collect(),
        (Value::Set(items), Type::Set(inner)) => items
            .iter()
            .enumerate()
            .map(|(i, child)| (Step::SetElement(i), child, inner.as_ref()))
            .collect(),
        _ => Vec::new(),
    }
}

/// `root` with the part at `steps` replaced by `with`.
fn replaced(root: &Value, steps: &[Step], with: Value) -> Value {
    let Some((first, rest)) = steps.split_first() else {
        return with;
    };
    let mut copy = root.clone();
    let slot = match (&mut copy, first) {
        (Value::Object(fields), Step::Field(name)) => fields.get_mut(name),
        (Value::Map(entries), Step::Key(key)) => entries.get_mut(key),
        (Value::List(items), Step::Index(i)) | (Value::Set(items), Step::SetElement(i)) => {
            items.get_mut(*i)
        }
        _ => None,
    };
    match slot {
        Some(slot) => *slot = replaced(slot, rest, with),
        // An object attribute the value leaves out reads as null: add it.
        None => {
            if let (Value::Object(fields), Step::Field(name)) = (&mut copy, first) {
                fields.insert(name.clone(), replaced(&Value::Null, rest, with));
            }
        }
    }
    copy
}

/// Steps as a Terraform attribute path, which stops at a set.
fn to_attribute_path(steps: &[Step]) -> AttributePath {
    let mut path = AttributePath::root();
    for step in steps {
        path = match step {
            Step::Field(name) => path.attribute(name.clone()),
            Step::Key(key) => path.key(key.clone()),
            Step::Index(i) => path.index(i64::try_from(*i).unwrap_or(i64::MAX)),
            Step::SetElement(_) => break,
        };
    }
    path
}

/// The part of `value` at `path` (null where the path leads nowhere).
pub fn value_at<'a>(value: &'a Value, path: &AttributePath) -> &'a Value {
    use crate::value::PathStep;
    let mut current = value;
    for step in path.steps() {
        current = match (current, step) {
            (Value::Object(fields) | Value::Map(fields), PathStep::Attribute(key))
            | (Value::Object(fields) | Value::Map(fields), PathStep::ElementKeyString(key)) => {
                fields.get(key).unwrap_or(&Value::Null)
            }
            (Value::List(items), PathStep::ElementKeyInt(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| items.get(i))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    current
}

/// What serde expected, from its message, without the value it found (which may be a secret):
/// `expected struct SecretRef`, `missing field `store``.
pub fn expectation(error: &ModelError) -> String {
    let text = match error {
        ModelError::Decode(e) | ModelError::Serialize(e) => e.to_string(),
        other => return other.to_string(),
    };
    let text = text.split(" at line ").next().unwrap_or_default();
    match text.find("expected ") {
        Some(at) => text[at..].to_string(),
        None if text.starts_with("missing field") => text.to_string(),
        None => "a value of another shape was expected".to_string(),
    }
}

/// Fails unless model `M` holds every attribute of `ty`, and nothing else: a value with every
/// attribute set must come back unchanged through the model.
#[cfg(any(test, feature = "testing"))]
pub fn assert_model_fits<M: Serialize + DeserializeOwned>(ty: &Type) {
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

/// Fails (with the reason, never the value) unless `value` converts to model `M` and back to a
/// value of `ty`, and a second trip changes nothing: the property every value the schema admits
/// must have (see `super::arbitrary`).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn round_trip<M: Serialize + DeserializeOwned>(
    value: &Value,
    ty: &Type,
) -> Result<(), String> {
    let model: M = decode(value).map_err(|e| {
        let at = failing_path::<M>(value, ty).map_or_else(|| "?".to_string(), |p| p.to_string());
        format!(
            "decode at {at} ({}): {}",
            value_at(value, &failing_path::<M>(value, ty).unwrap_or_default()).kind_name(),
            expectation(&e)
        )
    })?;
    let once = encode(&model, ty).map_err(|e| format!("encode: {}", crate::error_chain(&e)))?;
    let again: M =
        decode(&once).map_err(|e| format!("decode again: {}", crate::error_chain(&e)))?;
    let twice =
        encode(&again, ty).map_err(|e| format!("encode again: {}", crate::error_chain(&e)))?;
    if once != twice {
        return Err("a second trip through the model changed the value".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_sensitive_value_debugs_as_the_mask() {
        let secret = Sensitive("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "(sensitive value)");
        assert_eq!(
            format!("{:?}", Some(Sensitive(1))),
            "Some((sensitive value))"
        );
    }

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
