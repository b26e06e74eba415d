//! In-process mock of the Resource Definitions API for the client's tests: an axum server on
//! `127.0.0.1:0` with an in-memory store that copies the API's quirks (create answers 200,
//! secrets come back as `secret_refs`, `class` defaults to `default`, 409 on delete is an array),
//! records every request, and can be scripted to fail in the ways the client must survive.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// HTTP method.
    pub(crate) method: Method,
    /// Raw (still percent-encoded) path.
    pub(crate) path: String,
    /// Raw query, empty when there was none.
    pub(crate) query: String,
    /// Request headers.
    pub(crate) headers: HeaderMap,
    /// Request body.
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// A header's value as text, if present.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    }
}

/// A scripted misbehaviour for one request.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Answer with this status, body and optional `Retry-After`, without touching the store.
    Reply {
        /// Status to answer.
        status: u16,
        /// Body to answer.
        body: String,
        /// `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// Apply the request, then answer with this status instead: the client loses the real answer.
    Lose {
        /// Status to answer.
        status: u16,
    },
    /// Apply the request, then stall this long before answering (the client times out).
    ApplyThenStall(Duration),
    /// Stall this long, then handle the request normally.
    Stall(Duration),
}

impl Fault {
    /// A bare status reply with a Humanitec error body.
    pub(crate) fn status(status: u16) -> Self {
        Fault::Reply {
            status,
            body: json!({"error": format!("API-{status}"), "message": "scripted failure"})
                .to_string(),
            retry_after: None,
        }
    }
}

/// A fault waiting for the first request that matches it.
#[derive(Debug)]
struct Scripted {
    /// Method to match.
    method: Method,
    /// The path must end with this.
    path_suffix: String,
    /// What to do.
    fault: Fault,
}

/// The mock's state.
#[derive(Debug, Default)]
struct Store {
    /// Definitions by id, as response JSON (criteria included).
    defs: BTreeMap<String, Value>,
    /// Definitions in use: id → the 409 change list.
    in_use: BTreeMap<String, Value>,
    /// Pending faults, first match wins.
    faults: VecDeque<Scripted>,
    /// When set, every request is answered with this status.
    always: Option<u16>,
    /// Every request received.
    requests: Vec<Recorded>,
    /// Last criterion id handed out.
    next_criterion: u64,
}

/// The mock server's handle.
#[derive(Debug, Default)]
pub(crate) struct Mock {
    /// Everything, behind one lock (requests are tiny).
    state: Mutex<Store>,
}

/// Starts a mock server; returns it and its base URL (`http://127.0.0.1:port/`).
pub(crate) async fn start() -> (Arc<Mock>, String) {
    let mock = Arc::new(Mock::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let addr = listener.local_addr().expect("mock address");
    let app = Router::new().fallback(handle).with_state(mock.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (mock, format!("http://{addr}/"))
}

impl Mock {
    /// Locks the state.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.state.lock().expect("mock lock")
    }

    /// Scripts a fault for the next `method` request whose path ends with `path_suffix`.
    pub(crate) fn fault(&self, method: Method, path_suffix: &str, fault: Fault) {
        self.lock().faults.push_back(Scripted {
            method,
            path_suffix: path_suffix.to_owned(),
            fault,
        });
    }

    /// Answers every request with `status` from now on.
    pub(crate) fn fail_always(&self, status: u16) {
        self.lock().always = Some(status);
    }

    /// Stores a definition directly (as if created earlier), with the given criteria rules.
    pub(crate) fn seed(&self, id: &str, type_: &str, driver_type: &str) {
        let body = json!({"id": id, "name": id, "type": type_, "driver_type": driver_type});
        let mut state = self.lock();
        let def = state.build_definition("my-org", &body);
        state.defs.insert(id.to_owned(), def);
    }

    /// Marks a definition as used by active resources.
    pub(crate) fn set_in_use(&self, id: &str, changes: Value) {
        self.lock().in_use.insert(id.to_owned(), changes);
    }

    /// The stored definitions.
    pub(crate) fn definitions(&self) -> BTreeMap<String, Value> {
        self.lock().defs.clone()
    }

    /// Every request received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// How many requests with this method and a path ending in `path_suffix` arrived.
    pub(crate) fn count(&self, method: &Method, path_suffix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }

    /// Takes the first fault matching the request.
    fn take_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut state = self.lock();
        if let Some(status) = state.always {
            return Some(Fault::status(status));
        }
        let index = state
            .faults
            .iter()
            .position(|s| s.method == method && path.ends_with(&s.path_suffix))?;
        state.faults.remove(index).map(|s| s.fault)
    }
}

