//! One backend per mode behind one trait, and the one place that chooses between them.
//!
//! A resource describes itself (schema, validation, plan) and hands its typed model to a
//! [`Backend`]: the api backend (`super::api`) turns it into a Humanitec definition, the direct
//! backend (`super::direct`) works on the cluster itself. Which one runs is decided here, from
//! the mode the object was created in, recorded in its private state: an object created in api
//! mode is read, updated and deleted in api mode even after the provider block switched to
//! `direct`, so nothing is left behind where the provider no longer looks.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Shared;
use super::config::Mode;
use terraform_plugin::framework::model::{self, ModelError};
use terraform_plugin::framework::plan::resolve_unknowns;
use terraform_plugin::framework::{Diagnostics, Operation, Plan, Private, Schema};
use terraform_plugin::value::{AttributePath, Type, Value};

/// What a failed create or update left behind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failed<M> {
    /// Nothing was changed.
    Nothing,
    /// Part of the change was made; this is what exists now, and it goes into state.
    Partly(M),
}

/// The result of a create or update: what exists now, or what a failure left behind. The
/// diagnostics say why it failed.
pub(crate) type Written<M> = Result<M, Failed<M>>;

/// What a read found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Read<M> {
    /// The object, as it is now.
    Found(M),
    /// The object is gone: the resource leaves the state.
    Gone,
    /// The object could not be read; the state stays as it was and the diagnostics say why.
    Failed,
}

/// How one mode creates, reads, updates and deletes objects of model `M`.
#[async_trait]
pub(crate) trait Backend<M>: Send + Sync {
    /// Creates the object `planned` describes.
    async fn create(&self, op: &mut Operation, planned: &M, diags: &mut Diagnostics) -> Written<M>;

    /// Reads the object as it is now, starting from what the state says.
    async fn read(&self, op: &mut Operation, current: &M, diags: &mut Diagnostics) -> Read<M>;

    /// Changes the object from `prior` to `planned`.
    async fn update(
        &self,
        op: &mut Operation,
        prior: &M,
        planned: &M,
        diags: &mut Diagnostics,
    ) -> Written<M>;

    /// Deletes the object; an error in `diags` keeps it in state.
    async fn delete(&self, op: &mut Operation, prior: &M, diags: &mut Diagnostics);

