//! The api backend of `humanitec_container_runner`: a definition of the Container Runner Driver.

use async_trait::async_trait;

use super::{
    Api, CONTAINER_RUNNER, Created, Lookup, api_error, create, delete_definition, look_up,
    problems_sentence, refuse_other_kind, same_org, step, sync_criteria,
};
use crate::definition::container_runner::read_container_runner;
use crate::definition::{self};
use crate::framework::{Diagnostics, Operation};
use crate::humanitec::{self, Client, CriteriaRule, Definition};
use crate::provider::backend::{Backend, Failed, Read, Written};
use crate::provider::resources::container_runner::ContainerRunner;

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

/// The criteria a definition has now, after a failed criteria update (`fallback`'s when it cannot
/// be read again).
async fn criteria_now(client: &Client, fallback: &Definition) -> Option<Vec<CriteriaRule>> {
    let definition = match client.get_definition(&fallback.id).await {
        Ok(Some(definition)) => definition,
        _ => fallback.clone(),
    };
    read_container_runner(&definition, &ContainerRunner::default())
        .runner
        .criteria
}

#[async_trait]
impl Backend<ContainerRunner> for Api {
    async fn create(
        &self,
        op: &mut Operation,
        planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        let Some(client) = self.client(diags) else {
            return Err(Failed::Nothing);
        };
        if !same_org(op, &client, &CONTAINER_RUNNER, &planned.id, diags) {
            return Err(Failed::Nothing);
        }
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
        let Some(client) = self.client(diags) else {
            return Read::Failed;
        };
        if !same_org(op, &client, &CONTAINER_RUNNER, &current.id, diags) {
            return Read::Failed;
        }
        let lookup = op
            .unless_cancelled(look_up(&client, &CONTAINER_RUNNER, &current.id, diags))
            .await;
        match lookup {
            Ok(Lookup::Found(definition))
                if refuse_other_kind(op, &CONTAINER_RUNNER, &definition, diags) =>
            {
                Read::Failed
            }
            Ok(Lookup::Found(definition)) => {
                Read::Found(container_runner_from(&definition, current, diags))
            }
            Ok(Lookup::Gone) => Read::Gone,
            Ok(Lookup::Failed) => Read::Failed,
            Err(reason) => {
                op.report_cancelled(reason, "read", diags);
                Read::Failed
            }
        }
    }

    async fn update(
        &self,
        op: &mut Operation,
        before: &ContainerRunner,
        after: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        let Some(client) = self.client(diags) else {
            return Err(Failed::Nothing);
        };
        if !same_org(op, &client, &CONTAINER_RUNNER, &before.id, diags) {
            return Err(Failed::Nothing);
        }
        let id = &after.id;
        let payload = definition::container_runner::to_update(after);
        let mut definition = None;
        let mut now = if !definition::container_runner::rewrites(before, after) {
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
        } else {
            let Some(updated) =
                step(op, "update", diags, client.update_definition(id, &payload)).await
            else {
                return Err(Failed::Nothing);
            };
            match updated {
                Ok(updated) => {
                    let now = container_runner_from(&updated, after, diags);
                    definition = Some(updated);
                    now
                }
                Err(e) => {
                    api_error(
                        diags,
                        format!("Could not update container runner {id:?}"),
                        &e,
                    );
                    return Err(Failed::Nothing);
                }
            }
        };
        if before.criteria_rules() == after.criteria_rules() {
            return Ok(now);
        }
        let current = match definition {
            Some(definition) => Ok(definition),
            None => client.get_definition(id).await.and_then(|d| {
                d.ok_or_else(|| humanitec::Error::NotFound {
                    what: format!("definition {id:?}"),
                })
            }),
        };
        let failure = match &current {
            Ok(current) => sync_criteria(&client, id, &after.criteria_rules(), &current.criteria)
                .await
                .err()
                .map(|e| crate::error_chain(&e)),
            Err(e) => Some(crate::error_chain(e)),
        };
        let Some(failure) = failure else {
            return Ok(now);
        };
        diags.error(
            format!("Could not update the criteria of container runner {id:?}"),
            failure,
        );
        // Whatever was sent is recorded, with the criteria as they are now.
        now.criteria = match &current {
            Ok(current) => criteria_now(&client, current).await,
            Err(_) => before.criteria.clone(),
        };
        Err(Failed::Partly(now))
    }

    async fn delete(&self, op: &mut Operation, prior: &ContainerRunner, diags: &mut Diagnostics) {
        let Some(client) = self.client(diags) else {
            return;
        };
        if !same_org(op, &client, &CONTAINER_RUNNER, &prior.id, diags) {
            return;
        }
        let force = prior.force_delete.unwrap_or(false);
        delete_definition(&client, op, &CONTAINER_RUNNER, &prior.id, force, diags).await;
    }
}