/// The single handler: record, apply faults, route.
async fn handle(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    mock.lock().requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers,
        body: body.to_vec(),
    });
    match mock.take_fault(&method, &path) {
        Some(Fault::Reply {
            status,
            body,
            retry_after,
        }) => return respond(status, Some(body), retry_after.as_deref()),
        Some(Fault::Lose { status }) => {
            let _ = mock.lock().apply(&method, &path, &query, &body);
            return respond(status, None, None);
        }
        Some(Fault::ApplyThenStall(stall)) => {
            let answer = mock.lock().apply(&method, &path, &query, &body);
            tokio::time::sleep(stall).await;
            return answer;
        }
        Some(Fault::Stall(stall)) => tokio::time::sleep(stall).await,
        None => {}
    }
    mock.lock().apply(&method, &path, &query, &body)
}

/// Builds a response.
fn respond(status: u16, body: Option<String>, retry_after: Option<&str>) -> Response {
    let mut builder = Response::builder().status(status);
    if let Some(value) = retry_after {
        builder = builder.header("retry-after", value);
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    builder
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .expect("valid response")
}

/// A JSON answer.
fn json_answer(status: u16, value: &Value) -> Response {
    respond(status, Some(value.to_string()), None)
}

/// A Humanitec error answer.
fn error_answer(status: u16, message: &str) -> Response {
    json_answer(
        status,
        &json!({"error": format!("API-{status}"), "message": message}),
    )
}

impl Store {
    /// Applies a request to the store and produces the real answer.
    fn apply(&mut self, method: &Method, path: &str, query: &str, body: &[u8]) -> Response {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let ["orgs", org, "resources", "defs", rest @ ..] = segments.as_slice() else {
            return error_answer(404, "no such route");
        };
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => return error_answer(422, "invalid JSON"),
            }
        };
        let force = query.split('&').any(|p| p == "force=true");
        match (method.as_str(), rest) {
            ("POST", []) => self.create(org, &body),
            ("GET", []) => json_answer(200, &Value::Array(self.defs.values().cloned().collect())),
            ("GET", [id]) => match self.defs.get(*id) {
                Some(def) => json_answer(200, def),
                None => error_answer(404, "Resource Definition not found."),
            },
            ("PUT", [id]) => self.update(id, &body),
            ("DELETE", [id]) => {
                if !self.defs.contains_key(*id) {
                    return error_answer(404, "Resource Definition not found.");
                }
                if let (Some(changes), false) = (self.in_use.get(*id), force) {
                    return json_answer(409, changes);
                }
                self.defs.remove(*id);
                respond(204, None, None)
            }
            ("POST", [id, "criteria"]) => self.add_criterion(id, &body),
            ("DELETE", [id, "criteria", criterion]) => {
                let Some(list) = self
                    .defs
                    .get_mut(*id)
                    .and_then(|d| d["criteria"].as_array_mut())
                else {
                    return error_answer(404, "Resource Definition not found.");
                };
                let before = list.len();
                list.retain(|c| c["id"] != *criterion);
                if list.len() == before {
                    return error_answer(404, "Matching Criteria not found.");
                }
                respond(204, None, None)
            }
            _ => error_answer(405, "method not allowed"),
        }
    }

    /// `POST /resources/defs`.
    fn create(&mut self, org: &str, body: &Value) -> Response {
        let Some(id) = body["id"].as_str() else {
            return error_answer(400, "id is required");
        };
        if self.defs.contains_key(id) {
            return error_answer(409, "Resource Definition already exists.");
        }
        let def = self.build_definition(org, body);
        self.defs.insert(id.to_owned(), def.clone());
        json_answer(200, &def)
    }

    /// The stored form of a create body, the way the API reports it.
    fn build_definition(&mut self, org: &str, body: &Value) -> Value {
        let criteria: Vec<Value> = body["criteria"]
            .as_array()
            .map(|rules| rules.iter().map(|r| self.criterion(r)).collect())
            .unwrap_or_default();
        let mut def = json!({
            "org_id": org,
            "id": body["id"],
            "name": body["name"],
            "type": body["type"],
            "driver_type": body["driver_type"],
            "criteria": criteria,
            "is_default": false,
            "is_deleted": false,
            "created_at": "2026-01-01T00:00:00Z",
            "created_by": "mock-user",
            "active_version_id": "00000000-0000-0000-0000-000000000001",
            "in_place_driver_change": false,
            "a_field_from_the_future": {"nested": [1, 2]}
        });
        for key in ["driver_account", "provision"] {
            if !body[key].is_null() {
                def[key] = body[key].clone();
            }
        }
        if !body["driver_inputs"].is_null() {
            def["driver_inputs"] = store_inputs(&body["id"], &body["driver_inputs"]);
        }
        def
    }

    /// `PUT /resources/defs/{id}`: replaces the definition's fields.
    fn update(&mut self, id: &str, body: &Value) -> Response {
        let Some(def) = self.defs.get_mut(id) else {
            return error_answer(404, "Resource Definition not found.");
        };
        let Some(fields) = body.as_object() else {
            return error_answer(422, "expected an object");
        };
        for key in ["driver_account", "driver_inputs", "provision"] {
            if let Some(map) = def.as_object_mut() {
                map.remove(key);
            }
        }
        for (key, value) in fields {
            if value.is_null() || (key == "driver_type" && value == "") {
                continue;
            }
            def[key.as_str()] = if key == "driver_inputs" {
                store_inputs(&Value::String(id.to_owned()), value)
            } else {
                value.clone()
            };
        }
        def["updated_at"] = json!("2026-01-02T00:00:00Z");
        json_answer(200, def)
    }

    /// `POST /resources/defs/{id}/criteria`.
    fn add_criterion(&mut self, id: &str, rule: &Value) -> Response {
        if !self.defs.contains_key(id) {
            return error_answer(404, "Resource Definition not found.");
        }
        let criterion = self.criterion(rule);
        let Some(list) = self
            .defs
            .get_mut(id)
            .and_then(|d| d["criteria"].as_array_mut())
        else {
            return error_answer(500, "corrupt definition");
        };
        let same = |c: &Value| {
            ["app_id", "env_id", "env_type", "res_id", "class"]
                .iter()
                .all(|k| c[*k] == criterion[*k])
        };
        if list.iter().any(same) {
            return error_answer(409, "Matching Criteria already exists.");
        }
        list.push(criterion.clone());
        json_answer(200, &criterion)
    }

    /// A stored criterion: the rule with an id and a defaulted class.
    fn criterion(&mut self, rule: &Value) -> Value {
        self.next_criterion += 1;
        let mut criterion = rule.clone();
        criterion["id"] = json!(format!("crit-{}", self.next_criterion));
        if criterion["class"].as_str().is_none_or(str::is_empty) {
            criterion["class"] = json!("default");
        }
        criterion
    }
}

/// Driver inputs as the API stores them: `secrets` become references in `secret_refs`.
fn store_inputs(id: &Value, inputs: &Value) -> Value {
    let mut stored = Map::new();
    if !inputs["values"].is_null() {
        stored.insert("values".into(), inputs["values"].clone());
    }
    let mut refs = inputs["secret_refs"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(secrets) = inputs["secrets"].as_object() {
        for key in secrets.keys() {
            refs.insert(
                key.clone(),
                json!({
                    "ref": format!("orgs--my-org--resources--defs--{}--driver_secrets--{key}", id.as_str().unwrap_or("")),
                    "store": "primary",
                    "version": "1"
                }),
            );
        }
    }
    if !refs.is_empty() {
        stored.insert("secret_refs".into(), Value::Object(refs));
    }
    Value::Object(stored)
}
