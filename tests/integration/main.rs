//! End-to-end tests: the real `terraform` (or `tofu`) CLI drives the built provider, in three
//! areas:
//!
//! - [`api`]: api mode against the sandbox API (`humanitec-sandbox`, in-process);
//! - [`direct`]: direct mode on a real Kubernetes cluster;
//! - [`packaging`]: the plugin handshake, installing from release files, the generated docs.
//!
//! They follow terraform-plugin-testing's recipe: per step apply, then a plan that must be
//! empty; import into a fresh directory and compare; destroy and check nothing is left.
//!
//! Direct mode's scenarios (`direct::*`) run on the test cluster of
//! `scripts/test-cluster.sh` (`test_cluster` modules), which the first of them starts. Their
//! `real_cluster` modules run them on the managed cluster of `KUBECONFIG` and are `#[ignore]`d,
//! so that a run without one never counts them as passed; with `KUBECONFIG` (and the images,
//! see `support::cluster`) set: `cargo test --test integration real_cluster -- --ignored`.
//! `tests/integration/README.md` says the same.

mod api;
mod direct;
mod packaging;
mod support;
