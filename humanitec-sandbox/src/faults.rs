//! Injected faults: their kinds, the settings of the faults that act after a request is processed
//! (`--after-*`, `after_*` in `PUT /_sandbox/faults`), the faults a test scripts for particular
//! requests ([`ScriptedFault`]), and the listener whose connections a fault can drop without an
//! answer.
//!
//! Two families of faults exist. The `rate` faults (`--fault-rate`) mostly act before a request is
//! processed (429, 500, 502, 503), and for a mutation may also replace its answer afterwards (502,
//! 503). The `after_*` faults always act after: the request has been applied to the store, then its
//! answer is delayed, replaced by a gateway error, or the connection is closed without one. That is
//! what a client sees when a load balancer times out on a slow backend, and the case a client must
//! not mistake for "nothing happened".
//!
//! Random faults test that a client survives; scripted faults test how: a test names the request
//! (method and path), how many times, and what happens to it, then checks what the client did.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A kind of random fault (`--fault-rate`, `--after-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 with `Retry-After`, before processing.
    RateLimited,
    /// 500, before processing.
    Internal,
    /// 502 (an HTML page, as from a load balancer), before processing.
    BadGateway,
    /// 503, before processing.
    Unavailable,
    /// 502 after processing: the change happened, the answer was lost.
    LostBadGateway,
    /// 503 after processing a mutation.
    LostUnavailable,
    /// 504 (an HTML page, as from a load balancer that timed out) after processing.
    LostGatewayTimeout,
    /// The real answer, held back after processing.
    Delayed,
    /// No answer at all: the connection is closed after processing.
    Dropped,
}

impl FaultKind {
    /// Every kind, in a fixed order (the order of `GET /_sandbox/stats`).
    pub(crate) const ALL: [FaultKind; 9] = [
        FaultKind::RateLimited,
        FaultKind::Internal,
        FaultKind::BadGateway,
        FaultKind::Unavailable,
        FaultKind::LostBadGateway,
        FaultKind::LostUnavailable,
        FaultKind::LostGatewayTimeout,
        FaultKind::Delayed,
        FaultKind::Dropped,
    ];

    /// The kinds `rate` picks from for a mutation; a read gets only the first four.
    pub(crate) const RATE_KINDS: [FaultKind; 6] = [
        FaultKind::RateLimited,
        FaultKind::Internal,
        FaultKind::BadGateway,
        FaultKind::Unavailable,
        FaultKind::LostBadGateway,
        FaultKind::LostUnavailable,
    ];

    /// The kinds `after_kinds` may name, with their names there.
    const AFTER_KINDS: [(&'static str, FaultKind); 4] = [
        ("delay", FaultKind::Delayed),
        ("502", FaultKind::LostBadGateway),
        ("504", FaultKind::LostGatewayTimeout),
        ("drop", FaultKind::Dropped),
    ];

    /// The name used in logs and stats.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimited => "429_before",
            FaultKind::Internal => "500_before",
            FaultKind::BadGateway => "502_before",
            FaultKind::Unavailable => "503_before",
            FaultKind::LostBadGateway => "502_after",
            FaultKind::LostUnavailable => "503_after",
            FaultKind::LostGatewayTimeout => "504_after",
            FaultKind::Delayed => "delay_after",
            FaultKind::Dropped => "drop_after",
        }
    }

    /// Whether the request is processed before the fault acts.
    pub(crate) fn after_processing(self) -> bool {
        !matches!(
            self,
            FaultKind::RateLimited
                | FaultKind::Internal
                | FaultKind::BadGateway
                | FaultKind::Unavailable
        )
    }

    /// The name of an after-processing kind in `after_kinds` (`delay`, `502`, `504`, `drop`).
    pub(crate) fn after_name(self) -> Option<&'static str> {
        FaultKind::AFTER_KINDS
            .iter()
            .find(|(_, kind)| *kind == self)
            .map(|(name, _)| *name)
    }
}

