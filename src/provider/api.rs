//! The api backend: each object is a Humanitec Resource Definition, created, read, updated and
//! deleted through the Humanitec API (`crate::humanitec`), with payloads from `crate::definition`.
//!
//! Also the API steps both resources share: getting the client, looking a definition up,
//! keeping its criteria in sync, and deleting a definition that may still be in use.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

use super::Shared;
use super::backend::{Backend, Failed, Read, Written};
use super::resources::container_runner::ContainerRunner;
use super::resources::runner_config::RunnerConfig;
use crate::definition::container_runner::read_container_runner;
use crate::definition::{self, read_runner_config};
use crate::framework::model::Sensitive;
use crate::framework::{Diagnostics, Operation};
use crate::humanitec::{self, Client, Criteria, CriteriaRule, Definition};
use crate::value::AttributePath;

/// The api backend, for every resource type.
pub(crate) struct Api {
    shared: std::sync::Arc<Shared>,
}

impl Api {
    /// The backend, with the provider's settings.
    pub(crate) fn new(shared: std::sync::Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The API client, or the diagnostics that say why there is none.
    pub(crate) fn client(&self, diags: &mut Diagnostics) -> Option<Client> {
        client(&self.shared, diags)
    }
}

/// The private-state key of the organization an object was created in.
const ORG_KEY: &str = "org";

/// Whether the provider's organization is the one the object was created in; records it when no
/// organization is recorded yet (a create, an import, or a state from an earlier version).
///
/// Why: in another organization the definition is simply not there, so a read would take it for
/// deleted and plan a duplicate, and a delete would "succeed" and leave it behind.
fn same_org(
    op: &mut Operation,
    client: &Client,
    what: &str,
    id: &str,
    diags: &mut Diagnostics,
) -> bool {
    let now = client.org_id();
    match op.private.get(ORG_KEY).and_then(serde_json::Value::as_str) {
        Some(was) if was != now => {
            diags.error(
                format!("The {what} {id:?} is in organization {was:?}, not {now:?}"),
                format!(
                    "It was created in organization {was:?}, and the provider is now configured \
                     for {now:?} (org_id, HUMANITEC_ORG or the humctl file). Set org_id = \
                     \"{was}\" for it; if you moved the definition to {now:?} yourself, remove it \
                     from state (terraform state rm) and import it again."
                ),
            );
            false
        }
        Some(_) => true,
        None => {
            op.private.set(ORG_KEY, now.into());
            true
        }
    }
}

/// Runs one step of `operation` unless the operation is cancelled first; then the step is dropped
/// (API calls are safe to abandon), the reason is reported, and there is no result.
pub(crate) async fn step<T>(
    op: &Operation,
    operation: &str,
    diags: &mut Diagnostics,
    work: impl Future<Output = T>,
) -> Option<T> {
    match op.unless_cancelled(work).await {
        Ok(output) => Some(output),
        Err(reason) => {
            op.report_cancelled(reason, operation, diags);
            None
        }
    }
}

/// The API client, or the diagnostics that say why there is none.
pub(crate) fn client(shared: &Shared, diags: &mut Diagnostics) -> Option<Client> {
    match shared.client() {
        Ok(client) => Some(client),
        Err(more) => {
            diags.extend(more);
            None
        }
    }
}

/// Adds an error for a failed API call, with the whole error chain.
pub(crate) fn api_error(diags: &mut Diagnostics, summary: String, error: &humanitec::Error) {
    diags.error(summary, crate::error_chain(error));
}

/// Reports a failed create. A taken id points at import, since the definition may be this
/// configuration's own from an earlier, interrupted apply.
pub(crate) fn create_failed(
    diags: &mut Diagnostics,
    error: &humanitec::Error,
    resource_type: &str,
    what: &str,
    id: &str,
) {
    if let humanitec::Error::AlreadyExists { .. } = error {
        diags.error_at(
            AttributePath::root().attribute("id"),
            format!("Definition {id:?} already exists"),
            format!(
                "The organization already has a resource definition with id {id:?}. Import it \
                 (`terraform import {resource_type}.<name> {id}` or an import block) or choose \
                 another id."
            ),
        );
    } else {
        api_error(diags, format!("Could not create {what} {id:?}"), error);
    }
}

/// What looking a definition up found.
pub(crate) enum Lookup {
    /// The definition, live.
    Found(Box<Definition>),
    /// It no longer exists (or was force-deleted): the resource leaves the state.
    Gone,
    /// The API could not answer; the diagnostics say why.
    Failed,
}

/// Looks a definition up for a refresh.
pub(crate) async fn look_up(
    client: &Client,
    id: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> Lookup {
    match client.get_definition(id).await {
        Ok(Some(definition)) if !definition.is_deleted => Lookup::Found(Box::new(definition)),
        Ok(_) => {
            log::info!("{what} {id:?} no longer exists; removing it from state");
            Lookup::Gone
        }
        Err(e) => {
            api_error(diags, format!("Could not read {what} {id:?}"), &e);
            Lookup::Failed
        }
    }
}

/// Brings a definition's criteria in line with `wanted`: adds missing rules, then removes the rest
/// (in that order, so the definition never stops matching in between).
pub(crate) async fn sync_criteria(
    client: &Client,
    id: &str,
    wanted: &[CriteriaRule],
    current: &[Criteria],
) -> Result<(), humanitec::Error> {
    for rule in wanted {
        if !current.iter().any(|have| rule.matches(have)) {
            client.add_criteria(id, rule).await?;
        }
    }
    for have in current {
        if !wanted.iter().any(|rule| rule.matches(have)) {
            match client.delete_criteria(id, &have.id, false).await {
                Ok(()) | Err(humanitec::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// How long before the operation's deadline the last delete attempt is made, so that its answer
/// (naming the resources that still use the definition) arrives before the time limit cuts it off.
const LAST_ATTEMPT_MARGIN: Duration = Duration::from_secs(1);

/// Deletes a definition, waiting out "in use" conflicts until shortly before the operation's
/// deadline. `hint` says what the user can do about a conflict that outlasts the wait.
pub(crate) async fn delete_definition(
    client: &Client,
    op: &Operation,
    id: &str,
    force: bool,
    what: &str,
    hint: &str,
    diags: &mut Diagnostics,
) {
    let started = std::time::Instant::now();
    let mut wait = Duration::from_secs(2);
    loop {
        let Some(result) = step(op, "delete", diags, client.delete_definition(id, force)).await
        else {
            return;
        };
        match result {
            Ok(()) | Err(humanitec::Error::NotFound { .. }) => return,
            Err(humanitec::Error::InUse { changes }) if op.remaining() > LAST_ATTEMPT_MARGIN => {
                let pause = wait.min(op.remaining() - LAST_ATTEMPT_MARGIN);
                log::info!(
                    "{what} {id:?} is still in use by {} resource(s); retrying in {pause:?}",
                    changes.len()
                );
                if step(op, "delete", diags, tokio::time::sleep(pause))
                    .await
                    .is_none()
                {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e @ humanitec::Error::InUse { .. }) => {
                diags.error(
                    format!(
                        "Could not delete {what} {id:?}: still in use after {}",
                        crate::framework::timeouts::format_duration(started.elapsed())
                    ),
                    format!("{}.\n\n{hint}", crate::error_chain(&e)),
                );
                return;
            }
            Err(e) => {
                api_error(diags, format!("Could not delete {what} {id:?}"), &e);
                return;
            }
        }
    }
}

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
        if !same_org(op, &client, "runner config", &planned.id, diags) {
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
                create_failed(
                    diags,
                    &e,
                    "humanitec_runner_config",
                    "runner config",
                    &planned.id,
                );
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
        if !same_org(op, &client, "runner config", &current.id, diags) {
            return Read::Failed;
        }
        let id = &current.id;
        let lookup = op
            .unless_cancelled(look_up(&client, id, "runner config", diags))
            .await;
        let definition = match lookup {
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
        if !same_org(op, &client, "runner config", &prior.id, diags) {
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
        if !same_org(op, &client, "runner config", &prior.id, diags) {
            return;
        }
        delete_definition(
            &client,
            op,
            &prior.id,
            false,
            "runner config",
            "Raise timeouts.delete to wait longer.",
            diags,
        )
        .await;
    }
}

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
            format!("{}. The next apply rewrites it.", read.problems.join("; ")),
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
        if !same_org(op, &client, "container runner", &planned.id, diags) {
            return Err(Failed::Nothing);
        }
        let payload = definition::container_runner::to_create(planned);
        let Some(created) = step(op, "create", diags, client.create_definition(&payload)).await
        else {
            return Err(Failed::Nothing);
        };
        match created {
            Ok(definition) => Ok(container_runner_from(&definition, planned, diags)),
            Err(e) => {
                let id = &planned.id;
                create_failed(
                    diags,
                    &e,
                    "humanitec_container_runner",
                    "container runner",
                    id,
                );
                Err(Failed::Nothing)
            }
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
        if !same_org(op, &client, "container runner", &current.id, diags) {
            return Read::Failed;
        }
        let lookup = op
            .unless_cancelled(look_up(&client, &current.id, "container runner", diags))
            .await;
        match lookup {
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
        if !same_org(op, &client, "container runner", &before.id, diags) {
            return Err(Failed::Nothing);
        }
        let id = &after.id;
        let payload = definition::container_runner::to_update(after);
        let mut definition = None;
        let mut now = if definition::container_runner::to_update(before) == payload {
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
        if !same_org(op, &client, "container runner", &prior.id, diags) {
            return;
        }
        let force = prior.force_delete.unwrap_or(false);
        let hint = "Set force_delete = true (and apply) to delete it anyway, or raise timeouts.delete to wait longer.";
        delete_definition(
            &client,
            op,
            &prior.id,
            force,
            "container runner",
            hint,
            diags,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::Method;
    use serde_json::json;

    use super::*;
    use crate::framework::Private;
    use crate::humanitec::mock::{self, Mock};
    use crate::humanitec::{ClientConfig, RetryPolicy};

    async fn setup() -> (Arc<Mock>, Client) {
        let (mock, base) = mock::start().await;
        let mut config = ClientConfig::new(&base, "my-org", "t0ken", "test");
        config.retry = RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(2),
        };
        (mock, Client::new(config).expect("valid config"))
    }

    fn rule(env_type: &str) -> CriteriaRule {
        CriteriaRule {
            env_type: Some(env_type.into()),
            class: Some("default".into()),
            ..CriteriaRule::default()
        }
    }

    #[tokio::test]
    async fn criteria_are_added_before_stale_ones_are_removed() {
        let (mock, client) = setup().await;
        mock.seed("d", "s3", CONTAINER_RUNNER);
        client.add_criteria("d", &rule("old")).await.unwrap();
        let current = client.get_definition("d").await.unwrap().unwrap().criteria;
        // Replacing a criterion: the new one is added before the old one goes, so the
        // definition never stops matching in between.
        sync_criteria(&client, "d", &[rule("new")], &current)
            .await
            .unwrap();
        let methods: Vec<Method> = mock
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/criteria"))
            .map(|r| r.method)
            .collect();
        assert_eq!(methods, [Method::POST, Method::POST, Method::DELETE]);
        let left = client.get_definition("d").await.unwrap().unwrap().criteria;
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].env_type.as_deref(), Some("new"));
    }

    const CONTAINER_RUNNER: &str = "humanitec/container-runner";

    #[tokio::test]
    async fn look_up_tells_found_gone_and_failed_apart() {
        let (mock, client) = setup().await;
        mock.seed("d", "s3", CONTAINER_RUNNER);
        let mut diags = Diagnostics::new();
        assert!(matches!(
            look_up(&client, "d", "container runner", &mut diags).await,
            Lookup::Found(_)
        ));
        assert!(matches!(
            look_up(&client, "missing", "container runner", &mut diags).await,
            Lookup::Gone
        ));
        assert!(diags.is_empty());
        mock.fail_always(500);
        assert!(matches!(
            look_up(&client, "d", "container runner", &mut diags).await,
            Lookup::Failed
        ));
        let summaries: Vec<_> = diags.iter().map(|d| d.summary.clone()).collect();
        assert_eq!(summaries, ["Could not read container runner \"d\""]);
    }

    #[tokio::test]
    async fn an_in_use_delete_waits_until_the_deadline_then_says_what_to_do() {
        let (mock, client) = setup().await;
        mock.seed("d", "s3", CONTAINER_RUNNER);
        mock.set_in_use(
            "d",
            json!([{"app_id": "app", "env_id": "dev", "res_id": "bucket"}]),
        );
        let op = Operation::new(Private::default(), Duration::from_millis(1300));
        let mut diags = Diagnostics::new();
        delete_definition(
            &client,
            &op,
            "d",
            false,
            "container runner",
            "Do this.",
            &mut diags,
        )
        .await;
        let errors: Vec<_> = diags
            .iter()
            .map(|d| (d.summary.clone(), d.detail.clone()))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.contains("still in use"), "{errors:?}");
        assert!(errors[0].1.ends_with("Do this."), "{errors:?}");
        assert!(mock.count(&Method::DELETE, "/defs/d") >= 1);
        assert!(mock.definitions().contains_key("d"));
    }

    #[tokio::test]
    async fn a_cancelled_delete_stops_waiting_and_says_why() {
        let (mock, client) = setup().await;
        mock.seed("d", "s3", CONTAINER_RUNNER);
        mock.set_in_use(
            "d",
            json!([{"app_id": "app", "env_id": "dev", "res_id": "bucket"}]),
        );
        let op = Operation::new(Private::default(), Duration::from_secs(600));
        let cancel = op.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.fire(crate::framework::Cancelled::Stop);
        });
        let mut diags = Diagnostics::new();
        let started = std::time::Instant::now();
        delete_definition(&client, &op, "d", false, "container runner", "", &mut diags).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it did not wait out the 2 s pause"
        );
        let summaries: Vec<_> = diags.iter().map(|d| d.summary.clone()).collect();
        assert_eq!(summaries, ["Interrupted"]);
    }

    #[test]
    fn a_taken_id_points_at_import() {
        let mut diags = Diagnostics::new();
        let taken = humanitec::Error::AlreadyExists { id: "d".into() };
        create_failed(
            &mut diags,
            &taken,
            "humanitec_container_runner",
            "container runner",
            "d",
        );
        let found: Vec<_> = diags
            .iter()
            .map(|d| {
                (
                    d.attribute.as_ref().map(ToString::to_string),
                    d.detail.clone(),
                )
            })
            .collect();
        assert_eq!(found[0].0.as_deref(), Some("id"));
        assert!(
            found[0]
                .1
                .contains("terraform import humanitec_container_runner."),
            "{found:?}"
        );
    }
}
