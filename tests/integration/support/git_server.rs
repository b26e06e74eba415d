//! A git server for tests: serves the repositories under one directory over git's smart HTTP
//! protocol on `127.0.0.1:<free port>` (or another address of this machine), behind HTTP basic
//! auth, by running Debian's
//! `git http-backend` as a CGI program for each request. It counts the requests it served and
//! those it refused, so tests can assert that credentials were really used; and it creates
//! repositories with one commit on `main` and a tag `v1`.
//!
//! [`GitServer::start_tls_on`] serves the same over HTTPS, with a certificate for its address
//! signed by a CA of its own (a private CA, as enterprises run their git servers).
//!
//! It runs on its own thread and Tokio runtime, so synchronous and asynchronous tests can use it
//! alike; dropping the handle stops it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio::io::AsyncWriteExt;

/// The realm of the `WWW-Authenticate` challenge.
const REALM: &str = "git";

/// The largest request body accepted (a fetch negotiation is a few kilobytes).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A running git server; dropping it stops the server.
pub(crate) struct GitServer {
    root: PathBuf,
    host: String,
    port: u16,
    /// The CA certificate (PEM) of an HTTPS server; `None` for plain HTTP.
    ca_pem: Option<String>,
    backend: Arc<Backend>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What every request handler shares.
struct Backend {
    root: PathBuf,
    username: String,
    password: String,
    served: AtomicU64,
    refused: AtomicU64,
}

impl GitServer {
    /// Serves the repositories under `repo_dir` (each a directory, bare or with a work tree) to
    /// clients that authenticate as `username` with `password`.
    pub(crate) fn start(repo_dir: &Path, username: &str, password: &str) -> Self {
        Self::start_with("127.0.0.1", repo_dir, username, password, None)
    }

    /// Like `start`, listening on `host`, an address of this machine (where a cluster's pods
    /// reach it).
    pub(crate) fn start_on(host: &str, repo_dir: &Path, username: &str, password: &str) -> Self {
        Self::start_with(host, repo_dir, username, password, None)
    }

    /// Like [`GitServer::start_on`], over HTTPS with a certificate for `host` (an IP address)
    /// that a CA of its own signed ([`GitServer::ca_pem`]).
    pub(crate) fn start_tls_on(
        host: &str,
        repo_dir: &Path,
        username: &str,
        password: &str,
    ) -> Self {
        let address = host
            .parse()
            .expect("the git server's host is an IP address");
        Self::start_with(
            host,
            repo_dir,
            username,
            password,
            Some(private_ca(address)),
        )
    }

