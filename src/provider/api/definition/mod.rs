//! The Humanitec definitions this provider manages: the conversions between the models
//! (`crate::model`) and the API's definition payloads.
//!
//! - [`runner_config`]: the `config` definition that names the cluster Container Runner Jobs run on.
//! - [`container_runner`]: a definition of any resource type driven by `humanitec/container-runner`.
//!
//! The models know nothing of payloads, and the API client knows nothing of models. JSON and
//! YAML read back from the API are compared with what was written by meaning, never as text.

pub(crate) mod container_runner;
pub(crate) mod runner_config;

pub(crate) use runner_config::read_runner_config;
