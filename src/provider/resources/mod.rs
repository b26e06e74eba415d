//! The resource types, one file each, and the steps they share: getting the API client, keeping a
//! definition's criteria in sync, and deleting a definition that may still be in use.

pub(crate) mod container_runner;
pub(crate) mod runner_config;

use std::time::Duration;

use crate::framework::validate::not_empty;
use crate::framework::{Attribute, Block, Diagnostics, Operation, Plan};
use crate::humanitec::{self, Client, Criteria, CriteriaRule, Definition};
use crate::provider::Shared;
use crate::value::{AttributePath, Value};

/// The API client, or the diagnostics that say why there is none.
fn client(shared: &Shared, diags: &mut Diagnostics) -> Option<Client> {
    match shared.client() {
        Ok(client) => Some(client),
        Err(more) => {
            diags.extend(more);
            None
        }
    }
}

/// Adds an error for a failed API call, with the whole error chain.
fn api_error(diags: &mut Diagnostics, summary: String, error: &humanitec::Error) {
    diags.error(summary, crate::error_chain(error));
}

/// Sets one top-level attribute of an object value.
fn set(state: &mut Value, attribute: &str, value: Value) {
    if let Value::Object(fields) = state {
        fields.insert(attribute.to_string(), value);
    }
}

/// The elements of a set or list value (none for anything else).
fn set_items(value: &Value) -> &[Value] {
    match value {
        Value::Set(items) | Value::List(items) => items,
        _ => &[],
    }
}

/// A string value, or null.
fn optional_string(value: Option<&String>) -> Value {
    value.map_or(Value::Null, |s| Value::string(s.clone()))
}

/// A `criteria` block with the parts every resource's criteria have (`app_id`, `env_id`,
/// `env_type`); a resource adds its own.
fn criteria_block(description: &str) -> Block {
    Block::new(description)
        .attribute(
            Attribute::string("app_id")
                .validate(not_empty())
                .description("Match this application id."),
        )
        .attribute(
            Attribute::string("env_id")
                .validate(not_empty())
                .description("Match this environment id."),
        )
        .attribute(
            Attribute::string("env_type")
                .validate(not_empty())
                .description("Match this environment type, e.g. `development`."),
        )
}

/// Plans `name` as `id` whenever the configuration leaves it out.
fn default_name_to_id(plan: &mut Plan<'_>) {
    if plan.config.get("name").is_null() {
        let id = plan.planned.get("id").clone();
        set(&mut plan.planned, "name", id);
    }
}

/// Reports a failed create. A taken id points at import, since the definition may be this
/// configuration's own from an earlier, interrupted apply.
fn create_failed(
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
enum Lookup {
    /// The definition, live.
    Found(Box<Definition>),
    /// It no longer exists (or was force-deleted): the resource leaves the state.
    Gone,
    /// The API could not answer; the diagnostics say why.
    Failed,
}

/// Looks a definition up for a refresh.
async fn look_up(client: &Client, id: &str, what: &str, diags: &mut Diagnostics) -> Lookup {
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
async fn sync_criteria(
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
async fn delete_definition(
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
        match client.delete_definition(id, force).await {
            Ok(()) | Err(humanitec::Error::NotFound { .. }) => return,
            Err(humanitec::Error::InUse { changes }) if op.remaining() > LAST_ATTEMPT_MARGIN => {
                let pause = wait.min(op.remaining() - LAST_ATTEMPT_MARGIN);
                log::info!(
                    "{what} {id:?} is still in use by {} resource(s); retrying in {pause:?}",
                    changes.len()
                );
                tokio::time::sleep(pause).await;
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
