//! The framework's request handling, one method per provider RPC, in framework types.
//!
//! The protocol layer decodes a request with the schema types this server hands out, calls the
//! matching method here, and encodes the answer. Everything Terraform requires of the answers
//! (plan rules, cancellation on `Stop`, time limits from the
//! `timeouts` block) is enforced here, once, for every resource.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::plan::{plan_block, replacement_paths};
use super::resource::{Cancel, Cancelled, Operation, Plan};
use super::validate::validate_block;
use super::{Diagnostics, Private, Provider, Resource, Schema, timeouts};
use crate::value::{AttributePath, Type, Value};

/// The private-state key that marks a state as just imported, until the read that completes it.
const IMPORTING: &str = "importing";

/// How long an operation may take to finish cleanly once it is cancelled, before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

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

/// A resource type registered with the server: the handle every resource RPC works on.
pub(crate) struct ResourceType {
    resource: Arc<dyn Resource>,
    schema: Schema,
    ty: Type,
}

impl ResourceType {
    /// The type of the resource's values.
    pub(crate) fn ty(&self) -> &Type {
        &self.ty
    }
}

/// Serves one provider's requests.
pub(crate) struct Server {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_type: Type,
    resources: BTreeMap<String, ResourceType>,
    stop: Mutex<CancellationToken>,
    cancel_grace: Duration,
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
                let registered = ResourceType {
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
            cancel_grace: CANCEL_GRACE,
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

    /// A resource type by name, or an error diagnostic for a name this provider does not have.
    pub(crate) fn resource_type(&self, type_name: &str) -> Result<&ResourceType, Diagnostics> {
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
    pub(crate) fn validate_resource_config(
        &self,
        registered: &ResourceType,
        config: &Value,
    ) -> Diagnostics {
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
        registered: &ResourceType,
        version: i64,
        state: Value,
    ) -> (Value, Diagnostics) {
        let mut diags = Diagnostics::new();
        let state = if version == registered.schema.version {
            state
        } else {
            registered
                .resource
                .upgrade_state(version, state, &mut diags)
        };
        (state, diags)
    }

    /// `ReadResource`: refreshes a state from the real object.
    pub(crate) async fn read_resource(
        &self,
        registered: &ResourceType,
        current: &Value,
        private: &[u8],
    ) -> (Stored, Diagnostics) {
        let limit = timeouts::for_operation(current, "read", timeouts::DEFAULT_READ);
        let mut private = Private::from_bytes(private);
        let importing = private.remove(IMPORTING).is_some();
        let mut op = Operation::new(private, limit);
        op.importing = importing;
        let cancel = op.cancel.clone();
        let mut diags = Diagnostics::new();
        let mut inner = Diagnostics::new();
        let work = registered.resource.read(&mut op, current, &mut inner);
        let outcome = self.bounded("read", limit, &cancel, &mut diags, work).await;
        diags.extend(inner);
        let state = match outcome {
            Some(state) => state,
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

    /// `PlanResourceChange`: applies the plan rules and the resource's own adjustments.
    ///
    /// Why the resource's `modify_plan` runs once, even for a replacement: when a plan replaces
    /// the object, Terraform asks again with a null prior state, and that second request plans
    /// the new object like a create.
    pub(crate) fn plan_resource_change(
        &self,
        registered: &ResourceType,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        prior_private: &[u8],
    ) -> (Planned, Diagnostics) {
        let private = Private::from_bytes(prior_private);
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
        registered: &ResourceType,
        prior: &Value,
        planned: &Value,
        planned_private: &[u8],
    ) -> (Stored, Diagnostics) {
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
        let limit = timeouts::for_operation(limit_source, operation, timeouts::DEFAULT_WRITE);
        let mut op = Operation::new(private, limit);
        let cancel = op.cancel.clone();
        let mut inner = Diagnostics::new();
        let result = match change {
            Change::Create => {
                let work = resource.create(&mut op, planned, &mut inner);
                self.bounded(operation, limit, &cancel, &mut diags, work)
                    .await
            }
            Change::Update => {
                let work = resource.update(&mut op, prior, planned, &mut inner);
                self.bounded(operation, limit, &cancel, &mut diags, work)
                    .await
            }
            Change::Delete => {
                let work = async {
                    resource.delete(&mut op, prior, &mut inner).await;
                    Value::Null
                };
                self.bounded(operation, limit, &cancel, &mut diags, work)
                    .await
            }
        };
        let failed = inner.has_errors();
        diags.extend(inner);
        let state = match result {
            // A failed delete leaves the object in place: keep it in state.
            Some(_) if change == Change::Delete && failed => prior.clone(),
            Some(state) => state,
            // Dropped after it ignored its cancellation: as far as we know, nothing changed.
            None => prior.clone(),
        };
        let stored = Stored {
            state,
            private: op.private,
        };
        (stored, diags)
    }

    /// `ImportResourceState`: turns an import id into a state for read to complete, marked in
    /// its private state so that the read knows it completes an import.
    pub(crate) fn import_resource_state(
        &self,
        type_name: &str,
        registered: &ResourceType,
        id: &str,
    ) -> (Stored, Diagnostics) {
        let mut diags = Diagnostics::new();
        let mut private = Private::default();
        if id.trim().is_empty() {
            diags.error(
                "Missing import id",
                format!("Import a {type_name} by its definition id, e.g. `terraform import {type_name}.example my-definition`."),
            );
            let state = Value::Null;
            return (Stored { state, private }, diags);
        }
        let state = registered
            .resource
            .import_state(id, &registered.schema, &mut diags);
        private.set(IMPORTING, true.into());
        (Stored { state, private }, diags)
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

    /// Runs a resource operation until it finishes, or until its time limit passes or `Stop`
    /// arrives. Then `cancel` fires, and the operation gets [`CANCEL_GRACE`] to finish cleanly
    /// (say what it left behind, in its own diagnostics); after that it is dropped.
    ///
    /// Returns `None` (with an error added) when it had to be dropped.
    async fn bounded<F>(
        &self,
        operation: &str,
        limit: Duration,
        cancel: &Cancel,
        diags: &mut Diagnostics,
        work: F,
    ) -> Option<Value>
    where
        F: Future<Output = Value>,
    {
        let stop = self.stop_token();
        tokio::pin!(work);
        let reason = tokio::select! {
            value = &mut work => return Some(value),
            () = tokio::time::sleep(limit) => Cancelled::Timeout,
            () = stop.cancelled() => Cancelled::Stop,
        };
        log::info!(
            "{operation} cancelled ({reason:?}); waiting up to {:?} for it to finish",
            self.cancel_grace
        );
        cancel.fire(reason);
        match tokio::time::timeout(self.cancel_grace, &mut work).await {
            Ok(value) => Some(value),
            Err(_) => {
                cancelled_error(diags, operation, reason, limit);
                None
            }
        }
    }
}

/// The error for an operation that was cancelled and did not finish by itself.
pub(crate) fn cancelled_error(
    diags: &mut Diagnostics,
    operation: &str,
    reason: Cancelled,
    limit: Duration,
) {
    match reason {
        Cancelled::Timeout => timeouts::timed_out(diags, operation, limit),
        Cancelled::Stop => diags.error(
            "Interrupted",
            format!("Terraform asked the provider to stop; the {operation} was abandoned."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::framework::{Attribute, Block};

    /// How the test resource's create behaves.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Waits for the cancel signal, then reports what it left behind.
        Detaches,
        /// Never finishes, whatever happens.
        Hangs,
    }

    struct Slow {
        behaviour: Behaviour,
        plans: AtomicUsize,
    }

    #[async_trait]
    impl Resource for Slow {
        fn type_name(&self) -> &'static str {
            "test_slow"
        }

        fn schema(&self) -> Schema {
            Schema::new(
                Block::new("test")
                    .attribute(Attribute::string("id").required().requires_replace())
                    .attribute(Attribute::string("left").computed())
                    .block(timeouts::block()),
            )
        }

        fn modify_plan(&self, _plan: &mut Plan<'_>, _diags: &mut Diagnostics) {
            self.plans.fetch_add(1, Ordering::SeqCst);
        }

        async fn create(
            &self,
            op: &mut Operation,
            planned: &Value,
            diags: &mut Diagnostics,
        ) -> Value {
            match self.behaviour {
                Behaviour::Detaches => {
                    let reason = op.cancel.fired().await;
                    diags.warning("Detached", format!("{reason:?}"));
                    let mut state = planned.clone();
                    if let Value::Object(fields) = &mut state {
                        fields.insert("left".into(), Value::string("running"));
                    }
                    state
                }
                Behaviour::Hangs => std::future::pending().await,
            }
        }

        async fn read(
            &self,
            _op: &mut Operation,
            current: &Value,
            _diags: &mut Diagnostics,
        ) -> Value {
            current.clone()
        }

        async fn update(
            &self,
            _op: &mut Operation,
            _prior: &Value,
            planned: &Value,
            _diags: &mut Diagnostics,
        ) -> Value {
            planned.clone()
        }

        async fn delete(&self, _op: &mut Operation, _prior: &Value, _diags: &mut Diagnostics) {}
    }

    struct TestProvider(Arc<Slow>);

    #[async_trait]
    impl Provider for TestProvider {
        fn schema(&self) -> Schema {
            Schema::new(Block::new("test provider"))
        }

        fn resources(&self) -> Vec<Arc<dyn Resource>> {
            vec![Arc::clone(&self.0) as Arc<dyn Resource>]
        }

        async fn configure(&self, _config: &Value, _version: &str, _diags: &mut Diagnostics) {}
    }

    fn server(behaviour: Behaviour) -> (Arc<Server>, Arc<Slow>) {
        let slow = Arc::new(Slow {
            behaviour,
            plans: AtomicUsize::new(0),
        });
        let mut server = Server::new(Arc::new(TestProvider(Arc::clone(&slow))));
        server.cancel_grace = Duration::from_millis(200);
        (Arc::new(server), slow)
    }

    fn planned(id: &str, create_timeout: &str) -> Value {
        Value::object([
            ("id", Value::string(id)),
            ("left", Value::Unknown),
            (
                "timeouts",
                Value::object([("create", Value::string(create_timeout))]),
            ),
        ])
    }

    async fn create(server: &Server, planned: &Value) -> (Stored, Diagnostics) {
        let registered = server.resource_type("test_slow").unwrap();
        server
            .apply_resource_change(registered, &Value::Null, planned, &[])
            .await
    }

    #[tokio::test]
    async fn a_timeout_fires_the_cancel_signal_and_keeps_what_the_resource_reports() {
        let (server, _) = server(Behaviour::Detaches);
        let (stored, diags) = create(&server, &planned("a", "50ms")).await;
        assert_eq!(stored.state.get("left"), &Value::string("running"));
        let details: Vec<_> = diags.iter().map(|d| d.detail.clone()).collect();
        assert_eq!(details, vec!["Timeout".to_string()]);
        assert!(
            !diags.has_errors(),
            "the resource finished cleanly: {details:?}"
        );
    }

    #[tokio::test]
    async fn stop_fires_the_cancel_signal_of_operations_in_flight() {
        let (server, _) = server(Behaviour::Detaches);
        let stopper = Arc::clone(&server);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopper.stop();
        });
        let (stored, diags) = create(&server, &planned("a", "1h")).await;
        assert_eq!(stored.state.get("left"), &Value::string("running"));
        assert_eq!(diags.iter().next().map(|d| d.detail.as_str()), Some("Stop"));
    }

    #[tokio::test]
    async fn an_operation_that_ignores_its_cancellation_is_dropped_with_an_error() {
        let (server, _) = server(Behaviour::Hangs);
        let (stored, diags) = create(&server, &planned("a", "50ms")).await;
        assert!(stored.state.is_null(), "nothing is known to exist");
        let errors: Vec<_> = diags.iter().map(|d| d.summary.clone()).collect();
        assert_eq!(errors, vec!["Timed out during create".to_string()]);
    }

    #[test]
    fn a_replacement_runs_modify_plan_once_and_names_the_attribute() {
        let (server, slow) = server(Behaviour::Detaches);
        let registered = server.resource_type("test_slow").unwrap();
        let prior = Value::object([
            ("id", Value::string("a")),
            ("left", Value::string("x")),
            ("timeouts", Value::Null),
        ]);
        let config = Value::object([
            ("id", Value::string("b")),
            ("left", Value::Null),
            ("timeouts", Value::Null),
        ]);
        let (planned, diags) =
            server.plan_resource_change(registered, &prior, &config, &config, &[]);
        assert!(diags.is_empty());
        assert_eq!(slow.plans.load(Ordering::SeqCst), 1);
        assert_eq!(planned.requires_replace.len(), 1);
        assert_eq!(planned.requires_replace[0].to_string(), "id");
    }

    #[test]
    fn an_unknown_resource_type_is_a_diagnostic() {
        let (server, _) = server(Behaviour::Detaches);
        let Err(diags) = server.resource_type("test_missing") else {
            panic!("no such type");
        };
        assert!(diags.has_errors());
    }
}
