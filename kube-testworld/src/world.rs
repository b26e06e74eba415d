//! The object store and the verbs on it: one resourceVersion counter for all writes, uids,
//! generation, generateName, creation and deletion timestamps, finalizers, garbage collection
//! through ownerReferences (background, foreground, orphan), namespace lifecycle, dry runs, schema
//! validation with warnings, the change history that watches read, and the audit of every
//! version ever stored (which tests read).
//!
//! All state sits behind one mutex that is never held across an `await`; watchers wait on a
//! `tokio::sync::watch` channel that carries the newest resourceVersion.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::clock;
use crate::kinds;
use crate::managed;
use crate::patch::{self, PatchError};
use crate::resources::{RESOURCES, ResourceId, ids};
use crate::schema::schemas;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, Cause};

/// Where an object lives: type, namespace (`""` for cluster-scoped) and name.
pub(crate) type Key = (ResourceId, String, String);

/// How many changes the history keeps before the oldest are compacted away.
const HISTORY_LIMIT: usize = 20_000;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    /// Created.
    Added,
    /// Written again.
    Modified,
    /// Removed.
    Deleted,
}

/// One entry of the change history.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The resourceVersion this change produced.
    pub(crate) rv: u64,
    /// The type of the object.
    pub(crate) resource: ResourceId,
    /// What happened.
    pub(crate) kind: ChangeType,
    /// The object before (absent for `Added`).
    pub(crate) old: Option<Value>,
    /// The object after (for `Deleted`, its last state with the deletion's resourceVersion).
    pub(crate) object: Value,
}

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FieldValidation {
    /// Dropped silently.
    Ignore,
    /// Dropped with a warning (the default).
    #[default]
    Warn,
    /// Refused with a 400.
    Strict,
}

/// Options of a create, update or patch.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    /// `dryRun=All`: everything but the write.
    pub(crate) dry_run: bool,
    /// `fieldValidation`.
    pub(crate) validation: FieldValidation,
    /// `fieldManager` (required for server-side apply).
    pub(crate) field_manager: Option<String>,
    /// `force` (server-side apply).
    pub(crate) force: bool,
    /// Set internally for server-side apply: managedFields are already computed.
    pub(crate) applying: bool,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Dependents are left, their ownerReferences to the owner removed.
    Orphan,
    /// The owner goes at once; the garbage collector removes dependents.
    Background,
    /// Dependents go first; the owner waits with the `foregroundDeletion` finalizer.
    Foreground,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    /// `propagationPolicy` (or `orphanDependents`); `None` is the type's default.
    pub(crate) propagation: Option<Propagation>,
    /// `dryRun=All`.
    pub(crate) dry_run: bool,
    /// `gracePeriodSeconds`.
    pub(crate) grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub(crate) precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub(crate) precondition_rv: Option<String>,
}

/// The patch formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The object (its `status` is kept for types with a status subresource).
    Main,
    /// The `status` subresource (only `status` changes).
    Status,
}

/// A successful write.
#[derive(Debug)]
pub(crate) struct Written {
    /// The object as stored (or as it would be, for a dry run).
    pub(crate) object: Value,
    /// Warnings for the response's `Warning` headers.
    pub(crate) warnings: Vec<String>,
    /// Whether the write created the object (201 rather than 200).
    pub(crate) created: bool,
}

/// The mutable state.
#[derive(Debug, Default)]
pub(crate) struct State {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Change>,
    /// Changes at or below this resourceVersion are gone (410 for watches from before it).
    compacted: u64,
    /// When set, pods bound to the node are deleted gracefully (the kubelet finishes them).
    pub(crate) graceful_pods: bool,
    /// Every version of every object ever stored, in order; never compacted.
    audit: Vec<Value>,
}

/// The test world's API state, shared by the server, the controllers and the test handle.
pub(crate) struct World {
    state: Mutex<State>,
    changes: tokio::sync::watch::Sender<u64>,
    disconnects: tokio::sync::watch::Sender<u64>,
    warnings: Mutex<Vec<String>>,
    /// How many watches were answered `410 Expired`.
    expired: std::sync::atomic::AtomicU64,
    /// PEM of the CA clients trust (published in `kube-root-ca.crt`).
    pub(crate) ca_pem: String,
}

/// Extracts `metadata.<field>` as a string.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or("")
}

/// The key of an object of type `r` (its namespace ignored for cluster-scoped types).
fn key_of(r: ResourceId, object: &Value) -> Key {
    let ns = if RESOURCES[r].namespaced {
        meta_str(object, "namespace").to_string()
    } else {
        String::new()
    };
    (r, ns, meta_str(object, "name").to_string())
}

impl State {
    /// The newest resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch can still start from.
    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    /// The changes after `rv`.
    pub(crate) fn changes_after(&self, rv: u64) -> impl Iterator<Item = &Change> {
        let start = self.history.partition_point(|c| c.rv <= rv);
        self.history.range(start..)
    }

    /// An object by key.
    pub(crate) fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// All objects of a type, optionally within one namespace, in key order.
    pub(crate) fn iter_type(
        &self,
        r: ResourceId,
        ns: Option<&str>,
    ) -> impl Iterator<Item = &Value> {
        let start = (r, ns.unwrap_or("").to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(move |((rr, n, _), _)| *rr == r && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, change: Change) {
        // Why: every write (create, update, patch, status, deletion) passes here, so the audit
        // is complete; a copy per write is cheap in a world of a few hundred objects.
        self.audit.push(change.object.clone());
        self.history.push_back(change);
        while self.history.len() > HISTORY_LIMIT {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.rv;
            }
        }
    }

    /// Stores a new object, giving it the next resourceVersion.
    fn insert(&mut self, r: ResourceId, mut object: Value) -> Value {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key_of(r, &object), object.clone());
        self.record(Change {
            rv,
            resource: r,
            kind: ChangeType::Added,
            old: None,
            object: object.clone(),
        });
        object
    }

