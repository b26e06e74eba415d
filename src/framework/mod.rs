//! The provider framework: schemas, diagnostics, plan rules and the resource traits.
//!
//! This layer sits between the protocol (`crate::plugin`) and the domain (`crate::provider`).
//! It knows Terraform's rules but no protobuf: resources describe themselves with a [`Schema`],
//! implement [`Resource`], and get [`Value`](crate::value::Value) trees and
//! [`Diagnostics`] in return.

#[cfg(test)]
pub(crate) mod arbitrary;
mod diagnostics;
pub(crate) mod model;
pub(crate) mod plan;
mod private;
mod resource;
mod schema;
mod server;
pub(crate) mod timeouts;
pub(crate) mod validate;

pub(crate) use diagnostics::{Diagnostics, Severity};
pub(crate) use private::Private;
pub(crate) use resource::{Cancelled, ClientCapabilities, Operation, Plan, Provider, Resource};
pub(crate) use schema::{Attribute, Block, NestedBlock, Nesting, Schema, Source};
pub(crate) use server::Server;