/// The methods of the API that `after_methods` may name.
pub(crate) const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Settings of the faults that act after a request is processed.
#[derive(Clone, Debug, PartialEq)]
pub struct AfterFaults {
    /// Probability in `0..=1` that a processed `/orgs` request with one of `methods` gets one.
    pub rate: f64,
    /// The kinds to pick from (uniformly): a subset of `delay`, `502`, `504`, `drop`.
    pub kinds: Vec<FaultKind>,
    /// The methods that can get one (a subset of GET, POST, PUT, PATCH, DELETE, in that order).
    pub methods: Vec<&'static str>,
    /// How long the answer is held after processing, before it is sent, replaced or dropped.
    pub delay_ms: u64,
}

impl Default for AfterFaults {
    fn default() -> Self {
        AfterFaults {
            rate: 0.0,
            // Why not `delay` by default: it needs a `delay_ms`, and the default case is the one a
            // client must handle, an applied change whose answer never arrives.
            kinds: vec![
                FaultKind::LostBadGateway,
                FaultKind::LostGatewayTimeout,
                FaultKind::Dropped,
            ],
            methods: METHODS.to_vec(),
            delay_ms: 0,
        }
    }
}

impl AfterFaults {
    /// Whether a request with `method` may get an after-processing fault at all.
    pub(crate) fn applies_to(&self, method: &str) -> bool {
        self.rate > 0.0 && self.methods.contains(&method)
    }

    /// Why these settings don't make sense together, if they don't.
    pub fn problem(&self) -> Option<&'static str> {
        if self.kinds.contains(&FaultKind::Delayed) && self.delay_ms == 0 {
            Some("the `delay` kind needs a delay above 0 ms")
        } else {
            None
        }
    }

    /// The settings as the JSON fields of `GET /_sandbox/faults`.
    pub(crate) fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let kinds: Vec<&str> = self.kinds.iter().filter_map(|k| k.after_name()).collect();
        let mut map = serde_json::Map::new();
        map.insert("after_rate".to_owned(), self.rate.into());
        map.insert("after_kinds".to_owned(), kinds.into());
        map.insert("after_methods".to_owned(), self.methods.clone().into());
        map.insert("after_delay_ms".to_owned(), self.delay_ms.into());
        map
    }
}

/// Parses `after_kinds` names into kinds (deduplicated, in a fixed order).
pub fn parse_kinds<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<FaultKind>, &'static str> {
    let mut wanted = Vec::new();
    for name in names {
        let name = name.trim();
        let kind = FaultKind::AFTER_KINDS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, kind)| *kind)
            .ok_or("kinds are `delay`, `502`, `504` and `drop`")?;
        wanted.push(kind);
    }
    let kinds: Vec<FaultKind> = FaultKind::AFTER_KINDS
        .iter()
        .map(|(_, kind)| *kind)
        .filter(|kind| wanted.contains(kind))
        .collect();
    if kinds.is_empty() {
        return Err("name at least one kind (`delay`, `502`, `504`, `drop`)");
    }
    Ok(kinds)
}

/// Parses `after_methods` names (case-insensitive) into methods (deduplicated, in a fixed order).
pub fn parse_methods<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<&'static str>, &'static str> {
    let mut wanted = Vec::new();
    for name in names {
        let name = name.trim();
        let method = METHODS
            .iter()
            .copied()
            .find(|known| known.eq_ignore_ascii_case(name))
            .ok_or("methods are GET, POST, PUT, PATCH and DELETE")?;
        wanted.push(method);
    }
    let methods: Vec<&'static str> = METHODS
        .iter()
        .copied()
        .filter(|method| wanted.contains(method))
        .collect();
    if methods.is_empty() {
        return Err("name at least one method (GET, POST, PUT, PATCH, DELETE)");
    }
    Ok(methods)
}

/// A fault a test scripts for the requests with one method whose raw (still percent-encoded) path
/// ends with a suffix, for a number of them or for all.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptedFault {
    /// The method to match (`GET`, `POST`, …); `None` matches every method.
    pub method: Option<String>,
    /// The end of the path to match (`""` matches every path).
    pub path_suffix: String,
    /// How many matching requests it acts on; `None` for all of them.
    pub times: Option<usize>,
    /// What happens to a matching request.
    pub action: ScriptedAction,
}

impl ScriptedFault {
    /// A fault for the next request with `method` whose path ends with `path_suffix`.
    pub fn next(method: &str, path_suffix: &str, action: ScriptedAction) -> Self {
        ScriptedFault {
            method: Some(method.to_owned()),
            path_suffix: path_suffix.to_owned(),
            times: Some(1),
            action,
        }
    }

