//! The HTTP side of the sandbox: routing, bearer-token auth, org id checks, fault injection (scripted,
//! and random before and after processing, see `faults`) and latency, recording requests,
//! per-request logging to stderr, the `/_sandbox/` admin endpoints, and saving `--data` after every
//! change.
//!
//! Why one fallback handler with hand-written routing instead of axum routes: every answer, including
//! unknown paths, wrong methods and undecodable paths, must be a `HumanitecErrorResponse` JSON body,
//! and faults, auth and logging wrap every `/orgs` request the same way. Routing by hand keeps that in
//! one place and leaves no axum rejection (plain-text bodies) reachable.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::Options;
use crate::api::{self, Ctx, Reply};
use crate::error::ApiError;
use crate::faults::{
    self, AfterFaults, Answer, Cut, CuttableListener, FaultKind, ScriptedAction, ScriptedFault,
};
use crate::model::Orgs;
use crate::persist::{self, PersistError};
use crate::record::RecordedRequest;
use crate::rng::{IdGen, Rng, seed_from_clock};
use crate::schema;

/// The largest request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The user recorded as `created_by` / `updated_by`.
const USER: &str = "sandbox-user";

/// Counters for `GET /_sandbox/stats`.
#[derive(Debug, Default)]
struct Stats {
    /// `/orgs` requests answered.
    requests: u64,
    /// `/_sandbox` requests answered.
    admin_requests: u64,
    /// Faults injected, by kind.
    faults: BTreeMap<&'static str, u64>,
    /// `/orgs` answers by status code.
    statuses: BTreeMap<u16, u64>,
}

/// Fault settings, the fault dice and the stats.
#[derive(Debug)]
struct Control {
    /// Fault probability per `/orgs` request.
    fault_rate: f64,
    /// Delay per `/orgs` request.
    latency_ms: u64,
    /// `Retry-After` seconds on injected 429s.
    retry_after_secs: u64,
    /// Faults after processing.
    after: AfterFaults,
    /// Fault dice.
    rng: Rng,
    /// Counters.
    stats: Stats,
    /// Scripted faults, first match wins.
    scripts: Vec<ScriptedFault>,
    /// The requests received, when [`Options::record_requests`] asks for them.
    recorded: Vec<RecordedRequest>,
}

impl Control {
    /// Takes the action of the first scripted fault that matches the request, counting it down.
    fn take_script(&mut self, method: &str, path: &str) -> Option<ScriptedAction> {
        let index = self
            .scripts
            .iter()
            .position(|script| script.matches(method, path))?;
        let script = self.scripts.get_mut(index)?;
        let action = script.action.clone();
        match &mut script.times {
            Some(left) if *left > 1 => *left -= 1,
            Some(_) => {
                self.scripts.remove(index);
            }
            None => {}
        }
        Some(action)
    }

    /// Rolls the dice for one request.
    fn decide(&mut self, mutation: bool) -> Option<FaultKind> {
        if self.fault_rate <= 0.0 || self.rng.next_f64() >= self.fault_rate {
            return None;
        }
        // Why: only a mutation can have "happened but the answer was lost".
        let kinds: &[FaultKind] = if mutation {
            &FaultKind::RATE_KINDS
        } else {
            &FaultKind::RATE_KINDS[..4]
        };
        let kind = kinds.get(self.rng.below(kinds.len())).copied();
        if let Some(kind) = kind {
            *self.stats.faults.entry(kind.name()).or_default() += 1;
        }
        kind
    }

    /// Rolls the dice for a fault after processing a request with `method`.
    fn decide_after(&mut self, method: &Method) -> Option<FaultKind> {
        // Why no roll when the settings exclude the request: the dice then stay in step with a run
        // without after-processing faults, so a seed reproduces the same `rate` faults.
        if !self.after.applies_to(method.as_str()) || self.rng.next_f64() >= self.after.rate {
            return None;
        }
        let kind = self
            .after
            .kinds
            .get(self.rng.below(self.after.kinds.len()))
            .copied();
        if let Some(kind) = kind {
            *self.stats.faults.entry(kind.name()).or_default() += 1;
        }
        kind
    }
}

/// The mutable API state.
struct Store {
    /// All orgs.
    orgs: Orgs,
    /// Id generator (its counter is saved with `--data`).
    ids: IdGen,
}

