//! The Humanitec provider: its configuration and its resources.
//!
//! This is the domain layer. It turns resource values into Humanitec definitions (through
//! `api::definition`) and talks to the API through `crate::humanitec`; the framework below it
//! handles everything Terraform-specific.

pub(crate) mod api;
pub(crate) mod backend;
pub(crate) mod config;
pub(crate) mod direct;
pub(crate) mod resources;
pub(crate) mod validate;

use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use terraform_plugin::plugin::ProviderIdentity;

use crate::humanitec::Client;
use config::{Mode, Settings};
use terraform_plugin::framework::validate::one_of;
use terraform_plugin::framework::{Attribute, Block, Diagnostics, Provider, Resource, Schema};
use terraform_plugin::value::Value;

/// The provider's name, version, registry addresses and log targets, for the plugin protocol.
pub(crate) const IDENTITY: ProviderIdentity = ProviderIdentity {
    name: "terraform-provider-humanitec",
    version: env!("CARGO_PKG_VERSION"),
    // Why both: the bare source address `container-runner/humanitec` means the first to
    // Terraform and the second to OpenTofu.
    addresses: &[
        "registry.terraform.io/container-runner/humanitec",
        "registry.opentofu.org/container-runner/humanitec",
    ],
    log_targets: &["humanitec_provider", "terraform_provider_humanitec"],
    // Why kube: its events and HTTP spans (a request's method and URL, a watch that ended) are
    // what a direct-mode problem is found with.
    dependency_log_targets: &["kube"],
};

/// What resources share: the provider's resolved settings, once `Configure` has run.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    settings: RwLock<Option<Settings>>,
    /// The API client, built on first use and dropped when the settings change.
    client: Mutex<Option<Client>>,
    /// Whether a plan has reported the settings' problems already.
    settings_reported: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The mode, api unless configured otherwise (also before `Configure`).
    pub(crate) fn mode(&self) -> Mode {
        self.read().map_or(Mode::Api, |s| s.mode)
    }

    /// An API client, or diagnostics saying which setting is missing.
    pub(crate) fn client(&self) -> Result<Client, Diagnostics> {
        let mut cached = self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        match self.read() {
            Some(settings) => {
                let client = settings.client()?;
                *cached = Some(client.clone());
                Ok(client)
            }
            None => {
                let mut diags = Diagnostics::new();
                diags.error(
                    "Provider not configured",
                    "Terraform did not configure the humanitec provider before using it. This is a bug; please report it.",
                );
                Err(diags)
            }
        }
    }

    /// At plan time: the problems with the API settings that are known already (a missing org,
    /// a token with white space, an `api_prefix` without scheme), once per provider, so that
    /// they are not first seen after the plan was approved. Settings still unknown say nothing.
    pub(crate) fn check_api_settings(&self, diags: &mut Diagnostics) {
        let Some(settings) = self.read() else {
            return;
        };
        let unknown = [&settings.org_id, &settings.token, &settings.api_prefix]
            .iter()
            .any(|s| matches!(s, config::Setting::Unknown));
        if unknown
            || self
                .settings_reported
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        if let Err(problems) = self.client() {
            diags.extend(problems);
        }
    }

    fn read(&self) -> Option<Settings> {
        match self.settings.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, settings: Settings) {
        self.settings_reported
            .store(false, std::sync::atomic::Ordering::Relaxed);
        *self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        match self.settings.write() {
            Ok(mut guard) => *guard = Some(settings),
            Err(poisoned) => *poisoned.into_inner() = Some(settings),
        }
    }
}

/// The `humanitec` provider.
#[derive(Debug, Default)]
pub(crate) struct HumanitecProvider {
    shared: Arc<Shared>,
}

impl HumanitecProvider {
    /// A provider that has not been configured yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Provider for HumanitecProvider {
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "The humanitec provider manages the Humanitec Container Runner: runner configurations \
                 (`humanitec_runner_config`) and container runner definitions \
                 (`humanitec_container_runner`). In `api` mode they become Humanitec Resource \
                 Definitions. In `direct` mode there is no platform: a runner config is recorded in \
                 state, and a container runner runs its container as a Kubernetes Job on the \
                 runner config's cluster (`ACTION=create` on create and update, `ACTION=destroy` \
                 on delete), with the run's outputs as attributes; see the direct mode guide.",
            )
            .attribute(Attribute::string("org_id").description(
                "The Humanitec organization id. Falls back to the `HUMANITEC_ORG` environment variable, then to `org` in the humctl configuration file. Required in `api` mode.",
            ))
            .attribute(Attribute::string("token").sensitive().description(
                "A Humanitec API token. Falls back to `HUMANITEC_TOKEN`, then to `token` in the humctl configuration file. Required in `api` mode.",
            ))
            .attribute(Attribute::string("api_prefix").description(
                "The Humanitec API base URL. Falls back to `HUMANITEC_API_PREFIX`, then to `apiPrefix` in the humctl configuration file, then to `https://api.humanitec.io/`. Point it at `humanitec-sandbox` to try the provider offline.",
            ))
            .attribute(
                Attribute::string("mode")
                    .validate(one_of(&["api", "direct"]))
                    .description(
                        "`api` (the default): resources become Humanitec Resource Definitions. `direct`: no platform and no org or token; a runner config is recorded in state, and a container runner runs its Job on the runner config's cluster itself, with the run's outputs as attributes (see the direct mode guide). The mode applies to objects created from now on: an object stays in the mode it was created in (a switch gets a plan warning that says how to move it).",
                    ),
            )
            .attribute(Attribute::string("config").description(
                "Path to a humctl configuration file (YAML with `apiPrefix`, `org`, `token`). Defaults to `~/.humctl` when that file exists.",
            )),
        )
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(resources::runner_config::RunnerConfigResource::new(
                Arc::clone(&self.shared),
            )),
            Arc::new(resources::container_runner::ContainerRunnerResource::new(
                Arc::clone(&self.shared),
            )),
        ]
    }

    async fn configure(&self, config: &Value, _terraform_version: &str, diags: &mut Diagnostics) {
        let settings = config::resolve(config, &|key| std::env::var(key).ok(), diags);
        log::debug!("provider configured: {settings:?}");
        self.shared.store(settings);
    }
}
