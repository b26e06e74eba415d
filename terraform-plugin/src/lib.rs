//! A framework for Terraform/OpenTofu providers that speak plugin protocol 5 (tfplugin5).
//!
//! A provider describes its resources with a [`framework::Schema`], implements
//! [`framework::Resource`] for each and [`framework::Provider`] for the whole, and hands the
//! provider to [`plugin::run`] from its binary's `main`. The crate does the rest: the go-plugin
//! handshake and AutoMTLS, the gRPC services, decoding and encoding Terraform values, plan rules
//! (defaults, computed values, write-only attributes, replacement), validators and diagnostics.
//!
//! # Layout
//!
//! Each layer knows only the one below it:
//!
//! - [`plugin`]: the protocol. go-plugin handshake, AutoMTLS, the tonic services; each RPC is
//!   one conversion from protobuf to framework types and back. Nothing else sees protobuf.
//! - [`framework`]: schemas, diagnostics, plan rules, the `Resource` and `Provider` traits, and
//!   typed models of values (serde).
//! - [`value`]: Terraform values, their types, the msgpack/JSON codec and attribute paths.
//!
//! The crate knows no provider: names, addresses and log targets of the provider that uses it
//! come in through [`plugin::ProviderIdentity`].

pub mod framework;
pub mod plugin;
pub mod value;

/// An error's message followed by each of its sources, joined with ": ".
///
/// Errors in this crate display one level each and chain their causes with `#[source]`; this is
/// how they become one sentence for a diagnostic or a log line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
