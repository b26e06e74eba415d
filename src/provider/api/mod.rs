//! The api backend: each object is a Humanitec Resource Definition, created, read, updated and
//! deleted through the Humanitec API (`crate::humanitec`), with payloads from `crate::provider::api::definition`.
//!
//! One file per resource type (`runner_config.rs`, `container_runner.rs`), and here the steps
//! they share: getting the client, keeping to one organization, looking a definition up, keeping
//! its criteria in sync, and deleting a definition that may still be in use. Each step takes the
//! resource's [`Kind`], which names it in messages and says which definitions are its own.

pub(crate) mod container_runner;
pub(crate) mod definition;
mod runner_config;

use std::future::Future;
use std::time::Duration;

use super::Shared;
use super::backend::{Read, set};
use crate::humanitec::{
    self, Client, Criteria, CriteriaRule, Definition, DefinitionCreate, DefinitionUpdate,
};
use terraform_plugin::framework::{Cancelled, Diagnostics, Operation, Plan};
use terraform_plugin::value::{AttributePath, Value};

/// Plans the attributes of the resources' `definition_shape`: the driver this provider writes and no
/// unmanaged inputs.
fn plan_definition_shape(plan: &mut Plan<'_>, driver: &str) {
    set(&mut plan.planned, "driver_type", Value::string(driver));
    set(
        &mut plan.planned,
        "unmanaged_inputs",
        Value::List(Vec::new()),
    );
}

/// The kind of definition a resource type manages.
#[derive(Debug)]
pub(crate) struct Kind {
    /// The Terraform resource type, e.g. `humanitec_container_runner`.
    pub(crate) resource_type: &'static str,
    /// How messages name one, e.g. `container runner`.
    pub(crate) what: &'static str,
    /// The driver of its definitions.
    pub(crate) driver: &'static str,
    /// The type of its definitions, when that is fixed (`config` for runner configs).
    pub(crate) definition_type: Option<&'static str>,
    /// Whether the resource has a `force_delete` attribute.
    pub(crate) force_delete: bool,
}

impl Kind {
    /// Whether a definition is of this kind.
    pub(crate) fn holds(&self, definition: &Definition) -> bool {
        definition.driver_type == self.driver
            && self
                .definition_type
                .is_none_or(|fixed| definition.type_ == fixed)
    }
}

/// Runner configs: `config` definitions of the Template Driver.
pub(crate) const RUNNER_CONFIG: Kind = Kind {
    resource_type: "humanitec_runner_config",
    what: "runner config",
    driver: definition::runner_config::TEMPLATE_DRIVER,
    definition_type: Some(definition::runner_config::CONFIG_TYPE),
    force_delete: false,
};

/// Container runners: definitions of any type driven by the Container Runner Driver.
pub(crate) const CONTAINER_RUNNER: Kind = Kind {
    resource_type: "humanitec_container_runner",
    what: "container runner",
    driver: definition::container_runner::CONTAINER_RUNNER_DRIVER,
    definition_type: None,
    force_delete: true,
};

/// Every kind, to say which resource type an existing definition belongs to.
const KINDS: [&Kind; 2] = [&RUNNER_CONFIG, &CONTAINER_RUNNER];

/// A definition's kind in words: `a container runner (humanitec_container_runner)`, or its
/// driver and type when no resource type of this provider manages it.
fn describe(definition: &Definition) -> String {
    match KINDS.iter().find(|kind| kind.holds(definition)) {
        Some(kind) => format!("a {} ({})", kind.what, kind.resource_type),
        None => format!(
            "a {:?} definition with driver {:?}, which this provider does not manage",
            definition.type_, definition.driver_type
        ),
    }
}

/// Refuses, when a read completes an import, a definition that is not of the resource's kind:
/// imported anyway, the next apply would silently rewrite it into one.
fn refuse_other_kind(
    op: &Operation,
    kind: &Kind,
    definition: &Definition,
    diags: &mut Diagnostics,
) -> bool {
    if !op.importing || kind.holds(definition) {
        return false;
    }
    diags.error(
        format!("Definition {:?} is not a {}", definition.id, kind.what),
        format!(
            "It is {}: a {} is a definition with driver {:?}{}. Import it into the resource \
             type that manages it, or import another id.",
            describe(definition),
            kind.resource_type,
            kind.driver,
            kind.definition_type
                .map(|t| format!(" and type {t:?}"))
                .unwrap_or_default(),
        ),
    );
    true
}

