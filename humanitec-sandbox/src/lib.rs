//! `humanitec-sandbox`: a local, strict, in-memory implementation of the Humanitec Resource
//! Definitions API (`/orgs/{orgId}/resources/defs…`, spec v0.28.37) for tests and offline use of the
//! provider.
//!
//! The library is the sandbox itself: [`Sandbox::start`] serves it on its own thread and Tokio
//! runtime, so synchronous and asynchronous tests alike start one in-process, read its URL, script
//! faults for particular requests ([`ScriptedFault`]), read the requests it received
//! ([`Sandbox::requests`]) and its definitions, and stop it by dropping the handle. The binary
//! (`src/main.rs`) is the command line around the same [`Sandbox`]: it parses the flags into
//! [`Options`], prints the base URL (the only line ever written to stdout) and serves until SIGINT
//! or SIGTERM. Neither uses the provider's crates.
//!
//! Modules: `server` (HTTP, auth, faults, admin endpoints), `faults` (fault kinds, the
//! after-processing fault settings, scripted faults, connections a fault can drop), `record` (the
//! requests received, when asked to keep them), `api` (the operations), `schema` (strict request
//! validation), `secrets` (secrets stored, answered as refs), `model` (data and response bodies),
//! `persist` (`--data`), `error`, `clock`, `rng`. Tests: `tests_behaviour`, `tests_openapi` (spec
//! conformance against `tests/data/humanitec-openapi.json`), `test_support`.
//!
//! Behaviour the spec leaves open, as the sandbox settles it:
//! - An invalid org id is a 404. An empty, malformed or wrong-kind body (e.g. an array for an object)
//!   is a 422. Schema violations are 400. `null` on an optional property counts as absent (Go semantics).
//! - A matching rule must be unique per Resource Type across live definitions (409), as the spec's
//!   `MatchingCriteriaResponse` note says. Replacing criteria keeps the ids of rules that stay.
//! - Deleting a criterion conflicts only for Active Resources that would then match another
//!   definition (or none); `to_def` is `""` when none would match.
//! - `proposed: true` on PUT/PATCH leaves the active definition unchanged (versions are not modelled).
//! - PATCH merges `driver_inputs.values` as an RFC 7386 merge patch. `secret_refs: null` drops all refs,
//!   and `secrets: null` is ignored.
//! - `GET …/{defId}/resources` for an unknown definition is `200 []`, the only status the spec declares.
//!   Clearing the Active Resources of a soft-deleted definition removes it for good.
//! - An injected 502 or 504 has an HTML body (as from a proxy). Faults come before auth; faults
//!   after processing act on whatever answer the request got, error or not.
//! - A scripted fault's answer is whatever the test wrote (it may break the spec on purpose, as a
//!   proxy or a future API version would); every answer the sandbox makes itself follows the spec.

mod api;
mod clock;
mod error;
mod faults;
mod model;
mod persist;
mod record;
mod rng;
mod schema;
mod secrets;
mod server;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_behaviour;
#[cfg(test)]
mod tests_openapi;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use tokio::sync::oneshot;

pub use faults::{
    AfterFaults, Answer, FaultKind, ScriptedAction, ScriptedFault, parse_kinds, parse_methods,
};
pub use persist::PersistError;
pub use record::RecordedRequest;