    /// Completes the plan of an object of this mode with what only this mode decides: the
    /// attributes it computes and the settings it has no use for. `backends` reads values into
    /// models. The default leaves the plan as the resource made it.
    fn plan(&self, _backends: &Backends<M>, _plan: &mut Plan<'_>, _diags: &mut Diagnostics) {}
}

/// Sets one top-level attribute of an object value.
pub(crate) fn set(state: &mut Value, attribute: &str, value: Value) {
    if let Value::Object(fields) = state {
        fields.insert(attribute.to_string(), value);
    }
}

/// The private-state key of the mode an object was created in.
const MODE_KEY: &str = "mode";

/// The mode recorded in a private state, if any.
fn recorded_mode(private: &Private) -> Option<Mode> {
    private
        .get(MODE_KEY)
        .and_then(|mode| mode.as_str())
        .and_then(Mode::parse)
}

/// A resource type's backends, one per mode, and the conversions between its values and model.
pub(crate) struct Backends<M> {
    /// The resource type, for messages.
    type_name: &'static str,
    shared: Arc<Shared>,
    api: Arc<dyn Backend<M>>,
    direct: Arc<dyn Backend<M>>,
    /// The resource's schema, to take the type of its values from.
    schema: fn() -> Schema,
    /// That type, worked out on first use. Why not at construction: the provider is started
    /// several times per Terraform command, mostly for requests that never write a state.
    ty: OnceLock<Type>,
    /// The mode of an object whose private state records none, from its state: one written by
    /// an earlier provider version, or the object a replacement deletes (Terraform hands that
    /// delete the new object's planned private state, not the old one's). `None` for the
    /// provider's current mode.
    unrecorded: fn(&Value) -> Option<Mode>,
}

impl<M> Backends<M>
where
    M: Serialize + DeserializeOwned + Send + Sync,
{
    /// The backends of a resource type with this schema.
    pub(crate) fn new(
        type_name: &'static str,
        shared: Arc<Shared>,
        api: Arc<dyn Backend<M>>,
        direct: Arc<dyn Backend<M>>,
        schema: fn() -> Schema,
        unrecorded: fn(&Value) -> Option<Mode>,
    ) -> Self {
        Self {
            type_name,
            shared,
            api,
            direct,
            schema,
            ty: OnceLock::new(),
            unrecorded,
        }
    }

    /// The one place a mode becomes a backend.
    fn backend(&self, mode: Mode) -> &dyn Backend<M> {
        match mode {
            Mode::Api => self.api.as_ref(),
            Mode::Direct => self.direct.as_ref(),
        }
    }

    /// The mode an existing object follows: the one it was created in. For objects from provider
    /// versions that recorded no mode, the mode they were made in then.
    fn mode_of(&self, private: &Private, state: &Value) -> Mode {
        recorded_mode(private)
            .or_else(|| (self.unrecorded)(state))
            .unwrap_or_else(|| self.shared.mode())
    }

    /// The mode a plan is for: the provider's for a new object, the recorded one otherwise.
    pub(crate) fn planned_mode(&self, plan: &Plan<'_>) -> Mode {
        if plan.prior.is_null() {
            self.shared.mode()
        } else {
            self.mode_of(&plan.private, plan.prior)
        }
    }

    /// Completes a plan with the backend of its mode ([`Backend::plan`]).
    pub(crate) fn plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        self.backend(self.planned_mode(plan))
            .plan(self, plan, diags);
    }

    /// The resource's schema.
    pub(crate) fn schema(&self) -> Schema {
        (self.schema)()
    }

    /// The type of the resource's values.
    fn ty(&self) -> &Type {
        self.ty.get_or_init(|| (self.schema)().implied_type())
    }

    /// Reads a value into the model; one that does not fit is reported with the attribute to
    /// blame and what to do.
    pub(crate) fn model(&self, value: &Value, diags: &mut Diagnostics) -> Option<M> {
        match model::decode(value) {
            Ok(model) => Some(model),
            Err(error) => {
                let at = model::failing_path::<M>(value, self.ty());
                unreadable(self.type_name, value, at.as_ref(), &error, diags);
                None
            }
        }
    }

    /// Writes the model as a state value.
    pub(crate) fn state(&self, model: &M, diags: &mut Diagnostics) -> Option<Value> {
        match model::encode(model, self.ty()) {
            Ok(value) => Some(value),
            Err(error) => {
                unwritable(self.type_name, &error, diags);
                None
            }
        }
    }

    /// The state after a successful write: the plan, with each value it left unknown taken from
    /// what the backend reports. Why not the report as a whole: Terraform rejects a state that
    /// differs from a known planned value, and the backend may hold a value in an equivalent
    /// form; such differences are drift for the next refresh to find.
    fn settled(&self, planned: &Value, made: &M, diags: &mut Diagnostics) -> Option<Value> {
        let made = self.state(made, diags)?;
        Some(resolve_unknowns(planned, &made))
    }

    /// Checks a plan: for an object in api mode, that the API settings known so far are usable
    /// (so their problems show before the plan is approved); for an existing object whose
    /// provider has switched modes since it was created, a warning. The object stays with the
    /// mode it was created in, so nothing it made is left behind, and the warning says how to
    /// move it.
    ///
    /// Why a warning and not an error: `terraform destroy` plans every object normally first
    /// (to refresh it), and must still work after a switch. Why not a replacement: Terraform
    /// replaces only for a changed attribute, and a switch that silently recreated every object
    /// would surprise more than it helps.
    pub(crate) fn check_plan(&self, plan: &Plan<'_>, type_name: &str, diags: &mut Diagnostics) {
        let mode = self.planned_mode(plan);
        if mode == Mode::Api {
            self.shared.check_api_settings(diags);
        }
        if plan.prior.is_null() {
            return;
        }
        let (created, now) = (self.mode_of(&plan.private, plan.prior), self.shared.mode());
        if created != now {
            warn_stays_in_mode(type_name, created, now, diags);
        }
    }

