//! The in-memory Terraform value tree: [`Value`], its accessors, constructors and comparisons.
//!
//! A `Value` carries no type of its own (except [`Value::Dynamic`]); the codecs read and write it
//! against the schema's [`Type`]. Object attributes missing from a `Value::Object` map mean
//! null, everywhere: the encoders write nil for them and [`Value::get`] returns null.

use std::collections::BTreeMap;

use super::number::Number;
use super::types::Type;

/// The null that [`Value::get`] lends out for absent attributes.
static NULL: Value = Value::Null;

/// A Terraform value, known or not.
///
/// ```ignore
/// let v = Value::object([("name", Value::string("r1")), ("id", Value::Unknown)]);
/// assert_eq!(v.get("name").as_str(), Some("r1"));
/// assert!(v.get("missing").is_null());
/// assert!(!v.is_wholly_known());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null (of whatever type the schema says).
    Null,
    /// Not known until apply.
    Unknown,
    /// A bool.
    Bool(bool),
    /// A number, held exactly.
    Number(Number),
    /// A string.
    String(String),
    /// A list, in order.
    List(Vec<Value>),
    /// A set; element order carries no meaning (see [`Value::semantically_equal`]).
    Set(Vec<Value>),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
    /// An object (or block); absent attributes are null.
    Object(BTreeMap<String, Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A value of an attribute whose schema type is `dynamic`, with its concrete type so it
    /// re-encodes identically. The inner value is usually known, but may be null or unknown
    /// when the wire said "null/unknown of this concrete type".
    Dynamic(Box<Type>, Box<Value>),
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// A number value.
    #[cfg(any(test, feature = "testing"))]
    pub fn number(n: impl Into<Number>) -> Self {
        Value::Number(n.into())
    }

    /// An object value from `(attribute, value)` pairs.
    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Object(collect_map(attributes))
    }

    /// A map value from `(key, value)` pairs.
    #[cfg(any(test, feature = "testing"))]
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Map(collect_map(entries))
    }

    /// A list value.
    #[cfg(any(test, feature = "testing"))]
    pub fn list(elements: impl IntoIterator<Item = Value>) -> Self {
        Value::List(elements.into_iter().collect())
    }

    /// A set value.
    #[cfg(any(test, feature = "testing"))]
    pub fn set(elements: impl IntoIterator<Item = Value>) -> Self {
        Value::Set(elements.into_iter().collect())
    }

    /// A dynamic value with an explicit concrete type.
    pub fn dynamic(ty: Type, value: Value) -> Self {
        Value::Dynamic(Box::new(ty), Box::new(value))
    }

    /// The value itself, or the inner value of a [`Value::Dynamic`].
    ///
    /// All accessors look through the dynamic wrapper, so provider code reads a dynamic
    /// attribute like any other.
    pub fn unwrap_dynamic(&self) -> &Value {
        let mut value = self;
        while let Value::Dynamic(_, inner) = value {
            value = inner;
        }
        value
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    /// Whether the value itself is unknown (its parts are not inspected).
    pub fn is_unknown(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Unknown)
    }

    /// Whether no unknown appears anywhere in the value.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                items.iter().all(Value::is_wholly_known)
            }
            Value::Map(entries) | Value::Object(entries) => {
                entries.values().all(Value::is_wholly_known)
            }
            Value::Dynamic(_, inner) => inner.is_wholly_known(),
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    #[cfg(any(test, feature = "testing"))]
    /// The bool, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    #[cfg(any(test, feature = "testing"))]
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    #[cfg(any(test, feature = "testing"))]
    /// The elements, if this is a known list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The elements (in no meaningful order), if this is a known set.
    #[cfg(any(test, feature = "testing"))]
    pub fn as_set(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::Set(items) => Some(items),
            _ => None,
        }
    }

    /// The elements, if this is a known tuple.
    #[cfg(any(test, feature = "testing"))]
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The elements of any known list, set or tuple.
    #[cfg(any(test, feature = "testing"))]
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a known map.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The attributes present, if this is a known object (absent ones are null).
    #[cfg(any(test, feature = "testing"))]
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Object(attributes) => Some(attributes),
            _ => None,
        }
    }

    /// Attribute `attr` of an object; null when absent, or when this is not a known object.
    ///
    /// ```ignore
    /// let name = config.get("runner").get("name").as_str();
    /// ```
    pub fn get(&self, attr: &str) -> &Value {
        match self.unwrap_dynamic() {
            Value::Object(attributes) => attributes.get(attr).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
            Value::Dynamic(..) => "dynamic",
        }
    }

    /// Equality as Terraform sees it: sets compare as multisets (order ignored), numbers by
    /// value, absent object attributes equal null, and a [`Value::Dynamic`] equals the same
    /// inner value without the wrapper (two wrappers must also agree on the type).
    ///
    /// Two unknowns compare equal here: this is structural comparison of plans, not cty's
    /// three-valued `Equals`.
    pub fn semantically_equal(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Dynamic(ta, a), Value::Dynamic(tb, b)) => ta == tb && a.semantically_equal(b),
            (Value::Dynamic(_, a), b) => a.semantically_equal(b),
            (a, Value::Dynamic(_, b)) => a.semantically_equal(b),
            (Value::Null, Value::Null) | (Value::Unknown, Value::Unknown) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.semantically_equal(y))
            }
            (Value::Set(a), Value::Set(b)) => multiset_equal(a, b),
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.semantically_equal(vb))
            }
            (Value::Object(a), Value::Object(b)) => {
                let attribute_equal = |name: &String| {
                    let va = a.get(name).unwrap_or(&NULL);
                    let vb = b.get(name).unwrap_or(&NULL);
                    va.semantically_equal(vb)
                };
                a.keys().all(attribute_equal) && b.keys().all(attribute_equal)
            }
            _ => false,
        }
    }

    /// The concrete type this value would have under a `dynamic` schema type, as far as it
    /// shows: null and unknown give `dynamic`, collections unify their element types.
    ///
    /// Returns `None` when elements disagree (a list holding a string and a number); such a
    /// value needs an explicit [`Value::Dynamic`] wrapper.
    pub fn infer_type(&self) -> Option<Type> {
        match self {
            Value::Null | Value::Unknown => Some(Type::Dynamic),
            Value::Bool(_) => Some(Type::Bool),
            Value::Number(_) => Some(Type::Number),
            Value::String(_) => Some(Type::String),
            Value::List(items) => Some(Type::list(unify_all(items.iter())?)),
            Value::Set(items) => Some(Type::set(unify_all(items.iter())?)),
            Value::Map(entries) => Some(Type::map(unify_all(entries.values())?)),
            Value::Object(attributes) => attributes
                .iter()
                .map(|(name, v)| Some((name.clone(), v.infer_type()?)))
                .collect::<Option<BTreeMap<_, _>>>()
                .map(Type::Object),
            Value::Tuple(items) => items
                .iter()
                .map(Value::infer_type)
                .collect::<Option<Vec<_>>>()
                .map(Type::Tuple),
            Value::Dynamic(ty, _) => Some((**ty).clone()),
        }
    }
}

