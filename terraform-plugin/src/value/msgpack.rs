//! Schema-driven msgpack codec for `DynamicValue.msgpack`, following go-cty's `cty/msgpack`.
//!
//! The rules (see `tfplugin-object-wire-format.md`):
//! - null is nil; unknown is any extension value on input (type 0 `d4 00 00`, refined unknowns
//!   of type 12 with a map payload, or anything else) and exactly `d4 00 00` on output;
//! - numbers are read from any int width, float32/64 or decimal text, and written as an int when
//!   they are an exact `i64`/`u64`, a float64 when exact (including ±Inf), else decimal text;
//! - list/set/tuple are arrays, map is a map with string keys, object is a map keyed by attribute
//!   name, and dynamic is `[type JSON, value]`.
//!
//! The decoder reads the bytes directly (no intermediate `rmpv::Value` tree), so errors name the
//! attribute path, nothing is preallocated from a length claimed on the wire beyond what the
//! remaining input could hold, and nesting is bounded by `MAX_DEPTH` (200), whatever the input.

use std::collections::BTreeMap;

use super::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use super::number::Number;
use super::path::PathTrail;
use super::tree::Value;
use super::types::Type;

/// Deepest nesting of containers (and dynamic wrappers) accepted or produced.
///
/// Terraform schemas nest a few levels; 200 leaves ample room while keeping the recursive
/// decoder far from the stack limit on hostile input.
pub(crate) const MAX_DEPTH: usize = 200;

/// The encoding of an unrefined unknown value: fixext1, extension type 0, payload 0.
const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

/// Decodes msgpack `bytes` as a value of type `ty`.
///
/// Missing object attributes become [`Value::Null`]; an attribute the type does not declare,
/// a shape that does not fit the type, malformed bytes and trailing bytes are errors.
///
/// ```ignore
/// let v = decode(&[0x81, 0xa1, b'a', 0xd4, 0x00, 0x00], &Type::object([("a", Type::String)]))?;
/// assert!(v.get("a").is_unknown());
/// ```
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut reader = Reader { rest: bytes };
    let value = decode_value(&mut reader, ty, &PathTrail::Root, 0)?;
    if !reader.rest.is_empty() {
        return Err(DecodeError::new(
            Default::default(),
            DecodeErrorKind::TrailingBytes(reader.rest.len()),
        ));
    }
    Ok(value)
}

/// Encodes `value` as msgpack for type `ty`.
///
/// Objects get **every** attribute of their type, nil where the value has none (Terraform
/// rejects objects with missing attributes), in sorted attribute-name order as Terraform writes
/// them. A plain (unwrapped) value under a `dynamic` type is written with its inferred type
/// (see [`Value::infer_type`]).
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_value(&mut out, value, ty, &PathTrail::Root, 0)?;
    Ok(out)
}

/// One msgpack item as read from the wire; containers only carry their claimed length.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token<'a> {
    /// nil.
    Nil,
    /// true/false.
    Bool(bool),
    /// Any signed-int encoding (including positive fixint).
    Int(i64),
    /// Any unsigned-int encoding.
    Uint(u64),
    /// float32.
    F32(f32),
    /// float64.
    F64(f64),
    /// A str payload (not yet checked for UTF-8).
    Str(&'a [u8]),
    /// A bin payload.
    Bin(&'a [u8]),
    /// An array header with its claimed element count.
    Array(usize),
    /// A map header with its claimed entry count.
    Map(usize),
    /// An extension value: cty reads any of them as unknown.
    Ext,
}

impl Token<'_> {
    /// The msgpack kind, for error messages.
    fn kind_name(&self) -> &'static str {
        match self {
            Token::Nil => "nil",
            Token::Bool(_) => "bool",
            Token::Int(_) | Token::Uint(_) => "integer",
            Token::F32(_) | Token::F64(_) => "float",
            Token::Str(_) => "string",
            Token::Bin(_) => "binary",
            Token::Array(_) => "array",
            Token::Map(_) => "map",
            Token::Ext => "extension",
        }
    }

    /// The bytes of a str or bin item: go-cty's msgpack library reads either as a string.
    fn text_bytes(&self) -> Option<&[u8]> {
        match self {
            Token::Str(bytes) | Token::Bin(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// A cursor over the input bytes that reads one [`Token`] at a time.
struct Reader<'a> {
    /// The bytes not yet consumed.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Consumes the next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeErrorKind> {
        if n > self.rest.len() {
            return Err(DecodeErrorKind::UnexpectedEnd);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Consumes the next `N` bytes as an array (for big-endian decoding).
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeErrorKind> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| DecodeErrorKind::UnexpectedEnd)
    }

    /// Consumes one byte.
    fn byte(&mut self) -> Result<u8, DecodeErrorKind> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// Consumes a big-endian length of `N` (1, 2 or 4) bytes.
    fn length<const N: usize>(&mut self) -> Result<usize, DecodeErrorKind> {
        let bytes = self.array::<N>()?;
        let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // Only fails on 16-bit targets with a 32-bit length: nothing that big fits in memory.
        usize::try_from(value).map_err(|_| DecodeErrorKind::UnexpectedEnd)
    }

    /// Consumes a length-prefixed payload whose length takes `N` bytes.
    fn payload<const N: usize>(&mut self) -> Result<&'a [u8], DecodeErrorKind> {
        let len = self.length::<N>()?;
        self.take(len)
    }

    /// Consumes an extension body of `len` bytes plus its type byte.
    fn ext_body(&mut self, len: usize) -> Result<Token<'a>, DecodeErrorKind> {
        // The type byte and payload are skipped unread: every extension is an unknown, and
        // refinements (type 12) are optional information we may ignore.
        self.take(1)?;
        self.take(len)?;
        Ok(Token::Ext)
    }

    /// Reads the next item's marker and scalar payload (container contents stay unread).
    fn token(&mut self) -> Result<Token<'a>, DecodeErrorKind> {
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Token::Int(i64::from(marker)),
            0x80..=0x8f => Token::Map(usize::from(marker & 0x0f)),
            0x90..=0x9f => Token::Array(usize::from(marker & 0x0f)),
            0xa0..=0xbf => Token::Str(self.take(usize::from(marker & 0x1f))?),
            0xc0 => Token::Nil,
            0xc1 => return Err(DecodeErrorKind::InvalidMarker(marker)),
            0xc2 => Token::Bool(false),
            0xc3 => Token::Bool(true),
            0xc4 => Token::Bin(self.payload::<1>()?),
            0xc5 => Token::Bin(self.payload::<2>()?),
            0xc6 => Token::Bin(self.payload::<4>()?),
            0xc7 => {
                let len = self.length::<1>()?;
                self.ext_body(len)?
            }
            0xc8 => {
                let len = self.length::<2>()?;
                self.ext_body(len)?
            }
            0xc9 => {
                let len = self.length::<4>()?;
                self.ext_body(len)?
            }
            0xca => Token::F32(f32::from_be_bytes(self.array()?)),
            0xcb => Token::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Token::Uint(u64::from(u8::from_be_bytes(self.array()?))),
            0xcd => Token::Uint(u64::from(u16::from_be_bytes(self.array()?))),
            0xce => Token::Uint(u64::from(u32::from_be_bytes(self.array()?))),
            0xcf => Token::Uint(u64::from_be_bytes(self.array()?)),
            0xd0 => Token::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Token::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Token::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Token::Int(i64::from_be_bytes(self.array()?)),
            // fixext 1, 2, 4, 8, 16.
            0xd4 => self.ext_body(1)?,
            0xd5 => self.ext_body(2)?,
            0xd6 => self.ext_body(4)?,
            0xd7 => self.ext_body(8)?,
            0xd8 => self.ext_body(16)?,
            0xd9 => Token::Str(self.payload::<1>()?),
            0xda => Token::Str(self.payload::<2>()?),
            0xdb => Token::Str(self.payload::<4>()?),
            0xdc => Token::Array(self.length::<2>()?),
            0xdd => Token::Array(self.length::<4>()?),
            0xde => Token::Map(self.length::<2>()?),
            0xdf => Token::Map(self.length::<4>()?),
            0xe0..=0xff => Token::Int(i64::from(i8::from_be_bytes([marker]))),
        })
    }

    /// A capacity for `claimed` items that the remaining input could actually hold (every item
    /// takes at least one byte): a hostile header claiming 2^32 elements must not allocate.
    fn capacity(&self, claimed: usize) -> usize {
        claimed.min(self.rest.len())
    }
}

