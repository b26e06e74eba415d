//! End-to-end tests: the real `terraform` CLI drives the built provider against the sandbox API.
//!
//! They follow terraform-plugin-testing's recipe: per step apply, then a plan that must be
//! empty; import into a fresh directory and compare; destroy and check nothing is left.
//!
//! Direct mode's scenarios (`direct*`, `helper_image`) run on the test cluster of
//! `scripts/test-cluster.sh` (`test_cluster` modules), which the first of them starts. Their
//! `real_cluster` modules run them on the managed cluster of `KUBECONFIG` and are `#[ignore]`d,
//! so that a run without one never counts them as passed; with `KUBECONFIG` (and the images,
//! see `support::cluster`) set: `cargo test --test integration real_cluster -- --ignored`.
//! `tests/integration/README.md` says the same.

mod container_runner;
mod direct;
mod direct_faults;
mod direct_production;
mod direct_runs;
mod docs;
mod early_errors;
mod git_server;
mod helper_image;
mod install;
mod kinds;
mod lost_creates;
mod modes;
mod not_found;
mod plugin;
mod repair;
mod replacement;
mod runner_config;
mod secrets;
mod support;
mod unknowns;
mod yaml_outputs;