    /// Whether an import by id is refused: in direct mode nothing of the object exists outside
    /// the state, so there is nothing to import, and nothing is asked of any API.
    pub(crate) fn refuses_import(&self, type_name: &str, diags: &mut Diagnostics) -> bool {
        if self.shared.mode() != Mode::Direct {
            return false;
        }
        super::direct::refuse_import(type_name, diags);
        true
    }

    /// Creates the object in the provider's current mode, and records that mode.
    pub(crate) async fn create(
        &self,
        op: &mut Operation,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(wanted) = self.model(planned, diags) else {
            return Value::Null;
        };
        let mode = self.shared.mode();
        op.private.set(MODE_KEY, mode.name().into());
        match self.backend(mode).create(op, &wanted, diags).await {
            Ok(made) => self.settled(planned, &made, diags).unwrap_or(Value::Null),
            Err(Failed::Partly(made)) => self.state(&made, diags).unwrap_or(Value::Null),
            Err(Failed::Nothing) => Value::Null,
        }
    }

    /// Reads the object in the mode it was created in.
    pub(crate) async fn read(
        &self,
        op: &mut Operation,
        current: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(known) = self.model(current, diags) else {
            return current.clone();
        };
        // Why the provider's mode for an import: an imported object has no recorded mode, and
        // the user imports it into the mode the provider is in.
        let mode = if op.importing {
            self.shared.mode()
        } else {
            self.mode_of(&op.private, current)
        };
        op.private.set(MODE_KEY, mode.name().into());
        match self.backend(mode).read(op, &known, diags).await {
            Read::Found(found) => self.state(&found, diags).unwrap_or_else(|| current.clone()),
            Read::Gone => Value::Null,
            Read::Failed => current.clone(),
        }
    }

    /// Updates the object in the mode it was created in.
    pub(crate) async fn update(
        &self,
        op: &mut Operation,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let (Some(before), Some(after)) = (self.model(prior, diags), self.model(planned, diags))
        else {
            return prior.clone();
        };
        let mode = self.mode_of(&op.private, prior);
        match self.backend(mode).update(op, &before, &after, diags).await {
            Ok(now) => self
                .settled(planned, &now, diags)
                .unwrap_or_else(|| prior.clone()),
            Err(Failed::Partly(now)) => self.state(&now, diags).unwrap_or_else(|| prior.clone()),
            Err(Failed::Nothing) => prior.clone(),
        }
    }

    /// Deletes the object in the mode it was created in.
    pub(crate) async fn delete(&self, op: &mut Operation, prior: &Value, diags: &mut Diagnostics) {
        if let Some(before) = self.model(prior, diags) {
            let mode = self.mode_of(&op.private, prior);
            self.backend(mode).delete(op, &before, diags).await;
        }
    }
}

/// Reports a state or plan the model cannot read: the attribute to blame (when one is), what
/// was expected there, and how to go on. Never the value itself, which may be a secret.
fn unreadable(
    type_name: &str,
    value: &Value,
    at: Option<&AttributePath>,
    error: &ModelError,
    diags: &mut Diagnostics,
) {
    let expected = model::expectation(error);
    let (summary, place) = match at {
        Some(path) => {
            let found = model::value_at(value, path).kind_name();
            (
                format!("Cannot read {path} of this {type_name}"),
                format!("{path} ({found} where {expected})"),
            )
        }
        None => (
            format!("Cannot read this {type_name}"),
            format!("its value ({expected})"),
        ),
    };
    let id = value
        .get("id")
        .as_str()
        .filter(|id| !id.is_empty())
        .unwrap_or("<id>");
    let detail = format!(
        "This provider version cannot read {place} in the state or plan of this {type_name}, so \
         nothing was changed. To go on, take the resource out of the state and import it again: \
         `terraform state rm <address>`, then `terraform import <address> {id}` (in direct mode, \
         which has no import, apply the configuration again instead). Please report this with the \
         provider version: the provider should read every value its schema allows."
    );
    match at {
        Some(path) => diags.error_at(path.clone(), summary, detail),
        None => diags.error(summary, detail),
    }
}