/// Settings fixed at start.
struct Settings {
    /// `--token`.
    token: Option<String>,
    /// `--primary-store`.
    primary_store: String,
    /// `--data`.
    data_file: Option<PathBuf>,
    /// Whether each `/orgs` request is logged to stderr.
    log_requests: bool,
    /// Whether each `/orgs` request is recorded.
    record_requests: bool,
}

/// Shared state behind the handler.
struct Inner {
    /// API state.
    store: Mutex<Store>,
    /// Faults and stats.
    control: Mutex<Control>,
    /// Fixed settings.
    settings: Settings,
}

/// The sandbox application (cheap to clone).
#[derive(Clone)]
pub(crate) struct App {
    /// Shared state.
    inner: Arc<Inner>,
}

impl App {
    /// Builds the app from the configuration, loading `--data` if the file exists.
    pub(crate) async fn new(config: &Options) -> Result<App, PersistError> {
        let seed = config.seed.unwrap_or_else(seed_from_clock);
        let mut orgs = Orgs::new();
        let mut counter = 0;
        if let Some(path) = &config.data {
            for temp in persist::remove_stale_temps(path).await {
                eprintln!(
                    "humanitec-sandbox: removed {}, left by a sandbox stopped during a save",
                    temp.display()
                );
            }
        }
        if let Some(path) = &config.data
            && let Some(data) = persist::load(path).await?
        {
            orgs = data.orgs;
            counter = data.counter;
            eprintln!(
                "humanitec-sandbox: loaded {} org(s) from {}",
                orgs.len(),
                path.display()
            );
        }
        Ok(App {
            inner: Arc::new(Inner {
                store: Mutex::new(Store {
                    orgs,
                    ids: IdGen {
                        rng: Rng::new(seed),
                        counter,
                    },
                }),
                control: Mutex::new(Control {
                    fault_rate: config.fault_rate,
                    latency_ms: config.latency_ms,
                    retry_after_secs: 1,
                    after: config.after.clone(),
                    // Why: a separate stream, so fault dice don't shift ids and vice versa.
                    rng: Rng::new(seed ^ 0x5DEE_CE66_D1CE_F00D),
                    stats: Stats::default(),
                    scripts: Vec::new(),
                    recorded: Vec::new(),
                }),
                settings: Settings {
                    token: config.token.clone(),
                    primary_store: config.primary_store.clone(),
                    data_file: config.data.clone(),
                    log_requests: config.log_requests,
                    record_requests: config.record_requests,
                },
            }),
        })
    }

    /// Saves `--data` (if set) from the locked store.
    async fn save(&self, store: &Store) -> Result<(), ApiError> {
        let Some(path) = &self.inner.settings.data_file else {
            return Ok(());
        };
        persist::save(path, store.ids.counter, &store.orgs)
            .await
            .map_err(|err| {
                eprintln!("humanitec-sandbox: saving data failed: {err}");
                ApiError::internal(
                    "The change was applied but could not be saved to the data file.",
                )
            })
    }
}

/// The router: one fallback handler for everything.
pub(crate) fn router(app: App) -> Router {
    Router::new().fallback(handle).with_state(app)
}

