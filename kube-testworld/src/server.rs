//! The HTTP(S) API server: the accept loop on 127.0.0.1, authentication, routing of the
//! Kubernetes REST paths (`/api/v1/…`, `/apis/{group}/{version}/…`, discovery, `/openapi/v3`),
//! query options, content negotiation (JSON, YAML bodies; Tables for kubectl), `Warning` headers,
//! and the answers as `Status` objects on errors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::{self, Attributes, Tokens, User};
use crate::resources::{self, RESOURCES, ResourceId, ids};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::table::{self, IncludeObject};
use crate::watch::{self, Start, WatchRequest};
use crate::world::{
    DeleteOptions, FieldValidation, Part, PatchType, Propagation, World, WriteOptions,
};

/// The largest request body accepted (the API server's 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The response body type: whole or streamed.
type Body = BoxBody<Bytes, Infallible>;

/// A `pods/log` request.
#[derive(Debug, Clone)]
pub(crate) struct LogRequest {
    /// The pod.
    pub(crate) pod: Value,
    /// The container (`container`, or the only one).
    pub(crate) container: String,
    /// `follow`.
    pub(crate) follow: bool,
    /// `timestamps`.
    pub(crate) timestamps: bool,
    /// `tailLines`.
    pub(crate) tail_lines: Option<usize>,
    /// `sinceTime` / `sinceSeconds`, as a point in time.
    pub(crate) since: Option<std::time::SystemTime>,
    /// `previous`.
    pub(crate) previous: bool,
}

/// The server's shared configuration.
pub(crate) struct Server {
    /// The API state.
    pub(crate) world: Arc<World>,
    /// Bearer tokens.
    pub(crate) tokens: Arc<Tokens>,
    /// `host:port`, for `/api`'s serverAddressByClientCIDRs.
    pub(crate) address: String,
    /// How often watches send bookmarks.
    pub(crate) bookmark_interval: Duration,
    /// Plain HTTP: requests without credentials act as the admin.
    pub(crate) plain_http: bool,
    /// The kubelet, which serves container logs, when one runs.
    pub(crate) kubelet: Option<Arc<crate::kubelet::Kubelet>>,
}

/// Accepts connections until `shutdown` fires; each connection is served in its own task.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    server: Arc<Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = Arc::clone(&server);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = Arc::clone(&server);
                async move { Ok::<_, Infallible>(server.handle(req).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            let result = match tls {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            builder
                                .serve_connection(TokioIo::new(tls_stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            log::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(e) = result {
                log::debug!("connection ended: {e}");
            }
        });
    }
}

/// Decodes `%xx` and `+` in a query component.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string (the last value of a repeated key wins).
fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// What a resource path addresses.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A collection, in one namespace or across all (or cluster-scoped).
    Collection { ns: Option<String> },
    /// One object (namespace `""` when cluster-scoped).
    Object { ns: String, name: String },
    /// A subresource of one object.
    Sub {
        ns: String,
        name: String,
        sub: String,
    },
}

/// Resolves the path segments after `/api/v1` or `/apis/{g}/{v}`.
fn resolve(group: &str, version: &str, segs: &[&str]) -> Option<(ResourceId, Target)> {
    let find = |plural: &str| resources::find(group, version, plural);
    match segs {
        ["namespaces", ns, plural, rest @ ..] if !matches!(*plural, "status" | "finalize") => {
            let r = find(plural)?;
            if !RESOURCES[r].namespaced {
                return None;
            }
            let ns = ns.to_string();
            match rest {
                [] => Some((r, Target::Collection { ns: Some(ns) })),
                [name] => Some((
                    r,
                    Target::Object {
                        ns,
                        name: name.to_string(),
                    },
                )),
                [name, sub] => Some((
                    r,
                    Target::Sub {
                        ns,
                        name: name.to_string(),
                        sub: sub.to_string(),
                    },
                )),
                _ => None,
            }
        }
        [plural] => Some((find(plural)?, Target::Collection { ns: None })),
        [plural, name] => {
            let r = find(plural)?;
            (!RESOURCES[r].namespaced).then(|| {
                (
                    r,
                    Target::Object {
                        ns: String::new(),
                        name: name.to_string(),
                    },
                )
            })
        }
        [plural, name, sub] => {
            let r = find(plural)?;
            (!RESOURCES[r].namespaced).then(|| {
                (
                    r,
                    Target::Sub {
                        ns: String::new(),
                        name: name.to_string(),
                        sub: sub.to_string(),
                    },
                )
            })
        }
        _ => None,
    }
}

