//! The plugin protocol: how Terraform launches, talks to and stops the provider.
//!
//! Start-up order (every step is cheap, because Terraform starts the provider about four times
//! per apply): check the launch environment, set up AutoMTLS, bind a unix socket in a private
//! temporary directory, print the handshake line, then serve gRPC until `GRPCController.Shutdown`
//! or until the process that started the provider is gone (or, in `--debug` reattach mode, until
//! Ctrl-C).

mod convert;
mod grpc;
pub(crate) mod handshake;
mod listener;
pub(crate) mod logging;
mod proto;
pub(crate) mod tls;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::framework::{Provider, Server};

/// Who the provider is, for the parts of the protocol and the log that name it.
#[derive(Debug, Clone, Copy)]
pub struct ProviderIdentity {
    /// The binary's name, e.g. `terraform-provider-example`: the first log line names it, and
    /// the plugin socket's temporary directory starts with it.
    pub name: &'static str,
    /// The provider's version, logged at start-up.
    pub version: &'static str,
    /// The provider's addresses, as the keys of `TF_REATTACH_PROVIDERS` in `--debug` mode: a
    /// bare source address `namespace/name` means `registry.terraform.io/namespace/name` to
    /// Terraform and `registry.opentofu.org/namespace/name` to OpenTofu, and each CLI ignores
    /// the key it does not use.
    pub addresses: &'static [&'static str],
    /// Module paths (prefixes) of the provider's own code, whose log records keep their level.
    pub log_targets: &'static [&'static str],
    /// Module paths (prefixes) of dependencies whose records are worth a DEBUG log (a client
    /// library's requests, say); other crates' records are logged at TRACE.
    pub dependency_log_targets: &'static [&'static str],
}

