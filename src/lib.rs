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
//! - [`text`]: small text helpers for messages (a leaf every layer may use).
//!
//! The binary `terraform-provider-humanitec` calls [`main`]; `humanitec-sandbox`, a local
//! Resource Definitions API for tests and offline use, lives in `src/bin`.

pub(crate) mod definition;
pub(crate) mod framework;
pub(crate) mod humanitec;
pub(crate) mod plugin;
pub(crate) mod provider;
pub(crate) mod runner;
pub(crate) mod text;
pub(crate) mod value;

use std::ffi::OsString;
use std::process::ExitCode;

pub use runner::contract::HELPER_ASKPASS_ENV;

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
