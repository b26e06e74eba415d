//! The provider framework: schemas, diagnostics, plan rules and the resource traits.
//!
//! This layer sits between the protocol ([`crate::plugin`]) and the provider's domain.
//! It knows Terraform's rules but no protobuf: resources describe themselves with a [`Schema`],
//! implement [`Resource`], and get [`Value`](crate::value::Value) trees and
//! [`Diagnostics`] in return.

#[cfg(any(test, feature = "testing"))]
pub mod arbitrary;
mod diagnostics;
pub mod model;
pub mod plan;
mod private;
mod resource;
mod schema;
mod server;
pub mod timeouts;
pub mod validate;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use private::Private;
pub(crate) use resource::ClientCapabilities;
pub use resource::{Cancel, Cancelled, Operation, Plan, Provider, Resource};
pub use schema::{Attribute, Block, NestedBlock, Nesting, Schema, Source, Validator};
pub(crate) use server::Server;
