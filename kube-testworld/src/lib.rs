//! `kube-testworld`: a strict local Kubernetes stand-in for the provider's tests. Test support,
//! not product; see `README.md` for what it implements and where it differs from a real cluster.
//!
//! [`TestWorld::start`] runs an API server on 127.0.0.1 (HTTPS with a CA generated per start, or
//! plain HTTP) on its own thread and runtime, writes a kubeconfig for an admin identity, and
//! stops when the handle is dropped. It can be started from synchronous and asynchronous tests
//! alike.
//!
//! Modules: `server` (HTTP, routing, options), `world` (the store and its verbs, garbage
//! collection), `watch`, `controllers` (scheduler, Job controller, Events), `schema` (the vendored v1.31 schemas and their validator), `kinds`
//! (per-kind defaults and rules), `patch`, `managed` (field ownership,
//! server-side apply), `selector`, `auth` (tokens, RBAC, access reviews),
//! `resources` (served types, discovery), `table` (kubectl's server-side printing), `status`
//! (API errors), `tls`, `clock`.

mod auth;
mod clock;
mod controllers;
mod kinds;
mod kubelet;
mod managed;
mod patch;
mod resources;
mod schema;
mod selector;
mod server;
mod status;
mod table;
mod tls;
mod watch;
mod world;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

/// Why the test world could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener could not be bound on 127.0.0.1.
    #[error("could not listen on 127.0.0.1:{port}")]
    Bind {
        /// The port asked for (0: any).
        port: u16,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The CA or the serving certificate could not be made.
    #[error("could not set up TLS")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The kubeconfig or its directory could not be written.
    #[error("could not write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The kubelet was asked for, but podman does not run.
    #[error(
        "podman is not usable ({0}); install it and build the images with scripts/build-test-images.sh"
    )]
    Podman(String),
    /// The runtime thread could not be started.
    #[error("could not start the test world's runtime")]
    Runtime(#[source] std::io::Error),
}

/// How to start a test world.
#[derive(Debug, Clone)]
pub struct Options {
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write `kubeconfig` and `ca.crt`; `None` makes a temporary directory that is
    /// removed when the world stops.
    pub dir: Option<PathBuf>,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK event.
    pub bookmark_interval: Duration,
    /// Run the kubelet: bound pods' containers really run under podman. Off, pods stay
    /// Pending on the node (tests may then write pod status themselves).
    pub kubelet: bool,
    /// The containers.conf podman runs with (`CONTAINERS_CONF`); `None` keeps podman's own.
    pub containers_conf: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            plain_http: false,
            port: 0,
            dir: None,
            bookmark_interval: Duration::from_secs(5),
            kubelet: false,
            containers_conf: std::env::var_os("CONTAINERS_CONF").map(PathBuf::from),
        }
    }
}

/// A running test world. Dropping it stops the server.
pub struct TestWorld {
    world: Arc<world::World>,
    tokens: Arc<auth::Tokens>,
    url: String,
    admin_token: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    remove_dir: bool,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    kubelet: Option<Arc<kubelet::Kubelet>>,
}