/// Serves until `shutdown` resolves, then saves `--data` one last time.
pub(crate) async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    // Why the connect info: a `drop` fault needs the handle that closes its request's connection.
    let service = router(app.clone()).into_make_service_with_connect_info::<Cut>();
    axum::serve(CuttableListener(listener), service)
        .with_graceful_shutdown(shutdown)
        .await?;
    let store = app.inner.store.lock().await;
    if let Some(path) = &app.inner.settings.data_file {
        persist::save(path, store.ids.counter, &store.orgs)
            .await
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// A JSON response.
fn json_response(status: StatusCode, body: &Value) -> Response {
    // Why: serializing a `Value` cannot fail; the fallback only satisfies the no-panic rule.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// A `HumanitecErrorResponse`.
fn error_response(err: &ApiError) -> Response {
    json_response(err.status, &err.body())
}

/// The response for a [`Reply`].
fn reply_response(reply: &Reply) -> Response {
    match &reply.body {
        Some(body) => json_response(reply.status, body),
        None => reply.status.into_response(),
    }
}

/// The response for an injected fault.
fn fault_response(kind: FaultKind, retry_after_secs: u64) -> Response {
    match kind {
        FaultKind::RateLimited => {
            let mut response = error_response(&ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "API-007",
                "Request rate limit reached (injected by humanitec-sandbox).",
            ));
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        FaultKind::Internal => error_response(&ApiError::internal(
            "Internal error (injected by humanitec-sandbox).",
        )),
        // Why: a real 502 or 504 comes from a proxy and is not JSON; clients must not depend on
        // its body. (`Delayed` and `Dropped` keep or drop the real answer, so they are never asked
        // for a response; should one be, a 502 is the safe answer.)
        FaultKind::BadGateway
        | FaultKind::LostBadGateway
        | FaultKind::Delayed
        | FaultKind::Dropped => gateway_page(StatusCode::BAD_GATEWAY, "502 Bad Gateway"),
        FaultKind::LostGatewayTimeout => {
            gateway_page(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out")
        }
        FaultKind::Unavailable | FaultKind::LostUnavailable => error_response(&ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "API-009",
            "Service unavailable (injected by humanitec-sandbox).",
        )),
    }
}

/// The response for a scripted [`Answer`].
fn answer_response(answer: &Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body.clone()));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if !answer.body.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(value) = answer
        .retry_after
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}

/// An HTML error page, as a load balancer answers.
fn gateway_page(status: StatusCode, title: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        format!("<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"),
    )
        .into_response()
}

/// Decodes `%XX` escapes; `None` for a bad escape or invalid UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Splits a path into decoded segments; `None` for empty segments (`//`, trailing `/`) or bad escapes.
fn split_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    rest.split('/')
        .map(|segment| {
            if segment.is_empty() {
                None
            } else {
                percent_decode(segment)
            }
        })
        .collect()
}

/// The decoded query string.
fn query_of(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|query| query.0)
        .map_err(|_| ApiError::bad_request("The query string could not be decoded."))
}

/// Reads the request body (bounded).
async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    to_bytes(body, MAX_BODY)
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "The request body could not be read or is larger than {MAX_BODY} bytes."
            ))
        })
}

/// The single handler: dispatches, then logs one line to stderr.
async fn handle(State(app): State<App>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments = split_path(&path);
    let (response, note, dropped) = match segments.as_deref() {
        Some([first, rest @ ..]) if first == "orgs" => {
            let rest = rest.to_vec();
            let handled = app.handle_api(request, rest).await;
            let note = if handled.faults.is_empty() {
                "none".to_owned()
            } else {
                handled.faults.join(",")
            };
            (handled.response, note, handled.dropped)
        }
        Some([first, rest @ ..]) if first == "_sandbox" => {
            let rest = rest.to_vec();
            (
                app.handle_admin(request, rest).await,
                "none (admin)".to_owned(),
                false,
            )
        }
        _ => (
            error_response(&ApiError::not_found(format!(
                "No endpoint at `{path}` (humanitec-sandbox serves /orgs/{{orgId}}/resources/defs…)."
            ))),
            "none".to_owned(),
            false,
        ),
    };
    let status = if dropped {
        "dropped".to_owned()
    } else {
        response.status().as_u16().to_string()
    };
    // Why only these fields: request bodies and the Authorization header may hold secrets.
    if app.inner.settings.log_requests {
        eprintln!("{method} {path} {status} fault={note}");
    }
    response
}

/// An API operation, after routing.
enum Op {
    /// `GET /resources/defs`.
    List,
    /// `POST /resources/defs`.
    Create,
    /// `GET /resources/defs/{defId}`.
    Get(String),
    /// `PUT /resources/defs/{defId}`.
    Update(String),
    /// `PATCH /resources/defs/{defId}`.
    Patch(String),
    /// `DELETE /resources/defs/{defId}`.
    Delete(String),
    /// `PUT /resources/defs/{defId}/criteria`.
    ReplaceCriteria(String),
    /// `POST /resources/defs/{defId}/criteria`.
    AddCriterion(String),
    /// `DELETE /resources/defs/{defId}/criteria/{criteriaId}`.
    DeleteCriterion(String, String),
    /// `GET /resources/defs/{defId}/resources`.
    ActiveResources(String),
}

