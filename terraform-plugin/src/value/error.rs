//! Errors of the msgpack and JSON codecs, each carrying the attribute path where it happened.
//!
//! Both codecs share these types so that callers turn any of them into a Terraform diagnostic
//! the same way: message from `Display`, `AttributePath` from [`DecodeError::path`] /
//! [`EncodeError::path`].

use super::number::NumberError;
use super::path::AttributePath;
use super::types::TypeError;

/// Renders `path` as a message prefix: `"cluster.zone: "`, or nothing at the root.
fn location(path: &AttributePath) -> String {
    if path.is_root() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A value could not be decoded from msgpack or JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{kind}", location(.path))]
pub struct DecodeError {
    /// Where in the value the problem is (the enclosing object for unknown attributes).
    pub path: AttributePath,
    /// What the problem is.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error of `kind` at `path`.
    pub fn new(path: AttributePath, kind: DecodeErrorKind) -> Self {
        Self { path, kind }
    }
}

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// Bytes remain after the complete value.
    #[error("{0} unexpected byte(s) after the value")]
    TrailingBytes(usize),
    /// Containers nested deeper than the codec allows.
    #[error("value nested more than {0} levels deep")]
    TooDeep(usize),
    /// A byte that starts no msgpack value (0xc1).
    #[error("invalid msgpack marker byte 0x{0:02x}")]
    InvalidMarker(u8),
    /// The encoded value has the wrong shape for the schema type.
    #[error("expected {expected}, found {found}")]
    TypeMismatch {
        /// The schema type, by its friendly name.
        expected: String,
        /// The kind of encoded value found instead.
        found: &'static str,
    },
    /// A string (or map key) that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A number given as text that does not parse.
    #[error("invalid number: {0}")]
    InvalidNumber(NumberError),
    /// A NaN float: Terraform numbers have no NaN.
    #[error("NaN is not a valid number")]
    NotANumber,
    /// An object key that is not an attribute of the object type.
    #[error("unsupported attribute {0:?}")]
    UnsupportedAttribute(String),
    /// The same key twice in one map or object.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// A map or object key that is not a string.
    #[error("map keys must be strings, found {0}")]
    NonStringKey(&'static str),
    /// A tuple with the wrong number of elements.
    #[error("a tuple of {expected} element(s) is required, found {found}")]
    TupleLength {
        /// Elements in the tuple type.
        expected: usize,
        /// Elements in the input.
        found: usize,
    },
    /// A dynamic value that is not `[type, value]` (msgpack) or `{"type","value"}` (JSON).
    #[error("invalid dynamic value: {0}")]
    DynamicShape(&'static str),
    /// A dynamic value whose type JSON is not a type.
    #[error("invalid type in dynamic value: {0}")]
    DynamicType(TypeError),
    /// The input is not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
}

/// A value could not be encoded as msgpack or JSON for its schema type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{kind}", location(.path))]
pub struct EncodeError {
    /// Where in the value the problem is.
    pub path: AttributePath,
    /// What the problem is.
    pub kind: EncodeErrorKind,
}

impl EncodeError {
    /// An error of `kind` at `path`.
    pub fn new(path: AttributePath, kind: EncodeErrorKind) -> Self {
        Self { path, kind }
    }
}

/// What went wrong while encoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeErrorKind {
    /// The value does not have the shape of the schema type.
    #[error("a {found} value does not conform to type {expected}")]
    TypeMismatch {
        /// The schema type, by its friendly name.
        expected: String,
        /// The kind of value found.
        found: &'static str,
    },
    /// An object value with an attribute its type does not declare.
    #[error("attribute {0:?} is not part of the object type")]
    UnexpectedAttribute(String),
    /// A tuple value with the wrong number of elements.
    #[error("a tuple of {expected} element(s) is required, found {found}")]
    TupleLength {
        /// Elements in the tuple type.
        expected: usize,
        /// Elements in the value.
        found: usize,
    },
    /// A `Value::Dynamic` whose concrete type differs from a non-dynamic schema type.
    #[error("a dynamic value of type {actual} does not conform to type {expected}")]
    DynamicTypeMismatch {
        /// The schema type.
        expected: String,
        /// The type carried by the value.
        actual: String,
    },
    /// A plain value under a `dynamic` type whose elements disagree on their type.
    #[error(
        "cannot infer one type for this dynamic value (its elements differ); \
         wrap it in Value::Dynamic with an explicit type"
    )]
    CannotInferType,
    #[cfg(test)]
    /// JSON has no unknown values.
    #[error("unknown values cannot be encoded as JSON")]
    UnknownInJson,
    #[cfg(test)]
    /// JSON has no infinities.
    #[error("infinite numbers cannot be encoded as JSON")]
    InfinityInJson,
    #[cfg(test)]
    /// A number the JSON library rejected.
    #[error("number {0} cannot be encoded as JSON")]
    JsonNumber(String),
    /// Containers nested deeper than the decoders would accept.
    #[error("value nested more than {0} levels deep")]
    TooDeep(usize),
    /// A string or collection longer than msgpack can express (2^32 - 1).
    #[error("{0} bytes or elements exceed msgpack's limit of 4294967295")]
    TooLong(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path() {
        let cases = [
            (
                DecodeError::new(
                    AttributePath::root().attribute("cluster").attribute("zone"),
                    DecodeErrorKind::TypeMismatch {
                        expected: "string".into(),
                        found: "array",
                    },
                )
                .to_string(),
                "cluster.zone: expected string, found array",
            ),
            (
                DecodeError::new(AttributePath::root(), DecodeErrorKind::TrailingBytes(2))
                    .to_string(),
                "2 unexpected byte(s) after the value",
            ),
            (
                EncodeError::new(
                    AttributePath::root().attribute("files").key("a"),
                    EncodeErrorKind::UnknownInJson,
                )
                .to_string(),
                "files[\"a\"]: unknown values cannot be encoded as JSON",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