/// Reads one value of type `ty` at `path`, `depth` containers deep.
fn decode_value(
    reader: &mut Reader<'_>,
    ty: &Type,
    path: &PathTrail<'_>,
    depth: usize,
) -> Result<Value, DecodeError> {
    let at = |kind| DecodeError::new(path.to_path(), kind);
    if depth > MAX_DEPTH {
        return Err(at(DecodeErrorKind::TooDeep(MAX_DEPTH)));
    }
    let token = reader.token().map_err(at)?;
    let mismatch = || {
        at(DecodeErrorKind::TypeMismatch {
            expected: ty.to_string(),
            found: token.kind_name(),
        })
    };
    // Null and unknown are checked first: they are valid for every type, dynamic included.
    match (token, ty) {
        (Token::Ext, _) => Ok(Value::Unknown),
        (Token::Nil, _) => Ok(Value::Null),
        (Token::Array(len), Type::Dynamic) => {
            if len != 2 {
                return Err(at(DecodeErrorKind::DynamicShape(
                    "expected a [type, value] array of two elements",
                )));
            }
            let type_token = reader.token().map_err(at)?;
            let type_json = type_token.text_bytes().ok_or_else(|| {
                at(DecodeErrorKind::DynamicShape(
                    "the type must be JSON in a binary or string item",
                ))
            })?;
            let inner_ty = Type::from_json_bytes(type_json)
                .map_err(|e| at(DecodeErrorKind::DynamicType(e)))?;
            let inner = decode_value(reader, &inner_ty, path, depth + 1)?;
            Ok(Value::dynamic(inner_ty, inner))
        }
        (Token::Bool(b), Type::Bool) => Ok(Value::Bool(b)),
        (_, Type::Number) => decode_number(token).map_err(at)?.ok_or_else(mismatch),
        (Token::Str(bytes) | Token::Bin(bytes), Type::String) => utf8(bytes).map_err(at),
        (Token::Array(len), Type::List(element)) => {
            decode_sequence(reader, len, element, depth, |i| path.index(i)).map(Value::List)
        }
        (Token::Array(len), Type::Set(element)) => {
            decode_sequence(reader, len, element, depth, |i| path.set_element(i)).map(Value::Set)
        }
        (Token::Array(len), Type::Tuple(elements)) => {
            if len != elements.len() {
                return Err(at(DecodeErrorKind::TupleLength {
                    expected: elements.len(),
                    found: len,
                }));
            }
            let mut items = Vec::with_capacity(len);
            for (i, element) in elements.iter().enumerate() {
                items.push(decode_value(reader, element, &path.index(i), depth + 1)?);
            }
            Ok(Value::Tuple(items))
        }
        (Token::Map(len), Type::Map(element)) => {
            let mut entries = BTreeMap::new();
            for _ in 0..len {
                let key = decode_key(reader).map_err(at)?;
                if entries.contains_key(&key) {
                    return Err(at(DecodeErrorKind::DuplicateKey(key)));
                }
                let item = decode_value(reader, element, &path.key(&key), depth + 1)?;
                entries.insert(key, item);
            }
            Ok(Value::Map(entries))
        }
        (Token::Map(len), Type::Object(attribute_types)) => {
            let mut attributes = BTreeMap::new();
            for _ in 0..len {
                let name = decode_key(reader).map_err(at)?;
                let Some(attribute_type) = attribute_types.get(&name) else {
                    return Err(at(DecodeErrorKind::UnsupportedAttribute(name)));
                };
                if attributes.contains_key(&name) {
                    return Err(at(DecodeErrorKind::DuplicateKey(name)));
                }
                let item = decode_value(reader, attribute_type, &path.attribute(&name), depth + 1)?;
                attributes.insert(name, item);
            }
            // Terraform always sends every attribute; be lenient and treat absent ones as null.
            for name in attribute_types.keys() {
                if !attributes.contains_key(name) {
                    attributes.insert(name.clone(), Value::Null);
                }
            }
            Ok(Value::Object(attributes))
        }
        _ => Err(mismatch()),
    }
}

