//! The resource types, one file each.

pub(crate) mod runner_config;
