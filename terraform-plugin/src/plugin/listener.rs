//! The plugin's unix socket and the stream of (optionally TLS-wrapped) connections on it.
//!
//! The socket lives in a fresh directory only the current user can enter, and both are removed
//! when the plugin stops. With AutoMTLS each connection's TLS handshake runs in its own task, so
//! a slow or hostile client cannot hold up the others; a client that fails the handshake (no
//! certificate, or not Terraform's) is logged and dropped before any gRPC byte is read.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound plugin socket in its own temporary directory.
pub(crate) struct PluginSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl PluginSocket {
    /// Creates a private directory under the temp dir, its name starting with `name` (the
    /// provider's), and binds `plugin.sock` in it.
    pub(crate) fn bind(name: &str) -> io::Result<Self> {
        let base = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = base.join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("plugin.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(Self {
            dir,
            path,
            listener: Some(listener),
        })
    }

    /// The socket's path, for the handshake line.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Starts accepting; each accepted (and, with `tls`, authenticated) connection is yielded.
    ///
    /// The listener moves into the accept task; `self` keeps the path and removes it on drop.
    pub(crate) fn incoming(
        &mut self,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<ReceiverStream<io::Result<PluginStream>>> {
        let listener = self
            .listener
            .take()
            .ok_or_else(|| io::Error::other("the plugin socket is already in use"))?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        log::warn!("accepting a connection failed: {e}");
                        continue;
                    }
                };
                let tx = tx.clone();
                match &tls {
                    None => {
                        if tx.send(Ok(PluginStream::Plain(stream))).await.is_err() {
                            return;
                        }
                    }
                    Some(config) => {
                        let acceptor = TlsAcceptor::from(Arc::clone(config));
                        tokio::spawn(async move {
                            let handshake = tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(stream),
                            );
                            match handshake.await {
                                Ok(Ok(tls_stream)) => {
                                    let _ =
                                        tx.send(Ok(PluginStream::Tls(Box::new(tls_stream)))).await;
                                }
                                Ok(Err(e)) => {
                                    log::warn!("refused a client that failed mutual TLS: {e}")
                                }
                                Err(_) => log::warn!(
                                    "refused a client that did not finish the TLS handshake"
                                ),
                            }
                        });
                    }
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

impl Drop for PluginSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One client connection: plaintext, or TLS after a successful mutual handshake.
pub(crate) enum PluginStream {
    /// Without AutoMTLS (`TF_DISABLE_PLUGIN_TLS`, or debug mode).
    Plain(UnixStream),
    /// With AutoMTLS; boxed because the TLS state is large.
    Tls(Box<TlsStream<UnixStream>>),
}

impl tonic::transport::server::Connected for PluginStream {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for PluginStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PluginStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
