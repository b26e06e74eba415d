//! A Terraform/OpenTofu provider for the Humanitec Container Runner.
//!
//! Platform engineers describe, in HCL, the container that provisions a resource type and the
//! cluster it runs on; the provider turns that into Humanitec Resource Definitions through the
//! Humanitec API.
//!
//! # Layout
//!
//! Each layer knows only the one below it:
//!
//! - [`plugin`]: the protocol. go-plugin handshake, AutoMTLS, the tonic services; each RPC is
//!   one conversion from protobuf to framework types and back. Nothing else sees protobuf.
//! - [`framework`]: schemas, diagnostics, plan rules, the `Resource` and `Provider` traits.
//! - [`value`]: Terraform values, their types, the msgpack/JSON codec and attribute paths.
//! - [`provider`]: the domain. Provider settings, one file per resource type with its typed
//!   model, and one backend per mode (api, direct) behind one trait.
//! - [`definition`]: the Humanitec definition payloads built from the models, and read back.
//! - [`humanitec`]: the REST client (retries, typed errors); no Terraform types.
//! - [`runner`]: direct mode on a cluster (kube): the pure Job builder, runs, watches, logs and
//!   results; and the helper steps the binary runs inside the Job's pod
//!   (`terraform-provider-humanitec helper prepare|collect`, [`helper`]). No Terraform types.
//!
//! The binary `terraform-provider-humanitec` calls [`main`]; `humanitec-sandbox`, a local
//! Resource Definitions API for tests and offline use, is a crate of its own in the workspace
//! (`humanitec-sandbox/`), a dev-dependency only.

pub(crate) mod definition;
pub(crate) mod framework;
pub(crate) mod humanitec;
pub(crate) mod plugin;
pub(crate) mod provider;
pub(crate) mod runner;
pub(crate) mod value;
pub(crate) mod yaml;

use std::ffi::OsString;
use std::process::ExitCode;

/// The text with its first letter in upper case, for an error message that starts a sentence.
pub(crate) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Set (to `1`) in git's environment by `helper prepare`, whose `GIT_ASKPASS` is this binary:
/// started with it, the binary answers git's credential prompt instead of serving the plugin.
pub const HELPER_ASKPASS_ENV: &str = "HUMANITEC_HELPER_ASKPASS";

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
use std::sync::Arc;

/// Runs a helper step inside a direct-mode run's pod (the helper image's entry point): `args`
/// are the arguments after `helper`, `prepare` (the init container) or `collect` (the
/// sidecar); or `askpass` and git's prompt when [`HELPER_ASKPASS_ENV`] is set.
pub fn helper(args: Vec<OsString>) -> ExitCode {
    runner::helper::main(args)
}

/// Runs the provider plugin: the whole of the `terraform-provider-humanitec` binary.
///
/// Terraform launches the binary with its handshake environment. Started by hand with
/// `--debug`, it serves in reattach mode and prints the `TF_REATTACH_PROVIDERS` value to use.
pub fn main() -> ExitCode {
    let debug = std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug");
    plugin::run(|| Arc::new(provider::HumanitecProvider::new()), debug)
}