/// Reports a model that does not convert to the schema's type: the model and schema disagree,
/// which the tests of each resource rule out.
fn unwritable(type_name: &str, error: &ModelError, diags: &mut Diagnostics) {
    diags.error(
        format!("Cannot write the state of this {type_name}"),
        format!(
            "{}. The provider's model and schema of {type_name} disagree; please report this \
             with the provider version.",
            crate::text::capitalized(&model::expectation(error))
        ),
    );
}

/// The warning for an object that stays in the mode `was` it was created in while its provider is
/// now in mode `is`.
pub(crate) fn warn_stays_in_mode(type_name: &str, was: Mode, is: Mode, diags: &mut Diagnostics) {
    let (was, is) = (was.name(), is.name());
    diags.warning(
        format!("This {type_name} stays in {was} mode"),
        format!(
            "The provider is now in {is} mode, but this object was created in {was} mode and is \
             still read, updated and deleted there, so that nothing it made is left behind; {is} \
             mode applies to new objects. To move it, replace it (terraform apply \
             -replace=<address>: deleted in {was} mode, created in {is} mode), or set the \
             provider back to mode = \"{was}\"."
        ),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::Deserialize;

    use super::*;
    use crate::provider::config::{Setting, Settings};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        id: String,
    }

    /// A backend that records which operations reached it.
    #[derive(Default)]
    struct Recording(Mutex<Vec<&'static str>>);

    impl Recording {
        fn seen(&self) -> Vec<&'static str> {
            self.0.lock().unwrap().clone()
        }
        fn note(&self, what: &'static str) {
            self.0.lock().unwrap().push(what);
        }
    }

    #[async_trait]
    impl Backend<Thing> for Recording {
        async fn create(
            &self,
            _op: &mut Operation,
            planned: &Thing,
            _d: &mut Diagnostics,
        ) -> Written<Thing> {
            self.note("create");
            Ok(planned.clone())
        }
        async fn read(
            &self,
            _op: &mut Operation,
            current: &Thing,
            _d: &mut Diagnostics,
        ) -> Read<Thing> {
            self.note("read");
            Read::Found(current.clone())
        }
        async fn update(
            &self,
            _op: &mut Operation,
            _prior: &Thing,
            planned: &Thing,
            _d: &mut Diagnostics,
        ) -> Written<Thing> {
            self.note("update");
            Err(Failed::Partly(planned.clone()))
        }
        async fn delete(&self, _op: &mut Operation, _prior: &Thing, _d: &mut Diagnostics) {
            self.note("delete");
        }
    }

    fn shared(mode: Mode) -> Arc<Shared> {
        let shared = Arc::new(Shared::default());
        shared.store(Settings {
            org_id: Setting::Set("my-org".into()),
            token: Setting::Set("t0ken".into()),
            api_prefix: Setting::Set("http://127.0.0.1:1/".into()),
            mode,
        });
        shared
    }

    fn backends(
        shared: Arc<Shared>,
        unrecorded: fn(&Value) -> Option<Mode>,
    ) -> (Backends<Thing>, Arc<Recording>, Arc<Recording>) {
        let (api, direct) = (
            Arc::new(Recording::default()),
            Arc::new(Recording::default()),
        );
        let api_dyn: Arc<dyn Backend<Thing>> = api.clone();
        let direct_dyn: Arc<dyn Backend<Thing>> = direct.clone();
        (
            Backends::new(
                "test_thing",
                shared,
                api_dyn,
                direct_dyn,
                thing_schema,
                unrecorded,
            ),
            api,
            direct,
        )
    }

    fn thing_schema() -> Schema {
        Schema::new(
            terraform_plugin::framework::Block::new("thing")
                .attribute(terraform_plugin::framework::Attribute::string("id").required()),
        )
    }

    fn thing() -> Value {
        Value::object([("id", Value::string("a"))])
    }

    #[tokio::test]
    async fn an_object_follows_the_mode_it_was_created_in() {
        let (created_in_api, api, direct) = backends(shared(Mode::Api), |_| None);
        let mut op = Operation::new(Private::default(), std::time::Duration::from_secs(5));
        let mut diags = Diagnostics::new();
        assert_eq!(
            created_in_api.create(&mut op, &thing(), &mut diags).await,
            thing()
        );
        let private = op.private.clone();

        // The provider is switched to direct mode; the object's private state says api.
        let (switched, _, _) = backends(shared(Mode::Direct), |_| None);
        let switched = Backends {
            api: api.clone(),
            direct: direct.clone(),
            ..switched
        };
        for step in 0..3 {
            let mut op = Operation::new(private.clone(), std::time::Duration::from_secs(5));
            match step {
                0 => drop(switched.read(&mut op, &thing(), &mut diags).await),
                1 => drop(
                    switched
                        .update(&mut op, &thing(), &thing(), &mut diags)
                        .await,
                ),
                _ => switched.delete(&mut op, &thing(), &mut diags).await,
            }
        }
        assert_eq!(api.seen(), ["create", "read", "update", "delete"]);
        assert!(direct.seen().is_empty());
        assert!(diags.is_empty());
    }

    #[tokio::test]
    async fn an_object_with_no_recorded_mode_takes_the_fallback_and_records_it() {
        let (legacy, api, direct) = backends(shared(Mode::Direct), |_| Some(Mode::Api));
        let mut op = Operation::new(Private::default(), std::time::Duration::from_secs(5));
        let mut diags = Diagnostics::new();
        legacy.read(&mut op, &thing(), &mut diags).await;
        assert_eq!(api.seen(), ["read"]);
        assert!(direct.seen().is_empty());
        assert_eq!(recorded_mode(&op.private), Some(Mode::Api));
    }

    #[test]
    fn a_value_the_model_cannot_read_names_the_attribute_and_not_the_value() {
        let (backends, _, _) = backends(shared(Mode::Api), |_| None);
        let mut diags = Diagnostics::new();
        let odd = Value::object([("id", Value::number(73_511_924))]);
        assert!(backends.model(&odd, &mut diags).is_none());
        let diag = diags.iter().next().expect("a diagnostic");
        assert_eq!(diag.summary, "Cannot read id of this test_thing");
        assert_eq!(
            diag.attribute.as_ref().map(ToString::to_string),
            Some("id".into())
        );
        let text = format!("{} {}", diag.summary, diag.detail);
        assert!(!text.contains("73511924"), "the value shows: {text}");
        assert!(!text.contains("Internal error"), "{text}");
        assert!(text.contains("number where expected a string"), "{text}");
        assert!(text.contains("terraform state rm"), "{text}");
    }

    #[test]
    fn a_switched_mode_is_a_warning_that_says_how_to_move() {
        let (switched, _, _) = backends(shared(Mode::Direct), |_| None);
        let mut private = Private::default();
        private.set(MODE_KEY, "api".into());
        let prior = thing();
        let plan = Plan {
            prior: &prior,
            config: &prior,
            planned: thing(),
            requires_replace: Vec::new(),
            private,
        };
        let mut diags = Diagnostics::new();
        switched.check_plan(&plan, "test_thing", &mut diags);
        assert!(!diags.has_errors());
        let texts: Vec<_> = diags
            .iter()
            .map(|d| format!("{} {}", d.summary, d.detail))
            .collect();
        assert_eq!(texts.len(), 1);
        assert!(
            texts[0].starts_with("This test_thing stays in api mode"),
            "{texts:?}"
        );
        assert!(texts[0].contains("-replace"), "{texts:?}");
    }
}
