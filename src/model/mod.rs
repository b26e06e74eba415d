//! The typed models of the two resources: what a container runner and a runner config are, in
//! the user's words, one field per attribute.
//!
//! A leaf: the models import nothing of the provider above them (no schema, no payload, no run)
//! and no REST wire type; the schema code (`crate::provider::resources`), the definition
//! payloads (`crate::provider::api::definition`) and the direct-mode run (`crate::provider::direct`)
//! import them. Of the framework they use what a model of a Terraform value needs: `Sensitive`,
//! the null-tolerant deserializers and `Timeouts`. A test (`crate::layering`) keeps it so.

pub(crate) mod container_runner;
pub(crate) mod runner_config;