/// Maps method + path (after `/orgs/{orgId}`) to an operation.
fn route(method: &Method, rest: &[String]) -> Result<Op, ApiError> {
    let not_allowed = |allow: &str| {
        ApiError::method_not_allowed(format!(
            "Method {method} is not allowed here; allowed: {allow}."
        ))
    };
    let segments: Vec<&str> = rest.iter().map(String::as_str).collect();
    let own = |s: &str| s.to_owned();
    match segments.as_slice() {
        ["resources", "defs"] => match *method {
            Method::GET => Ok(Op::List),
            Method::POST => Ok(Op::Create),
            _ => Err(not_allowed("GET, POST")),
        },
        ["resources", "defs", def] => match *method {
            Method::GET => Ok(Op::Get(own(def))),
            Method::PUT => Ok(Op::Update(own(def))),
            Method::PATCH => Ok(Op::Patch(own(def))),
            Method::DELETE => Ok(Op::Delete(own(def))),
            _ => Err(not_allowed("GET, PUT, PATCH, DELETE")),
        },
        ["resources", "defs", def, "criteria"] => match *method {
            Method::PUT => Ok(Op::ReplaceCriteria(own(def))),
            Method::POST => Ok(Op::AddCriterion(own(def))),
            _ => Err(not_allowed("PUT, POST")),
        },
        ["resources", "defs", def, "criteria", criterion] => match *method {
            Method::DELETE => Ok(Op::DeleteCriterion(own(def), own(criterion))),
            _ => Err(not_allowed("DELETE")),
        },
        ["resources", "defs", def, "resources"] => match *method {
            Method::GET => Ok(Op::ActiveResources(own(def))),
            _ => Err(not_allowed("GET")),
        },
        ["resources", "defs", _, "versions", ..] => Err(ApiError::not_implemented(
            "Resource Definition versions are not implemented by humanitec-sandbox.",
        )),
        _ => Err(ApiError::not_found(
            "No such endpoint (humanitec-sandbox serves only the Resource Definitions API).",
        )),
    }
}

/// How an `/orgs` request was answered.
struct Handled {
    /// The response (not sent when `dropped`).
    response: Response,
    /// The names of the faults injected, for the log line.
    faults: Vec<&'static str>,
    /// Whether the connection was closed without an answer.
    dropped: bool,
}

impl App {
    /// An `/orgs/...` request: recording, a scripted fault if one matches, else latency, random
    /// faults, auth, org check, routing, the operation, saving, then the faults after processing.
    async fn handle_api(&self, request: Request, rest: Vec<String>) -> Handled {
        let request = if self.inner.settings.record_requests {
            match self.record(request).await {
                Ok(request) => request,
                Err(err) => {
                    return Handled {
                        response: error_response(&err),
                        faults: Vec::new(),
                        dropped: false,
                    };
                }
            }
        } else {
            request
        };
        let (method, path) = (
            request.method().to_string(),
            request.uri().path().to_owned(),
        );
        let scripted = {
            let mut control = self.inner.control.lock().await;
            control.stats.requests += 1;
            control.take_script(&method, &path)
        };
        if let Some(action) = scripted {
            return self.handle_scripted(request, rest, action).await;
        }
        self.handle_random(request, rest).await
    }

