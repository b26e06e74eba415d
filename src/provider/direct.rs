//! The direct backend: no Humanitec platform. The provider works on the cluster itself.
//!
//! A runner config is recorded in state only: it names the cluster (and how to reach it) that
//! container runners run their Jobs on. Container runners in direct mode are refused at plan
//! time in this version, so this backend has no container runner part yet.

use async_trait::async_trait;

use super::backend::{Backend, Read, Written};
use super::resources::runner_config::RunnerConfig;
use crate::framework::{Diagnostics, Operation};

/// The direct backend.
pub(crate) struct Direct;

#[async_trait]
impl Backend<RunnerConfig> for Direct {
    async fn create(
        &self,
        _op: &Operation,
        planned: &RunnerConfig,
        _diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        Ok(RunnerConfig {
            name: Some(planned.name().to_string()),
            ..planned.clone()
        })
    }

    async fn read(
        &self,
        _op: &Operation,
        current: &RunnerConfig,
        _diags: &mut Diagnostics,
    ) -> Read<RunnerConfig> {
        Read::Found(current.clone())
    }

    async fn update(
        &self,
        _op: &Operation,
        _prior: &RunnerConfig,
        planned: &RunnerConfig,
        _diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        Ok(planned.clone())
    }

    async fn delete(&self, _op: &Operation, _prior: &RunnerConfig, _diags: &mut Diagnostics) {}
}