/// terraform-plugin-go's message size limit, in both directions.
const MAX_MESSAGE_SIZE: usize = 256 << 20;
/// How long a graceful shutdown may take before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);
/// How often the provider checks that the process that started it is still there.
const PARENT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Why the plugin could not start serving.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The launch environment was not Terraform's.
    #[error(transparent)]
    Handshake(#[from] handshake::HandshakeError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The socket could not be created.
    #[error("could not create the plugin socket")]
    Socket(#[source] std::io::Error),
    /// The handshake line could not be written.
    #[error("could not write the handshake line to stdout")]
    Stdout(#[source] std::io::Error),
    /// The tokio runtime could not start.
    #[error("could not start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
}

/// Runs the plugin: the whole of a provider binary's `main`.
///
/// Terraform launches the binary with its handshake environment; `debug` (a person started the
/// binary with `--debug`) serves in reattach mode instead and prints the `TF_REATTACH_PROVIDERS`
/// value to use. `provider` is called once the launch is known to be Terraform's.
pub fn run(
    identity: &ProviderIdentity,
    provider: impl FnOnce() -> Arc<dyn Provider>,
    debug: bool,
) -> ExitCode {
    logging::init(identity);
    // Why a log line: tfplugin5 has no field in which a provider reports its own version
    // (`Configure` carries only Terraform's), so the version reaches Terraform's log this way.
    log::debug!("{} {} starting", identity.name, identity.version);
    // Why this early: the later the parent is looked up, the likelier a parent that is already
    // gone (and the provider re-parented) is taken for the one to watch.
    let parent = std::os::unix::process::parent_id();
    let launch = if debug {
        None
    } else {
        match handshake::check(|key| std::env::var(key).ok()) {
            Ok(launch) => Some(launch),
            Err(e) => {
                // Why eprintln: a person started the binary by hand and reads this on the terminal.
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    };
    // Why one thread: the provider's work per RPC is a fraction of a millisecond and its waits
    // are I/O (Terraform's socket, the Humanitec API, the cluster), which one thread interleaves.
    // Measured against two worker threads: the threads' creation was 3 % of the start's CPU,
    // the work-stealing scheduler's wake-ups between them about a tenth of the provider's CPU in
    // an apply, and its statistics call libm's `pow` at the first task, mapping libm pages that
    // nothing else needs. Blocking calls still go to tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime);
    let result = runtime.and_then(|rt| rt.block_on(serve(identity, provider(), launch, parent)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = crate::error_chain(&e);
            log::error!("{message}");
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until shutdown. `launch` is `None` in debug (reattach) mode; `parent` is the pid of the
/// process that started the provider.
async fn serve(
    identity: &ProviderIdentity,
    provider: Arc<dyn Provider>,
    launch: Option<handshake::Launch>,
    parent: u32,
) -> Result<(), ServeError> {
    let tls = match launch.as_ref().and_then(|l| l.client_cert.as_deref()) {
        Some(pem) => Some(tls::server_config(pem)?),
        None => None,
    };
    let mut socket = listener::PluginSocket::bind(identity.name).map_err(ServeError::Socket)?;
    let shutdown = Arc::new(Notify::new());

    // Why not in debug mode: the person who started the provider for a debugger stops it, and
    // the shell it was started from may well exit first.
    if launch.is_some() {
        tokio::spawn(watch_parent(parent, Arc::clone(&shutdown)));
    }

    let server = Arc::new(Server::new(provider));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let provider_service =
        proto::tfplugin5::provider_server::ProviderServer::new(grpc::ProviderService::new(server))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let controller = proto::plugin::grpc_controller_server::GrpcControllerServer::new(
        grpc::Controller::new(Arc::clone(&shutdown)),
    );

    let incoming = socket
        .incoming(tls.as_ref().map(|t| Arc::clone(&t.config)))
        .map_err(ServeError::Socket)?;
    announce(identity, &socket, tls.as_ref(), launch.is_none())?;

    let stop_signal = {
        let shutdown = Arc::clone(&shutdown);
        let debug = launch.is_none();
        async move {
            if debug {
                tokio::select! {
                    () = shutdown.notified() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            } else {
                shutdown.notified().await;
            }
        }
    };
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        stop_signal.await;
        let _ = stopped_tx.send(());
    };
    let serving = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(controller)
        .add_service(provider_service)
        .serve_with_incoming_shutdown(incoming, signal);
    // Why a grace period: a graceful shutdown waits for Terraform to close its connection, but
    // Terraform waits for the process to exit; exit shortly after the Shutdown answer is sent.
    let grace = async move {
        if stopped_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = serving => result.map_err(ServeError::Grpc),
        () = grace => Ok(()),
    };
    drop(socket);
    log::debug!("plugin server stopped");
    result
}

/// Signals `shutdown`, as `GRPCController.Shutdown` does, once the process that started the
/// provider (pid `parent`) is gone.
///
/// Why: Terraform stops its providers with `GRPCController.Shutdown`. When Terraform itself is
/// killed (SIGKILL, the OOM killer, a CI job cancelled) nobody sends it, go-plugin has no
/// heartbeat, and the provider would run on, re-parented to init, indefinitely.
///
/// Why polling the parent pid rather than `prctl(PR_SET_PDEATHSIG)`: the crate forbids unsafe code
/// and none of its dependencies wraps `prctl`; the death signal exists only on Linux; and it fires
/// when the *thread* that started the process exits, which in a Go program such as Terraform can
/// happen while Terraform runs on. A process whose parent exits is re-parented (to init or a
/// subreaper), so its parent pid changes, on every Unix. A parent that exited before the provider
/// looked its pid up is not noticed; that is a Terraform killed while the provider was starting.
async fn watch_parent(parent: u32, shutdown: Arc<Notify>) {
    let mut interval = tokio::time::interval(PARENT_CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = std::os::unix::process::parent_id();
        if now != parent {
            log::warn!(
                "the process that started the provider (pid {parent}) has exited without stopping it; shutting down"
            );
            shutdown.notify_one();
            return;
        }
    }
}

/// Writes the handshake line (or, in debug mode, the reattach instructions) to stdout.
fn announce(
    identity: &ProviderIdentity,
    socket: &listener::PluginSocket,
    tls: Option<&tls::PluginTls>,
    debug: bool,
) -> Result<(), ServeError> {
    let mut stdout = std::io::stdout().lock();
    let text = if debug {
        let entry = serde_json::json!({
            "Protocol": "grpc",
            "ProtocolVersion": handshake::PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": {"Network": "unix", "String": socket.path().display().to_string()},
        });
        let reattach: serde_json::Map<String, serde_json::Value> = identity
            .addresses
            .iter()
            .map(|address| (address.to_string(), entry.clone()))
            .collect();
        let reattach = serde_json::Value::Object(reattach);
        format!(
            "Provider started. To attach Terraform or OpenTofu CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n\n"
        )
    } else {
        handshake::line(socket.path(), tls.map(|t| t.server_cert_der.as_slice()))
    };
    stdout
        .write_all(text.as_bytes())
        .map_err(ServeError::Stdout)?;
    stdout.flush().map_err(ServeError::Stdout)
}