    /// Replaces a stored object, giving it the next resourceVersion.
    fn replace(&mut self, r: ResourceId, mut object: Value) -> Value {
        let key = key_of(r, &object);
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let old = self.objects.insert(key, object.clone());
        self.record(Change {
            rv,
            resource: r,
            kind: ChangeType::Modified,
            old,
            object: object.clone(),
        });
        object
    }

    /// Removes a stored object; the DELETED event carries a fresh resourceVersion.
    fn remove(&mut self, key: &Key) -> Option<Value> {
        let old = self.objects.remove(key)?;
        let rv = self.next_rv();
        let mut object = old.clone();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(Change {
            rv,
            resource: key.0,
            kind: ChangeType::Deleted,
            old: Some(old),
            object: object.clone(),
        });
        Some(object)
    }

    /// Whether something still holds a deleted object: finalizers, a namespace's
    /// `spec.finalizers`, or (with a kubelet) a pod whose containers have not stopped yet.
    fn held(&self, r: ResourceId, object: &Value) -> bool {
        let finalizers = object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let namespace = r == ids::NAMESPACES
            && object["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
        finalizers || namespace || self.pod_waits_for_kubelet(r, object)
    }

    /// Whether a deleted pod must wait for the kubelet to stop its containers.
    fn pod_waits_for_kubelet(&self, r: ResourceId, object: &Value) -> bool {
        r == ids::PODS
            && self.graceful_pods
            && object["spec"].get("nodeName").is_some()
            && !matches!(
                object["status"]["phase"].as_str(),
                Some("Succeeded") | Some("Failed")
            )
            && object["metadata"]["deletionGracePeriodSeconds"].as_i64() != Some(0)
    }

    /// Deletes an object the way the API server's registry does: at once, or, when something
    /// holds it (see [`State::held`]) or the propagation policy asks for it, by setting
    /// `deletionTimestamp`. Returns the object and whether it is gone.
    fn delete_key(
        &mut self,
        key: &Key,
        propagation: Propagation,
        grace: Option<i64>,
    ) -> Option<(Value, bool)> {
        let mut object = self.objects.get(key)?.clone();
        let already = object["metadata"].get("deletionTimestamp").is_some();
        if already {
            if grace == Some(0) && key.0 == ids::PODS {
                object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                if !self.held(key.0, &object) {
                    self.insert_quiet(key.0, object);
                    return self.remove(key).map(|o| (o, true));
                }
            }
            return Some((object, false));
        }
        let mut finalizers: Vec<Value> = object["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let add = match propagation {
            Propagation::Foreground => Some("foregroundDeletion"),
            Propagation::Orphan => Some("orphan"),
            Propagation::Background => None,
        };
        if let Some(f) = add
            && self.has_dependents(meta_str(&object, "uid"))
            && !finalizers.contains(&json!(f))
        {
            finalizers.push(json!(f));
        }
        if !finalizers.is_empty() {
            object["metadata"]["finalizers"] = json!(finalizers);
        }
        let grace_secs = if key.0 == ids::PODS {
            grace.unwrap_or_else(|| {
                object["spec"]["terminationGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(30)
            })
        } else {
            0
        };
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace_secs);
        if !self.held(key.0, &object) {
            return self.remove(key).map(|o| (o, true));
        }
        object["metadata"]["deletionTimestamp"] = json!(clock::now_rfc3339());
        if key.0 == ids::NAMESPACES {
            object["status"]["phase"] = json!("Terminating");
        }
        Some((self.replace(key.0, object), false))
    }

    fn has_dependents(&self, uid: &str) -> bool {
        !uid.is_empty()
            && self
                .objects
                .values()
                .any(|o| owner_uids(o).any(|u| u == uid))
    }

    /// Runs the garbage collector and the namespace finalizer until nothing changes.
    fn sweep(&mut self) {
        for _ in 0..64 {
            if !self.sweep_once() {
                return;
            }
        }
        log::warn!("garbage collection did not settle after 64 rounds");
    }

    fn sweep_once(&mut self) -> bool {
        let mut changed = false;
        let deleting = |o: &Value| o["metadata"].get("deletionTimestamp").is_some();
        let has_finalizer = |o: &Value, f: &str| {
            deleting(o)
                && o["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|fs| fs.contains(&json!(f)))
        };
        // 1. The content of namespaces that are terminating or gone.
        let namespaces: HashMap<String, bool> = self
            .iter_type(ids::NAMESPACES, None)
            .map(|n| (meta_str(n, "name").to_string(), deleting(n)))
            .collect();
        let content: Vec<Key> = self
            .objects
            .iter()
            .filter(|((_, ns, _), o)| {
                !ns.is_empty()
                    && namespaces.get(ns).is_none_or(|terminating| *terminating)
                    && !deleting(o)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in content {
            self.delete_key(&key, Propagation::Background, None);
            changed = true;
        }
        // 2. Dependents whose owners are gone (or deleting in the foreground), and dependents to
        // orphan.
        let owners: HashMap<String, Value> = self
            .objects
            .values()
            .map(|o| (meta_str(o, "uid").to_string(), o.clone()))
            .collect();
        let mut orphaned: Vec<(Key, HashSet<String>)> = Vec::new();
        let mut collect: Vec<Key> = Vec::new();
        for (key, object) in &self.objects {
            let refs: Vec<&str> = owner_uids(object).collect();
            if refs.is_empty() {
                continue;
            }
            let orphan_from: HashSet<String> = refs
                .iter()
                .filter(|u| owners.get(**u).is_some_and(|o| has_finalizer(o, "orphan")))
                .map(|u| u.to_string())
                .collect();
            let all_gone = refs.iter().all(|u| {
                owners
                    .get(*u)
                    .is_none_or(|o| has_finalizer(o, "foregroundDeletion"))
            });
            if !orphan_from.is_empty() {
                orphaned.push((key.clone(), orphan_from));
            } else if all_gone && !deleting(object) {
                collect.push(key.clone());
            }
        }
        for (key, uids) in orphaned {
            if let Some(mut o) = self.objects.get(&key).cloned() {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| !uids.contains(r["uid"].as_str().unwrap_or("")));
                }
                if o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                    && let Some(m) = o["metadata"].as_object_mut()
                {
                    m.remove("ownerReferences");
                }
                self.replace(key.0, o);
                changed = true;
            }
        }
        for key in collect {
            self.delete_key(&key, Propagation::Background, None);
            changed = true;
        }
        // 3. Deleted objects whose holds are released.
        let waiting: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(_, o)| deleting(o))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (key, mut object) in waiting {
            let before = object.clone();
            if !self.has_dependents(meta_str(&object, "uid"))
                && let Some(fs) = object["metadata"]
                    .get_mut("finalizers")
                    .and_then(Value::as_array_mut)
            {
                fs.retain(|f| f != "foregroundDeletion" && f != "orphan");
            }
            if object["metadata"]["finalizers"]
                .as_array()
                .is_some_and(Vec::is_empty)
                && let Some(m) = object["metadata"].as_object_mut()
            {
                m.remove("finalizers");
            }
            if key.0 == ids::NAMESPACES
                && self.objects.keys().all(|(_, ns, _)| *ns != key.2)
                && let Some(fs) = object["spec"]["finalizers"].as_array_mut()
            {
                fs.clear();
            }
            if !self.held(key.0, &object) {
                self.insert_quiet(key.0, object);
                self.remove(&key);
                changed = true;
            } else if object != before {
                self.replace(key.0, object);
                changed = true;
            }
        }
        changed
    }
}

/// The uids in an object's ownerReferences.
pub(crate) fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

/// Whether the two objects differ in more than resourceVersion and managedFields.
fn differs(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) != strip(b)
}

