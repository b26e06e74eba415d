//! The api backend of `humanitec_runner_config`: a `config` definition of the Template Driver.

use async_trait::async_trait;

use super::{
    Api, Lookup, RUNNER_CONFIG, api_error, create_failed, delete_definition, look_up,
    refuse_other_kind, same_org, step, sync_criteria,
};
use crate::definition::{self, read_runner_config};
use crate::framework::model::Sensitive;
use crate::framework::{Diagnostics, Operation};
use crate::provider::backend::{Backend, Failed, Read, Written};
use crate::provider::resources::runner_config::RunnerConfig;

#[async_trait]
impl Backend<RunnerConfig> for Api {
    async fn create(
        &self,
        op: &mut Operation,
        planned: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        let Some(client) = self.client(diags) else {
            return Err(Failed::Nothing);
        };
        if !same_org(op, &client, &RUNNER_CONFIG, &planned.id, diags) {
            return Err(Failed::Nothing);
        }
        let payload = definition::runner_config::to_create(planned);
        let Some(created) = step(op, "create", diags, client.create_definition(&payload)).await
        else {
            return Err(Failed::Nothing);
        };
        match created {
            Ok(_) => Ok(RunnerConfig {
                name: Some(planned.name().to_string()),
                ..planned.clone()
            }),
            Err(e) => {
                create_failed(&client, &RUNNER_CONFIG, &planned.id, &e, diags).await;
                Err(Failed::Nothing)
            }
        }
    }

    async fn read(
        &self,
        op: &mut Operation,
        current: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Read<RunnerConfig> {
        let Some(client) = self.client(diags) else {
            return Read::Failed;
        };
        if !same_org(op, &client, &RUNNER_CONFIG, &current.id, diags) {
            return Read::Failed;
        }
        let id = &current.id;
        let lookup = op
            .unless_cancelled(look_up(&client, &RUNNER_CONFIG, id, diags))
            .await;
        let definition = match lookup {
            Ok(Lookup::Found(definition))
                if refuse_other_kind(op, &RUNNER_CONFIG, &definition, diags) =>
            {
                return Read::Failed;
            }
            Ok(Lookup::Found(definition)) => definition,
            Ok(Lookup::Gone) => return Read::Gone,
            Ok(Lookup::Failed) => return Read::Failed,
            Err(reason) => {
                op.report_cancelled(reason, "read", diags);
                return Read::Failed;
            }
        };
        let read = read_runner_config(&definition);
        if !read.problems.is_empty() {
            diags.warning(
                format!("Definition {id:?} is not a runner config as this provider writes it"),
                format!("{}. The next apply rewrites it.", read.problems.join("; ")),
            );
        }
        if !read.foreign_criteria.is_empty() {
            diags.warning(
                format!("Definition {id:?} has criteria this resource does not manage"),
                format!(
                    "These criteria do not match res_id \"container-runner\" and class \"default\": {}. \
                     The next apply that changes criteria replaces them.",
                    read.foreign_criteria.join(", ")
                ),
            );
        }
        // The API never returns secrets. After an import (no prior value) an absent secret reads
        // as "", the default; a present one stays null, since its value cannot be known.
        let agent_url = match &current.agent_url {
            None if !read.has_agent_url => Some(Sensitive(String::new())),
            known => known.clone(),
        };
        Read::Found(RunnerConfig {
            id: definition.id.clone(),
            name: Some(read.name),
            criteria: Some(read.criteria),
            // Unreadable outputs become nulls, which differ from any valid configuration: drift.
            cluster: Some(read.cluster.unwrap_or_default()),
            skip_permission_checks: read.skip_permission_checks,
            agent_url,
            ..current.clone()
        })
    }

    async fn update(
        &self,
        op: &mut Operation,
        prior: &RunnerConfig,
        planned: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        let Some(client) = self.client(diags) else {
            return Err(Failed::Nothing);
        };
        if !same_org(op, &client, &RUNNER_CONFIG, &prior.id, diags) {
            return Err(Failed::Nothing);
        }
        let id = &planned.id;
        let payload = definition::runner_config::to_update(planned);
        let Some(updated) = step(op, "update", diags, client.update_definition(id, &payload)).await
        else {
            return Err(Failed::Nothing);
        };
        let updated = match updated {
            Ok(definition) => definition,
            Err(e) => {
                api_error(diags, format!("Could not update runner config {id:?}"), &e);
                return Err(Failed::Nothing);
            }
        };
        let wanted = definition::runner_config::criteria_rules(planned);
        if let Err(e) = sync_criteria(&client, id, &wanted, &updated.criteria).await {
            api_error(
                diags,
                format!("Could not update the criteria of runner config {id:?}"),
                &e,
            );
            // The definition itself was updated; record that, with the criteria as they are now.
            let now = match client.get_definition(id).await {
                Ok(Some(definition)) => definition,
                _ => updated,
            };
            return Err(Failed::Partly(RunnerConfig {
                criteria: Some(read_runner_config(&now).criteria),
                ..planned.clone()
            }));
        }
        Ok(planned.clone())
    }

    async fn delete(&self, op: &mut Operation, prior: &RunnerConfig, diags: &mut Diagnostics) {
        let Some(client) = self.client(diags) else {
            return;
        };
        if !same_org(op, &client, &RUNNER_CONFIG, &prior.id, diags) {
            return;
        }
        delete_definition(&client, op, &RUNNER_CONFIG, &prior.id, false, diags).await;
    }
}
