//! The framework's request handling, one method per provider RPC, in framework types.
//!
//! The protocol layer decodes a request with the schema types this server hands out, calls the
//! matching method here, and encodes the answer. Everything Terraform requires of the answers
//! (plan rules, write-only attributes null in state, cancellation on `Stop`, time limits from the
//! `timeouts` block) is enforced here, once, for every resource.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::plan::{plan_block, replacement_paths, strip_write_only};
use super::resource::{Operation, Plan};
use super::validate::validate_block;
use super::{Diagnostics, Private, Provider, Resource, Schema, timeouts};
use crate::value::{AttributePath, Type, Value};

/// Default time limit for create, update and delete when the resource has no `timeouts` value.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default time limit for read.
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The kind of change an apply makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
    Delete,
}

impl Change {
    /// The operation's name, as in the `timeouts` block.
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// A resource type registered with the server.
struct Registered {
    resource: Arc<dyn Resource>,
    schema: Schema,
    ty: Type,
}

/// Serves one provider's requests.
pub(crate) struct Server {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_type: Type,
    resources: BTreeMap<String, Registered>,
    stop: Mutex<CancellationToken>,
}

/// The answer to `PlanResourceChange`.
#[derive(Debug)]
pub(crate) struct Planned {
    /// The planned new state (null when destroying).
    pub(crate) state: Value,
    /// Attributes whose change forces replacement.
    pub(crate) requires_replace: Vec<AttributePath>,
    /// Private state to carry into apply.
    pub(crate) private: Private,
}

/// A state with its private data, as returned by read and apply.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The resource's state (null when it is gone).
    pub(crate) state: Value,
    /// Its private state.
    pub(crate) private: Private,
}

impl Server {
    /// Builds the server, computing every schema once.
    pub(crate) fn new(provider: Arc<dyn Provider>) -> Self {
        let provider_schema = provider.schema();
        let provider_type = provider_schema.implied_type();
        let resources = provider
            .resources()
            .into_iter()
            .map(|resource| {
                let schema = resource.schema();
                let ty = schema.implied_type();
                let registered = Registered {
                    resource: Arc::clone(&resource),
                    schema,
                    ty,
                };
                (resource.type_name().to_string(), registered)
            })
            .collect();
        Self {
            provider,
            provider_schema,
            provider_type,
            resources,
            stop: Mutex::new(CancellationToken::new()),
        }
    }

    /// The provider configuration schema.
    pub(crate) fn provider_schema(&self) -> &Schema {
        &self.provider_schema
    }

    /// The type of the provider configuration value.
    pub(crate) fn provider_type(&self) -> &Type {
        &self.provider_type
    }

    /// Every resource type name with its schema.
    pub(crate) fn resource_schemas(&self) -> impl Iterator<Item = (&str, &Schema)> {
        self.resources
            .iter()
            .map(|(name, r)| (name.as_str(), &r.schema))
    }

    /// The value type of a resource type, or an error diagnostic for an unknown name.
    pub(crate) fn resource_type(&self, type_name: &str) -> Result<&Type, Diagnostics> {
        self.registered(type_name).map(|r| &r.ty)
    }

    fn registered(&self, type_name: &str) -> Result<&Registered, Diagnostics> {
        self.resources.get(type_name).ok_or_else(|| {
            let mut diags = Diagnostics::new();
            diags.error(
                "Unknown resource type",
                format!("This provider has no resource type {type_name:?}."),
            );
            diags
        })
    }

    /// `PrepareProviderConfig`: validates the provider block.
    pub(crate) fn validate_provider_config(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        validate_block(
            &self.provider_schema.block,
            config,
            &AttributePath::root(),
            &mut diags,
        );
        self.provider.validate(config, &mut diags);
        diags
    }

    /// `Configure`: hands the provider its configuration.
    pub(crate) async fn configure(&self, config: &Value, terraform_version: &str) -> Diagnostics {
        let mut diags = Diagnostics::new();
        self.provider
            .configure(config, terraform_version, &mut diags)
            .await;
        diags
    }