impl World {
    /// An empty world with the default namespaces, their `default` service accounts and
    /// `kube-root-ca.crt` ConfigMaps.
    pub(crate) fn new(ca_pem: String) -> Self {
        let world = World {
            state: Mutex::new(State::default()),
            changes: tokio::sync::watch::Sender::new(0),
            disconnects: tokio::sync::watch::Sender::new(0),
            warnings: Mutex::new(Vec::new()),
            expired: std::sync::atomic::AtomicU64::new(0),
            ca_pem,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(e) = world.create(ids::NAMESPACES, "", body, &WriteOptions::default()) {
                log::error!("could not create namespace {ns}: {e}");
            }
        }
        world
    }

    /// Locks the state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Why: a panic while holding the lock leaves the store consistent (every write is a
        // single insert), so a poisoned lock is recovered rather than propagated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes watchers after a write.
    fn notify(&self, rv: u64) {
        self.changes.send_replace(rv);
    }

    /// A receiver that sees every new resourceVersion.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver that changes when tests force every watch to disconnect.
    pub(crate) fn subscribe_disconnects(&self) -> tokio::sync::watch::Receiver<u64> {
        self.disconnects.subscribe()
    }

    /// Ends every open watch (as a load balancer or an API server restart would).
    pub(crate) fn disconnect_watches(&self) {
        self.disconnects.send_modify(|n| *n += 1);
    }

    /// Forgets the change history: every resourceVersion handed out so far becomes too old,
    /// so a watch from any of them gets `410 Gone`.
    pub(crate) fn compact(&self) {
        let mut state = self.lock();
        // Why: a watch from the newest version misses nothing and would stay valid; skipping
        // one version makes every version a client holds expire, as a compaction after a
        // further write does on a real server.
        state.rv += 1;
        state.compacted = state.rv;
        state.history.clear();
    }

    /// Every version of every object ever stored, oldest first, compaction or not.
    pub(crate) fn audit(&self) -> Vec<Value> {
        self.lock().audit.clone()
    }

    /// Turns graceful pod deletion on (a kubelet will stop the containers and finish it).
    pub(crate) fn set_graceful_pods(&self) {
        self.lock().graceful_pods = true;
    }