/// Problems found in a definition as one sentence for a diagnostic: "Its driver is …; it has …".
fn problems_sentence(problems: &[String]) -> String {
    let text = problems.join("; ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The api backend, for every resource type.
pub(crate) struct Api {
    shared: std::sync::Arc<Shared>,
}

impl Api {
    /// The backend, with the provider's settings.
    pub(crate) fn new(shared: std::sync::Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The API client for an object of `kind` with `id`, or the diagnostics that say why there
    /// is none: settings missing, or the provider now naming another organization than the one
    /// the object was created in.
    fn client_for(
        &self,
        op: &mut Operation,
        kind: &Kind,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Client> {
        let client = match self.shared.client() {
            Ok(client) => client,
            Err(more) => {
                diags.extend(more);
                return None;
            }
        };
        same_org(op, &client, kind, id, diags).then_some(client)
    }

    /// The definition behind an object, for a read: found (and of `kind` when the read completes
    /// an import), gone, or not readable (the diagnostics say why).
    async fn find(
        &self,
        op: &mut Operation,
        kind: &Kind,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Read<Box<Definition>> {
        let Some(client) = self.client_for(op, kind, id, diags) else {
            return Read::Failed;
        };
        match op.unless_cancelled(look_up(&client, kind, id, diags)).await {
            Ok(Lookup::Found(definition)) if refuse_other_kind(op, kind, &definition, diags) => {
                Read::Failed
            }
            Ok(Lookup::Found(definition)) => Read::Found(definition),
            Ok(Lookup::Gone) => Read::Gone,
            Ok(Lookup::Failed) => Read::Failed,
            Err(reason) => {
                op.report_cancelled(reason, "read", diags);
                Read::Failed
            }
        }
    }
}

/// Replaces a definition (PUT); `None`, with the diagnostics saying why, when it was not.
async fn put(
    op: &Operation,
    client: &Client,
    kind: &Kind,
    id: &str,
    update: &DefinitionUpdate,
    diags: &mut Diagnostics,
) -> Option<Definition> {
    match step(op, "update", diags, client.update_definition(id, update)).await? {
        Ok(definition) => Some(definition),
        Err(e) => {
            api_error(diags, format!("Could not update {} {id:?}", kind.what), &e);
            None
        }
    }
}

/// Brings a definition's criteria to `wanted` after an update, starting from the definition the
/// update `written` (read again when the update wrote nothing). On failure the error is
/// reported, and the answer is the definition as it is now (when it can be read), so that the
/// half-done update is recorded with the criteria it really has.
async fn update_criteria(
    client: &Client,
    kind: &Kind,
    id: &str,
    written: Option<Definition>,
    wanted: &[CriteriaRule],
    diags: &mut Diagnostics,
) -> Result<(), Option<Definition>> {
    let report = |diags: &mut Diagnostics, error: &humanitec::Error| {
        let summary = format!("Could not update the criteria of {} {id:?}", kind.what);
        api_error(diags, summary, error);
    };
    let current = match written {
        Some(definition) => definition,
        None => match client.get_definition(id).await {
            Ok(Some(definition)) => definition,
            Ok(None) => {
                let gone = humanitec::Error::NotFound {
                    what: format!("definition {id:?}"),
                };
                report(diags, &gone);
                return Err(None);
            }
            Err(e) => {
                report(diags, &e);
                return Err(None);
            }
        },
    };
    let Err(e) = sync_criteria(client, id, wanted, &current.criteria).await else {
        return Ok(());
    };
    report(diags, &e);
    match client.get_definition(id).await {
        Ok(Some(now)) => Err(Some(now)),
        _ => Err(Some(current)),
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
    kind: &Kind,
    id: &str,
    diags: &mut Diagnostics,
) -> bool {
    let (now, what) = (client.org_id(), kind.what);
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
async fn step<T>(
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

/// Adds an error for a failed API call, with the whole error chain.
fn api_error(diags: &mut Diagnostics, summary: String, error: &humanitec::Error) {
    diags.error(summary, crate::text::error_chain(error));
}

/// Reports a failed create. A taken id points at import when the definition there is of this
/// resource's kind (it may be this configuration's own, from an interrupted apply), and says what
/// it is otherwise.
async fn create_failed(
    client: &Client,
    kind: &Kind,
    id: &str,
    error: &humanitec::Error,
    diags: &mut Diagnostics,
) {
    let what = kind.what;
    if !matches!(error, humanitec::Error::AlreadyExists { .. }) {
        api_error(diags, format!("Could not create {what} {id:?}"), error);
        return;
    }
    let existing = client.get_definition(id).await.ok().flatten();
    let detail = match existing {
        Some(definition) if !kind.holds(&definition) => format!(
            "The organization already has a resource definition with id {id:?}, and it is {}, \
             not a {what}. Choose another id.",
            describe(&definition)
        ),
        _ => format!(
            "The organization already has a {what} definition with id {id:?}. If it is this \
             resource's, import it into the address Terraform names above (`terraform import \
             '<address>' {id}`, or an import block with to = <address> and id = \"{id}\"); \
             otherwise choose another id."
        ),
    };
    diags.error_at(
        AttributePath::root().attribute("id"),
        format!("Definition {id:?} already exists"),
        detail,
    );
}

/// How long a create whose outcome is unknown may spend finding out. Why this short: it runs
/// after the create was cancelled, within the grace a cancelled operation gets.
const OUTCOME_LOOKUP: Duration = Duration::from_secs(5);

/// What became of a create whose answer never came (cancelled, timed out, or failed in a way
/// that may have been applied).
enum Outcome {
    /// The definition exists, of this resource's kind: the create went through.
    Created(Box<Definition>),
    /// The definition does not exist: nothing was created.
    NotCreated,
    /// Still unknown.
    Unknown,
}

/// Finds out whether a create of `id` went through, within [`OUTCOME_LOOKUP`].
async fn outcome_of_create(client: &Client, kind: &Kind, id: &str, type_: &str) -> Outcome {
    match tokio::time::timeout(OUTCOME_LOOKUP, client.get_definition(id)).await {
        Ok(Ok(Some(found))) if kind.holds(&found) && found.type_ == type_ => {
            Outcome::Created(Box::new(found))
        }
        Ok(Ok(None)) => Outcome::NotCreated,
        _ => Outcome::Unknown,
    }
}

/// What a create came to.
enum Created {
    /// The definition exists, as the API answered it or as found afterwards.
    Done(Box<Definition>),
    /// Nothing was created; the diagnostics say why.
    Failed,
    /// It may have been created; the diagnostics say so, and the resource goes into state.
    Unknown,
}

/// Sends a create. When its answer never comes (the operation is cancelled, or the call fails in
/// a way that may have been applied), looks the definition up before giving up on it, so that a
/// definition that exists is never lost from state.
async fn create(
    op: &Operation,
    client: &Client,
    kind: &Kind,
    payload: &DefinitionCreate,
    diags: &mut Diagnostics,
) -> Created {
    let id = &payload.id;
    let lost = match op.unless_cancelled(client.create_definition(payload)).await {
        Ok(Ok(definition)) => return Created::Done(Box::new(definition)),
        Ok(Err(e)) if !e.outcome_unknown() => {
            create_failed(client, kind, id, &e, diags).await;
            return Created::Failed;
        }
        Ok(Err(e)) => Err(e),
        Err(reason) => Ok(reason),
    };
    let outcome = outcome_of_create(client, kind, id, &payload.type_).await;
    match (&lost, outcome) {
        (Err(_), Outcome::Created(definition)) => return Created::Done(definition),
        (Ok(reason), Outcome::Created(definition)) => {
            diags.warning(
                format!("The {} {id:?} was created", kind.what),
                format!(
                    "The create finished although it was cancelled ({}); the definition is in \
                     state.",
                    match reason {
                        Cancelled::Stop => "Terraform asked the provider to stop",
                        Cancelled::Timeout => "its time limit passed",
                    }
                ),
            );
            return Created::Done(definition);
        }
        (_, outcome) => {
            match &lost {
                Err(e) => api_error(diags, format!("Could not create {} {id:?}", kind.what), e),
                Ok(reason) => op.report_cancelled(*reason, "create", diags),
            }
            if matches!(outcome, Outcome::NotCreated) {
                return Created::Failed;
            }
        }
    }
    report_unknown_create(kind, id, diags);
    Created::Unknown
}

/// Reports a create whose outcome stayed unknown: the resource goes into state with this error,
/// so Terraform keeps it (tainted) and the next apply replaces it, rather than losing track of a
/// definition that may exist.
fn report_unknown_create(kind: &Kind, id: &str, diags: &mut Diagnostics) {
    diags.error(
        format!("The create of {} {id:?} may have gone through", kind.what),
        "The API's answer did not arrive, and the definition could not be looked up in time. The \
         resource is kept in state, marked tainted: the next apply deletes the definition if it \
         exists and creates it again. If you know it exists as configured, `terraform untaint` \
         keeps it instead.",
    );
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
async fn look_up(client: &Client, kind: &Kind, id: &str, diags: &mut Diagnostics) -> Lookup {
    let what = kind.what;
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
/// deadline, then saying what the user can do about them.
async fn delete_definition(
    client: &Client,
    op: &Operation,
    kind: &Kind,
    id: &str,
    force: bool,
    diags: &mut Diagnostics,
) {
    let what = kind.what;
    let hint = if kind.force_delete {
        "Set force_delete = true (and apply) to delete it anyway, or raise timeouts.delete to wait longer."
    } else {
        "Raise timeouts.delete to wait longer, or move the resources that use it to another definition first."
    };
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
                if started.elapsed() < pause {
                    // Why INFO at the start: the wait can last until timeouts.delete (20
                    // minutes by default), and a silent one looks like a hang.
                    log::info!(
                        "{what} {id:?} is in use by {} resource(s); waiting for them to move \
                         to another definition, retrying until {} from now (timeouts.delete)",
                        changes.len(),
                        terraform_plugin::framework::timeouts::format_duration(op.remaining())
                    );
                }
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
                        terraform_plugin::framework::timeouts::format_duration(started.elapsed())
                    ),
                    format!("{}.\n\n{hint}", crate::text::error_chain(&e)),
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

#[cfg(test)]
mod tests {
    use humanitec_sandbox::{Answer, Options, Sandbox, ScriptedAction, ScriptedFault};
    use serde_json::{Value, json};

    use super::*;
    use crate::humanitec::{ClientConfig, RetryPolicy};
    use terraform_plugin::framework::Private;

    const ORG: &str = "my-org";

    async fn setup() -> (Sandbox, Client) {
        let sandbox = Sandbox::start(Options {
            log_requests: false,
            record_requests: true,
            ..Options::default()
        })
        .expect("the sandbox starts");
        let mut config = ClientConfig::new(sandbox.url(), ORG, "t0ken", "test");
        config.retry = RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(2),
        };
        (sandbox, Client::new(config).expect("valid config"))
    }

    /// Stores a definition directly (as if created earlier), without a request.
    fn seed(sandbox: &Sandbox, id: &str, type_: &str, driver_type: &str) {
        let body = json!({"id": id, "name": id, "type": type_, "driver_type": driver_type});
        sandbox
            .create_definition(ORG, &body)
            .expect("valid definition");
    }

    /// Marks a definition as used by Active Resources.
    fn set_in_use(sandbox: &Sandbox, id: &str, resources: Value) {
        sandbox
            .set_active_resources(ORG, id, &resources)
            .expect("valid Active Resources");
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
        let (sandbox, client) = setup().await;
        seed(&sandbox, "def", "s3", CONTAINER_RUNNER.driver);
        client.add_criteria("def", &rule("old")).await.unwrap();
        let current = client
            .get_definition("def")
            .await
            .unwrap()
            .unwrap()
            .criteria;
        // Replacing a criterion: the new one is added before the old one goes, so the
        // definition never stops matching in between.
        sync_criteria(&client, "def", &[rule("new")], &current)
            .await
            .unwrap();
        let methods: Vec<String> = sandbox
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/criteria"))
            .map(|r| r.method)
            .collect();
        assert_eq!(methods, ["POST", "POST", "DELETE"]);
        let left = client
            .get_definition("def")
            .await
            .unwrap()
            .unwrap()
            .criteria;
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].env_type.as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn look_up_tells_found_gone_and_failed_apart() {
        let (sandbox, client) = setup().await;
        seed(&sandbox, "def", "s3", CONTAINER_RUNNER.driver);
        let mut diags = Diagnostics::new();
        assert!(matches!(
            look_up(&client, &CONTAINER_RUNNER, "def", &mut diags).await,
            Lookup::Found(_)
        ));
        assert!(matches!(
            look_up(&client, &CONTAINER_RUNNER, "missing", &mut diags).await,
            Lookup::Gone
        ));
        assert!(diags.is_empty());
        sandbox.script(ScriptedFault::every_request(ScriptedAction::Answer(
            Answer::error(500, "API-500", "scripted failure"),
        )));
        assert!(matches!(
            look_up(&client, &CONTAINER_RUNNER, "def", &mut diags).await,
            Lookup::Failed
        ));
        let summaries: Vec<_> = diags.iter().map(|d| d.summary.clone()).collect();
        assert_eq!(summaries, ["Could not read container runner \"def\""]);
    }

    #[tokio::test]
    async fn an_in_use_delete_waits_until_the_deadline_then_says_what_to_do() {
        let (sandbox, client) = setup().await;
        seed(&sandbox, "def", "s3", CONTAINER_RUNNER.driver);
        set_in_use(
            &sandbox,
            "def",
            json!([{"app_id": "app", "env_id": "dev", "res_id": "bucket"}]),
        );
        let op = Operation::new(Private::default(), Duration::from_millis(1300));
        let mut diags = Diagnostics::new();
        delete_definition(&client, &op, &RUNNER_CONFIG, "def", false, &mut diags).await;
        let errors: Vec<_> = diags
            .iter()
            .map(|d| (d.summary.clone(), d.detail.clone()))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.contains("still in use"), "{errors:?}");
        // A runner config has no force_delete, so the hint does not offer one.
        assert!(errors[0].1.contains("Raise timeouts.delete"), "{errors:?}");
        assert!(!errors[0].1.contains("force_delete"), "{errors:?}");
        assert!(sandbox.count("DELETE", "/defs/def") >= 1);
        assert!(sandbox.definitions(ORG).contains_key("def"));
    }

    #[tokio::test]
    async fn a_cancelled_delete_stops_waiting_and_says_why() {
        let (sandbox, client) = setup().await;
        seed(&sandbox, "def", "s3", CONTAINER_RUNNER.driver);
        set_in_use(
            &sandbox,
            "def",
            json!([{"app_id": "app", "env_id": "dev", "res_id": "bucket"}]),
        );
        let op = Operation::new(Private::default(), Duration::from_secs(600));
        let cancel = op.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.fire(Cancelled::Stop);
        });
        let mut diags = Diagnostics::new();
        let started = std::time::Instant::now();
        delete_definition(&client, &op, &CONTAINER_RUNNER, "def", false, &mut diags).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it did not wait out the 2 s pause"
        );
        let summaries: Vec<_> = diags.iter().map(|d| d.summary.clone()).collect();
        assert_eq!(summaries, ["Interrupted"]);
    }

    #[tokio::test]
    async fn a_taken_id_points_at_import_only_for_its_own_kind() {
        let (sandbox, client) = setup().await;
        seed(&sandbox, "mine", "s3", CONTAINER_RUNNER.driver);
        seed(&sandbox, "config", "config", RUNNER_CONFIG.driver);
        let taken = |id: &str| humanitec::Error::AlreadyExists { id: id.into() };
        let mut diags = Diagnostics::new();
        create_failed(
            &client,
            &CONTAINER_RUNNER,
            "mine",
            &taken("mine"),
            &mut diags,
        )
        .await;
        create_failed(
            &client,
            &CONTAINER_RUNNER,
            "config",
            &taken("config"),
            &mut diags,
        )
        .await;
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
            found[0].1.contains("terraform import '<address>' mine"),
            "{found:?}"
        );
        assert!(
            found[1]
                .1
                .contains("a runner config (humanitec_runner_config)"),
            "{found:?}"
        );
        assert!(!found[1].1.contains("import"), "{found:?}");
    }
}