    /// `ValidateResourceTypeConfig`: validates one resource block.
    pub(crate) fn validate_resource_config(&self, type_name: &str, config: &Value) -> Diagnostics {
        let registered = match self.registered(type_name) {
            Ok(r) => r,
            Err(diags) => return diags,
        };
        let mut diags = Diagnostics::new();
        validate_block(
            &registered.schema.block,
            config,
            &AttributePath::root(),
            &mut diags,
        );
        registered.resource.validate(config, &mut diags);
        diags
    }

    /// `UpgradeResourceState`: brings a stored state to the current schema version.
    pub(crate) fn upgrade_resource_state(
        &self,
        type_name: &str,
        version: i64,
        state: Value,
    ) -> (Value, Diagnostics) {
        let registered = match self.registered(type_name) {
            Ok(r) => r,
            Err(diags) => return (Value::Null, diags),
        };
        let mut diags = Diagnostics::new();
        let mut state = if version == registered.schema.version {
            state
        } else {
            registered
                .resource
                .upgrade_state(version, state, &mut diags)
        };
        strip_write_only(&registered.schema.block, &mut state);
        (state, diags)
    }

    /// `ReadResource`: refreshes a state from the real object.
    pub(crate) async fn read_resource(
        &self,
        type_name: &str,
        current: &Value,
        private: &[u8],
    ) -> (Stored, Diagnostics) {
        let registered = match self.registered(type_name) {
            Ok(r) => r,
            Err(diags) => return (self.unchanged(current, private), diags),
        };
        let limit = timeouts::for_operation(current, "read", DEFAULT_READ_TIMEOUT);
        let mut op = Operation::new(Private::from_bytes(private), limit);
        let mut diags = Diagnostics::new();
        let mut inner = Diagnostics::new();
        let outcome = self
            .bounded(
                "read",
                limit,
                &mut diags,
                registered.resource.read(&mut op, current, &mut inner),
            )
            .await;
        diags.extend(inner);
        let state = match outcome {
            Some(mut state) => {
                strip_write_only(&registered.schema.block, &mut state);
                state
            }
            // Why keep the current state: a read that did not finish proves nothing about the
            // object, and dropping it from state would plan a duplicate.
            None => current.clone(),
        };
        (
            Stored {
                state,
                private: op.private,
            },
            diags,
        )
    }

    fn unchanged(&self, current: &Value, private: &[u8]) -> Stored {
        Stored {
            state: current.clone(),
            private: Private::from_bytes(private),
        }
    }

    /// `PlanResourceChange`: applies the plan rules and the resource's own adjustments.
    pub(crate) fn plan_resource_change(
        &self,
        type_name: &str,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        prior_private: &[u8],
    ) -> (Planned, Diagnostics) {
        let private = Private::from_bytes(prior_private);
        let registered = match self.registered(type_name) {
            Ok(r) => r,
            Err(diags) => {
                let planned = Planned {
                    state: proposed.clone(),
                    requires_replace: Vec::new(),
                    private,
                };
                return (planned, diags);
            }
        };
        let mut diags = Diagnostics::new();
        if proposed.is_null() {
            let planned = Planned {
                state: Value::Null,
                requires_replace: Vec::new(),
                private,
            };
            return (planned, diags);
        }
        let block = &registered.schema.block;
        let creating = prior.is_null();
        let mut plan = Plan {
            prior,
            config,
            planned: plan_block(block, prior, config, proposed, creating),
            requires_replace: Vec::new(),
            private,
        };
        registered.resource.modify_plan(&mut plan, &mut diags);
        let mut replace = replacement_paths(block, prior, &plan.planned);
        if !replace.is_empty() {
            // A replacement creates a new object: plan it like a create.
            let mut fresh = Plan {
                prior: &Value::Null,
                config,
                planned: plan_block(block, &Value::Null, config, proposed, true),
                requires_replace: Vec::new(),
                private: plan.private.clone(),
            };
            registered.resource.modify_plan(&mut fresh, &mut diags);
            replace.append(&mut fresh.requires_replace);
            plan.planned = fresh.planned;
            plan.private = fresh.private;
        }
        replace.append(&mut plan.requires_replace);
        replace.dedup();
        let planned = Planned {
            state: plan.planned,
            requires_replace: replace,
            private: plan.private,
        };
        (planned, diags)
    }