    /// Counts a watch answered with `410 Expired`.
    pub(crate) fn count_expired(&self) {
        self.expired
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many watches were answered with `410 Expired`.
    pub(crate) fn expired_watches(&self) -> u64 {
        self.expired.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records warnings sent to clients.
    pub(crate) fn record_warnings(&self, warnings: &[String]) {
        if !warnings.is_empty() {
            let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
            w.extend(warnings.iter().cloned());
        }
    }

    /// Every warning sent so far.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads one object.
    pub(crate) fn get(&self, r: ResourceId, ns: &str, name: &str) -> Result<Value, ApiError> {
        let ns = if RESOURCES[r].namespaced { ns } else { "" };
        self.lock()
            .get(&(r, ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&RESOURCES[r], name))
    }

    /// Lists objects (all namespaces when `ns` is `None`), with selectors and pagination.
    pub(crate) fn list(
        &self,
        r: ResourceId,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_from: Option<&str>,
    ) -> Result<Value, ApiError> {
        let state = self.lock();
        let res = &RESOURCES[r];
        let mut items: Vec<Value> = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        let after = match continue_from {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        for object in state.iter_type(r, ns) {
            let position = format!(
                "{}/{}",
                meta_str(object, "namespace"),
                meta_str(object, "name")
            );
            if after
                .as_ref()
                .is_some_and(|a| position.as_str() <= a.as_str())
            {
                continue;
            }
            if !labels.matches(object) || !fields.matches(object) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            if limit.is_some_and(|l| items.len() + 1 == l) {
                next = Some(position);
            }
            let mut item = object.clone();
            if let Some(m) = item.as_object_mut() {
                // Why: a real server omits kind and apiVersion on the items of a typed list.
                m.remove("kind");
                m.remove("apiVersion");
            }
            items.push(item);
        }
        let mut metadata = json!({"resourceVersion": state.rv.to_string()});
        if remaining > 0
            && let Some(position) = next
        {
            use base64::Engine;
            metadata["continue"] = json!(base64::engine::general_purpose::STANDARD.encode(
                json!({"v": "meta.k8s.io/v1", "rv": state.rv, "start": position}).to_string()
            ));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": res.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Checks kind and apiVersion of a request body, validates it against the schema and returns
    /// the warnings and the semantic causes found.
    fn check_body(
        &self,
        r: ResourceId,
        body: &mut Value,
        opts: &WriteOptions,
    ) -> Result<(Vec<String>, Vec<Cause>), ApiError> {
        let res = &RESOURCES[r];
        if !body.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body of the request was not a {} object",
                res.kind
            )));
        }
        // Why: the API server decodes a body with the endpoint's group, version and kind as
        // defaults, so a body without them (client-go's dynamic client sends such) is accepted.
        if body["kind"].as_str().is_none_or(str::is_empty) {
            body["kind"] = json!(res.kind);
        }
        if body["apiVersion"].as_str().is_none_or(str::is_empty) {
            body["apiVersion"] = json!(res.api_version());
        }
        let kind = body["kind"].as_str().unwrap_or("");
        let api_version = body["apiVersion"].as_str().unwrap_or("");
        if kind != res.kind || api_version != res.api_version() {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                res.api_version()
            ))
            .or_kind_mismatch(kind, res.kind));
        }
        let findings = schemas().validate(&res.api_version(), res.kind, body);
        if let Some(first) = findings.type_errors.first() {
            return Err(ApiError::BadRequest(format!(
                "{} in version \"{}\" cannot be handled as a {}: {first}",
                res.kind, res.version, res.kind
            )));
        }
        let unknown: Vec<String> = findings
            .unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        let warnings = match opts.validation {
            FieldValidation::Strict if !unknown.is_empty() => {
                return Err(ApiError::BadRequest(format!(
                    "strict decoding error: {}",
                    unknown.join(", ")
                )));
            }
            FieldValidation::Warn => unknown,
            _ => Vec::new(),
        };
        Ok((warnings, findings.causes))
    }

    /// Creates an object in namespace `ns` (`""` for cluster-scoped types).
    pub(crate) fn create(
        &self,
        r: ResourceId,
        ns: &str,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let res = &RESOURCES[r];
        let (warnings, mut causes) = self.check_body(r, &mut body, opts)?;
        if !body["metadata"].is_object() {
            body["metadata"] = json!({});
        }
        let meta = &mut body["metadata"];
        if res.namespaced {
            match meta["namespace"].as_str() {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => meta["namespace"] = json!(ns),
            }
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        if meta["resourceVersion"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(ApiError::Internal(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let mut state = self.lock();
        if res.namespaced {
            let ns_key = (ids::NAMESPACES, String::new(), ns.to_string());
            match state.get(&ns_key) {
                None => return Err(ApiError::not_found(&RESOURCES[ids::NAMESPACES], ns)),
                Some(n) if n["metadata"].get("deletionTimestamp").is_some() => {
                    return Err(ApiError::Forbidden(format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        res.qualified(),
                        meta_str(&body, "name")
                    )));
                }
                Some(_) => {}
            }
        }
        let meta = &mut body["metadata"];
        let name = match meta["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta["generateName"].as_str().filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let mut candidate = format!("{prefix}{}", clock::name_suffix());
                    for _ in 0..8 {
                        if state
                            .get(&(
                                r,
                                if res.namespaced {
                                    ns.to_string()
                                } else {
                                    String::new()
                                },
                                candidate.clone(),
                            ))
                            .is_none()
                        {
                            break;
                        }
                        candidate = format!("{prefix}{}", clock::name_suffix());
                    }
                    candidate
                }
                None => {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                    String::new()
                }
            },
        };
        meta["name"] = json!(name);
        meta["uid"] = json!(clock::new_uid());
        meta["creationTimestamp"] = json!(clock::now_rfc3339());
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        if res.has_generation {
            meta["generation"] = json!(1);
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("generation");
        }
        if !name.is_empty() {
            causes.extend(kinds::validate_name(res, &name));
        }
        if let Some(m) = body.as_object_mut() {
            // Why: status is written by controllers through the status subresource; on create
            // the API server resets it.
            if res.has_status_subresource() {
                m.remove("status");
            }
        }
        match r {
            ids::PODS => body["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
            ids::NAMESPACES => body["status"] = json!({"phase": "Active"}),
            ids::JOBS => body["status"] = json!({}),
            _ => {}
        }
        causes.extend(kinds::prepare(r, &mut body, None));
        if !causes.is_empty() {
            return Err(ApiError::invalid(res, &name, causes));
        }
        if r == ids::PODS {
            admit_service_account(&state, ns, &name, &mut body)?;
        }
        if r == ids::SELFSUBJECTACCESSREVIEWS {
            return Err(ApiError::Internal(
                "reviews are answered by the server".into(),
            ));
        }
        if !opts.applying {
            let manager = opts.field_manager.as_deref().unwrap_or("unknown");
            managed::record_update(None, &mut body, manager, &res.api_version(), "");
        }
        let key = key_of(r, &body);
        if state.get(&key).is_some() {
            return Err(ApiError::AlreadyExists {
                resource: res.qualified(),
                name,
            });
        }
        if opts.dry_run {
            return Ok(Written {
                object: body,
                warnings,
                created: true,
            });
        }
        let object = state.insert(r, body);
        if r == ids::NAMESPACES {
            self.populate_namespace(&mut state, &name);
        }
        state.sweep();
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok(Written {
            object,
            warnings,
            created: true,
        })
    }

    /// What the service-account and root-CA controllers put into every new namespace.
    fn populate_namespace(&self, state: &mut State, ns: &str) {
        let now = clock::now_rfc3339();
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": "default", "namespace": ns, "uid": clock::new_uid(), "creationTimestamp": now}});
        let ca = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "kube-root-ca.crt", "namespace": ns, "uid": clock::new_uid(), "creationTimestamp": now,
            "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": self.ca_pem}});
        state.insert(ids::SERVICEACCOUNTS, sa);
        state.insert(ids::CONFIGMAPS, ca);
    }

    /// Replaces an object (PUT), or its status.
    pub(crate) fn update(
        &self,
        r: ResourceId,
        ns: &str,
        name: &str,
        mut body: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let res = &RESOURCES[r];
        let (warnings, causes) = self.check_body(r, &mut body, opts)?;
        let body_name = meta_str(&body, "name");
        if body_name.is_empty() {
            return Err(ApiError::invalid(
                res,
                name,
                vec![Cause::required("metadata.name")],
            ));
        }
        if body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if res.namespaced {
            let body_ns = meta_str(&body, "namespace");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        let state = self.lock();
        let key: Key = (
            r,
            if res.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        );
        let old = state
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        let wanted_rv = meta_str(&body, "resourceVersion");
        if !wanted_rv.is_empty() && wanted_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(res, name));
        }
        self.finish_update(state, r, old, body, part, opts, warnings, causes)
    }

    /// Patches an object or its status; server-side apply creates it when missing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &self,
        r: ResourceId,
        ns: &str,
        name: &str,
        patch_type: PatchType,
        patch_body: &Value,
        part: Part,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let res = &RESOURCES[r];
        if patch_type == PatchType::Apply && opts.field_manager.as_deref().is_none_or(str::is_empty)
        {
            return Err(ApiError::invalid_options(
                "PatchOptions.meta.k8s.io",
                vec![Cause::new(
                    "FieldValueRequired",
                    "fieldManager",
                    "Required value: is required for apply patch",
                )],
            ));
        }
        let key: Key = (
            r,
            if res.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        );
        // Why: the patch is computed and written under one lock, so no write can slip in between.
        let state = self.lock();
        let Some(old) = state.get(&key).cloned() else {
            drop(state);
            if patch_type == PatchType::Apply && part == Part::Main {
                let mut body = patch_body.clone();
                if meta_str(&body, "name") != name {
                    return Err(ApiError::BadRequest(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        meta_str(&body, "name")
                    )));
                }
                let manager = opts.field_manager.clone().unwrap_or_default();
                let merge = |t: &mut Value, p: &Value| {
                    patch::merge_patch(t, p);
                    Ok(())
                };
                body = managed::apply(None, &body, &manager, &res.api_version(), opts.force, merge)
                    .map_err(ApiError::BadRequest)?
                    .map_err(apply_conflict)?;
                let opts = WriteOptions {
                    applying: true,
                    ..opts.clone()
                };
                return self.create(r, ns, body, &opts);
            }
            return Err(ApiError::not_found(res, name));
        };
        let mut patched = old.clone();
        let schema = schemas().root(&res.api_version(), res.kind);
        match patch_type {
            PatchType::Merge => patch::merge_patch(&mut patched, patch_body),
            PatchType::Json => patch::json_patch(&mut patched, patch_body).map_err(patch_error)?,
            PatchType::Strategic => {
                patch::strategic_merge(schemas(), schema, &mut patched, patch_body)
                    .map_err(patch_error)?
            }
            PatchType::Apply => {
                let kind = patch_body["kind"].as_str().unwrap_or("");
                let api_version = patch_body["apiVersion"].as_str().unwrap_or("");
                if kind != res.kind || api_version != res.api_version() {
                    return Err(ApiError::BadRequest(format!(
                        "the API version in the data ({api_version}) does not match the expected API version ({})",
                        res.api_version()
                    )));
                }
                let manager = opts.field_manager.clone().unwrap_or_default();
                let merge = |t: &mut Value, p: &Value| {
                    patch::strategic_merge(schemas(), schema, t, p).map_err(|e| e.to_string())
                };
                patched = managed::apply(
                    Some(&old),
                    patch_body,
                    &manager,
                    &res.api_version(),
                    opts.force,
                    merge,
                )
                .map_err(ApiError::BadRequest)?
                .map_err(apply_conflict)?;
            }
        }
        let applying = WriteOptions {
            applying: patch_type == PatchType::Apply,
            ..opts.clone()
        };
        let opts = &applying;
        if !patched.is_object() {
            return Err(ApiError::BadRequest(
                "the patch did not produce an object".into(),
            ));
        }
        if meta_str(&patched, "name") != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&patched, "name")
            )));
        }
        let wanted_rv = meta_str(&patched, "resourceVersion").to_string();
        if wanted_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(res, name));
        }
        let (warnings, causes) = self.check_body(r, &mut patched, opts)?;
        self.finish_update(state, r, old, patched, part, opts, warnings, causes)
    }

    /// The common tail of update and patch: metadata rules, defaulting, validation, the write.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &self,
        mut state: MutexGuard<'_, State>,
        r: ResourceId,
        old: Value,
        body: Value,
        part: Part,
        opts: &WriteOptions,
        warnings: Vec<String>,
        mut causes: Vec<Cause>,
    ) -> Result<Written, ApiError> {
        let res = &RESOURCES[r];
        let name = meta_str(&old, "name").to_string();
        let mut new = match part {
            Part::Main => {
                let mut new = body;
                if res.has_status_subresource() {
                    new["status"] = old["status"].clone();
                }
                new
            }
            Part::Status => {
                let mut new = old.clone();
                new["status"] = body["status"].clone();
                new
            }
        };
        if new["status"].is_null()
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
        {
            let meta = &mut new["metadata"];
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                match old["metadata"].get(field) {
                    Some(v) => meta[field] = v.clone(),
                    None => {
                        if let Some(m) = meta.as_object_mut() {
                            m.remove(field);
                        }
                    }
                }
            }
            if meta.get("managedFields").is_none()
                && let Some(mf) = old["metadata"].get("managedFields")
            {
                meta["managedFields"] = mf.clone();
            }
            meta["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        causes.extend(kinds::prepare(r, &mut new, Some(&old)));
        if !causes.is_empty() {
            return Err(ApiError::invalid(res, &name, causes));
        }
        if !opts.applying {
            let manager = opts.field_manager.as_deref().unwrap_or("unknown");
            let sub = if part == Part::Status { "status" } else { "" };
            managed::record_update(Some(&old), &mut new, manager, &res.api_version(), sub);
        }
        if res.has_generation && new.get("spec") != old.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        if !differs(&old, &new) {
            return Ok(Written {
                object: old,
                warnings,
                created: false,
            });
        }
        if opts.dry_run {
            return Ok(Written {
                object: new,
                warnings,
                created: false,
            });
        }
        let key = key_of(r, &new);
        let deleting = new["metadata"].get("deletionTimestamp").is_some();
        let object = if deleting && !state.held(r, &new) {
            state.insert_quiet(r, new.clone());
            state.remove(&key).unwrap_or(new)
        } else {
            state.replace(r, new)
        };
        state.sweep();
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok(Written {
            object,
            warnings,
            created: false,
        })
    }

    /// Deletes an object. Returns the response body: the object when it stays (finalizers,
    /// graceful pods) or for pods, a `Status` otherwise.
    pub(crate) fn delete(
        &self,
        r: ResourceId,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let res = &RESOURCES[r];
        let key: Key = (
            r,
            if res.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        );
        let mut state = self.lock();
        let object = state
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        if let Some(uid) = &opts.precondition_uid
            && uid != meta_str(&object, "uid")
        {
            return Err(ApiError::Conflict {
                resource: res.qualified(),
                name: name.to_string(),
                detail: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&object, "uid")
                ),
            });
        }
        if let Some(rv) = &opts.precondition_rv
            && rv != meta_str(&object, "resourceVersion")
        {
            return Err(ApiError::Conflict {
                resource: res.qualified(),
                name: name.to_string(),
                detail: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&object, "resourceVersion")
                ),
            });
        }
        // Why: batch/v1 Jobs default to orphaning their pods, for backward compatibility.
        let default = if r == ids::JOBS {
            Propagation::Orphan
        } else {
            Propagation::Background
        };
        let propagation = opts.propagation.unwrap_or(default);
        if opts.dry_run {
            return Ok((object, false));
        }
        let (object, _) = state
            .delete_key(&key, propagation, opts.grace_period)
            .ok_or_else(|| ApiError::not_found(res, name))?;
        state.sweep();
        // Why: the collector runs synchronously, so a delete held only by `orphan` or
        // `foregroundDeletion` may already be complete here.
        let gone = state
            .get(&key)
            .is_none_or(|o| meta_str(o, "uid") != meta_str(&object, "uid"));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((object, gone))
    }
}