/// A JSON response with `Warning` headers.
fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, private");
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        builder = builder.header("warning", format!("299 - \"{escaped}\""));
    }
    let bytes = Bytes::from(body.to_string());
    builder
        .body(Full::new(bytes).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code(), &e.status(), &[])
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>, content_type: &str) -> Response<Body> {
    let stream = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(StreamBody::new(stream).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// What the client accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Accept {
    /// Plain JSON objects.
    Json,
    /// A `Table`, rows carrying what `includeObject` says.
    Table(IncludeObject),
}

/// Picks a representation from `Accept`: a Table when offered first, JSON when offered at all.
fn negotiate(header: Option<&str>, include: IncludeObject) -> Result<Accept, ApiError> {
    let Some(header) = header else {
        return Ok(Accept::Json);
    };
    for part in header.split(',') {
        let part = part.trim();
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let params: Vec<&str> = params.collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        match (media, as_) {
            ("application/json" | "application/yaml" | "*/*" | "application/*", None) => {
                return Ok(Accept::Json);
            }
            ("application/json", Some("Table")) => return Ok(Accept::Table(include)),
            _ => {}
        }
    }
    if header.trim().is_empty() {
        return Ok(Accept::Json);
    }
    Err(ApiError::NotAcceptable)
}

impl Server {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let started = std::time::Instant::now();
        let response = match self.route(req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
        log::debug!(
            "{method} {path} -> {} ({:?})",
            response.status().as_u16(),
            started.elapsed()
        );
        response
    }

    fn authenticate(&self, req: &Request<Incoming>) -> Result<User, ApiError> {
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Why: client-go does not send bearer tokens over plain HTTP, so the plain-HTTP mode
        // works like the API server's old insecure port: no credentials means the admin.
        if header.is_empty() && self.plain_http {
            return Ok(User::admin());
        }
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let user = self
            .tokens
            .user(token.trim())
            .ok_or(ApiError::Unauthorized)?;
        if !auth::service_account_exists(&self.world.lock(), &user) {
            return Err(ApiError::Unauthorized);
        }
        Ok(user)
    }

    async fn route(self: &Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_string();
        if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
            return Ok(Response::builder()
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from_static(b"ok")).boxed())
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())));
        }
        let user = self.authenticate(&req)?;
        let query = parse_query(req.uri().query());
        let segs: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let get_only = |doc: Option<Value>| -> Result<Response<Body>, ApiError> {
            if req.method() != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            doc.map(|d| json_response(200, &d, &[]))
                .ok_or(ApiError::NoSuchPath)
        };
        match segs.as_slice() {
            ["version"] => return get_only(Some(resources::version_doc())),
            ["api"] => return get_only(Some(resources::core_versions(&self.address))),
            ["apis"] => return get_only(Some(resources::group_list())),
            ["api", "v1"] => return get_only(resources::resource_list("", "v1")),
            ["apis", group] => return get_only(resources::group(group)),
            ["apis", group, version] => return get_only(resources::resource_list(group, version)),
            ["openapi", "v3"] => return get_only(Some(resources::openapi_index())),
            ["openapi", "v3", "api", "v1"] => {
                return get_only(resources::openapi_group_version("", "v1"));
            }
            ["openapi", "v3", "apis", group, version] => {
                return get_only(resources::openapi_group_version(group, version));
            }
            _ => {}
        }
        let (group, version, rest) = match segs.as_slice() {
            ["api", "v1", rest @ ..] => ("", "v1", rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(ApiError::NoSuchPath),
        };
        let (r, target) = resolve(group, version, rest).ok_or(ApiError::NoSuchPath)?;
        self.dispatch(req, user, r, target, query).await
    }

    async fn dispatch(
        self: &Arc<Self>,
        req: Request<Incoming>,
        user: User,
        r: ResourceId,
        target: Target,
        query: HashMap<String, String>,
    ) -> Result<Response<Body>, ApiError> {
        let res = &RESOURCES[r];
        let method = req.method().clone();
        let watching = matches!(
            query.get("watch").map(String::as_str),
            Some("true") | Some("1")
        );
        let (verb, ns, name, sub) = match (&target, &method) {
            (Target::Collection { ns }, &Method::GET) => (
                if watching { "watch" } else { "list" },
                ns.clone().unwrap_or_default(),
                String::new(),
                String::new(),
            ),
            (Target::Collection { ns }, &Method::POST) => (
                "create",
                ns.clone().unwrap_or_default(),
                String::new(),
                String::new(),
            ),
            (Target::Collection { ns }, &Method::DELETE) => (
                "deletecollection",
                ns.clone().unwrap_or_default(),
                String::new(),
                String::new(),
            ),
            (Target::Object { ns, name }, m) => {
                let verb = match *m {
                    Method::GET => {
                        if watching {
                            "watch"
                        } else {
                            "get"
                        }
                    }
                    Method::PUT => "update",
                    Method::PATCH => "patch",
                    Method::DELETE => "delete",
                    _ => return Err(ApiError::MethodNotAllowed),
                };
                (verb, ns.clone(), name.clone(), String::new())
            }
            (Target::Sub { ns, name, sub }, m) => {
                if !res.subresources.contains(&sub.as_str()) {
                    return Err(ApiError::NoSuchPath);
                }
                let verb = match (m, sub.as_str()) {
                    (&Method::GET, _) => "get",
                    (&Method::PUT, "status") => "update",
                    (&Method::PATCH, "status") => "patch",
                    _ => return Err(ApiError::MethodNotAllowed),
                };
                (verb, ns.clone(), name.clone(), sub.clone())
            }
            _ => return Err(ApiError::MethodNotAllowed),
        };
        if res.create_only && verb != "create" {
            return Err(ApiError::MethodNotAllowed);
        }
        if !res.create_only && res.namespaced && ns.is_empty() && !matches!(verb, "list" | "watch")
        {
            return Err(ApiError::NoSuchPath);
        }
        let attrs = Attributes {
            verb: verb.to_string(),
            group: res.group.to_string(),
            resource: res.plural.to_string(),
            subresource: sub.clone(),
            namespace: ns.clone(),
            name: name.clone(),
        };
        if !auth::allowed(&self.world.lock(), &user, &attrs) {
            return Err(ApiError::Forbidden(attrs.forbidden_message(&user)));
        }
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
        let accept_header = req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let user_agent = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = read_body(req).await?;
        let accept = || negotiate(accept_header.as_deref(), include);
        let write_opts = || write_options(&query, &user_agent);
        let world = &self.world;
        match verb {
            "list" => {
                let labels =
                    LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
                let fields =
                    FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), r)?;
                let limit = match query.get("limit").map(String::as_str) {
                    None | Some("") | Some("0") => None,
                    Some(l) => Some(
                        l.parse::<usize>()
                            .map_err(|_| ApiError::BadRequest(format!("invalid limit {l:?}")))?,
                    ),
                };
                let ns = (!ns.is_empty()).then_some(ns.as_str());
                let list = world.list(
                    r,
                    ns,
                    &labels,
                    &fields,
                    limit,
                    query
                        .get("continue")
                        .map(String::as_str)
                        .filter(|c| !c.is_empty()),
                )?;
                let out = match accept()? {
                    Accept::Json => list,
                    Accept::Table(include) => {
                        let items: Vec<Value> =
                            list["items"].as_array().cloned().unwrap_or_default();
                        table::table(r, &items, list["metadata"].clone(), include, true)
                    }
                };
                Ok(json_response(200, &out, &[]))
            }
            "watch" => {
                let mut fields =
                    FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), r)?;
                if !name.is_empty() {
                    fields = FieldSelector::parse(&format!("metadata.name={name}"), r)?;
                }
                let labels =
                    LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
                let start = match query.get("resourceVersion").map(String::as_str) {
                    None | Some("") | Some("0") => Start::Current,
                    Some(v) => Start::After(v.parse().map_err(|_| {
                        ApiError::BadRequest(format!("invalid resource version: {v}"))
                    })?),
                };
                let send_initial =
                    query.get("sendInitialEvents").map(String::as_str) == Some("true");
                let bookmarks =
                    query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
                if send_initial && !bookmarks {
                    return Err(ApiError::invalid_list_options(
                        "sendInitialEvents",
                        "sendInitialEvents is forbidden for watch unless allowWatchBookmarks=true",
                    ));
                }
                let start = if send_initial { Start::Current } else { start };
                let timeout = match query.get("timeoutSeconds") {
                    Some(t) => Duration::from_secs(t.parse().map_err(|_| {
                        ApiError::BadRequest(format!("invalid timeoutSeconds {t:?}"))
                    })?),
                    None => Duration::from_secs(1800),
                };
                let table = match accept()? {
                    Accept::Json => None,
                    Accept::Table(include) => Some(include),
                };
                let request = WatchRequest {
                    resource: r,
                    namespace: (!ns.is_empty()).then(|| ns.clone()),
                    labels,
                    fields,
                    start,
                    bookmarks,
                    send_initial,
                    timeout,
                    table,
                    bookmark_interval: self.bookmark_interval,
                };
                Ok(stream_response(
                    watch::start(Arc::clone(world), request),
                    "application/json",
                ))
            }
            "get" if sub == "log" => self.pod_log(&ns, &name, &query).await,
            "get" => {
                let object = world.get(r, &ns, &name)?;
                let out = match accept()? {
                    Accept::Json => object,
                    Accept::Table(include) => table::table(
                        r,
                        std::slice::from_ref(&object),
                        json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
                        include,
                        true,
                    ),
                };
                Ok(json_response(200, &out, &[]))
            }
            "create" => {
                let body = parse_body(&body, &content_type)?;
                if r == ids::SELFSUBJECTACCESSREVIEWS {
                    let review = auth::review(&world.lock(), &user, &body);
                    return Ok(json_response(201, &review, &[]));
                }
                let written = world.create(r, &ns, body, &write_opts()?)?;
                world.record_warnings(&written.warnings);
                Ok(json_response(201, &written.object, &written.warnings))
            }
            "update" => {
                let body = parse_body(&body, &content_type)?;
                let part = if sub == "status" {
                    Part::Status
                } else {
                    Part::Main
                };
                let written = world.update(r, &ns, &name, body, part, &write_opts()?)?;
                world.record_warnings(&written.warnings);
                Ok(json_response(200, &written.object, &written.warnings))
            }
            "patch" => {
                let media = content_type.split(';').next().unwrap_or("").trim();
                let patch_type = match media {
                    "application/merge-patch+json" => PatchType::Merge,
                    "application/json-patch+json" => PatchType::Json,
                    "application/strategic-merge-patch+json" => PatchType::Strategic,
                    "application/apply-patch+yaml" | "application/apply-patch+json" => {
                        PatchType::Apply
                    }
                    _ => {
                        return Err(ApiError::UnsupportedMediaType(
                            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json".into(),
                        ));
                    }
                };
                let patch = if patch_type == PatchType::Apply {
                    parse_yaml(&body)?
                } else {
                    serde_json::from_slice(&body)
                        .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?
                };
                let part = if sub == "status" {
                    Part::Status
                } else {
                    Part::Main
                };
                let mut opts = write_opts()?;
                opts.force = query.get("force").map(String::as_str) == Some("true");
                if patch_type == PatchType::Apply {
                    opts.field_manager = query.get("fieldManager").cloned();
                }
                let written = world.patch(r, &ns, &name, patch_type, &patch, part, &opts)?;
                world.record_warnings(&written.warnings);
                Ok(json_response(
                    if written.created { 201 } else { 200 },
                    &written.object,
                    &written.warnings,
                ))
            }
            "delete" => {
                let opts = delete_options(&query, &body)?;
                let (object, gone) = world.delete(r, &ns, &name, &opts)?;
                let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
                // Why: a real server returns the object while it still exists (finalizers,
                // graceful deletion) and for pods; otherwise a Success Status.
                if gone && r != ids::PODS {
                    Ok(json_response(
                        200,
                        &status::delete_success(res, &name, &uid),
                        &[],
                    ))
                } else {
                    Ok(json_response(if gone { 200 } else { 202 }, &object, &[]))
                }
            }
            "deletecollection" => {
                let opts = delete_options(&query, &body)?;
                let labels =
                    LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
                let fields =
                    FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), r)?;
                let scope = (!ns.is_empty()).then_some(ns.as_str());
                let list = world.list(r, scope, &labels, &fields, None, None)?;
                let mut items = Vec::new();
                for item in list["items"].as_array().into_iter().flatten() {
                    let item_ns = item["metadata"]["namespace"].as_str().unwrap_or("");
                    let item_name = item["metadata"]["name"].as_str().unwrap_or("");
                    if let Ok((object, _)) = world.delete(r, item_ns, item_name, &opts) {
                        items.push(object);
                    }
                }
                let mut out = list;
                out["items"] = json!(items);
                Ok(json_response(200, &out, &[]))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn pod_log(
        &self,
        ns: &str,
        name: &str,
        query: &HashMap<String, String>,
    ) -> Result<Response<Body>, ApiError> {
        let pod = self.world.get(ids::PODS, ns, name)?;
        let containers: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                pod["spec"]["initContainers"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        let main: Vec<&String> = containers
            .iter()
            .take(pod["spec"]["containers"].as_array().map_or(0, Vec::len))
            .collect();
        let container = match query.get("container").filter(|c| !c.is_empty()) {
            Some(c) if containers.contains(c) => c.clone(),
            Some(c) => {
                return Err(ApiError::BadRequest(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            None if main.len() == 1 => main[0].clone(),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    main.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
            }
        };
        let flag = |k: &str| matches!(query.get(k).map(String::as_str), Some("true") | Some("1"));
        let since = match (query.get("sinceTime"), query.get("sinceSeconds")) {
            (Some(t), _) => Some(
                crate::clock::parse_rfc3339(t)
                    .ok_or_else(|| ApiError::BadRequest(format!("invalid sinceTime {t:?}")))?,
            ),
            (None, Some(s)) => {
                let secs: u64 = s
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid sinceSeconds {s:?}")))?;
                Some(std::time::SystemTime::now() - Duration::from_secs(secs))
            }
            _ => None,
        };
        let tail_lines = match query.get("tailLines") {
            Some(t) => Some(
                t.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid tailLines {t:?}")))?,
            ),
            None => None,
        };
        match &self.kubelet {
            Some(kubelet) => {
                let request = LogRequest {
                    pod,
                    container,
                    follow: flag("follow"),
                    timestamps: flag("timestamps"),
                    tail_lines,
                    since,
                    previous: flag("previous"),
                };
                Ok(stream_response(kubelet.logs(request)?, "text/plain"))
            }
            // Why: without a kubelet no container ever starts; this is what a real server
            // answers for a container that is not running yet.
            None => Err(ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ))),
        }
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limited = Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge)
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    serde_yaml::from_slice::<Value>(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))
}

