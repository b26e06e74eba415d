//! Api mode: each resource becomes a Humanitec Resource Definition in the sandbox, through the
//! real CLI; plans, imports, secrets, drift, errors and the switch of modes.

mod container_runner;
mod early_errors;
mod kinds;
mod lost_creates;
mod modes;
mod not_found;
mod repair;
mod replacement;
mod runner_config;
mod secrets;
mod unknowns;
mod yaml_outputs;