impl State {
    /// Stores an object without recording a change (used just before a removal, so that the
    /// DELETED event carries the final state).
    fn insert_quiet(&mut self, r: ResourceId, object: Value) {
        self.objects.insert(key_of(r, &object), object);
    }
}

/// The ServiceAccount admission plugin: the pod's service account must exist, and unless
/// `automountServiceAccountToken` is false the `kube-api-access-*` projected volume (token,
/// `ca.crt`, `namespace`) is added and mounted into every container.
fn admit_service_account(
    state: &State,
    ns: &str,
    name: &str,
    pod: &mut Value,
) -> Result<(), ApiError> {
    let sa_name = pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let Some(sa) = state.get(&(ids::SERVICEACCOUNTS, ns.to_string(), sa_name.clone())) else {
        return Err(ApiError::Forbidden(format!(
            "pods \"{name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
        )));
    };
    let automount = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
    let already = ["containers", "initContainers"].iter().any(|list| {
        pod["spec"][*list]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == json!(MOUNT))
            })
    });
    if already {
        return Ok(());
    }
    let volume = format!("kube-api-access-{}", clock::name_suffix());
    if !pod["spec"]["volumes"].is_array() {
        pod["spec"]["volumes"] = json!([]);
    }
    if let Some(v) = pod["spec"]["volumes"].as_array_mut() {
        v.push(json!({"name": volume, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}}));
    }
    for list in ["containers", "initContainers"] {
        for c in pod["spec"]
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if !c["volumeMounts"].is_array() {
                c["volumeMounts"] = json!([]);
            }
            if let Some(m) = c["volumeMounts"].as_array_mut() {
                m.push(json!({"name": volume, "readOnly": true, "mountPath": MOUNT}));
            }
        }
    }
    Ok(())
}

