//! The direct backend: no Humanitec platform. The provider works on the cluster itself.
//!
//! A runner config is recorded in state only: it names the cluster (and how to reach it) that
//! container runners run their Jobs on. New container runners in direct mode are refused at plan
//! time in this version; this backend says the same should it be reached another way.

use async_trait::async_trait;

use super::backend::{Backend, Failed, Read, Written};
use super::resources::container_runner::ContainerRunner;
use super::resources::runner_config::RunnerConfig;
use crate::framework::{Diagnostics, Operation};

/// The direct backend.
pub(crate) struct Direct;

#[async_trait]
impl Backend<RunnerConfig> for Direct {
    async fn create(
        &self,
        _op: &mut Operation,
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
        _op: &mut Operation,
        current: &RunnerConfig,
        _diags: &mut Diagnostics,
    ) -> Read<RunnerConfig> {
        Read::Found(current.clone())
    }

    async fn update(
        &self,
        _op: &mut Operation,
        _prior: &RunnerConfig,
        planned: &RunnerConfig,
        _diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        Ok(planned.clone())
    }

    async fn delete(&self, _op: &mut Operation, _prior: &RunnerConfig, _diags: &mut Diagnostics) {}
}

/// The refusal of a container runner in direct mode, at plan time and here.
pub(crate) fn refuse_container_runner(diags: &mut Diagnostics) {
    diags.error(
        "humanitec_container_runner does not support direct mode yet",
        "In this version a container runner is a Humanitec definition only: configure its \
         provider with mode = \"api\" (the default). Running the Job directly on the runner \
         config's cluster comes with a later version.",
    );
}

#[async_trait]
impl Backend<ContainerRunner> for Direct {
    async fn create(
        &self,
        _op: &mut Operation,
        _planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        refuse_container_runner(diags);
        Err(Failed::Nothing)
    }

    async fn read(
        &self,
        _op: &mut Operation,
        _current: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Read<ContainerRunner> {
        refuse_container_runner(diags);
        Read::Failed
    }

    async fn update(
        &self,
        _op: &mut Operation,
        _prior: &ContainerRunner,
        _planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        refuse_container_runner(diags);
        Err(Failed::Nothing)
    }

    async fn delete(&self, _op: &mut Operation, _prior: &ContainerRunner, diags: &mut Diagnostics) {
        refuse_container_runner(diags);
    }
}
