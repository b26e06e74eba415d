//! Terraform values: the type system, the value tree, and the two wire codecs.
//!
//! Terraform (cty) values reach the provider as `DynamicValue`s, msgpack almost always and JSON
//! for stored state, and are only meaningful together with the schema type they were encoded
//! for. This module holds:
//! - [`Type`] (`types.rs`): cty types and their compact JSON form used in schemas;
//! - [`Value`] (`tree.rs`) and [`Number`] (`number.rs`): the value tree, with
//!   exact numbers;
//! - [`msgpack`] and [`json`]: schema-driven `decode`/`encode`;
//! - [`AttributePath`] (`path.rs`): where in a value something is, for diagnostics;
//! - [`DecodeError`]/[`EncodeError`] (`error.rs`), which
//!   carry that path.
//!
//! ```ignore
//! use terraform_plugin::value::{msgpack, Type, Value};
//! let ty = Type::object([("name", Type::String), ("id", Type::String)]);
//! let config = msgpack::decode(&request.config.msgpack, &ty)?;
//! let planned = Value::object([("name", config.get("name").clone()), ("id", Value::Unknown)]);
//! let bytes = msgpack::encode(&planned, &ty)?;
//! ```

mod error;
pub mod json;
pub mod msgpack;
mod number;
mod path;
mod tree;
mod types;

#[cfg(test)]
mod testing;

pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use number::{Number, NumberError};
pub use path::{AttributePath, PathStep};
pub use tree::Value;
pub use types::{Type, TypeError};