/// The 409 of an apply that conflicts with other managers, worded as the API server words it.
fn apply_conflict(conflicts: Vec<managed::Conflict>) -> ApiError {
    let n = conflicts.len();
    let message = if n == 1 {
        let c = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
            c.manager, c.api_version, c.field
        )
    } else {
        let fields: Vec<String> = conflicts
            .iter()
            .map(|c| {
                format!(
                    "- conflict with \"{}\" using {}: {}",
                    c.manager, c.api_version, c.field
                )
            })
            .collect();
        format!("Apply failed with {n} conflicts:\n{}", fields.join("\n"))
    };
    let causes = conflicts
        .into_iter()
        .map(|c| {
            let message = format!("conflict with \"{}\" using {}", c.manager, c.api_version);
            Cause::new("FieldManagerConflict", c.field, message)
        })
        .collect();
    ApiError::ApplyConflict { message, causes }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(m) => ApiError::BadRequest(m),
        PatchError::DoesNotApply(m) => ApiError::Invalid {
            kind: String::new(),
            name: String::new(),
            causes: vec![Cause::new("FieldValueInvalid", "", m)],
        },
    }
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    use base64::Engine;
    let bad = || ApiError::BadRequest("continue key is not valid: illegal base64 data".into());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    v["start"].as_str().map(str::to_string).ok_or_else(bad)
}

