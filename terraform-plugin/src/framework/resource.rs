//! The traits a provider and its resources implement, and the contexts they are handed.
//!
//! Resource code works on [`Value`] trees shaped by its own schema and reports problems as
//! [`Diagnostics`]; it never sees a protobuf message or a msgpack byte. Optional capabilities
//! (validation, plan changes, import, state upgrades) are default methods.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{Diagnostics, Private, Schema};
use crate::value::{AttributePath, Value};

/// What the CLI (Terraform or OpenTofu) says it can do, from tfplugin5's `ClientCapabilities`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientCapabilities {
    /// It sends write-only attribute values, and keeps them out of plans and states
    /// (Terraform 1.11 and later, OpenTofu 1.11 and later).
    pub(crate) write_only_attributes_allowed: bool,
}

/// Why an operation was asked to finish early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Terraform sent `Stop` (the user pressed Ctrl-C).
    Stop,
    /// The operation's time limit (its `timeouts` value or the default) passed.
    Timeout,
}

/// The signal that asks an operation to finish early, with the reason. Clones share one signal.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Cancelled>>>,
}

impl Cancel {
    /// Fires the signal; the first reason given is the one kept.
    pub fn fire(&self, reason: Cancelled) {
        let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(reason);
        self.token.cancel();
    }

    /// The reason, once the signal has fired.
    pub fn reason(&self) -> Option<Cancelled> {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the signal fires.
    pub async fn fired(&self) -> Cancelled {
        self.token.cancelled().await;
        self.reason().unwrap_or(Cancelled::Stop)
    }
}

/// What a resource operation may know about the request besides the values.
#[derive(Debug)]
pub struct Operation {
    /// Private state: read it, change it, and it is stored with the new state.
    pub private: Private,
    /// When the operation must be finished (from the resource's `timeouts` block, or a default).
    pub deadline: Instant,
    /// Fired by `Stop` and by the time limit. Why a signal rather than dropping the future: an
    /// operation that started something long-running (a Job) must get the chance to say what it
    /// left behind, and to keep it in state.
    pub cancel: Cancel,
    /// The time limit the deadline was set from, for messages.
    budget: Duration,
    /// Whether this read completes an import: the state holds only what the import id gave.
    pub importing: bool,
}

impl Operation {
    /// An operation with the given private state and time budget.
    pub fn new(private: Private, budget: Duration) -> Self {
        Self {
            private,
            deadline: Instant::now() + budget,
            cancel: Cancel::default(),
            budget,
            importing: false,
        }
    }

    /// The operation's whole time limit.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Time left before the deadline (zero when it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Adds the error that says why the operation `name` (`create`, `read`, …) stopped early.
    pub fn report_cancelled(&self, reason: Cancelled, name: &str, diags: &mut Diagnostics) {
        super::server::cancelled_error(diags, name, reason, self.budget);
    }

    /// Runs `work` unless the operation is cancelled first; then `work` is dropped and the reason
    /// returned. For steps that are safe to abandon, such as an idempotent HTTP request.
    pub async fn unless_cancelled<F: Future>(&self, work: F) -> Result<F::Output, Cancelled> {
        tokio::select! {
            output = work => Ok(output),
            reason = self.cancel.fired() => Err(reason),
        }
    }
}

/// A plan being made: the resource may adjust `planned` and add replacement paths.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The state before the change (null on create).
    pub prior: &'a Value,
    /// The configuration as written (may hold unknowns).
    pub config: &'a Value,
    /// The planned new state, already with defaults and computed values applied.
    pub planned: Value,
    /// Attributes whose change forces replacement, beyond those the schema marks.
    pub requires_replace: Vec<AttributePath>,
    /// Private state to store with the plan.
    pub private: Private,
}

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync {
    /// The resource type name, e.g. `example_server` (the provider's name, `_`, a noun).
    fn type_name(&self) -> &'static str;

    /// The resource's schema.
    fn schema(&self) -> Schema;

    /// Checks the configuration beyond per-attribute validators; values may be unknown.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Adjusts a plan after defaults and computed values were applied.
    fn modify_plan(&self, _plan: &mut Plan<'_>, _diags: &mut Diagnostics) {}

    /// Creates the object; returns the new state, or null when nothing was created.
    async fn create(&self, op: &mut Operation, planned: &Value, diags: &mut Diagnostics) -> Value;

    /// Reads the object; returns null when it no longer exists.
    async fn read(&self, op: &mut Operation, current: &Value, diags: &mut Diagnostics) -> Value;

    /// Updates the object in place; returns the new state (what exists, even on error).
    async fn update(
        &self,
        op: &mut Operation,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value;

    /// Deletes the object.
    async fn delete(&self, op: &mut Operation, prior: &Value, diags: &mut Diagnostics);

    /// Turns an import id into a state for `read` to complete.
    ///
    /// The default sets the `id` attribute and leaves everything else null.
    fn import_state(&self, id: &str, schema: &Schema, _diags: &mut Diagnostics) -> Value {
        super::plan::with_id(id, schema)
    }

    /// Upgrades a state written under an older schema version.
    ///
    /// The default accepts only the current version.
    fn upgrade_state(&self, version: i64, state: Value, diags: &mut Diagnostics) -> Value {
        if version != self.schema().version {
            diags.error(
                "Unsupported state version",
                format!(
                    "The state of this {} was written with schema version {version}, which this \
                     provider version cannot read. Use the provider version that wrote it.",
                    self.type_name()
                ),
            );
        }
        state
    }
}

/// A provider: its configuration and its resources.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The schema of the `provider` block.
    fn schema(&self) -> Schema;

    /// The resource types this provider manages.
    fn resources(&self) -> Vec<Arc<dyn Resource>>;

    /// Checks the provider configuration beyond per-attribute validators.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Receives the provider configuration (which may still hold unknowns).
    async fn configure(&self, config: &Value, terraform_version: &str, diags: &mut Diagnostics);
}
