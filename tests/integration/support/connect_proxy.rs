//! An HTTPS proxy for tests: answers `CONNECT host:port` on an address of this machine by
//! opening a tunnel to a port of that same address (nothing else is reachable here) and counts
//! the tunnels it opened, so a test can tell whether a client went through it.
//!
//! It runs on its own thread and Tokio runtime; dropping the handle stops it.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A running proxy.
pub(crate) struct ConnectProxy {
    host: String,
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConnectProxy {
    /// Starts the proxy on a free port of `host`, an address of this machine (where a
    /// cluster's pods reach it).
    pub(crate) fn start_on(host: &str) -> Self {
        let listener = std::net::TcpListener::bind((host, 0)).expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("the proxy's address").port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&targets);
        let own = host.to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("register the listener");
                let serve = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(tunnel(client, own.clone(), Arc::clone(&seen)));
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        ConnectProxy {
            host: host.to_string(),
            port,
            targets,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The proxy's URL, for `HTTPS_PROXY`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The `host:port` of every tunnel asked for so far.
    pub(crate) fn targets(&self) -> Vec<String> {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one `CONNECT` request, opens the tunnel and copies bytes both ways until either side
/// closes.
async fn tunnel(client: tokio::net::TcpStream, host: String, seen: Arc<Mutex<Vec<String>>>) {
    let mut client = BufReader::new(client);
    let mut request = String::new();
    if client.read_line(&mut request).await.is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match client.read_line(&mut header).await {
            Ok(0) | Err(_) => return,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let local = target.starts_with(&format!("{host}:"));
    if method != "CONNECT" || !local {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(target.to_string());
    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    if client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