impl ApiError {
    /// A kind mismatch is reported with the kind, not the version, when the version fits.
    fn or_kind_mismatch(self, got: &str, want: &str) -> Self {
        if got != want {
            ApiError::BadRequest(format!(
                "the kind in the data ({got}) does not match the expected kind ({want})"
            ))
        } else {
            self
        }
    }

    /// `Invalid` for request options rather than an object.
    fn invalid_options(kind: &str, causes: Vec<Cause>) -> Self {
        ApiError::Invalid {
            kind: kind.to_string(),
            name: String::new(),
            causes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new("CA".into())
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }

    #[test]
    fn namespaces_come_with_a_service_account_and_the_root_ca() {
        let w = world();
        assert!(w.get(ids::SERVICEACCOUNTS, "default", "default").is_ok());
        let ca = w
            .get(ids::CONFIGMAPS, "kube-system", "kube-root-ca.crt")
            .expect("ca");
        assert_eq!(ca["data"]["ca.crt"], json!("CA"));
        let ns = w.get(ids::NAMESPACES, "", "default").expect("ns");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            json!("default")
        );
        assert_eq!(ns["status"]["phase"], json!("Active"));
    }

    #[test]
    fn create_sets_metadata_and_refuses_duplicates_and_missing_namespaces() {
        let w = world();
        let opts = WriteOptions::default();
        let a = w
            .create(ids::CONFIGMAPS, "default", cm("a"), &opts)
            .expect("create")
            .object;
        assert_eq!(a["metadata"]["namespace"], json!("default"));
        assert_eq!(meta_str(&a, "uid").len(), 36);
        assert!(!meta_str(&a, "creationTimestamp").is_empty());
        let e = w
            .create(ids::CONFIGMAPS, "default", cm("a"), &opts)
            .expect_err("dup");
        assert_eq!(e.code(), 409);
        let e = w
            .create(ids::CONFIGMAPS, "nope", cm("b"), &opts)
            .expect_err("ns");
        assert_eq!(e.to_string(), "namespaces \"nope\" not found");
        let mut g = cm("");
        g["metadata"] = json!({"generateName": "gen-"});
        let g = w
            .create(ids::CONFIGMAPS, "default", g, &opts)
            .expect("generateName")
            .object;
        assert!(meta_str(&g, "name").starts_with("gen-") && meta_str(&g, "name").len() == 9);
        let dry = w
            .create(
                ids::CONFIGMAPS,
                "default",
                cm("dry"),
                &WriteOptions {
                    dry_run: true,
                    ..opts.clone()
                },
            )
            .expect("dry");
        assert!(dry.object["metadata"].get("resourceVersion").is_none());
        assert!(w.get(ids::CONFIGMAPS, "default", "dry").is_err());
    }