/// Collects `(key, value)` pairs into a map with owned keys.
fn collect_map<K: Into<String>>(
    entries: impl IntoIterator<Item = (K, Value)>,
) -> BTreeMap<String, Value> {
    entries.into_iter().map(|(k, v)| (k.into(), v)).collect()
}

/// Whether `a` and `b` hold the same elements the same number of times, in any order.
fn multiset_equal(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Values are neither hashable nor ordered (sets of sets, numbers by value), so match each
    // element of `a` to a distinct unused element of `b`: quadratic, fine for schema-sized sets.
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b
            .iter()
            .zip(used.iter_mut())
            .find(|(y, taken)| !**taken && x.semantically_equal(y));
        match found {
            Some((_, taken)) => {
                *taken = true;
                true
            }
            None => false,
        }
    })
}

/// The one type all `values` can have (ignoring null/unknown ones), or `dynamic` if none shows.
fn unify_all<'a>(values: impl Iterator<Item = &'a Value>) -> Option<Type> {
    let mut unified = Type::Dynamic;
    for value in values {
        unified = unify(unified, value.infer_type()?)?;
    }
    Some(unified)
}

/// The most specific type that both `a` and `b` describe, where `dynamic` means "not yet known".
fn unify(a: Type, b: Type) -> Option<Type> {
    match (a, b) {
        (Type::Dynamic, t) | (t, Type::Dynamic) => Some(t),
        (Type::List(a), Type::List(b)) => Some(Type::list(unify(*a, *b)?)),
        (Type::Set(a), Type::Set(b)) => Some(Type::set(unify(*a, *b)?)),
        (Type::Map(a), Type::Map(b)) => Some(Type::map(unify(*a, *b)?)),
        (Type::Object(a), Type::Object(b)) => {
            if !a.keys().eq(b.keys()) {
                return None;
            }
            a.into_iter()
                .zip(b)
                .map(|((name, ta), (_, tb))| Some((name, unify(ta, tb)?)))
                .collect::<Option<BTreeMap<_, _>>>()
                .map(Type::Object)
        }
        (Type::Tuple(a), Type::Tuple(b)) => {
            if a.len() != b.len() {
                return None;
            }
            a.into_iter()
                .zip(b)
                .map(|(ta, tb)| unify(ta, tb))
                .collect::<Option<Vec<_>>>()
                .map(Type::Tuple)
        }
        (a, b) => (a == b).then_some(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> Value {
        Value::Number(Number::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn accessors() {
        let v = Value::object([
            ("name", Value::string("r1")),
            ("on", Value::Bool(true)),
            ("n", Value::number(3)),
            ("tags", Value::list([Value::string("a")])),
            ("labels", Value::map([("k", Value::string("v"))])),
            ("dyn", Value::dynamic(Type::String, Value::string("x"))),
            ("id", Value::Unknown),
        ]);
        assert_eq!(v.get("name").as_str(), Some("r1"));
        assert_eq!(v.get("on").as_bool(), Some(true));
        assert_eq!(v.get("n").as_number().and_then(Number::as_i64), Some(3));
        assert_eq!(v.get("tags").as_list().map(<[Value]>::len), Some(1));
        assert_eq!(v.get("tags").as_elements().map(<[Value]>::len), Some(1));
        assert_eq!(v.get("tags").as_set(), None);
        assert_eq!(v.get("tags").as_tuple(), None);
        let pair = Value::Tuple(vec![Value::Bool(true), Value::string("b")]);
        assert_eq!(pair.as_tuple().map(<[Value]>::len), Some(2));
        assert_eq!(pair.as_elements().map(<[Value]>::len), Some(2));
        assert_eq!(
            v.get("labels").as_map().and_then(|m| m.get("k")),
            Some(&Value::string("v"))
        );
        assert_eq!(v.get("dyn").as_str(), Some("x"));
        assert!(v.get("missing").is_null());
        assert!(v.get("name").get("deeper").is_null());
        assert!(v.get("id").is_unknown());
        assert!(!v.get("id").is_null());
        assert_eq!(v.as_object().map(BTreeMap::len), Some(7));
        assert_eq!(v.get("name").as_bool(), None);
        assert!(Value::dynamic(Type::String, Value::Null).is_null());
        assert!(Value::dynamic(Type::String, Value::Unknown).is_unknown());
    }

    #[test]
    fn wholly_known() {
        let cases = [
            (Value::Null, true),
            (Value::Unknown, false),
            (Value::list([Value::string("a"), Value::Null]), true),
            (Value::list([Value::string("a"), Value::Unknown]), false),
            (
                Value::object([("a", Value::map([("k", Value::Unknown)]))]),
                false,
            ),
            (
                Value::dynamic(Type::list(Type::String), Value::Unknown),
                false,
            ),
            (Value::set([Value::object([("x", Value::number(1))])]), true),
        ];
        for (value, want) in cases {
            assert_eq!(value.is_wholly_known(), want, "{value:?}");
        }
    }

    #[test]
    fn semantic_equality_table() {
        let cases = [
            (
                Value::set([num("1"), num("2"), num("2")]),
                Value::set([num("2"), num("1"), num("2")]),
                true,
            ),
            (
                Value::set([num("1"), num("1"), num("2")]),
                Value::set([num("1"), num("2"), num("2")]),
                false,
            ),
            (
                Value::set([num("1")]),
                Value::set([num("1"), num("1")]),
                false,
            ),
            (num("1"), num("1.000"), true),
            (
                Value::list([num("1"), num("2")]),
                Value::list([num("2"), num("1")]),
                false,
            ),
            (
                Value::object([("a", Value::Null), ("b", Value::string("x"))]),
                Value::object([("b", Value::string("x"))]),
                true,
            ),
            (
                Value::object([("a", Value::string("y"))]),
                Value::object([("b", Value::string("y"))]),
                false,
            ),
            (
                Value::map([("a", Value::Null)]),
                Value::map::<&str>([]),
                false,
            ),
            (
                Value::dynamic(Type::String, Value::string("x")),
                Value::string("x"),
                true,
            ),
            (
                Value::dynamic(Type::String, Value::Null),
                Value::dynamic(Type::Number, Value::Null),
                false,
            ),
            (Value::Unknown, Value::Unknown, true),
            (Value::Unknown, Value::Null, false),
            (
                Value::list([Value::string("a")]),
                Value::Tuple(vec![Value::string("a")]),
                false,
            ),
            (
                Value::set([Value::set([num("1"), num("2")]), Value::set([])]),
                Value::set([Value::set([]), Value::set([num("2"), num("1")])]),
                true,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.semantically_equal(&b), want, "{a:?} vs {b:?}");
            assert_eq!(b.semantically_equal(&a), want, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn type_inference() {
        let cases = [
            (Value::string("x"), Some(Type::String)),
            (Value::Null, Some(Type::Dynamic)),
            (Value::list([]), Some(Type::list(Type::Dynamic))),
            (
                Value::list([Value::Null, Value::string("a"), Value::Unknown]),
                Some(Type::list(Type::String)),
            ),
            (Value::list([Value::string("a"), num("1")]), None),
            (
                Value::map([
                    ("a", Value::object([("x", Value::Null), ("y", num("1"))])),
                    (
                        "b",
                        Value::object([("x", Value::Bool(true)), ("y", Value::Null)]),
                    ),
                ]),
                Some(Type::map(Type::object([
                    ("x", Type::Bool),
                    ("y", Type::Number),
                ]))),
            ),
            (
                Value::set([
                    Value::object([("x", Value::Null)]),
                    Value::object([("z", Value::Null)]),
                ]),
                None,
            ),
            (
                Value::Tuple(vec![Value::string("a"), num("1")]),
                Some(Type::tuple([Type::String, Type::Number])),
            ),
            (
                Value::list([
                    Value::Tuple(vec![Value::string("a")]),
                    Value::Tuple(vec![Value::string("a"), Value::Null]),
                ]),
                None,
            ),
            (
                Value::dynamic(Type::set(Type::Bool), Value::Unknown),
                Some(Type::set(Type::Bool)),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(value.infer_type(), want, "{value:?}");
        }
    }
}