/// Parses a request body as JSON or YAML (by content type); protobuf is not served.
fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" => parse_yaml(body),
        _ => Err(ApiError::UnsupportedMediaType(
            "application/json, application/yaml".into(),
        )),
    }
}

/// `dryRun`, `fieldValidation` and `fieldManager` from the query.
fn write_options(
    query: &HashMap<String, String>,
    user_agent: &str,
) -> Result<WriteOptions, ApiError> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::invalid_list_options(
                "dryRun",
                &format!("Unsupported value: \"{other}\": supported values: \"All\""),
            ));
        }
    };
    let validation = match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            )));
        }
    };
    let manager = query
        .get("fieldManager")
        .cloned()
        .filter(|m| !m.is_empty())
        .or_else(|| {
            let prefix = user_agent.split('/').next().unwrap_or("");
            (!prefix.is_empty()).then(|| prefix.to_string())
        });
    Ok(WriteOptions {
        dry_run,
        validation,
        field_manager: manager,
        force: false,
        applying: false,
    })
}

/// Delete options from the body (`DeleteOptions`) and the query.
fn delete_options(query: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?
    };
    let policy = body["propagationPolicy"]
        .as_str()
        .map(str::to_string)
        .or_else(|| query.get("propagationPolicy").cloned());
    let orphan = body["orphanDependents"]
        .as_bool()
        .or_else(|| query.get("orphanDependents").map(|v| v == "true"));
    let propagation = match (policy.as_deref(), orphan) {
        (Some("Orphan"), _) => Some(Propagation::Orphan),
        (Some("Background"), _) => Some(Propagation::Background),
        (Some("Foreground"), _) => Some(Propagation::Foreground),
        (Some(other), _) => {
            return Err(ApiError::invalid_list_options(
                "propagationPolicy",
                &format!(
                    "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            ));
        }
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    };
    let dry_run = body["dryRun"]
        .as_array()
        .map(|a| a.iter().any(|v| v == "All"))
        .unwrap_or(false)
        || query.get("dryRun").map(String::as_str) == Some("All");
    let grace_period = body["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    Ok(DeleteOptions {
        propagation,
        dry_run,
        grace_period,
        precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        precondition_rv: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
    })
}

impl ApiError {
    /// `Invalid` for request options (`ListOptions`, `DeleteOptions`).
    pub(crate) fn invalid_list_options(field: &str, message: &str) -> Self {
        ApiError::Invalid {
            kind: "ListOptions.meta.k8s.io".into(),
            name: String::new(),
            causes: vec![crate::status::Cause::new(
                "FieldValueInvalid",
                field,
                message,
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_types_and_targets() {
        assert_eq!(
            resolve("", "v1", &["namespaces", "a", "pods", "p", "log"]),
            Some((
                ids::PODS,
                Target::Sub {
                    ns: "a".into(),
                    name: "p".into(),
                    sub: "log".into()
                }
            ))
        );
        assert_eq!(
            resolve("", "v1", &["namespaces", "a"]),
            Some((
                ids::NAMESPACES,
                Target::Object {
                    ns: String::new(),
                    name: "a".into()
                }
            ))
        );
        assert_eq!(
            resolve("", "v1", &["namespaces", "a", "status"]),
            Some((
                ids::NAMESPACES,
                Target::Sub {
                    ns: String::new(),
                    name: "a".into(),
                    sub: "status".into()
                }
            ))
        );
        assert_eq!(
            resolve("", "v1", &["pods"]),
            Some((ids::PODS, Target::Collection { ns: None }))
        );
        assert_eq!(resolve("", "v1", &["pods", "p"]), None);
        assert_eq!(
            resolve("batch", "v1", &["namespaces", "n", "jobs"]).map(|x| x.0),
            Some(ids::JOBS)
        );
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn accept_headers_pick_tables_or_json() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl), IncludeObject::Metadata).ok(),
            Some(Accept::Table(IncludeObject::Metadata))
        );
        assert_eq!(
            negotiate(Some("application/json, */*"), IncludeObject::Metadata).ok(),
            Some(Accept::Json)
        );
        assert!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf"),
                IncludeObject::Metadata
            )
            .is_err()
        );
    }
}