    #[test]
    fn kind_and_api_version_default_from_the_endpoint_but_must_match_when_given() {
        let w = world();
        let opts = WriteOptions::default();
        let bare = json!({"metadata": {"name": "bare"}, "data": {"a": "1"}});
        let made = w
            .create(ids::CONFIGMAPS, "default", bare, &opts)
            .expect("defaulted")
            .object;
        assert_eq!(
            (made["kind"].as_str(), made["apiVersion"].as_str()),
            (Some("ConfigMap"), Some("v1"))
        );
        let wrong = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "x"}});
        assert_eq!(
            w.create(ids::CONFIGMAPS, "default", wrong, &opts)
                .expect_err("kind")
                .code(),
            400
        );
    }

    #[test]
    fn stale_updates_conflict_and_no_op_updates_keep_the_version() {
        let w = world();
        let opts = WriteOptions::default();
        let a = w
            .create(ids::CONFIGMAPS, "default", cm("a"), &opts)
            .expect("create")
            .object;
        let same = w
            .update(
                ids::CONFIGMAPS,
                "default",
                "a",
                a.clone(),
                Part::Main,
                &opts,
            )
            .expect("same")
            .object;
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let mut b = a.clone();
        b["data"]["a"] = json!("2");
        let b = w
            .update(ids::CONFIGMAPS, "default", "a", b, Part::Main, &opts)
            .expect("update")
            .object;
        assert_ne!(
            b["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let mut stale = a.clone();
        stale["data"]["a"] = json!("3");
        let e = w
            .update(ids::CONFIGMAPS, "default", "a", stale, Part::Main, &opts)
            .expect_err("stale");
        assert_eq!(e.reason(), "Conflict");
    }

    #[test]
    fn background_foreground_and_orphan_deletion() {
        let w = world();
        let opts = WriteOptions::default();
        let owner = w
            .create(ids::CONFIGMAPS, "default", cm("owner"), &opts)
            .expect("owner")
            .object;
        let dep = |name: &str| {
            let mut d = cm(name);
            d["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
                "name": "owner", "uid": meta_str(&owner, "uid")}]);
            d
        };
        w.create(ids::CONFIGMAPS, "default", dep("d1"), &opts)
            .expect("d1");
        let del = |p| DeleteOptions {
            propagation: Some(p),
            ..Default::default()
        };
        let (_, gone) = w
            .delete(
                ids::CONFIGMAPS,
                "default",
                "owner",
                &del(Propagation::Orphan),
            )
            .expect("orphan");
        assert!(gone);
        let d1 = w
            .get(ids::CONFIGMAPS, "default", "d1")
            .expect("orphaned dependent stays");
        assert!(d1["metadata"].get("ownerReferences").is_none());

        let owner = w
            .create(ids::CONFIGMAPS, "default", cm("owner"), &opts)
            .expect("owner")
            .object;
        let mut d2 = cm("d2");
        d2["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "name": "owner", "uid": meta_str(&owner, "uid")}]);
        w.create(ids::CONFIGMAPS, "default", d2, &opts).expect("d2");
        w.delete(
            ids::CONFIGMAPS,
            "default",
            "owner",
            &del(Propagation::Foreground),
        )
        .expect("fg");
        assert!(w.get(ids::CONFIGMAPS, "default", "d2").is_err());
        assert!(w.get(ids::CONFIGMAPS, "default", "owner").is_err());

        let owner = w
            .create(ids::CONFIGMAPS, "default", cm("owner"), &opts)
            .expect("owner")
            .object;
        let mut d3 = cm("d3");
        d3["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "name": "owner", "uid": meta_str(&owner, "uid")}]);
        w.create(ids::CONFIGMAPS, "default", d3, &opts).expect("d3");
        w.delete(
            ids::CONFIGMAPS,
            "default",
            "owner",
            &DeleteOptions::default(),
        )
        .expect("bg");
        assert!(w.get(ids::CONFIGMAPS, "default", "d3").is_err());
    }

    #[test]
    fn finalizers_hold_an_object_until_removed_and_namespaces_take_their_content() {
        let w = world();
        let opts = WriteOptions::default();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}});
        w.create(ids::NAMESPACES, "", ns, &opts).expect("ns");
        let mut held = cm("held");
        held["metadata"]["finalizers"] = json!(["example.com/hold"]);
        w.create(ids::CONFIGMAPS, "t", held, &opts).expect("held");
        let (obj, gone) = w
            .delete(ids::CONFIGMAPS, "t", "held", &DeleteOptions::default())
            .expect("delete");
        assert!(!gone);
        assert!(obj["metadata"].get("deletionTimestamp").is_some());
        let (_, gone) = w
            .delete(ids::NAMESPACES, "", "t", &DeleteOptions::default())
            .expect("ns delete");
        assert!(!gone, "the held ConfigMap keeps the namespace");
        let e = w
            .create(ids::CONFIGMAPS, "t", cm("new"), &opts)
            .expect_err("terminating");
        assert_eq!(e.code(), 403);
        w.patch(
            ids::CONFIGMAPS,
            "t",
            "held",
            PatchType::Merge,
            &json!({"metadata": {"finalizers": null}}),
            Part::Main,
            &opts,
        )
        .expect("release");
        assert!(w.get(ids::CONFIGMAPS, "t", "held").is_err());
        assert!(w.get(ids::NAMESPACES, "", "t").is_err());
    }

    #[test]
    fn the_audit_keeps_every_version_of_a_deleted_object_past_compaction() {
        let w = world();
        let opts = WriteOptions::default();
        let versions = |w: &World| -> Vec<(String, Value)> {
            w.audit()
                .into_iter()
                .filter(|o| o["kind"] == "ConfigMap" && meta_str(o, "name") == "audited")
                .map(|o| {
                    (
                        meta_str(&o, "resourceVersion").to_string(),
                        o["data"]["a"].clone(),
                    )
                })
                .collect()
        };
        let a = w
            .create(ids::CONFIGMAPS, "default", cm("audited"), &opts)
            .expect("create")
            .object;
        let mut b = a.clone();
        b["data"]["a"] = json!("2");
        w.update(ids::CONFIGMAPS, "default", "audited", b, Part::Main, &opts)
            .expect("update");
        w.patch(
            ids::CONFIGMAPS,
            "default",
            "audited",
            PatchType::Merge,
            &json!({"data": {"a": "3"}}),
            Part::Main,
            &opts,
        )
        .expect("patch");
        let dry = WriteOptions {
            dry_run: true,
            ..opts.clone()
        };
        w.patch(
            ids::CONFIGMAPS,
            "default",
            "audited",
            PatchType::Merge,
            &json!({"data": {"a": "never stored"}}),
            Part::Main,
            &dry,
        )
        .expect("dry patch");
        w.compact();
        w.delete(
            ids::CONFIGMAPS,
            "default",
            "audited",
            &DeleteOptions::default(),
        )
        .expect("delete");
        assert!(w.get(ids::CONFIGMAPS, "default", "audited").is_err());
        let seen = versions(&w);
        let values: Vec<&Value> = seen.iter().map(|(_, v)| v).collect();
        assert_eq!(values, [&json!("1"), &json!("2"), &json!("3"), &json!("3")]);
        let rvs: Vec<u64> = seen.iter().map(|(rv, _)| rv.parse().expect("rv")).collect();
        assert!(rvs.windows(2).all(|p| p[0] < p[1]), "in order: {rvs:?}");
        assert_eq!(
            w.lock().changes_after(0).count(),
            1,
            "the watch history itself was compacted; only the deletion is left in it"
        );
    }

    #[test]
    fn lists_page_and_filter() {
        let w = world();
        let opts = WriteOptions::default();
        for n in ["a", "b", "c"] {
            let mut c = cm(n);
            c["metadata"]["labels"] = json!({"x": n});
            w.create(ids::CONFIGMAPS, "default", c, &opts)
                .expect("create");
        }
        let sel = LabelSelector::parse("x").expect("sel");
        let page = w
            .list(
                ids::CONFIGMAPS,
                Some("default"),
                &sel,
                &FieldSelector::default(),
                Some(2),
                None,
            )
            .expect("page");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
        assert!(page["items"][0].get("kind").is_none());
        let token = page["metadata"]["continue"]
            .as_str()
            .expect("continue")
            .to_string();
        let rest = w
            .list(
                ids::CONFIGMAPS,
                Some("default"),
                &sel,
                &FieldSelector::default(),
                Some(2),
                Some(&token),
            )
            .expect("rest");
        assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
        assert!(rest["metadata"].get("continue").is_none());
    }
}
