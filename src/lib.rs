//! A Terraform/OpenTofu provider for the Humanitec Container Runner.
//!
//! Platform engineers describe, in HCL, the container that provisions a resource type and the
//! cluster it runs on; the provider turns that into Humanitec Resource Definitions through the
//! Humanitec API (api mode), or runs the container as a Kubernetes Job on that cluster itself
//! (direct mode). The README's "Where does X happen" table maps each concern to its file.
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
//!   (`terraform-provider-humanitec helper prepare|collect`). No Terraform types.
//! - [`model`]: the typed models of the two resources, one field per attribute, and the table
//!   of a container runner's secrets. A leaf: it names nothing of the crate above it.
//! - [`text`]: small text helpers for messages and the mask of a secret (a leaf every layer may
//!   use).
//! - [`yaml`]: YAML in and out, quoting what YAML 1.1 readers would retype (a leaf).
//! - the crate `terraform-plugin` (`terraform-plugin/`, a workspace member): the protocol
//!   (go-plugin handshake, AutoMTLS, tfplugin5), the framework (schemas, diagnostics, plan rules,
//!   the `Resource` and `Provider` traits, typed models of values) and Terraform values with their
//!   codecs. It knows no Humanitec name.
//!
//! The crate boundary keeps the framework out of the domain; inside this crate the test module
//! `layering` reads the sources and fails on a `crate::`/`super::` path that points up.
//!
//! The binary `terraform-provider-humanitec` calls [`main`], which chooses in one place
//! ([`command_line`]) what a start runs: the plugin, the version line, a helper step or git's
//! askpass. `humanitec-sandbox`, a local Resource Definitions API for tests and offline use,
//! is a crate of its own in the workspace (`humanitec-sandbox/`), a dev-dependency only.

// Why: the layers are private (the public surface is `main`), and these docs are meant for
// `cargo doc --document-private-items`, where the links above resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod command_line;
pub(crate) mod humanitec;
#[cfg(test)]
mod layering;
pub(crate) mod model;
pub(crate) mod provider;
pub(crate) mod runner;
pub(crate) mod text;
pub(crate) mod yaml;

pub use command_line::main;
pub use runner::contract::HELPER_ASKPASS_ENV;
