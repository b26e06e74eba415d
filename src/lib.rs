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
//!   (`terraform-provider-humanitec helper prepare|collect`). No Terraform types.
//! - [`text`]: small text helpers for messages (a leaf every layer may use).
//!
//! The binary `terraform-provider-humanitec` calls [`main`], which chooses in one place
//! ([`command_line`]) what a start runs: the plugin, the version line, a helper step or git's
//! askpass. `humanitec-sandbox`, a local Resource Definitions API for tests and offline use,
//! lives in `src/bin`.

pub(crate) mod command_line;
pub(crate) mod definition;
pub(crate) mod framework;
pub(crate) mod humanitec;
pub(crate) mod plugin;
pub(crate) mod provider;
pub(crate) mod runner;
pub(crate) mod text;
pub(crate) mod value;

pub use command_line::main;
pub use runner::contract::HELPER_ASKPASS_ENV;
