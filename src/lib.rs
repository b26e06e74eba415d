//! A Terraform/OpenTofu provider for the Humanitec Container Runner.
//!
//! Platform engineers describe, in HCL, the container that provisions a resource type and the
//! cluster it runs on; the provider turns that into Humanitec Resource Definitions through the
//! Humanitec API.
//!
//! # Layout
//!
//! Each layer knows only the ones below it, from the top:
//!
//! - [`provider`]: the domain. Provider settings; `resources`, one file per resource type with
//!   its schema, its checks and the plan both modes share; `backend`, the trait each mode
//!   implements and the one place a mode is chosen; the two backends, `api` (with
//!   `api::definition`, the Humanitec definition payloads built from the models and read back)
//!   and `direct`, each planning what only its mode decides. The backends never name the
//!   resources.
//! - [`humanitec`]: the REST client (retries, typed errors); no Terraform types, no models.
//! - [`runner`]: direct mode on a cluster (kube): the pure Job builder, runs, watches, logs and
//!   results; and the helper steps the binary runs inside the Job's pod
//!   (`terraform-provider-humanitec helper prepare|collect`, [`helper`]). No Terraform types.
//! - [`model`]: the typed models of the two resources, one field per attribute, and the table
//!   of a container runner's secrets. A leaf: it names nothing of the crate above it.
//! - the crate `terraform-plugin` (`terraform-plugin/`, a workspace member): the protocol
//!   (go-plugin handshake, AutoMTLS, tfplugin5), the framework (schemas, diagnostics, plan rules,
//!   the `Resource` and `Provider` traits, typed models of values) and Terraform values with their
//!   codecs. It knows no Humanitec name.
//!
//! The crate boundary keeps the framework out of the domain; inside this crate the test module
//! `layering` reads the sources and fails on a `crate::`/`super::` path that points up.
//!
//! The binary `terraform-provider-humanitec` calls [`main`]; `humanitec-sandbox`, a local
//! Resource Definitions API for tests and offline use, lives in `src/bin`.

pub(crate) mod humanitec;
#[cfg(test)]
mod layering;
pub(crate) mod model;
pub(crate) mod provider;
pub(crate) mod runner;

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
    terraform_plugin::plugin::run(
        &provider::IDENTITY,
        || Arc::new(provider::HumanitecProvider::new()),
        debug,
    )
}