/// Reads `len` elements of type `element`, naming each element's path with `step`.
fn decode_sequence<'p>(
    reader: &mut Reader<'_>,
    len: usize,
    element: &Type,
    depth: usize,
    step: impl Fn(usize) -> PathTrail<'p>,
) -> Result<Vec<Value>, DecodeError> {
    let mut items = Vec::with_capacity(reader.capacity(len));
    for i in 0..len {
        items.push(decode_value(reader, element, &step(i), depth + 1)?);
    }
    Ok(items)
}

/// Reads a map key or attribute name, which must be a (UTF-8) string.
fn decode_key(reader: &mut Reader<'_>) -> Result<String, DecodeErrorKind> {
    let token = reader.token()?;
    let bytes = token
        .text_bytes()
        .ok_or(DecodeErrorKind::NonStringKey(token.kind_name()))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeErrorKind::InvalidUtf8)
}

/// A string value from UTF-8 bytes.
fn utf8(bytes: &[u8]) -> Result<Value, DecodeErrorKind> {
    std::str::from_utf8(bytes)
        .map(Value::string)
        .map_err(|_| DecodeErrorKind::InvalidUtf8)
}

/// A number from an int, float or decimal-text item; `Ok(None)` if the item is none of these.
fn decode_number(token: Token<'_>) -> Result<Option<Value>, DecodeErrorKind> {
    let float = |f: f64| Number::from_f64(f).ok_or(DecodeErrorKind::NotANumber);
    let number = match token {
        Token::Int(i) => Number::from_i64(i),
        Token::Uint(u) => Number::from_u64(u),
        Token::F32(f) => float(f64::from(f))?,
        Token::F64(f) => float(f)?,
        Token::Str(bytes) | Token::Bin(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| DecodeErrorKind::InvalidUtf8)?;
            Number::parse(text).map_err(DecodeErrorKind::InvalidNumber)?
        }
        _ => return Ok(None),
    };
    Ok(Some(Value::Number(number)))
}

/// Writes `value` of type `ty` at `path`, `depth` containers deep.
fn encode_value(
    out: &mut Vec<u8>,
    value: &Value,
    ty: &Type,
    path: &PathTrail<'_>,
    depth: usize,
) -> Result<(), EncodeError> {
    let at = |kind| EncodeError::new(path.to_path(), kind);
    if depth > MAX_DEPTH {
        return Err(at(EncodeErrorKind::TooDeep(MAX_DEPTH)));
    }
    match (value, ty) {
        (Value::Null, _) => out.push(0xc0),
        (Value::Unknown, _) => out.extend_from_slice(&UNKNOWN),
        (Value::Dynamic(actual, inner), Type::Dynamic) => {
            encode_dynamic(out, inner, actual, path, depth)?;
        }
        (Value::Dynamic(actual, inner), _) => {
            if **actual != *ty {
                return Err(at(EncodeErrorKind::DynamicTypeMismatch {
                    expected: ty.to_string(),
                    actual: actual.to_string(),
                }));
            }
            encode_value(out, inner, ty, path, depth)?;
        }
        (_, Type::Dynamic) => {
            let actual = value
                .infer_type()
                .ok_or_else(|| at(EncodeErrorKind::CannotInferType))?;
            encode_dynamic(out, value, &actual, path, depth)?;
        }
        (Value::Bool(b), Type::Bool) => out.push(if *b { 0xc3 } else { 0xc2 }),
        (Value::Number(n), Type::Number) => write_number(out, n).map_err(at)?,
        (Value::String(s), Type::String) => write_str(out, s).map_err(at)?,
        (Value::List(items), Type::List(element)) => {
            write_len(out, items.len(), ARRAY_HEADERS).map_err(at)?;
            for (i, item) in items.iter().enumerate() {
                encode_value(out, item, element, &path.index(i), depth + 1)?;
            }
        }
        (Value::Set(items), Type::Set(element)) => {
            write_len(out, items.len(), ARRAY_HEADERS).map_err(at)?;
            for (i, item) in items.iter().enumerate() {
                encode_value(out, item, element, &path.set_element(i), depth + 1)?;
            }
        }
        (Value::Tuple(items), Type::Tuple(elements)) => {
            if items.len() != elements.len() {
                return Err(at(EncodeErrorKind::TupleLength {
                    expected: elements.len(),
                    found: items.len(),
                }));
            }
            write_len(out, items.len(), ARRAY_HEADERS).map_err(at)?;
            for (i, (item, element)) in items.iter().zip(elements).enumerate() {
                encode_value(out, item, element, &path.index(i), depth + 1)?;
            }
        }
        (Value::Map(entries), Type::Map(element)) => {
            write_len(out, entries.len(), MAP_HEADERS).map_err(at)?;
            for (key, item) in entries {
                write_str(out, key).map_err(at)?;
                encode_value(out, item, element, &path.key(key), depth + 1)?;
            }
        }
        (Value::Object(attributes), Type::Object(attribute_types)) => {
            if let Some(extra) = attributes
                .keys()
                .find(|k| !attribute_types.contains_key(*k))
            {
                return Err(at(EncodeErrorKind::UnexpectedAttribute(extra.clone())));
            }
            write_len(out, attribute_types.len(), MAP_HEADERS).map_err(at)?;
            for (name, attribute_type) in attribute_types {
                write_str(out, name).map_err(at)?;
                let item = attributes.get(name).unwrap_or(&Value::Null);
                encode_value(out, item, attribute_type, &path.attribute(name), depth + 1)?;
            }
        }
        _ => {
            return Err(at(EncodeErrorKind::TypeMismatch {
                expected: ty.to_string(),
                found: value.kind_name(),
            }));
        }
    }
    Ok(())
}