impl TestWorld {
    /// Starts a world: binds, generates the CA, writes the kubeconfig, serves on its own thread.
    pub fn start(options: Options) -> Result<Self, StartError> {
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", options.port)).map_err(|source| {
                StartError::Bind {
                    port: options.port,
                    source,
                }
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Bind {
                port: options.port,
                source,
            })?;
        let address = std_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                port: options.port,
                source,
            })?;
        let pki = tls::generate().map_err(|e| StartError::Tls(Box::new(e)))?;
        let scheme = if options.plain_http { "http" } else { "https" };
        let url = format!("{scheme}://{address}");
        let (dir, remove_dir) = match &options.dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "kube-testworld-{}-{}",
                    std::process::id(),
                    clock::name_suffix()
                )),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Write {
            path: dir.clone(),
            source,
        })?;
        let admin_token = auth::new_token();
        let tokens = Arc::new(auth::Tokens::default());
        tokens.add(admin_token.clone(), auth::User::admin());
        let kubeconfig = dir.join("kubeconfig");
        let written = write_file(&dir.join("ca.crt"), &pki.ca_pem).and_then(|()| {
            write_file(
                &kubeconfig,
                &kubeconfig_text(&url, &pki.ca_pem, &admin_token, options.plain_http),
            )
        });
        if let Err(e) = written {
            if remove_dir {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
        if options.kubelet {
            check_podman(options.containers_conf.as_deref())?;
        }
        let world = Arc::new(world::World::new(pki.ca_pem.clone()));
        let kubelet = options.kubelet.then(|| {
            world.set_graceful_pods();
            Arc::new(kubelet::Kubelet::new(
                Arc::clone(&world),
                Arc::clone(&tokens),
                dir.join("kubelet"),
                address.port(),
                options.containers_conf.clone(),
            ))
        });
        let server = Arc::new(server::Server {
            world: Arc::clone(&world),
            tokens: Arc::clone(&tokens),
            address: address.to_string(),
            bookmark_interval: options.bookmark_interval,
            plain_http: options.plain_http,
            kubelet: kubelet.clone(),
        });
        let kubelet_handle = kubelet.clone();
        let tls_config = (!options.plain_http).then(|| Arc::clone(&pki.server));
        let control_plane = Arc::clone(&world);
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-testworld")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let thread = std::thread::Builder::new()
            .name("kube-testworld".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(controllers::run(control_plane));
                    if let Some(kubelet) = kubelet {
                        tokio::spawn(kubelet.run());
                    }
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(listener) => {
                            server::serve(listener, tls_config, server, shutdown_rx).await
                        }
                        Err(e) => log::error!("could not register the listener: {e}"),
                    }
                });
                // Why: open watch streams would keep the runtime alive; they are cut at once.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(StartError::Runtime)?;
        log::info!(
            "kube-testworld serving on {url}, kubeconfig {}",
            kubeconfig.display()
        );
        Ok(TestWorld {
            world,
            tokens,
            url,
            admin_token,
            kubeconfig,
            dir,
            remove_dir,
            shutdown,
            thread: Some(thread),
            kubelet: kubelet_handle,
        })
    }

    /// The kubeconfig for the admin identity.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory holding `kubeconfig` and `ca.crt`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `https://127.0.0.1:<port>` (or `http://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM) the server's certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.world.ca_pem
    }

    /// The admin's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A new bearer token for a service account (valid while the account exists).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let token = auth::new_token();
        self.tokens
            .add(token.clone(), auth::User::service_account(namespace, name));
        token
    }

    /// Every `Warning` the server has sent, in order (tests assert there were none).
    pub fn warnings(&self) -> Vec<String> {
        self.world.warnings()
    }

    /// Forgets the change history: every resourceVersion handed out so far is too old, and a
    /// watch from one gets `410 Gone`.
    pub fn compact(&self) {
        self.world.compact();
    }

    /// How many watch requests were answered with `410 Expired` so far.
    pub fn expired_watches(&self) -> u64 {
        self.world.expired_watches()
    }

    /// Ends every open watch stream, as an API server restart would.
    pub fn disconnect_watches(&self) {
        self.world.disconnect_watches();
    }

    /// Every version of every object the world ever stored, oldest first: each create, update,
    /// patch and status write, and the final state of each deleted object (with the deletion's
    /// resourceVersion). Unlike the watch history it is never compacted, so tests can check
    /// everything the world held, not only what remains.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        self.world.audit()
    }

    /// The log text (without timestamps) of every container the kubelet ever ran, deleted pods'
    /// included, one container after the other; empty without a kubelet.
    pub fn container_logs(&self) -> String {
        self.kubelet
            .as_ref()
            .map(|k| k.all_logs())
            .unwrap_or_default()
    }

    /// The stored object (`plural` as in the URL: `configmaps`, `jobs`), if it exists.
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let r = resources::RESOURCES
            .iter()
            .position(|r| r.plural == plural)?;
        self.world.get(r, namespace, name).ok()
    }
}

impl Drop for TestWorld {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Why: podman containers outlive the runtime that started them.
        if let Some(kubelet) = &self.kubelet {
            kubelet.remove_all_containers();
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Checks that `podman info` runs with the given containers.conf.
fn check_podman(conf: Option<&Path>) -> Result<(), StartError> {
    let mut cmd = std::process::Command::new("podman");
    cmd.args(["info", "--format", "{{.Host.OCIRuntime.Name}}"]);
    if let Some(conf) = conf {
        cmd.env("CONTAINERS_CONF", conf);
    }
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(StartError::Podman(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )),
        Err(e) => Err(StartError::Podman(e.to_string())),
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), StartError> {
    std::fs::write(path, text).map_err(|source| StartError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The kubeconfig for the admin identity, context `kube-testworld`, namespace `default`.
fn kubeconfig_text(url: &str, ca_pem: &str, token: &str, plain_http: bool) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let cluster = if plain_http {
        format!("    server: {url}\n")
    } else {
        format!("    server: {url}\n    certificate-authority-data: {ca}\n")
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-testworld\n  cluster:\n{cluster}\
contexts:\n- name: kube-testworld\n  context:\n    cluster: kube-testworld\n    user: admin\n    namespace: default\n\
current-context: kube-testworld\nusers:\n- name: admin\n  user:\n    token: {token}\npreferences: {{}}\n"
    )
}