/// How a sandbox serves: the command line's flags, as values.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Address to bind (`host:port`; a host name is resolved). `127.0.0.1:0` picks a free port.
    pub listen: String,
    /// The data file (`--data`): loaded on start if it exists, saved after every change.
    pub data: Option<PathBuf>,
    /// The only accepted bearer token (`--token`); `None` accepts any non-empty token.
    pub token: Option<String>,
    /// Probability in `0..=1` that an `/orgs` request gets a fault.
    pub fault_rate: f64,
    /// Delay added to every `/orgs` response.
    pub latency_ms: u64,
    /// Faults that act after a request is processed (`--after-*`).
    pub after: AfterFaults,
    /// Seed for ids and faults; `None` seeds from the clock.
    pub seed: Option<u64>,
    /// The primary secret store id that secret refs name.
    pub primary_store: String,
    /// Whether each `/orgs` request is logged as one line on stderr (the command line does).
    pub log_requests: bool,
    /// Whether every `/orgs` request is kept for [`Sandbox::requests`] (tests that check what a
    /// client sent turn it on; a long-running sandbox would otherwise only grow).
    pub record_requests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: "127.0.0.1:0".to_owned(),
            data: None,
            token: None,
            fault_rate: 0.0,
            latency_ms: 0,
            after: AfterFaults::default(),
            seed: None,
            primary_store: "sandbox-primary".to_owned(),
            log_requests: true,
            record_requests: false,
        }
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data file could not be loaded.
    #[error(transparent)]
    Data(#[from] PersistError),
    /// The listening address could not be bound or read.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address asked for.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server's thread or runtime could not be started.
    #[error("cannot start the sandbox's runtime")]
    Runtime(#[source] std::io::Error),
}

/// A running sandbox, serving on its own thread and Tokio runtime until [`Sandbox::stop`] or
/// drop.
///
/// Why its own runtime: a test that drives Terraform blocks its thread on a child process, and a
/// sandbox served by that thread's runtime would then stop answering.
pub struct Sandbox {
    /// Base URL with the trailing slash, e.g. `http://127.0.0.1:43127/`.
    url: String,
    /// The address served.
    address: SocketAddr,
    /// The token accepted, if only one is.
    token: Option<String>,
    /// The application state the server shares.
    app: server::App,
    /// The server's runtime, for the handle's calls into the state.
    runtime: tokio::runtime::Handle,
    /// Stops the server.
    shutdown: Option<oneshot::Sender<()>>,
    /// The server's thread; it answers how serving ended (the final save of `--data`).
    thread: Option<std::thread::JoinHandle<Result<(), std::io::Error>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Why not the token: it is a credential, even a sandbox's.
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Loads `--data` (if set), binds `options.listen` and serves on a new thread. Returns once
    /// the sandbox accepts connections.
    pub fn start(options: Options) -> Result<Sandbox, StartError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let token = options.token.clone();
        let thread = std::thread::Builder::new()
            .name("humanitec-sandbox".into())
            .spawn(move || {
                // Why built here: a runtime must not be dropped inside another one's async
                // context, which the caller's thread may be.
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("humanitec-sandbox")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(source) => {
                        let _ = ready_tx.send(Err(StartError::Runtime(source)));
                        return Ok(());
                    }
                };
                let handle = runtime.handle().clone();
                runtime.block_on(async move {
                    let (app, listener, address) = match bind(&options).await {
                        Ok(bound) => bound,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return Ok(());
                        }
                    };
                    let _ = ready_tx.send(Ok((app.clone(), address, handle)));
                    server::serve(app, listener, async move {
                        let _ = shutdown_rx.await;
                    })
                    .await
                })
            })
            .map_err(StartError::Runtime)?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(StartError::Runtime(std::io::Error::other(
                "the sandbox's thread ended before it served",
            )))
        });
        let (app, address, runtime) = match started {
            Ok(started) => started,
            Err(err) => {
                let _ = thread.join();
                return Err(err);
            }
        };
        Ok(Sandbox {
            url: format!("http://{address}/"),
            address,
            token,
            app,
            runtime,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The base URL with the trailing slash, e.g. `http://127.0.0.1:43127/`: a client's API prefix.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The only token accepted, when the options named one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Queues a fault for the requests it matches (see [`ScriptedFault`]); scripted faults are
    /// tried in the order queued, before the random ones.
    pub fn script(&self, fault: ScriptedFault) {
        let app = self.app.clone();
        self.on_runtime(async move { app.script(fault).await });
    }

    /// The `/orgs` requests received so far, oldest first (empty unless
    /// [`Options::record_requests`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let app = self.app.clone();
        self.on_runtime(async move { app.requests().await })
    }

    /// How many recorded requests had `method` and a path ending in `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|request| request.method == method && request.path.ends_with(path_suffix))
            .count()
    }

    /// The live definitions of `org_id` by id, each as `GET …/defs/{defId}` answers it.
    pub fn definitions(&self, org_id: &str) -> BTreeMap<String, Value> {
        let app = self.app.clone();
        let org_id = org_id.to_owned();
        self.on_runtime(async move { app.definitions(&org_id).await })
    }

    /// Creates a definition as `POST …/defs` with `body` would, without a request: not recorded,
    /// no faults. Answers the definition, or the API's error as `(status, body)`.
    pub fn create_definition(&self, org_id: &str, body: &Value) -> Result<Value, (u16, Value)> {
        let app = self.app.clone();
        let org_id = org_id.to_owned();
        let body = body.to_string().into_bytes();
        self.on_runtime(async move { app.create_definition(&org_id, &body).await })
    }

    /// Sets the simulated Active Resources of a definition (`[{app_id, env_id, res_id, …}]`; an
    /// empty array clears them), as `PUT /_sandbox/…/active-resources` does. Answers the API's
    /// error as `(status, body)`.
    pub fn set_active_resources(
        &self,
        org_id: &str,
        def_id: &str,
        resources: &Value,
    ) -> Result<(), (u16, Value)> {
        let app = self.app.clone();
        let (org_id, def_id) = (org_id.to_owned(), def_id.to_owned());
        let body = resources.to_string().into_bytes();
        self.on_runtime(async move { app.set_active_resources(&org_id, &def_id, &body).await })
    }

    /// Stops serving, waits for the requests in flight and saves `--data` one last time.
    pub fn stop(mut self) -> Result<(), std::io::Error> {
        self.shut_down()
    }

    /// Signals the server and waits for its thread.
    fn shut_down(&mut self) -> Result<(), std::io::Error> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the sandbox's thread panicked")),
            None => Ok(()),
        }
    }

    /// Runs `work` on the sandbox's runtime and waits for it, from any thread, in or out of an
    /// async context.
    fn on_runtime<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        // Why a panic is acceptable here: the runtime lives as long as the handle, so the answer
        // is missing only if the sandbox itself panicked, which is a bug in the sandbox.
        rx.recv()
            .expect("the sandbox's runtime answers while the handle lives")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// Builds the application (loading `--data`) and binds its listener.
async fn bind(
    options: &Options,
) -> Result<(server::App, tokio::net::TcpListener, SocketAddr), StartError> {
    let app = server::App::new(options).await?;
    let listen_error = |source| StartError::Listen {
        address: options.listen.clone(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    Ok((app, listener, address))
}
