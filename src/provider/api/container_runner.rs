//! The api backend of `humanitec_container_runner`: a definition of the Container Runner Driver.
//!
//! Its plan is the definition's: the direct-only settings refused, the definition's shape and
//! the `secret_refs` an update will answer with planned, a force-deleting replacement refused.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::definition::container_runner::{
    CONTAINER_RUNNER_DRIVER, SecretInput, is_stored_value_ref, read_container_runner, rewrites,
    secrets_by_path, write_only_versions,
};
use super::definition::{self, criteria_rules};
use super::{
    Api, CONTAINER_RUNNER, Created, create, delete_definition, plan_definition_shape,
    problems_sentence, put, update_criteria,
};
use crate::humanitec::Definition;
use crate::model::container_runner::{ContainerRunner, SECRETS, secrets_in};
use crate::provider::backend::{Backend, Backends, Failed, Read, Written, set};
use terraform_plugin::framework::plan::with_write_only;
use terraform_plugin::framework::{Diagnostics, Operation, Plan};
use terraform_plugin::value::{AttributePath, Value};

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
    fn plan(
        &self,
        backends: &Backends<ContainerRunner>,
        plan: &mut Plan<'_>,
        diags: &mut Diagnostics,
    ) {
        refuse_direct_only(plan.config, diags);
        for computed in ["outputs", "secret_outputs", "last_run"] {
            set(&mut plan.planned, computed, Value::Null);
        }
        plan_definition_shape(plan, CONTAINER_RUNNER_DRIVER);
        refuse_force_deleting_replacement(plan, diags);
        // Why keep the prior runner_config in api mode: there it only orders the resources, so a
        // change inside the same runner config (rotated credentials, a new name) must not ripple
        // into every container runner's plan. Terraform accepts a planned value equal to the prior
        // one.
        let same_config = plan.prior.get("runner_config").get("id")
            == plan.planned.get("runner_config").get("id");
        if !plan.prior.is_null() && same_config {
            let prior = plan.prior.get("runner_config").clone();
            set(&mut plan.planned, "runner_config", prior);
        }
        if plan.prior.is_null() {
            return;
        }
        // A reference moved to another secret: its recorded version no longer applies.
        for reference in secrets_in(Some("source")).filter_map(|secret| secret.reference) {
            let configured = plan.config.get("source").get(reference);
            let before = plan.prior.get("source").get(reference);
            let moved = ["store", "ref"]
                .iter()
                .any(|k| configured.get(k) != before.get(k));
            if !configured.is_null()
                && configured.get("version").is_null()
                && moved
                && let Value::Object(source) = &mut plan.planned
                && let Some(Value::Object(source)) = source.get_mut("source")
                && let Some(Value::Object(block)) = source.get_mut(reference)
            {
                block.insert("version".into(), Value::Unknown);
            }
        }
        // What the update will send: the plan with the configuration's write-only values.
        let given = with_write_only(&backends.schema().block, &plan.planned, plan.config);
        let (Some(before), Some(after)) = (
            backends.model(plan.prior, diags),
            backends.model(&given, diags),
        ) else {
            return;
        };
        // Why unknown when an input is: the model reads an unknown as empty, so whether the
        // definition is written, and the refs it then answers with, are known only at apply; a
        // planned ref built from the model could differ from what apply finds ("inconsistent
        // final plan", or versions that moved unseen).
        let known = PAYLOAD.iter().all(|name| given.get(name).is_wholly_known());
        if known && !rewrites(&before, &after) {
            return;
        }
        let refs = if known {
            planned_secret_refs(plan.prior.get("secret_refs"), &after)
        } else {
            Value::Unknown
        };
        set(&mut plan.planned, "secret_refs", refs);
        warn_of_dropped_secrets(&before, &after, diags);
    }

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
        let wanted = criteria_rules(after.criteria().iter().cloned());
        if wanted == criteria_rules(before.criteria().iter().cloned()) {
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

/// The private-state key that carries, from the plan of an existing object to the plan of its
/// replacement, the id that a force delete would leave taken.
const FORCE_DELETES_ID: &str = "force_deletes_id";

/// Refuses a replacement that deletes with `force_delete = true` and creates the same id.
///
/// Why: a force-deleted definition that resources still use is only marked deleted, and its id
/// stays taken until Humanitec has moved them (the API does not say how long), so the create of
/// the replacement would fail after the old definition was already gone. Terraform plans a
/// replacement with a second request whose prior state is null and whose private state is the
/// first request's, so the first one leaves the id there for the second to find.
fn refuse_force_deleting_replacement(plan: &mut Plan<'_>, diags: &mut Diagnostics) {
    if !plan.prior.is_null() {
        if plan.prior.get("force_delete") == &Value::Bool(true)
            && let Some(id) = plan.prior.get("id").as_str()
        {
            plan.private.set(FORCE_DELETES_ID, id.into());
        } else {
            plan.private.remove(FORCE_DELETES_ID);
        }
        return;
    }
    let taken = plan.private.remove(FORCE_DELETES_ID);
    let id = plan.planned.get("id").as_str();
    if let (Some(taken), Some(id)) = (taken, id)
        && taken.as_str() == Some(id)
    {
        diags.error_at(
            AttributePath::root().attribute("force_delete"),
            "A replacement cannot force-delete the definition it recreates",
            format!(
                "Replacing this container runner deletes definition {id:?} with force_delete = \
                 true and then creates it again with the same id. If resources still use it, \
                 Humanitec only marks the definition deleted and keeps its id taken until it has \
                 moved them, so the create would fail with the old definition already gone. \
                 Apply force_delete = false first (the delete then waits until nothing uses it), \
                 or give the replacement another id."
            ),
        );
    }
}

/// The attributes a definition's payload is made of: when one is not known, neither is whether
/// an update writes the definition.
const PAYLOAD: [&str; 8] = [
    "name",
    "driver_account",
    "job",
    "source",
    "files",
    "secret_files",
    "secret_files_wo",
    "credentials_config",
];

/// The `secret_refs` an update will answer with. Every secret is written again, so versions move;
/// when the same paths are sent, each entry is planned from what is sent, otherwise the whole map
/// is unknown.
fn planned_secret_refs(prior: &Value, after: &ContainerRunner) -> Value {
    let sent = sendable(after);
    let Some(refs) = prior.as_map() else {
        return Value::Unknown;
    };
    if refs.len() != sent.len() || !sent.keys().all(|p| refs.contains_key(p)) {
        return Value::Unknown;
    }
    let entries = sent.iter().map(|(path, secret)| {
        let stored_here = refs[path]
            .get("ref")
            .as_str()
            .is_some_and(|key| is_stored_value_ref(key, &after.id));
        let entry = match secret {
            SecretInput::Ref(r) => Value::object([
                ("store", Value::string(r.store.clone())),
                ("ref", Value::string(r.reference.clone())),
                (
                    "version",
                    r.version.clone().map_or(Value::Unknown, Value::string),
                ),
            ]),
            // A value stored before stays at the same primary-store key, in a new version.
            _ if stored_here => {
                let mut entry = refs[path].clone();
                set(&mut entry, "version", Value::Unknown);
                entry
            }
            _ => Value::Unknown,
        };
        (path.clone(), entry)
    });
    Value::Map(entries.collect())
}

/// The secrets an update can send: those with a value or a reference.
fn sendable(runner: &ContainerRunner) -> BTreeMap<String, SecretInput> {
    let mut secrets = secrets_by_path(runner);
    secrets.retain(|_, secret| !matches!(secret, SecretInput::Hidden));
    secrets
}

/// Warns of each secret Humanitec holds that an update would drop because neither the state nor
/// the configuration has its value (secrets cannot be read back, for example after an import).
pub(crate) fn warn_of_dropped_secrets(
    before: &ContainerRunner,
    after: &ContainerRunner,
    diags: &mut Diagnostics,
) {
    let (known, sent) = (sendable(before), sendable(after));
    // A secret the state holds in write-only form is known to have been configured: leaving
    // it out now is a choice, not an oversight.
    let versions = write_only_versions(before);
    let write_only = |path: &str| {
        SECRETS
            .iter()
            .zip(versions)
            .any(|(secret, version)| version.is_some() && secret.holds_input(path))
    };
    for path in before.secret_refs.iter().flat_map(BTreeMap::keys) {
        if !sent.contains_key(path) && !known.contains_key(path) && !write_only(path) {
            diags.warning(
                format!("The definition's secret {path} is not in the configuration"),
                format!(
                    "Humanitec holds a secret input at {path}, but neither the state nor the \
                     configuration has its value (secrets cannot be read back, for example after \
                     an import). This update replaces the whole definition and so removes it; set \
                     it in the configuration to keep it."
                ),
            );
        }
    }
}

/// Refuses the settings only direct mode has a use for: the checkout's TLS and SSH pins, and
/// `triggers`.
fn refuse_direct_only(config: &Value, diags: &mut Diagnostics) {
    for direct_only in ["ca_certificates", "known_hosts"] {
        if !config.get("source").get(direct_only).is_null() {
            diags.error_at(
                AttributePath::root()
                    .attribute("source")
                    .attribute(direct_only),
                format!("source.{direct_only} applies to direct mode only"),
                format!(
                    "Humanitec's Container Driver has no such input, so in api mode the \
                     checkout would not use it; remove source.{direct_only}, or use a \
                     provider with mode = \"direct\"."
                ),
            );
        }
    }
    if !config.get("triggers").is_null() {
        diags.error_at(
            AttributePath::root().attribute("triggers"),
            "triggers applies to direct mode only",
            "In api mode Humanitec runs the container when a resource is deployed, so there is \
             nothing to re-run; remove triggers, or use a provider with mode = \"direct\".",
        );
    }
}