    fn start_with(
        host: &str,
        repo_dir: &Path,
        username: &str,
        password: &str,
        tls: Option<(String, Arc<rustls::ServerConfig>)>,
    ) -> Self {
        let listener = std::net::TcpListener::bind((host, 0)).expect("bind the git server's port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener
            .local_addr()
            .expect("the git server's address")
            .port();
        let backend = Arc::new(Backend {
            root: repo_dir.to_path_buf(),
            username: username.to_string(),
            password: password.to_string(),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the git server's runtime");
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let (ca_pem, tls_config) = match tls {
            Some((ca, config)) => (Some(ca), Some(config)),
            None => (None, None),
        };
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&backend));
        let thread = std::thread::Builder::new()
            .name("git-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register the git server's listener");
                    // Why not a graceful shutdown: a client that keeps its connection open
                    // would hold the test's drop; the runtime is dropped and the
                    // connections with it.
                    let served = async move {
                        match tls_config {
                            Some(config) => {
                                let tls = TlsListener {
                                    tcp: listener,
                                    acceptor: tokio_rustls::TlsAcceptor::from(config),
                                };
                                axum::serve(tls, app).await
                            }
                            None => axum::serve(listener, app).await,
                        }
                    };
                    tokio::select! {
                        served = served => {
                            if let Err(e) = served {
                                eprintln!("git server stopped: {e}");
                            }
                        }
                        _ = stop => {}
                    }
                });
            })
            .expect("start the git server's thread");
        Self {
            root: repo_dir.to_path_buf(),
            host: host.to_string(),
            port,
            ca_pem,
            backend,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The clone URL of a repository: `http://<host>:<port>/<repo_name>` (`https://` when it
    /// serves HTTPS).
    pub(crate) fn url(&self, repo_name: &str) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}:{}/{repo_name}", self.host, self.port)
    }

    /// The certificate (PEM) of the CA that signed an HTTPS server's certificate.
    pub(crate) fn ca_pem(&self) -> &str {
        self.ca_pem.as_deref().expect("an HTTPS git server")
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Requests answered with the right credentials (handed to `git http-backend`).
    pub(crate) fn served(&self) -> u64 {
        self.backend.served.load(Ordering::SeqCst)
    }

    /// Requests refused with 401 (no credentials, or wrong ones).
    pub(crate) fn refused(&self) -> u64 {
        self.backend.refused.load(Ordering::SeqCst)
    }

    /// Creates the repository `repo_name` under the served directory from `files` (relative
    /// path to content): one commit on `main` with a fixed author and date, and the tag `v1` on
    /// it. Fetching any reachable commit by SHA is allowed. Returns the commit's SHA.
    pub(crate) fn create_repo(&self, repo_name: &str, files: &BTreeMap<&str, &str>) -> String {
        let dir = self.root.join(repo_name);
        std::fs::create_dir_all(&dir).expect("create the repository directory");
        git(&dir, &["init", "-q", "-b", "main"]);
        for (path, content) in files {
            let file = dir.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).expect("create a directory of the repository");
            }
            std::fs::write(&file, content).expect("write a file of the repository");
        }
        // Why both: protocol v0 clients may only want advertised tips unless the server allows
        // any reachable commit, and `git fetch origin <sha>` of an older commit needs that.
        git(&dir, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        git(
            &dir,
            &["config", "uploadpack.allowReachableSHA1InWant", "true"],
        );
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", "Initial commit"]);
        git(&dir, &["tag", "v1"]);
        git(&dir, &["rev-parse", "HEAD"]).trim().to_string()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A CA of the server's own and a rustls configuration with a certificate for `address` that
/// it signed: the CA's PEM and the configuration.
fn private_ca(address: std::net::IpAddr) -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.distinguished_name
        .push(DnType::CommonName, "Example Corp Private Git CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("parameters");
    params.subject_alt_names.push(SanType::IpAddress(address));
    params
        .distinguished_name
        .push(DnType::CommonName, "git.example.internal");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("the server certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![
                cert.der().clone(),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("the TLS configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_pem, Arc::new(config))
}

/// A listener that completes the TLS handshake of each connection before handing it over.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            // Why go on after a failed handshake: a client that does not trust the CA closes
            // the connection, and the next client must still be served.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Runs `git` in `dir` with a fixed identity and without the machine's or user's configuration;
/// panics unless it succeeds, returns its standard output.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(isolated_git_env())
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The environment that keeps git away from the machine's and the user's configuration (a
/// credential helper or signing setting there would change what a test sees).
pub(crate) fn isolated_git_env() -> [(&'static str, &'static str); 2] {
    [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ]
}

/// One request: the credentials, then the CGI program.
async fn handle(State(backend): State<Arc<Backend>>, request: Request) -> Response {
    if !backend.authorized(request.headers()) {
        backend.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\""))],
            "authentication required\n",
        )
            .into_response();
    }
    backend.served.fetch_add(1, Ordering::SeqCst);
    match backend.cgi(request).await {
        Ok(response) => response,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

impl Backend {
    /// Whether the request carries `Authorization: Basic` with the expected username and
    /// password.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .is_ok_and(|decoded| {
                decoded == format!("{}:{}", self.username, self.password).into_bytes()
            })
    }

    /// Runs `git http-backend` for the request (CGI/1.1: the request in the environment, its
    /// body on standard input) and turns its output into the response.
    async fn cgi(&self, request: Request) -> Result<Response, String> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|e| format!("reading the request body: {e}"))?;
        let header_text =
            |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let mut command = tokio::process::Command::new("git");
        command
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(isolated_git_env())
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", parts.method.as_str())
            // Why not decoded: the tests' repository names need no percent-encoding.
            .env("PATH_INFO", parts.uri.path())
            .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
            .env(
                "CONTENT_TYPE",
                header_text(header::CONTENT_TYPE).unwrap_or(""),
            )
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", &self.username)
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Why: git sends large negotiations gzipped, and asks for protocol v2 in `Git-Protocol`;
        // CGI passes request headers as `HTTP_*`, which http-backend reads for both.
        if let Some(encoding) = header_text(header::CONTENT_ENCODING) {
            command.env("HTTP_CONTENT_ENCODING", encoding);
        }
        if let Some(protocol) = parts
            .headers
            .get("git-protocol")
            .and_then(|v| v.to_str().ok())
        {
            command.env("HTTP_GIT_PROTOCOL", protocol);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting git http-backend: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin for git http-backend")?;
        // Why a task: the backend may write before it has read all of its input.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| format!("running git http-backend: {e}"))?;
        let _ = writer.await;
        if output.stdout.is_empty() && !output.status.success() {
            return Err(format!(
                "git http-backend failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        cgi_response(&output.stdout)
    }
}

/// A CGI program's output as a response: header lines up to an empty line (a `Status:` line
/// gives the status, 200 without one), then the body.
fn cgi_response(output: &[u8]) -> Result<Response, String> {
    let (head, body) = split_head(output).ok_or("git http-backend wrote no header block")?;
    let head = std::str::from_utf8(head).map_err(|_| "CGI headers are not UTF-8")?;
    let mut status = StatusCode::OK;
    let mut builder = Response::builder();
    for line in head.lines().map(|l| l.trim_end_matches('\r')) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a CGI header line: {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| format!("not a CGI status: {value:?}"))?;
        } else {
            builder = builder.header(name, value);
        }
    }
    builder
        .status(status)
        .body(Body::from(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("building the response: {e}"))
}

/// Splits CGI output at the first empty line (`\r\n\r\n` or `\n\n`, whichever comes first).
fn split_head(output: &[u8]) -> Option<(&[u8], &[u8])> {
    let find = |needle: &[u8]| {
        output
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|at| (at, at + needle.len()))
    };
    let (end, start) = match (find(b"\r\n\r\n"), find(b"\n\n")) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((&output[..end], &output[start..]))
}
