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

use super::plan::{
    clear_write_only, plan_block, replacement_paths, with_write_only, write_only_set,
};
use super::resource::{Cancel, Cancelled, ClientCapabilities, Operation, Plan};
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

    /// `ValidateResourceTypeConfig`: validates one resource block. A write-only value from a CLI
    /// that did not say it can keep such values out of plans and states is refused.
    pub(crate) fn validate_resource_config(
        &self,
        registered: &ResourceType,
        config: &Value,
        capabilities: ClientCapabilities,
    ) -> Diagnostics {
        let mut diags = Diagnostics::new();
        if !capabilities.write_only_attributes_allowed {
            let block = &registered.schema.block;
            for path in write_only_set(block, config, &AttributePath::root()) {
                write_only_not_allowed(&path, &mut diags);
            }
        }
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
        let mut state = if version == registered.schema.version {
            state
        } else {
            registered
                .resource
                .upgrade_state(version, state, &mut diags)
        };
        clear_write_only(&registered.schema.block, &mut state);
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
        let mut state = match outcome {
            Some(state) => state,
            // Why keep the current state: a read that did not finish proves nothing about the
            // object, and dropping it from state would plan a duplicate.
            None => current.clone(),
        };
        clear_write_only(&registered.schema.block, &mut state);
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
    ///
    /// Write-only attributes are null in the plan the resource adjusts, and in the plan returned
    /// whatever the resource did; their values are in `config` only.
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
        let mut planned = plan_block(block, prior, config, proposed, creating);
        clear_write_only(block, &mut planned);
        let mut plan = Plan {
            prior,
            config,
            planned,
            requires_replace: Vec::new(),
            private,
        };
        registered.resource.modify_plan(&mut plan, &mut diags);
        clear_write_only(block, &mut plan.planned);
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

    /// `ApplyResourceChange`: creates, updates or deletes. A create or update is given the plan
    /// with the write-only values of `config` in it; the state it returns keeps none of them.
    pub(crate) async fn apply_resource_change(
        &self,
        registered: &ResourceType,
        prior: &Value,
        planned: &Value,
        config: &Value,
        planned_private: &[u8],
    ) -> (Stored, Diagnostics) {
        let resource = &registered.resource;
        let block = &registered.schema.block;
        let given = with_write_only(block, planned, config);
        let planned = &given;
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
        let mut state = match result {
            // A failed delete leaves the object in place: keep it in state.
            Some(_) if change == Change::Delete && failed => prior.clone(),
            Some(state) => state,
            // Dropped after it ignored its cancellation: as far as we know, nothing changed.
            None => prior.clone(),
        };
        clear_write_only(block, &mut state);
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
        let mut state = registered
            .resource
            .import_state(id, &registered.schema, &mut diags);
        clear_write_only(&registered.schema.block, &mut state);
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

/// The error for a write-only value from a CLI that cannot keep it out of plans and states.
fn write_only_not_allowed(path: &AttributePath, diags: &mut Diagnostics) {
    let name = path.to_string();
    // The convention `x_wo` is the write-only form of `x`.
    let plain = name
        .strip_suffix("_wo")
        .map(|plain| format!(", or use {plain} (sensitive, but kept in the state) instead"))
        .unwrap_or_default();
    diags.error_at(
        path.clone(),
        format!("{name} needs Terraform 1.11 or later"),
        format!(
            "{name} is write-only: its value is sent to the provider but never kept in a plan or \
             the state. That needs Terraform 1.11 or later, or OpenTofu 1.11 or later, and this \
             CLI did not say it can send write-only values. Upgrade the CLI{plain}."
        ),
    );
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

    /// A provider of one test resource.
    struct TestProvider(Arc<dyn Resource>);

    #[async_trait]
    impl Provider for TestProvider {
        fn schema(&self) -> Schema {
            Schema::new(Block::new("test provider"))
        }

        fn resources(&self) -> Vec<Arc<dyn Resource>> {
            vec![Arc::clone(&self.0)]
        }

        async fn configure(&self, _config: &Value, _version: &str, _diags: &mut Diagnostics) {}
    }

    fn server(behaviour: Behaviour) -> (Arc<Server>, Arc<Slow>) {
        let slow = Arc::new(Slow {
            behaviour,
            plans: AtomicUsize::new(0),
        });
        let mut server = Server::new(Arc::new(TestProvider(
            Arc::clone(&slow) as Arc<dyn Resource>
        )));
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
            .apply_resource_change(registered, &Value::Null, planned, planned, &[])
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

    /// A resource with a write-only secret that records what its create was given.
    #[derive(Default)]
    struct Keeper(std::sync::Mutex<Option<Value>>);

    #[async_trait]
    impl Resource for Keeper {
        fn type_name(&self) -> &'static str {
            "test_keeper"
        }

        fn schema(&self) -> Schema {
            Schema::new(
                Block::new("test")
                    .attribute(Attribute::string("id").required())
                    .attribute(Attribute::string("secret_wo").write_only())
                    .attribute(Attribute::string("secret_wo_version")),
            )
        }

        fn modify_plan(&self, plan: &mut Plan<'_>, _diags: &mut Diagnostics) {
            assert!(plan.planned.get("secret_wo").is_null(), "seen in a plan");
            assert_eq!(plan.config.get("secret_wo"), &Value::string("s3cret"));
            // Even a resource that puts one in a plan cannot make it stay there.
            if let Value::Object(fields) = &mut plan.planned {
                fields.insert("secret_wo".into(), Value::string("s3cret"));
            }
        }

        async fn create(
            &self,
            _op: &mut Operation,
            planned: &Value,
            _d: &mut Diagnostics,
        ) -> Value {
            *self.0.lock().unwrap() = Some(planned.clone());
            planned.clone()
        }

        async fn read(&self, _op: &mut Operation, current: &Value, _d: &mut Diagnostics) -> Value {
            let mut state = current.clone();
            if let Value::Object(fields) = &mut state {
                fields.insert("secret_wo".into(), Value::string("s3cret"));
            }
            state
        }

        async fn update(
            &self,
            _op: &mut Operation,
            _prior: &Value,
            planned: &Value,
            _d: &mut Diagnostics,
        ) -> Value {
            planned.clone()
        }

        async fn delete(&self, _op: &mut Operation, _prior: &Value, _d: &mut Diagnostics) {}
    }

    #[tokio::test]
    async fn write_only_values_reach_create_and_no_plan_or_state() {
        let keeper = Arc::new(Keeper::default());
        let server = Server::new(Arc::new(TestProvider(
            Arc::clone(&keeper) as Arc<dyn Resource>
        )));
        let registered = server.resource_type("test_keeper").unwrap();
        let config = Value::object([
            ("id", Value::string("a")),
            ("secret_wo", Value::string("s3cret")),
            ("secret_wo_version", Value::string("1")),
        ]);
        let (planned, diags) =
            server.plan_resource_change(registered, &Value::Null, &config, &config, &[]);
        assert!(diags.is_empty());
        assert!(planned.state.get("secret_wo").is_null());
        assert_eq!(planned.state.get("secret_wo_version"), &Value::string("1"));

        let (stored, diags) = server
            .apply_resource_change(registered, &Value::Null, &planned.state, &config, &[])
            .await;
        assert!(diags.is_empty());
        let given = keeper.0.lock().unwrap().clone().unwrap();
        assert_eq!(given.get("secret_wo"), &Value::string("s3cret"));
        assert!(stored.state.get("secret_wo").is_null());

        let (read, _) = server.read_resource(registered, &stored.state, &[]).await;
        assert!(read.state.get("secret_wo").is_null());
    }

    #[test]
    fn a_cli_that_cannot_send_write_only_values_is_told_the_version_it_needs() {
        let server = Server::new(Arc::new(TestProvider(Arc::new(Keeper::default()))));
        let registered = server.resource_type("test_keeper").unwrap();
        let config = Value::object([
            ("id", Value::string("a")),
            ("secret_wo", Value::Unknown),
            ("secret_wo_version", Value::string("1")),
        ]);
        let old_cli = ClientCapabilities::default();
        let diags = server.validate_resource_config(registered, &config, old_cli);
        let found: Vec<_> = diags.iter().collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].summary, "secret_wo needs Terraform 1.11 or later");
        assert_eq!(
            found[0].attribute.as_ref().unwrap().to_string(),
            "secret_wo"
        );
        assert!(
            found[0].detail.contains("OpenTofu 1.11"),
            "{}",
            found[0].detail
        );
        assert!(
            found[0].detail.contains("or use secret"),
            "{}",
            found[0].detail
        );
        let new_cli = ClientCapabilities {
            write_only_attributes_allowed: true,
        };
        assert!(
            server
                .validate_resource_config(registered, &config, new_cli)
                .is_empty()
        );
        let unset = Value::object([("id", Value::string("a"))]);
        assert!(
            server
                .validate_resource_config(registered, &unset, old_cli)
                .is_empty()
        );
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