    /// `ApplyResourceChange`: creates, updates or deletes.
    pub(crate) async fn apply_resource_change(
        &self,
        type_name: &str,
        prior: &Value,
        planned: &Value,
        planned_private: &[u8],
    ) -> (Stored, Diagnostics) {
        let registered = match self.registered(type_name) {
            Ok(r) => r,
            Err(diags) => return (self.unchanged(prior, planned_private), diags),
        };
        let resource = &registered.resource;
        let mut diags = Diagnostics::new();
        let private = Private::from_bytes(planned_private);
        let change = match (prior.is_null(), planned.is_null()) {
            (true, _) => Change::Create,
            (false, true) => Change::Delete,
            (false, false) => Change::Update,
        };
        // The time limit comes from the configuration being applied, or, for a delete, the last one.
        let limit_source = if change == Change::Delete {
            prior
        } else {
            planned
        };
        let operation = change.name();
        let limit = timeouts::for_operation(limit_source, operation, DEFAULT_WRITE_TIMEOUT);
        let mut op = Operation::new(private, limit);
        let mut inner = Diagnostics::new();
        let result = match change {
            Change::Create => {
                let work = resource.create(&mut op, planned, &mut inner);
                self.bounded(operation, limit, &mut diags, work).await
            }
            Change::Update => {
                let work = resource.update(&mut op, prior, planned, &mut inner);
                self.bounded(operation, limit, &mut diags, work).await
            }
            Change::Delete => {
                let work = async {
                    resource.delete(&mut op, prior, &mut inner).await;
                    Value::Null
                };
                self.bounded(operation, limit, &mut diags, work).await
            }
        };
        let failed = inner.has_errors();
        diags.extend(inner);
        let mut state = match result {
            // A failed delete leaves the object in place: keep it in state.
            Some(_) if change == Change::Delete && failed => prior.clone(),
            Some(state) => state,
            // Interrupted or out of time: the object is as it was before, as far as we know.
            None => prior.clone(),
        };
        strip_write_only(&registered.schema.block, &mut state);
        let stored = Stored {
            state,
            private: op.private,
        };
        (stored, diags)
    }

    /// `ImportResourceState`: turns an import id into a state for read to complete.
    pub(crate) fn import_resource_state(&self, type_name: &str, id: &str) -> (Value, Diagnostics) {
        let registered = match self.registered(type_name) {
            Ok(r) => r,
            Err(diags) => return (Value::Null, diags),
        };
        let mut diags = Diagnostics::new();
        if id.trim().is_empty() {
            diags.error(
                "Missing import id",
                format!("Import a {type_name} by its definition id, e.g. `terraform import {type_name}.example my-definition`."),
            );
            return (Value::Null, diags);
        }
        let state = registered
            .resource
            .import_state(id, &registered.schema, &mut diags);
        (state, diags)
    }

    /// `Stop`: cancels every operation in flight; later requests run normally.
    pub(crate) fn stop(&self) {
        let mut token = match self.stop.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        token.cancel();
        *token = CancellationToken::new();
    }

    fn stop_token(&self) -> CancellationToken {
        match self.stop.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs a resource operation until it finishes, its time limit passes, or `Stop` arrives.
    ///
    /// Returns `None` (with an error added) when it did not finish.
    async fn bounded<F>(
        &self,
        operation: &str,
        limit: Duration,
        diags: &mut Diagnostics,
        work: F,
    ) -> Option<Value>
    where
        F: Future<Output = Value>,
    {
        let stop = self.stop_token();
        tokio::select! {
            value = tokio::time::timeout(limit, work) => match value {
                Ok(value) => Some(value),
                Err(_) => {
                    timeouts::timed_out(diags, operation, limit);
                    None
                }
            },
            () = stop.cancelled() => {
                diags.error(
                    "Interrupted",
                    format!("Terraform asked the provider to stop; the {operation} was abandoned."),
                );
                None
            }
        }
    }
}