    /// A fault for every `/orgs` request from now on.
    pub fn every_request(action: ScriptedAction) -> Self {
        ScriptedFault {
            method: None,
            path_suffix: String::new(),
            times: None,
            action,
        }
    }

    /// The same fault for `times` matching requests.
    pub fn times(self, times: usize) -> Self {
        ScriptedFault {
            times: Some(times),
            ..self
        }
    }

    /// Whether the fault acts on a request with `method` and raw `path`.
    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && path.ends_with(&self.path_suffix)
    }
}

/// What a scripted fault does with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptedAction {
    /// Answer this, without processing the request (the store is untouched).
    Answer(Answer),
    /// Wait this long, then process the request and answer it as usual (a slow server).
    Stall(Duration),
    /// Process the request, then answer this instead of the real answer (the change happened,
    /// its answer was lost).
    ApplyThenAnswer(Answer),
    /// Process the request, then wait this long before the real answer (a client gives up first).
    ApplyThenStall(Duration),
    /// Process the request, then close the connection without any answer.
    ApplyThenDrop,
}

/// An answer a test writes: a status, a body (sent as `application/json` when not empty,
/// whatever it holds)
/// and an optional `Retry-After`.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, sent as it is.
    pub body: String,
    /// The `Retry-After` header's value.
    pub retry_after: Option<String>,
}

impl Answer {
    /// `status` with a `HumanitecErrorResponse` body: `{"error": code, "message": message}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Answer {
            status,
            body: serde_json::json!({"error": code, "message": message}).to_string(),
            retry_after: None,
        }
    }

    /// `status` with an empty body, as from a proxy that lost the answer.
    pub fn empty(status: u16) -> Self {
        Answer {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    /// The same answer with a `Retry-After` header.
    pub fn retry_after(self, value: &str) -> Self {
        Answer {
            retry_after: Some(value.to_owned()),
            ..self
        }
    }
}

/// The handle with which a request's handler closes its connection without an answer.
///
/// Why a flag on the connection's stream: a handler can only return a response, and hyper would
/// write any response it is given. Once the flag is set, every read and write on the stream fails,
/// so hyper gives up on the connection and closes it before a byte of the answer is written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cut(Arc<AtomicBool>);

impl Cut {
    /// Makes the connection fail from now on.
    pub(crate) fn cut(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the connection was cut.
    fn is_cut(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for Cut {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.io().cut.clone()
    }
}

/// A TCP listener whose connections carry a [`Cut`].
pub(crate) struct CuttableListener(pub(crate) TcpListener);

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (inner, addr) = Listener::accept(&mut self.0).await;
        (
            CuttableStream {
                inner,
                cut: Cut::default(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails every read and write once its [`Cut`] is set.
pub(crate) struct CuttableStream {
    /// The connection.
    inner: TcpStream,
    /// Set by the handler to drop the connection.
    cut: Cut,
}

impl CuttableStream {
    /// The error every operation answers after the cut.
    fn cut_error() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by an injected fault",
        )
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(CuttableStream::cut_error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(CuttableStream::cut_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(CuttableStream::cut_error()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(CuttableStream::cut_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(CuttableStream::cut_error()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_methods_parse() {
        assert_eq!(
            parse_kinds(["drop", "502", "DROP"]),
            Ok(vec![FaultKind::LostBadGateway, FaultKind::Dropped])
        );
        assert!(parse_kinds(["503"]).is_err());
        assert!(parse_kinds([]).is_err());
        assert_eq!(parse_methods(["post", "GET"]), Ok(vec!["GET", "POST"]));
        assert!(parse_methods(["HEAD"]).is_err());
        assert!(parse_methods([""]).is_err());
        assert!(
            FaultKind::ALL
                .iter()
                .all(|k| k.after_name().is_none() || k.after_processing())
        );
    }

    #[test]
    fn delay_needs_a_duration() {
        let mut after = AfterFaults {
            kinds: vec![FaultKind::Delayed],
            ..AfterFaults::default()
        };
        assert!(after.problem().is_some());
        after.delay_ms = 10;
        assert_eq!(after.problem(), None);
    }
}
