//! The api backend of `humanitec_container_runner`: a definition of the Container Runner Driver.

use async_trait::async_trait;

use super::definition;
use super::definition::container_runner::{criteria_rules, read_container_runner};
use super::{
    Api, CONTAINER_RUNNER, Created, create, delete_definition, problems_sentence, put,
    update_criteria,
};
use crate::humanitec::Definition;
use crate::model::container_runner::ContainerRunner;
use crate::provider::backend::{Backend, Failed, Read, Written};
use terraform_plugin::framework::{Diagnostics, Operation};

/// The container runner a definition answered by the API stands for, read with `known` as the
/// guide; a definition of another shape gets a warning.
fn container_runner_from(
    definition: &Definition,
    known: &ContainerRunner,
    diags: &mut Diagnostics,
) -> ContainerRunner {
    let read = read_container_runner(definition, known);
    if !read.problems.is_empty() {
        diags.warning(
            format!(
                "Definition {:?} is not a container runner as this provider writes it",
                definition.id
            ),
            format!(
                "{}. The next apply rewrites it.",
                problems_sentence(&read.problems)
            ),
        );
    }
    read.runner
}

#[async_trait]
impl Backend<ContainerRunner> for Api {
    async fn create(
        &self,
        op: &mut Operation,
        planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        let Some(client) = self.client_for(op, &CONTAINER_RUNNER, &planned.id, diags) else {
            return Err(Failed::Nothing);
        };
        let payload = definition::container_runner::to_create(planned);
        match create(op, &client, &CONTAINER_RUNNER, &payload, diags).await {
            Created::Done(definition) => Ok(container_runner_from(&definition, planned, diags)),
            Created::Failed => Err(Failed::Nothing),
            Created::Unknown => Err(Failed::Partly(ContainerRunner {
                name: Some(planned.name().to_string()),
                ..planned.clone()
            })),
        }
    }

    async fn read(
        &self,
        op: &mut Operation,
        current: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Read<ContainerRunner> {
        match self.find(op, &CONTAINER_RUNNER, &current.id, diags).await {
            Read::Found(definition) => {
                Read::Found(container_runner_from(&definition, current, diags))
            }
            Read::Gone => Read::Gone,
            Read::Failed => Read::Failed,
        }
    }

    async fn update(
        &self,
        op: &mut Operation,
        before: &ContainerRunner,
        after: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        let id = &after.id;
        let Some(client) = self.client_for(op, &CONTAINER_RUNNER, id, diags) else {
            return Err(Failed::Nothing);
        };
        let mut written = None;
        let mut now = if definition::container_runner::rewrites(before, after) {
            let payload = definition::container_runner::to_update(after);
            let Some(updated) = put(op, &client, &CONTAINER_RUNNER, id, &payload, diags).await
            else {
                return Err(Failed::Nothing);
            };
            let now = container_runner_from(&updated, after, diags);
            written = Some(updated);
            now
        } else {
            // Nothing to send: only `runner_config`, `force_delete`, `timeouts` or criteria
            // changed. What the plan left unknown stays as it was.
            ContainerRunner {
                name: after.name.clone().or_else(|| before.name.clone()),
                secret_refs: after
                    .secret_refs
                    .clone()
                    .or_else(|| before.secret_refs.clone()),
                ..after.clone()
            }
        };
        let wanted = criteria_rules(after);
        if wanted == criteria_rules(before) {
            return Ok(now);
        }
        match update_criteria(&client, &CONTAINER_RUNNER, id, written, &wanted, diags).await {
            Ok(()) => Ok(now),
            // Whatever was written is recorded, with the criteria as they are now.
            Err(current) => {
                now.criteria = match current {
                    Some(current) => {
                        read_container_runner(&current, &ContainerRunner::default())
                            .runner
                            .criteria
                    }
                    None => before.criteria.clone(),
                };
                Err(Failed::Partly(now))
            }
        }
    }

    async fn delete(&self, op: &mut Operation, prior: &ContainerRunner, diags: &mut Diagnostics) {
        let Some(client) = self.client_for(op, &CONTAINER_RUNNER, &prior.id, diags) else {
            return;
        };
        let force = prior.force_delete.unwrap_or(false);
        delete_definition(&client, op, &CONTAINER_RUNNER, &prior.id, force, diags).await;
    }
}
