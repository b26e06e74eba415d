//! A fault-injecting HTTP proxy between the provider and a cluster's API server, for the tests
//! of what direct mode does when a request goes wrong at the moment that matters: a connection
//! reset before a request is processed, an answer lost after it was processed, a watch cut, an
//! outage.
//!
//! The provider speaks plain HTTP to the proxy (a kubeconfig whose server is
//! `http://127.0.0.1:<port>`); the proxy speaks HTTPS to the API server. Each request gets a
//! connection of its own upstream, sent with `Connection: close`, so the proxy never parses a
//! response: it copies bytes until the server closes. Pods in the cluster talk to the API
//! server directly, so the faults touch the provider only.
//!
//! The proxy also keeps the `Warning` headers of the answers: the API server's own field
//! validation warns of an unknown or duplicate field in what the provider sends, where the
//! client would let it pass unseen.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What happens to a request a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The connection is reset before the request reaches the server.
    ResetBefore,
    /// The server processes the request; its answer is thrown away and the connection closed.
    LoseAnswer,
}

/// A fault for the next `times` requests with this method whose path (with its query)
/// contains `path`.
struct Rule {
    method: String,
    path: String,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    outage_until: Mutex<Option<Instant>>,
    /// Every request seen, as `METHOD path`, with the fault applied to it if any.
    log: Mutex<Vec<String>>,
    /// Every `Warning` header of an answer, as `METHOD path: warning`.
    warnings: Mutex<Vec<String>>,
    /// Bumped to end every streaming answer in flight.
    cut: Mutex<Option<tokio::sync::watch::Sender<u64>>>,
    /// Connections refused during outages, and streams cut.
    refused: std::sync::atomic::AtomicUsize,
    cut_streams: std::sync::atomic::AtomicUsize,
}

/// A running proxy; dropping it stops it.
pub(crate) struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 to the API server at `upstream` (`https://127.0.0.1:port`),
    /// whose certificate `ca_pem` signs.
    pub(crate) fn start(upstream: &str, ca_pem: &str) -> Self {
        let address: SocketAddr = upstream
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .expect("the API server's address is 127.0.0.1:port");
        let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the CA certificate");
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root).expect("a usable CA certificate");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(store)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let shared = Arc::new(Shared::default());
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the proxy");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let port = listener.local_addr().expect("address").port();
                let (cut, _) = tokio::sync::watch::channel(0u64);
                *serving.cut.lock().unwrap() = Some(cut);
                url_tx
                    .send(format!("http://127.0.0.1:{port}"))
                    .expect("url");
                tokio::select! {
                    _ = stop_rx => {}
                    () = accept(listener, serving, connector, address) => {}
                }
            });
        });
        let url = url_rx.recv().expect("the proxy started");
        FaultProxy {
            url,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The proxy's URL, for a kubeconfig's `server`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Applies `fault` to the next `times` requests with `method` whose path contains `path`.
    pub(crate) fn inject(&self, method: &str, path: &str, fault: Fault, times: usize) {
        self.shared.rules.lock().unwrap().push(Rule {
            method: method.into(),
            path: path.into(),
            fault,
            times,
        });
    }

    /// Forgets every rule not used up yet.
    pub(crate) fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Refuses every connection for `duration`, and ends the streams in flight.
    pub(crate) fn outage(&self, duration: Duration) {
        *self.shared.outage_until.lock().unwrap() = Some(Instant::now() + duration);
        self.cut_streams();
    }

    /// Ends every streaming answer (watches, log streams) in flight.
    pub(crate) fn cut_streams(&self) {
        if let Some(cut) = self.shared.cut.lock().unwrap().as_ref() {
            cut.send_modify(|generation| *generation += 1);
        }
    }

    /// Every request seen so far, as `METHOD path`, followed by ` [fault]` when one was applied.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Every `Warning` header the API server answered with, as `METHOD path: warning`.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.shared.warnings.lock().unwrap().clone()
    }

    /// How many connections were refused during outages.
    pub(crate) fn refused(&self) -> usize {
        self.shared
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many streaming answers were cut.
    pub(crate) fn streams_cut(&self) -> usize {
        self.shared
            .cut_streams
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many faults were applied.
    pub(crate) fn faults_applied(&self) -> usize {
        self.requests().iter().filter(|r| r.ends_with(']')).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    connector: tokio_rustls::TlsConnector,
    upstream: SocketAddr,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let down = shared
            .outage_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until);
        if down {
            let _ = client.set_zero_linger();
            shared
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        let (shared, connector) = (Arc::clone(&shared), connector.clone());
        tokio::spawn(async move {
            let _ = forward(client, shared, connector, upstream).await;
        });
    }
}

/// Serves one request of `client`, then closes the connection.
async fn forward(
    client: TcpStream,
    shared: Arc<Shared>,
    connector: tokio_rustls::TlsConnector,
    upstream: SocketAddr,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.trim_end().to_string();
            head.extend_from_slice(line.as_bytes());
            continue;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
        // Why: one request per upstream connection, so the answer ends when the server closes.
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; content_length];
    client.read_exact(&mut body).await?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let fault = {
        let mut rules = shared.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && path.contains(&r.path));
        rule.map(|r| {
            r.times -= 1;
            r.fault
        })
    };
    let entry = match fault {
        Some(fault) => format!("{method} {path} [{fault:?}]"),
        None => format!("{method} {path}"),
    };
    shared.log.lock().unwrap().push(entry);
    if fault == Some(Fault::ResetBefore) {
        let _ = client.get_ref().set_zero_linger();
        return Ok(());
    }
    let tcp = TcpStream::connect(upstream).await?;
    let name = ServerName::IpAddress(upstream.ip().into());
    let mut server = connector.connect(name, tcp).await?;
    server.write_all(&head).await?;
    server.write_all(&body).await?;
    server.flush().await?;
    if fault == Some(Fault::LoseAnswer) {
        let mut answer = Vec::new();
        let _ = server.read_to_end(&mut answer).await;
        let _ = client.get_ref().set_zero_linger();
        return Ok(());
    }
    let mut cut = match shared.cut.lock().unwrap().as_ref() {
        Some(cut) => cut.subscribe(),
        None => return Ok(()),
    };
    let mut client = client.into_inner();
    let mut buffer = vec![0u8; 16 * 1024];
    // The answer's head, until it is whole and its warnings kept.
    let mut answer_head = Some(Vec::new());
    loop {
        tokio::select! {
            read = server.read(&mut buffer) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(head) = answer_head.as_mut() {
                    head.extend_from_slice(&buffer[..n]);
                    if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        keep_warnings(&shared, &method, &path, &head[..end]);
                        answer_head = None;
                    } else if head.len() > 64 * 1024 {
                        answer_head = None;
                    }
                }
                client.write_all(&buffer[..n]).await?;
            }
            _ = cut.changed() => {
                shared.cut_streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = client.set_zero_linger();
                return Ok(());
            }
        }
    }
    client.shutdown().await
}

/// Keeps the `Warning` headers of an answer's `head` (status line and headers).
fn keep_warnings(shared: &Shared, method: &str, path: &str, head: &[u8]) {
    let head = String::from_utf8_lossy(head);
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("warning") {
            let warning = format!("{method} {path}: {}", value.trim());
            shared.warnings.lock().unwrap().push(warning);
        }
    }
}