    /// Keeps the request for [`crate::Sandbox::requests`], reading its body ahead of processing.
    async fn record(&self, request: Request) -> Result<Request, ApiError> {
        let (parts, body) = request.into_parts();
        let body = read_body(body).await?;
        let recorded = RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
        };
        self.inner.control.lock().await.recorded.push(recorded);
        Ok(Request::from_parts(parts, Body::from(body)))
    }

    /// A request a scripted fault acts on: no latency and no random faults, only the script.
    async fn handle_scripted(
        &self,
        request: Request,
        rest: Vec<String>,
        action: ScriptedAction,
    ) -> Handled {
        let cut = connection_cut(&request);
        let mut dropped = false;
        let response = match action {
            ScriptedAction::Answer(answer) => answer_response(&answer),
            ScriptedAction::Stall(wait) => {
                tokio::time::sleep(wait).await;
                self.answer(request, &rest).await
            }
            ScriptedAction::ApplyThenAnswer(answer) => {
                let _ = self.answer(request, &rest).await;
                answer_response(&answer)
            }
            ScriptedAction::ApplyThenStall(wait) => {
                let response = self.answer(request, &rest).await;
                tokio::time::sleep(wait).await;
                response
            }
            ScriptedAction::ApplyThenDrop => {
                let response = self.answer(request, &rest).await;
                match &cut {
                    Some(cut) => {
                        cut.cut();
                        dropped = true;
                        response
                    }
                    // Why: see `handle_random`, a gateway that gave up is the nearest thing.
                    None => fault_response(FaultKind::LostGatewayTimeout, 1),
                }
            }
        };
        if !dropped {
            self.count_status(response.status()).await;
        }
        Handled {
            response,
            faults: vec!["scripted"],
            dropped,
        }
    }

    /// Processes the request and answers it, error or not.
    async fn answer(&self, request: Request, rest: &[String]) -> Response {
        match self.process(request, rest).await {
            Ok(reply) => reply_response(&reply),
            Err(err) => error_response(&err),
        }
    }

    /// Counts an answer's status for `GET /_sandbox/stats`.
    async fn count_status(&self, status: StatusCode) {
        let mut control = self.inner.control.lock().await;
        *control.stats.statuses.entry(status.as_u16()).or_default() += 1;
    }

    /// A request without a scripted fault: latency, then the random faults around processing.
    async fn handle_random(&self, request: Request, rest: Vec<String>) -> Handled {
        let method = request.method().clone();
        let mutation = matches!(
            method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        let cut = connection_cut(&request);
        let (latency_ms, fault, after, after_delay_ms, retry_after) = {
            let mut control = self.inner.control.lock().await;
            let fault = control.decide(mutation);
            // Why: a request refused before processing has nothing to lose afterwards.
            let after = match fault {
                Some(kind) if !kind.after_processing() => None,
                _ => control.decide_after(&method),
            };
            (
                control.latency_ms,
                fault,
                after,
                control.after.delay_ms,
                control.retry_after_secs,
            )
        };
        if latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        let mut response = match fault {
            Some(kind) if !kind.after_processing() => fault_response(kind, retry_after),
            _ => {
                let response = self.answer(request, &rest).await;
                match fault {
                    Some(kind) => fault_response(kind, retry_after),
                    None => response,
                }
            }
        };
        if let Some(kind) = after {
            if after_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(after_delay_ms)).await;
            }
            match (kind, &cut) {
                (FaultKind::Delayed, _) => {}
                (FaultKind::Dropped, Some(cut)) => cut.cut(),
                // Why: without a connection handle (never the case under `serve`) the nearest
                // thing to no answer is a gateway that gave up.
                (FaultKind::Dropped, None) => {
                    response = fault_response(FaultKind::LostGatewayTimeout, retry_after);
                }
                (kind, _) => response = fault_response(kind, retry_after),
            }
        }
        let faults: Vec<FaultKind> = fault.into_iter().chain(after).collect();
        let dropped = faults.contains(&FaultKind::Dropped);
        if !dropped {
            self.count_status(response.status()).await;
        }
        Handled {
            response,
            faults: faults.iter().map(|kind| kind.name()).collect(),
            dropped,
        }
    }

    /// Auth, org check, routing and the operation itself.
    async fn process(&self, request: Request, rest: &[String]) -> Result<Reply, ApiError> {
        self.check_auth(&request)?;
        let (org_id, rest) = rest
            .split_first()
            .ok_or_else(|| ApiError::not_found("No such endpoint."))?;
        if !schema::is_org_id(org_id) {
            // Why 404: an org id that can't exist names no organization; the real API answers
            // unknown orgs with 404 too.
            return Err(ApiError::not_found(format!(
                "Organization `{org_id}` not found (org ids match ^[a-z0-9](?:-?[a-z0-9]+)+$, at most 50 characters)."
            )));
        }
        let op = route(request.method(), rest)?;
        let query = query_of(request.uri())?;
        let body = match op {
            Op::Create
            | Op::Update(_)
            | Op::Patch(_)
            | Op::ReplaceCriteria(_)
            | Op::AddCriterion(_) => read_body(request.into_body()).await?,
            _ => Vec::new(),
        };
        let mut guard = self.inner.store.lock().await;
        let store = &mut *guard;
        let mut ctx = Ctx {
            org_id,
            primary_store: &self.inner.settings.primary_store,
            user: USER,
            now: crate::clock::now_rfc3339(),
            ids: &mut store.ids,
        };
        let orgs = &mut store.orgs;
        let reply = match &op {
            Op::List => api::list_definitions(orgs, org_id, &query),
            Op::Create => api::create_definition(orgs, &mut ctx, &body),
            Op::Get(def) => api::get_definition(orgs, org_id, def, &query),
            Op::Update(def) => api::update_definition(orgs, &mut ctx, def, &body),
            Op::Patch(def) => api::patch_definition(orgs, &mut ctx, def, &body),
            Op::Delete(def) => api::delete_definition(orgs, org_id, def, &query),
            Op::ReplaceCriteria(def) => api::replace_criteria(orgs, &mut ctx, def, &body),
            Op::AddCriterion(def) => api::add_criterion(orgs, &mut ctx, def, &body),
            Op::DeleteCriterion(def, criterion) => {
                api::delete_criterion(orgs, org_id, def, criterion, &query)
            }
            Op::ActiveResources(def) => api::list_active_resources(orgs, org_id, def),
        }?;
        if reply.mutated {
            self.save(store).await?;
        }
        Ok(reply)
    }

    /// Checks `Authorization: Bearer <token>`.
    fn check_auth(&self, request: &Request) -> Result<(), ApiError> {
        let Some(value) = request.headers().get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "Missing Authorization header (expected `Authorization: Bearer <token>`).",
            ));
        };
        let value = value.to_str().unwrap_or_default();
        // Why: auth schemes are case-insensitive (RFC 9110), the token itself is compared exactly.
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => "",
        };
        if token.is_empty() {
            return Err(ApiError::unauthorized(
                "Could not validate token: the Authorization header must be `Bearer <token>`.",
            ));
        }
        match &self.inner.settings.token {
            Some(expected) if expected != token => {
                Err(ApiError::unauthorized("Could not validate token."))
            }
            _ => Ok(()),
        }
    }

    /// A `/_sandbox/...` request (no auth, no faults, no latency).
    async fn handle_admin(&self, request: Request, rest: Vec<String>) -> Response {
        {
            let mut control = self.inner.control.lock().await;
            control.stats.admin_requests += 1;
        }
        match self.admin(request, &rest).await {
            Ok((status, body)) => json_response(status, &body),
            Err(err) => error_response(&err),
        }
    }

    /// The admin endpoints.
    async fn admin(
        &self,
        request: Request,
        rest: &[String],
    ) -> Result<(StatusCode, Value), ApiError> {
        let segments: Vec<&str> = rest.iter().map(String::as_str).collect();
        let method = request.method().clone();
        match (segments.as_slice(), &method) {
            (["stats"], &Method::GET) => Ok((StatusCode::OK, self.stats().await)),
            (["faults"], &Method::GET) => Ok((StatusCode::OK, self.faults().await)),
            (["faults"], &Method::PUT) => self.set_faults(request).await,
            (["orgs", org_id, "secrets"], &Method::GET) => self.org_secrets(org_id).await,
            (
                [
                    "orgs",
                    org_id,
                    "resources",
                    "defs",
                    def_id,
                    "active-resources",
                ],
                &Method::PUT,
            ) => self.put_active_resources(request, org_id, def_id).await,
            (["stats" | "faults"], _)
            | (["orgs", _, "secrets"], _)
            | (["orgs", _, "resources", "defs", _, "active-resources"], _) => Err(
                ApiError::method_not_allowed(format!("Method {method} is not allowed here.")),
            ),
            _ => Err(ApiError::not_found("No such sandbox endpoint.")),
        }
    }

    /// `PUT /_sandbox/faults`: the fault settings the body names change; the others stay.
    async fn set_faults(&self, request: Request) -> Result<(StatusCode, Value), ApiError> {
        let body = api::parse_json(&read_body(request.into_body()).await?)?;
        schema::validate_object(&schema::SANDBOX_FAULTS, &body, false)?;
        let rate = body.get("rate").and_then(Value::as_f64);
        if rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return Err(ApiError::bad_request_at(
                "rate",
                "`rate` must be between 0 and 1.",
            ));
        }
        let mut control = self.inner.control.lock().await;
        let after = after_settings(&body, &control.after)?;
        control.after = after;
        if let Some(rate) = rate {
            control.fault_rate = rate;
        }
        if let Some(latency) = body.get("latency_ms").and_then(Value::as_u64) {
            control.latency_ms = latency;
        }
        if let Some(secs) = body.get("retry_after_secs").and_then(Value::as_u64) {
            control.retry_after_secs = secs;
        }
        drop(control);
        Ok((StatusCode::OK, self.faults().await))
    }

    /// `GET /_sandbox/orgs/{orgId}/secrets`: what the organization's primary secret store holds.
    async fn org_secrets(&self, org_id: &str) -> Result<(StatusCode, Value), ApiError> {
        check_org(org_id)?;
        let store = self.inner.store.lock().await;
        let secrets: serde_json::Map<String, Value> = store
            .orgs
            .get(org_id)
            .map(|org| {
                org.secrets
                    .iter()
                    .map(|(reference, secret)| {
                        (
                            reference.clone(),
                            json!({ "value": secret.value, "version": secret.version.to_string() }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((
            StatusCode::OK,
            json!({ "store": self.inner.settings.primary_store, "secrets": secrets }),
        ))
    }

    /// `PUT /_sandbox/orgs/{orgId}/resources/defs/{defId}/active-resources`: the active
    /// resources a definition has, which the platform would report.
    async fn put_active_resources(
        &self,
        request: Request,
        org_id: &str,
        def_id: &str,
    ) -> Result<(StatusCode, Value), ApiError> {
        check_org(org_id)?;
        let body = read_body(request.into_body()).await?;
        let reply = self
            .apply(org_id, |orgs, ctx| {
                api::set_active_resources(orgs, ctx, def_id, &body)
            })
            .await?;
        Ok((reply.status, reply.body.unwrap_or(Value::Null)))
    }

    /// The `GET /_sandbox/stats` body.
    async fn stats(&self) -> Value {
        let control = self.inner.control.lock().await;
        let faults: serde_json::Map<String, Value> = FaultKind::ALL
            .iter()
            .map(|kind| {
                let count = control.stats.faults.get(kind.name()).copied().unwrap_or(0);
                (kind.name().to_owned(), json!(count))
            })
            .collect();
        let statuses: serde_json::Map<String, Value> = control
            .stats
            .statuses
            .iter()
            .map(|(status, count)| (status.to_string(), json!(count)))
            .collect();
        json!({
            "requests": control.stats.requests,
            "admin_requests": control.stats.admin_requests,
            "faults_injected": control.stats.faults.values().sum::<u64>(),
            "faults": faults,
            "responses_by_status": statuses,
        })
    }

    /// The current fault settings.
    async fn faults(&self) -> Value {
        let control = self.inner.control.lock().await;
        let mut settings = serde_json::Map::new();
        settings.insert("rate".to_owned(), json!(control.fault_rate));
        settings.insert("latency_ms".to_owned(), json!(control.latency_ms));
        settings.insert(
            "retry_after_secs".to_owned(),
            json!(control.retry_after_secs),
        );
        settings.extend(control.after.to_json());
        Value::Object(settings)
    }
}

/// The handle that closes the request's connection (set by `serve`).
fn connection_cut(request: &Request) -> Option<Cut> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<Cut>>()
        .map(|info| info.0.clone())
}

/// The calls of the in-process handle ([`crate::Sandbox`]).
impl App {
    /// Queues a scripted fault (one for no request is dropped).
    pub(crate) async fn script(&self, fault: ScriptedFault) {
        if fault.times != Some(0) {
            self.inner.control.lock().await.scripts.push(fault);
        }
    }

    /// The requests recorded so far.
    pub(crate) async fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.control.lock().await.recorded.clone()
    }

    /// The live definitions of an org by id, as the API answers them.
    pub(crate) async fn definitions(&self, org_id: &str) -> BTreeMap<String, Value> {
        let store = self.inner.store.lock().await;
        let listed = api::list_definitions(&store.orgs, org_id, &[]).ok();
        let items = match listed.and_then(|reply| reply.body) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        items
            .into_iter()
            .filter_map(|def| Some((def.get("id")?.as_str()?.to_owned(), def)))
            .collect()
    }

    /// `POST …/defs` without a request; the error as `(status, body)`.
    pub(crate) async fn create_definition(
        &self,
        org_id: &str,
        body: &[u8],
    ) -> Result<Value, (u16, Value)> {
        self.change(org_id, |orgs, ctx| api::create_definition(orgs, ctx, body))
            .await
    }

    /// The admin endpoint's `PUT …/active-resources` without a request.
    pub(crate) async fn set_active_resources(
        &self,
        org_id: &str,
        def_id: &str,
        body: &[u8],
    ) -> Result<(), (u16, Value)> {
        self.change(org_id, |orgs, ctx| {
            api::set_active_resources(orgs, ctx, def_id, body)
        })
        .await
        .map(|_| ())
    }

    /// Applies an operation to the store and saves `--data`; the error as `(status, body)`.
    async fn change(
        &self,
        org_id: &str,
        operation: impl FnOnce(&mut Orgs, &mut Ctx<'_>) -> Result<Reply, ApiError>,
    ) -> Result<Value, (u16, Value)> {
        self.apply(org_id, operation)
            .await
            .map(|reply| reply.body.unwrap_or(Value::Null))
            .map_err(|err| (err.status.as_u16(), err.body()))
    }

    /// Applies an operation to the store of `org_id`, under the store's lock, and saves `--data`.
    async fn apply(
        &self,
        org_id: &str,
        operation: impl FnOnce(&mut Orgs, &mut Ctx<'_>) -> Result<Reply, ApiError>,
    ) -> Result<Reply, ApiError> {
        check_org(org_id)?;
        let mut guard = self.inner.store.lock().await;
        let store = &mut *guard;
        let mut ctx = Ctx {
            org_id,
            primary_store: &self.inner.settings.primary_store,
            user: USER,
            now: crate::clock::now_rfc3339(),
            ids: &mut store.ids,
        };
        let reply = operation(&mut store.orgs, &mut ctx)?;
        self.save(store).await?;
        Ok(reply)
    }
}

/// The after-processing fault settings of a `PUT /_sandbox/faults` body: the `after_*` fields it
/// names replace those of `current`.
fn after_settings(body: &Value, current: &AfterFaults) -> Result<AfterFaults, ApiError> {
    let mut after = current.clone();
    if let Some(rate) = body.get("after_rate").and_then(Value::as_f64) {
        if !(0.0..=1.0).contains(&rate) {
            return Err(ApiError::bad_request_at(
                "after_rate",
                "`after_rate` must be between 0 and 1.",
            ));
        }
        after.rate = rate;
    }
    let strings = |field: &str| -> Option<Vec<&str>> {
        body.get(field)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
    };
    if let Some(names) = strings("after_kinds") {
        after.kinds = faults::parse_kinds(names).map_err(|reason| {
            ApiError::bad_request_at("after_kinds", format!("`after_kinds`: {reason}."))
        })?;
    }
    if let Some(names) = strings("after_methods") {
        after.methods = faults::parse_methods(names).map_err(|reason| {
            ApiError::bad_request_at("after_methods", format!("`after_methods`: {reason}."))
        })?;
    }
    if let Some(ms) = body.get("after_delay_ms").and_then(Value::as_u64) {
        after.delay_ms = ms;
    }
    if let Some(reason) = after.problem() {
        return Err(ApiError::bad_request_at(
            "after_kinds",
            format!("`after_kinds`: {reason} (`after_delay_ms`)."),
        ));
    }
    Ok(after)
}

/// 404 for an invalid org id on admin paths.
fn check_org(org_id: &str) -> Result<(), ApiError> {
    if schema::is_org_id(org_id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "Organization `{org_id}` not found."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_decode() {
        assert_eq!(
            split_path("/orgs/my-org/resources/defs/a%2Db"),
            Some(vec![
                "orgs".to_owned(),
                "my-org".to_owned(),
                "resources".to_owned(),
                "defs".to_owned(),
                "a-b".to_owned()
            ])
        );
        assert_eq!(split_path("/orgs/x/"), None);
        assert_eq!(split_path("/orgs//x"), None);
        assert_eq!(split_path("/orgs/%zz"), None);
        assert_eq!(split_path("/orgs/%"), None);
        assert_eq!(split_path("/orgs/%ff"), None);
    }
}