/// Writes `[bin(type JSON), value]` for a value of concrete type `actual` under `dynamic`.
fn encode_dynamic(
    out: &mut Vec<u8>,
    value: &Value,
    actual: &Type,
    path: &PathTrail<'_>,
    depth: usize,
) -> Result<(), EncodeError> {
    out.push(0x92);
    let type_json = actual.to_json_bytes();
    // cty writes the type as bin; its decoder also accepts str.
    write_len(out, type_json.len(), BIN_HEADERS)
        .map_err(|kind| EncodeError::new(path.to_path(), kind))?;
    out.extend_from_slice(&type_json);
    encode_value(out, value, actual, path, depth + 1)
}

/// Writes a number in the most compact exact form: int, then float64, then decimal text.
fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), EncodeErrorKind> {
    if let Some(i) = n.as_i64() {
        write_int(out, i);
    } else if let Some(u) = n.as_u64() {
        write_uint(out, u);
    } else if let Some(f) = n.to_f64_exact() {
        out.push(0xcb);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        write_str(out, &n.to_string())?;
    }
    Ok(())
}

/// Writes a signed integer in its smallest encoding.
fn write_int(out: &mut Vec<u8>, i: i64) {
    if let Ok(u) = u64::try_from(i) {
        write_uint(out, u);
    } else if i >= -32 {
        // Negative fixint: the byte is the two's-complement value itself.
        out.extend_from_slice(&(i as i8).to_be_bytes());
    } else if let Ok(v) = i8::try_from(i) {
        out.push(0xd0);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i16::try_from(i) {
        out.push(0xd1);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(i) {
        out.push(0xd2);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Writes an unsigned integer in its smallest encoding.
fn write_uint(out: &mut Vec<u8>, u: u64) {
    if u < 0x80 {
        // Positive fixint: the byte is the value itself.
        out.push(u as u8);
    } else if let Ok(v) = u8::try_from(u) {
        out.push(0xcc);
        out.push(v);
    } else if let Ok(v) = u16::try_from(u) {
        out.push(0xcd);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(u) {
        out.push(0xce);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// Header bytes of one container kind: the fix-form base with its limit, then the 8-, 16- and
/// 32-bit length markers (0 where the kind has no such form).
struct Headers {
    /// The fix-form base marker (ORed with the length), or 0 for none.
    fix_base: u8,
    /// Lengths below this use the fix form.
    fix_limit: usize,
    /// Marker with a 1-byte length, or 0 for none.
    len8: u8,
    /// Marker with a 2-byte length.
    len16: u8,
    /// Marker with a 4-byte length.
    len32: u8,
}

/// Array headers: fixarray (< 16), array16, array32.
const ARRAY_HEADERS: Headers = Headers {
    fix_base: 0x90,
    fix_limit: 16,
    len8: 0,
    len16: 0xdc,
    len32: 0xdd,
};

/// Map headers: fixmap (< 16), map16, map32.
const MAP_HEADERS: Headers = Headers {
    fix_base: 0x80,
    fix_limit: 16,
    len8: 0,
    len16: 0xde,
    len32: 0xdf,
};

/// String headers: fixstr (< 32), str8, str16, str32.
const STR_HEADERS: Headers = Headers {
    fix_base: 0xa0,
    fix_limit: 32,
    len8: 0xd9,
    len16: 0xda,
    len32: 0xdb,
};

/// Binary headers: bin8, bin16, bin32 (no fix form).
const BIN_HEADERS: Headers = Headers {
    fix_base: 0,
    fix_limit: 0,
    len8: 0xc4,
    len16: 0xc5,
    len32: 0xc6,
};

/// Writes the smallest header for a container or payload of `len` items/bytes.
fn write_len(out: &mut Vec<u8>, len: usize, headers: Headers) -> Result<(), EncodeErrorKind> {
    if len < headers.fix_limit {
        // len < 32 here, so the cast is exact.
        out.push(headers.fix_base | len as u8);
    } else if let (Ok(v), true) = (u8::try_from(len), headers.len8 != 0) {
        out.push(headers.len8);
        out.push(v);
    } else if let Ok(v) = u16::try_from(len) {
        out.push(headers.len16);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(len) {
        out.push(headers.len32);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        return Err(EncodeErrorKind::TooLong(len));
    }
    Ok(())
}

/// Writes a str item.
fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeErrorKind> {
    write_len(out, s.len(), STR_HEADERS)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::error::DecodeErrorKind as K;
    use super::super::path::AttributePath;
    use super::super::testing::{arb_type, arb_type_and_value, mutate};
    use super::*;
    use proptest::prelude::*;

    fn num(text: &str) -> Value {
        Value::Number(Number::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    fn ok(bytes: &[u8], ty: &Type) -> Value {
        decode(bytes, ty).unwrap_or_else(|e| panic!("decoding {bytes:02x?} as {ty}: {e}"))
    }

    fn err(bytes: &[u8], ty: &Type) -> DecodeError {
        match decode(bytes, ty) {
            Ok(v) => panic!("decoding {bytes:02x?} as {ty} gave {v:?}"),
            Err(e) => e,
        }
    }

    /// The bytes of a msgpack str (fixstr or str8: strings under 256 bytes).
    fn mstr(s: &str) -> Vec<u8> {
        let mut out = match u8::try_from(s.len()) {
            Ok(len) if len < 32 => vec![0xa0 | len],
            Ok(len) => vec![0xd9, len],
            Err(_) => panic!("test strings stay under 256 bytes"),
        };
        out.extend_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn decode_scalars_table() {
        let cases: Vec<(Vec<u8>, Type, Value)> = vec![
            (vec![0xd4, 0x00, 0x00], Type::String, Value::Unknown),
            (vec![0xd4, 0x00, 0x00], Type::Dynamic, Value::Unknown),
            (
                vec![0xd4, 0x00, 0x00],
                Type::list(Type::Number),
                Value::Unknown,
            ),
            // Refined unknown: ext 12 whose payload is the map {1: true} (not null).
            (
                vec![0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3],
                Type::String,
                Value::Unknown,
            ),
            // Refined unknown string with prefix "ab": ext8 of 5 bytes, payload {2: "ab"}.
            (
                vec![0xc7, 0x05, 0x0c, 0x81, 0x02, 0xa2, b'a', b'b'],
                Type::String,
                Value::Unknown,
            ),
            // Other extension codes are unknown too.
            (vec![0xd5, 0x07, 0x01, 0x02], Type::Bool, Value::Unknown),
            (
                vec![0xc8, 0x00, 0x01, 0x05, 0xff],
                Type::Number,
                Value::Unknown,
            ),
            (vec![0xc0], Type::String, Value::Null),
            (vec![0xc0], Type::Dynamic, Value::Null),
            (vec![0xc0], Type::object([("a", Type::String)]), Value::Null),
            (vec![0xc3], Type::Bool, Value::Bool(true)),
            (vec![0xc2], Type::Bool, Value::Bool(false)),
            (vec![0x00], Type::Number, num("0")),
            (vec![0x7f], Type::Number, num("127")),
            (vec![0xff], Type::Number, num("-1")),
            (vec![0xe0], Type::Number, num("-32")),
            (vec![0xcc, 0xff], Type::Number, num("255")),
            (vec![0xcd, 0x01, 0x00], Type::Number, num("256")),
            (
                vec![0xce, 0xff, 0xff, 0xff, 0xff],
                Type::Number,
                num("4294967295"),
            ),
            (
                vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Type::Number,
                num("18446744073709551615"),
            ),
            (vec![0xd0, 0x80], Type::Number, num("-128")),
            (vec![0xd1, 0x80, 0x00], Type::Number, num("-32768")),
            (
                vec![0xd2, 0x80, 0x00, 0x00, 0x00],
                Type::Number,
                num("-2147483648"),
            ),
            (
                vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
                Type::Number,
                num("-9223372036854775808"),
            ),
            (vec![0xd3, 0, 0, 0, 0, 0, 0, 0, 5], Type::Number, num("5")),
            (
                vec![0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
                Type::Number,
                num("1.5"),
            ),
            (vec![0xca, 0x3f, 0xc0, 0x00, 0x00], Type::Number, num("1.5")),
            (
                vec![0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
                Type::Number,
                Value::Number(Number::infinity(false)),
            ),
            (mstr("1e40"), Type::Number, num("1e40")),
            (
                [vec![0xd9, 0x05], b"1e400".to_vec()].concat(),
                Type::Number,
                num("1e400"),
            ),
            (
                [vec![0xc4, 0x04], b"-Inf".to_vec()].concat(),
                Type::Number,
                Value::Number(Number::infinity(true)),
            ),
            (
                mstr("3.14159265358979323846264338327950288"),
                Type::Number,
                num("3.14159265358979323846264338327950288"),
            ),
            (mstr("héllo"), Type::String, Value::string("héllo")),
            (
                vec![0xc4, 0x02, b'h', b'i'],
                Type::String,
                Value::string("hi"),
            ),
            (vec![0xd9, 0x00], Type::String, Value::string("")),
        ];
        for (bytes, ty, want) in cases {
            assert_eq!(ok(&bytes, &ty), want, "{bytes:02x?} as {ty}");
        }
    }

    #[test]
    fn decode_containers() {
        let ty = Type::object([
            ("name", Type::String),
            ("ports", Type::list(Type::Number)),
            ("tags", Type::set(Type::String)),
            ("labels", Type::map(Type::String)),
            ("pair", Type::tuple([Type::Bool, Type::String])),
        ]);
        let mut bytes = vec![0x85];
        bytes.extend(mstr("labels"));
        bytes.extend([0x81, 0xa1, b'k', 0xa1, b'v']);
        bytes.extend(mstr("name"));
        bytes.extend(mstr("r1"));
        bytes.extend(mstr("pair"));
        bytes.extend([0x92, 0xc3, 0xd4, 0x00, 0x00]);
        bytes.extend(mstr("ports"));
        bytes.extend([0x92, 0x01, 0xcd, 0x1f, 0x90]);
        bytes.extend(mstr("tags"));
        bytes.extend([0x91, 0xc0]);
        let want = Value::object([
            ("name", Value::string("r1")),
            ("ports", Value::list([num("1"), num("8080")])),
            ("tags", Value::set([Value::Null])),
            ("labels", Value::map([("k", Value::string("v"))])),
            (
                "pair",
                Value::Tuple(vec![Value::Bool(true), Value::Unknown]),
            ),
        ]);
        assert_eq!(ok(&bytes, &ty), want);
        // Re-encoding gives the same bytes: sorted attributes, same compact forms.
        assert_eq!(encode(&want, &ty), Ok(bytes));
    }

    #[test]
    fn decode_fills_missing_attributes_with_null() {
        let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
        let mut bytes = vec![0x81];
        bytes.extend(mstr("b"));
        bytes.push(0x05);
        assert_eq!(
            ok(&bytes, &ty),
            Value::object([("a", Value::Null), ("b", num("5"))])
        );
        assert_eq!(
            ok(&[0x80], &ty),
            Value::object([("a", Value::Null), ("b", Value::Null)])
        );
    }

    #[test]
    fn decode_dynamic() {
        let mut bytes = vec![0x92, 0xc4, 0x08];
        bytes.extend(b"\"string\"");
        bytes.extend(mstr("x"));
        assert_eq!(
            ok(&bytes, &Type::Dynamic),
            Value::dynamic(Type::String, Value::string("x"))
        );
        // The type may also come as str; the value may be null or unknown of that type.
        let mut bytes = vec![0x92];
        bytes.extend(mstr("[\"list\",\"number\"]"));
        bytes.extend([0xd4, 0x00, 0x00]);
        assert_eq!(
            ok(&bytes, &Type::Dynamic),
            Value::dynamic(Type::list(Type::Number), Value::Unknown)
        );
        let mut bytes = vec![0x92];
        bytes.extend(mstr("\"bool\""));
        bytes.push(0xc0);
        assert_eq!(
            ok(&bytes, &Type::Dynamic),
            Value::dynamic(Type::Bool, Value::Null)
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
            ("rules", Type::set(Type::object([("port", Type::Number)]))),
        ]);
        let obj = |entries: Vec<(&str, Vec<u8>)>| {
            let mut out = vec![0x80 | entries.len() as u8];
            for (k, v) in entries {
                out.extend(mstr(k));
                out.extend(v);
            }
            out
        };
        let cases: Vec<(Vec<u8>, &str, K)> = vec![
            (
                obj(vec![("cluster", obj(vec![("zone", vec![0x90])]))]),
                "cluster.zone",
                K::TypeMismatch {
                    expected: "string".into(),
                    found: "array",
                },
            ),
            (
                obj(vec![(
                    "files",
                    [vec![0x81], mstr("a.txt"), mstr("x")].concat(),
                )]),
                "files[\"a.txt\"]",
                K::InvalidNumber(super::super::number::NumberError::Syntax("x".into())),
            ),
            (
                obj(vec![(
                    "criteria",
                    vec![
                        0x92, 0xc0, 0x81, 0xa8, b'e', b'n', b'v', b'_', b't', b'y', b'p', b'e',
                        0x01,
                    ],
                )]),
                "criteria[1].env_type",
                K::TypeMismatch {
                    expected: "bool".into(),
                    found: "integer",
                },
            ),
            (
                obj(vec![(
                    "rules",
                    vec![0x91, 0x81, 0xa4, b'p', b'o', b'r', b't', 0xc2],
                )]),
                "rules",
                K::TypeMismatch {
                    expected: "number".into(),
                    found: "bool",
                },
            ),
            (
                obj(vec![(
                    "cluster",
                    obj(vec![("zone", mstr("z")), ("region", mstr("r"))]),
                )]),
                "cluster",
                K::UnsupportedAttribute("region".into()),
            ),
            (
                obj(vec![("cluster", obj(vec![("zone", vec![0xa3, b'a'])]))]),
                "cluster.zone",
                K::UnexpectedEnd,
            ),
            (
                obj(vec![("cluster", obj(vec![("zone", vec![0xa1, 0xff])]))]),
                "cluster.zone",
                K::InvalidUtf8,
            ),
            (
                obj(vec![("files", vec![0x81, 0x01, 0x01])]),
                "files",
                K::NonStringKey("integer"),
            ),
            (
                obj(vec![(
                    "files",
                    [vec![0x82], mstr("a"), vec![1], mstr("a"), vec![2]].concat(),
                )]),
                "files",
                K::DuplicateKey("a".into()),
            ),
            (
                obj(vec![("cluster", vec![0xc1])]),
                "cluster",
                K::InvalidMarker(0xc1),
            ),
        ];
        for (bytes, want_path, want_kind) in cases {
            let e = err(&bytes, &ty);
            assert_eq!(e.path.to_string(), want_path, "{e}");
            assert_eq!(e.kind, want_kind, "{e}");
            assert!(e.to_string().starts_with(want_path), "{e}");
        }
    }

    #[test]
    fn decode_rejects_malformed_input() {
        let cases: Vec<(Vec<u8>, Type, K)> = vec![
            (vec![], Type::String, K::UnexpectedEnd),
            (vec![0xc0, 0xc0], Type::String, K::TrailingBytes(1)),
            (vec![0xd4, 0x00], Type::String, K::UnexpectedEnd),
            (
                vec![0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1],
                Type::Number,
                K::NotANumber,
            ),
            (
                vec![0xdd, 0xff, 0xff, 0xff, 0xff],
                Type::list(Type::String),
                K::UnexpectedEnd,
            ),
            (
                vec![0xdb, 0xff, 0xff, 0xff, 0xff, 0x41],
                Type::String,
                K::UnexpectedEnd,
            ),
            (
                vec![0xc6, 0xff, 0xff, 0xff, 0xff],
                Type::String,
                K::UnexpectedEnd,
            ),
            (
                vec![0xc9, 0xff, 0xff, 0xff, 0xff, 0x00],
                Type::String,
                K::UnexpectedEnd,
            ),
            (
                vec![0xdf, 0xff, 0xff, 0xff, 0xff],
                Type::map(Type::String),
                K::UnexpectedEnd,
            ),
            (
                vec![0x93, 0xc3, 0xc3, 0xc3],
                Type::tuple([Type::Bool]),
                K::TupleLength {
                    expected: 1,
                    found: 3,
                },
            ),
            (
                vec![0x91, 0xc0],
                Type::Dynamic,
                K::DynamicShape("expected a [type, value] array of two elements"),
            ),
            (
                vec![0x92, 0x01, 0xc0],
                Type::Dynamic,
                K::DynamicShape("the type must be JSON in a binary or string item"),
            ),
            (
                [vec![0x92], mstr("\"strin\""), vec![0xc0]].concat(),
                Type::Dynamic,
                K::DynamicType(super::super::types::TypeError::UnknownPrimitive(
                    "strin".into(),
                )),
            ),
            (
                vec![0xa1, b'a'],
                Type::Bool,
                K::TypeMismatch {
                    expected: "bool".into(),
                    found: "string",
                },
            ),
            (
                vec![0x80],
                Type::list(Type::Bool),
                K::TypeMismatch {
                    expected: "list of bool".into(),
                    found: "map",
                },
            ),
            (
                vec![0x90],
                Type::Dynamic,
                K::DynamicShape("expected a [type, value] array of two elements"),
            ),
            (
                vec![0xc3],
                Type::Dynamic,
                K::TypeMismatch {
                    expected: "dynamic".into(),
                    found: "bool",
                },
            ),
        ];
        for (bytes, ty, want) in cases {
            assert_eq!(err(&bytes, &ty).kind, want, "{bytes:02x?} as {ty}");
        }
    }

    #[test]
    fn encode_exact_bytes() {
        let big_int = {
            let mut v = vec![0xcf];
            v.extend(u64::MAX.to_be_bytes());
            v
        };
        let cases: Vec<(Value, Type, Vec<u8>)> = vec![
            (Value::Unknown, Type::String, vec![0xd4, 0x00, 0x00]),
            (Value::Unknown, Type::Dynamic, vec![0xd4, 0x00, 0x00]),
            (Value::Null, Type::object([("a", Type::String)]), vec![0xc0]),
            (Value::Null, Type::Dynamic, vec![0xc0]),
            (Value::Bool(true), Type::Bool, vec![0xc3]),
            (num("0"), Type::Number, vec![0x00]),
            (num("-0"), Type::Number, vec![0x00]),
            (num("5"), Type::Number, vec![0x05]),
            (num("1.0"), Type::Number, vec![0x01]),
            (num("-1"), Type::Number, vec![0xff]),
            (num("-33"), Type::Number, vec![0xd0, 0xdf]),
            (num("200"), Type::Number, vec![0xcc, 0xc8]),
            (num("-200"), Type::Number, vec![0xd1, 0xff, 0x38]),
            (
                num("70000"),
                Type::Number,
                vec![0xce, 0x00, 0x01, 0x11, 0x70],
            ),
            (
                num("-70000"),
                Type::Number,
                vec![0xd2, 0xff, 0xfe, 0xee, 0x90],
            ),
            (
                num("1e10"),
                Type::Number,
                vec![0xcf, 0, 0, 0, 0x02, 0x54, 0x0b, 0xe4, 0x00],
            ),
            (
                num("-9223372036854775808"),
                Type::Number,
                vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
            ),
            (num("18446744073709551615"), Type::Number, big_int),
            (
                num("1.5"),
                Type::Number,
                vec![0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
            ),
            (
                num("-Inf"),
                Type::Number,
                vec![0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0],
            ),
            // 2^64 is an exact float64.
            (
                num("18446744073709551616"),
                Type::Number,
                vec![0xcb, 0x43, 0xf0, 0, 0, 0, 0, 0, 0],
            ),
            (num("0.1"), Type::Number, mstr("0.1")),
            (num("1e400"), Type::Number, mstr("1e400")),
            (
                num("3.14159265358979323846264338327950288"),
                Type::Number,
                [
                    vec![0xd9, 37],
                    b"3.14159265358979323846264338327950288".to_vec(),
                ]
                .concat(),
            ),
            (Value::string("hi"), Type::String, mstr("hi")),
            (
                Value::string("x".repeat(32)),
                Type::String,
                [vec![0xd9, 32], vec![b'x'; 32]].concat(),
            ),
            (
                Value::string("x".repeat(256)),
                Type::String,
                [vec![0xda, 1, 0], vec![b'x'; 256]].concat(),
            ),
            (Value::list([]), Type::list(Type::String), vec![0x90]),
            (
                Value::list(vec![Value::Null; 16]),
                Type::list(Type::String),
                [vec![0xdc, 0, 16], vec![0xc0; 16]].concat(),
            ),
            (
                Value::set([Value::Bool(false)]),
                Type::set(Type::Bool),
                vec![0x91, 0xc2],
            ),
            (
                Value::map([("k", Value::Unknown)]),
                Type::map(Type::String),
                vec![0x81, 0xa1, b'k', 0xd4, 0, 0],
            ),
            (
                Value::dynamic(Type::String, Value::string("x")),
                Type::Dynamic,
                [vec![0x92, 0xc4, 8], b"\"string\"".to_vec(), mstr("x")].concat(),
            ),
            // A dynamic wrapper whose type matches a concrete schema type is transparent.
            (
                Value::dynamic(Type::String, Value::string("x")),
                Type::String,
                mstr("x"),
            ),
            // A plain value under dynamic gets its inferred type.
            (
                Value::list([Value::Null, num("1")]),
                Type::Dynamic,
                [
                    vec![0x92, 0xc4, 17],
                    b"[\"list\",\"number\"]".to_vec(),
                    vec![0x92, 0xc0, 0x01],
                ]
                .concat(),
            ),
        ];
        for (value, ty, want) in cases {
            assert_eq!(encode(&value, &ty), Ok(want), "{value:?} as {ty}");
        }
    }

    #[test]
    fn encode_writes_every_attribute_sorted_with_nil_for_missing() {
        let ty = Type::object([
            ("zeta", Type::String),
            ("alpha", Type::Number),
            ("mid", Type::Bool),
        ]);
        let value = Value::object([("zeta", Value::string("z"))]);
        let want = [
            vec![0x83],
            mstr("alpha"),
            vec![0xc0],
            mstr("mid"),
            vec![0xc0],
            mstr("zeta"),
            mstr("z"),
        ]
        .concat();
        assert_eq!(encode(&value, &ty), Ok(want));
    }

    #[test]
    fn encode_errors_name_the_path() {
        let ty = Type::object([
            ("cluster", Type::object([("zone", Type::String)])),
            ("pair", Type::tuple([Type::String])),
            ("any", Type::Dynamic),
        ]);
        let cases: Vec<(Value, &str, EncodeErrorKind)> = vec![
            (
                Value::object([("cluster", Value::object([("zone", num("1"))]))]),
                "cluster.zone",
                EncodeErrorKind::TypeMismatch {
                    expected: "string".into(),
                    found: "number",
                },
            ),
            (
                Value::object([(
                    "cluster",
                    Value::object([("zone", Value::Null), ("extra", Value::Null)]),
                )]),
                "cluster",
                EncodeErrorKind::UnexpectedAttribute("extra".into()),
            ),
            (
                Value::object([("pair", Value::Tuple(vec![]))]),
                "pair",
                EncodeErrorKind::TupleLength {
                    expected: 1,
                    found: 0,
                },
            ),
            (
                Value::object([("any", Value::list([Value::string("a"), num("1")]))]),
                "any",
                EncodeErrorKind::CannotInferType,
            ),
            (
                Value::object([("cluster", Value::dynamic(Type::String, Value::string("x")))]),
                "cluster",
                EncodeErrorKind::DynamicTypeMismatch {
                    expected: "object".into(),
                    actual: "string".into(),
                },
            ),
            (
                Value::object([("pair", Value::list([Value::string("a")]))]),
                "pair",
                EncodeErrorKind::TypeMismatch {
                    expected: "tuple".into(),
                    found: "list",
                },
            ),
        ];
        for (value, want_path, want_kind) in cases {
            match encode(&value, &ty) {
                Ok(bytes) => panic!("{value:?} encoded as {bytes:02x?}"),
                Err(e) => {
                    assert_eq!(e.path.to_string(), want_path, "{e}");
                    assert_eq!(e.kind, want_kind, "{e}");
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // 100k nested dynamic values: each level is [type "dynamic", <next level>].
        let level = [vec![0x92], mstr("\"dynamic\"")].concat();
        let mut bytes = level.repeat(100_000);
        bytes.push(0xc0);
        let e = err(&bytes, &Type::Dynamic);
        assert_eq!(e.kind, K::TooDeep(MAX_DEPTH));

        // 100k nested single-element arrays under dynamic: a shape error at the top.
        let e = err(&vec![0x91; 100_000], &Type::Dynamic);
        assert!(matches!(e.kind, K::DynamicShape(_)), "{e}");

        // A deep list type with matching input stops at the limit too.
        let mut ty = Type::String;
        for _ in 0..(MAX_DEPTH + 10) {
            ty = Type::list(ty);
        }
        let mut bytes = vec![0x91; MAX_DEPTH + 10];
        bytes.extend(mstr("x"));
        assert_eq!(err(&bytes, &ty).kind, K::TooDeep(MAX_DEPTH));
        // ... and within the limit, it decodes.
        let mut ty = Type::String;
        for _ in 0..MAX_DEPTH {
            ty = Type::list(ty);
        }
        let mut bytes = vec![0x91; MAX_DEPTH];
        bytes.extend(mstr("x"));
        assert!(decode(&bytes, &ty).is_ok());
    }

    #[test]
    fn encode_depth_is_bounded_like_decode() {
        let mut ty = Type::String;
        let mut value = Value::string("x");
        for _ in 0..=MAX_DEPTH {
            ty = Type::list(ty);
            value = Value::list([value]);
        }
        let e = encode(&value, &ty).map(|_| ()).unwrap_err();
        assert_eq!(e.kind, EncodeErrorKind::TooDeep(MAX_DEPTH));
    }

    #[test]
    fn output_is_valid_msgpack_for_rmpv() {
        let ty = Type::object([
            ("n", Type::list(Type::Number)),
            ("s", Type::String),
            ("d", Type::Dynamic),
        ]);
        let value = Value::object([
            (
                "n",
                Value::list([
                    num("1"),
                    num("-1e400"),
                    num("2.5"),
                    num("-70000"),
                    num("1e19"),
                ]),
            ),
            ("s", Value::string("y".repeat(70_000))),
            (
                "d",
                Value::dynamic(Type::map(Type::Bool), Value::map([("k", Value::Unknown)])),
            ),
        ]);
        let bytes = encode(&value, &ty).unwrap_or_default();
        let mut rest = bytes.as_slice();
        let parsed = rmpv::decode::read_value(&mut rest);
        assert!(parsed.is_ok(), "{parsed:?}");
        assert!(rest.is_empty());
        assert_eq!(decode(&bytes, &ty), Ok(value));
    }

    #[test]
    fn reads_what_rmpv_writes() {
        use rmpv::Value as R;
        let cases: Vec<(R, Type, Value)> = vec![
            (
                R::from(-1_000_000_000_000i64),
                Type::Number,
                num("-1000000000000"),
            ),
            (R::from(u64::MAX), Type::Number, num("18446744073709551615")),
            (R::F32(0.25), Type::Number, num("0.25")),
            (
                R::from("s".repeat(300)),
                Type::String,
                Value::string("s".repeat(300)),
            ),
            (
                R::Binary(b"\"number\"".to_vec()),
                Type::Dynamic,
                Value::Null,
            ),
            (
                R::Ext(12, vec![0x81, 0x01, 0xc3]),
                Type::list(Type::String),
                Value::Unknown,
            ),
            (
                R::Array(vec![R::from(1), R::Nil]),
                Type::list(Type::Number),
                Value::list([num("1"), Value::Null]),
            ),
        ];
        for (input, ty, want) in cases {
            let mut bytes = Vec::new();
            let written = rmpv::encode::write_value(&mut bytes, &input);
            assert!(written.is_ok());
            if matches!(input, R::Binary(_)) {
                // A bare bin is not a dynamic value; check it is rejected, then wrap it properly.
                assert!(decode(&bytes, &ty).is_err());
                let mut wrapped = vec![0x92];
                wrapped.extend(&bytes);
                wrapped.push(0xc0);
                assert_eq!(
                    decode(&wrapped, &ty),
                    Ok(Value::dynamic(Type::Number, Value::Null))
                );
                continue;
            }
            assert_eq!(decode(&bytes, &ty), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn root_errors_have_the_root_path() {
        let e = err(&[0xc3, 0x00], &Type::Bool);
        assert_eq!(e.path, AttributePath::root());
        assert_eq!(e.to_string(), "1 unexpected byte(s) after the value");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn round_trip((ty, value) in arb_type_and_value(true)) {
            let bytes = encode(&value, &ty);
            prop_assert!(bytes.is_ok(), "{:?}", bytes);
            let bytes = bytes.unwrap_or_default();
            let decoded = decode(&bytes, &ty);
            prop_assert!(decoded.is_ok(), "{:?}", decoded);
            let decoded = decoded.unwrap_or(Value::Null);
            prop_assert!(decoded.semantically_equal(&value), "{:?}\n!=\n{:?}", decoded, value);
            // Decoding is canonical: re-encoding what was decoded gives the same bytes.
            prop_assert_eq!(encode(&decoded, &ty), Ok(bytes));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), ty in arb_type()) {
            let _ = decode(&bytes, &ty);
            let _ = decode(&bytes, &Type::Dynamic);
        }

        #[test]
        fn mutated_encodings_never_panic(
            (ty, value) in arb_type_and_value(true),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let bytes = encode(&value, &ty).unwrap_or_default();
            let mutated = mutate(bytes, &edits);
            if let Ok(decoded) = decode(&mutated, &ty) {
                // Whatever decodes must encode again.
                prop_assert!(encode(&decoded, &ty).is_ok());
            }
        }
    }
}
