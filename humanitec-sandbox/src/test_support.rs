//! Test helpers: start the sandbox in-process on 127.0.0.1:0, call it over real HTTP, stop it, and
//! make scratch directories for `--data` files.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Options;
use crate::server;

/// The token test servers accept.
pub(crate) const TOKEN: &str = "test-token";

/// A test configuration: fixed token and seed, no faults.
pub(crate) fn config() -> Options {
    Options {
        token: Some(TOKEN.to_owned()),
        seed: Some(42),
        ..Options::default()
    }
}

/// A running in-process sandbox.
pub(crate) struct TestServer {
    /// Base URL without the trailing slash, e.g. `http://127.0.0.1:43127`.
    pub(crate) base: String,
    /// HTTP client.
    client: reqwest::Client,
    /// Stops the server.
    shutdown: Option<oneshot::Sender<()>>,
    /// The server task.
    task: Option<JoinHandle<Result<(), std::io::Error>>>,
}

/// A response, read fully.
#[derive(Debug)]
pub(crate) struct Resp {
    /// Status code.
    pub(crate) status: u16,
    /// Headers.
    pub(crate) headers: reqwest::header::HeaderMap,
    /// Raw body text.
    pub(crate) text: String,
    /// The body as JSON, if it parses.
    pub(crate) json: Option<Value>,
}

impl Resp {
    /// The JSON body or `null`.
    pub(crate) fn body(&self) -> Value {
        self.json.clone().unwrap_or(Value::Null)
    }

    /// A header value as text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

impl TestServer {
    /// Starts a sandbox with `config` (its `listen` is ignored: always 127.0.0.1:0).
    pub(crate) async fn start(config: Options) -> TestServer {
        let app = server::App::new(&config).await.expect("app starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(app, listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it (and its final save).
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ends cleanly");
        }
    }

    /// A request with the test token.
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        self.call_raw(method, path, Some(&auth), body.map(Value::to_string))
            .await
    }

    /// A request with the test token that may get no answer at all (a dropped connection is `Err`).
    pub(crate) async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).ok();
        Ok(Resp {
            status,
            headers,
            text,
            json,
        })
    }

    /// A request with any Authorization header (or none) and any raw body.
    pub(crate) async fn call_raw(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = authorization {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let json = serde_json::from_str(&text).ok();
        Resp {
            status,
            headers,
            text,
            json,
        }
    }
}

/// A fresh, empty scratch directory for one test.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "humanitec-sandbox-test-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
