//! Watch streams: newline-delimited `{"type", "object"}` events from a resourceVersion (or from the
//! current state with synthetic ADDED events), selector-aware translation of changes (an object
//! that stops matching is DELETED for that watch), periodic BOOKMARK events, the
//! `k8s.io/initial-events-end` bookmark of `sendInitialEvents`, `timeoutSeconds`, and a `410
//! Expired` ERROR event for a compacted resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::resources::{RESOURCES, ResourceId};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::table::{self, IncludeObject};
use crate::world::{ChangeType, World, meta_str};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// No resourceVersion, or `0`: the current objects as ADDED events, then changes.
    Current,
    /// Changes after this resourceVersion.
    After(u64),
}

/// A watch request.
#[derive(Debug, Clone)]
pub(crate) struct WatchRequest {
    /// The watched type.
    pub(crate) resource: ResourceId,
    /// One namespace, or all.
    pub(crate) namespace: Option<String>,
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
    /// Where to start.
    pub(crate) start: Start,
    /// `allowWatchBookmarks`.
    pub(crate) bookmarks: bool,
    /// `sendInitialEvents`.
    pub(crate) send_initial: bool,
    /// `timeoutSeconds` (or the server's default).
    pub(crate) timeout: Duration,
    /// Events as Tables (kubectl), with what their rows carry.
    pub(crate) table: Option<IncludeObject>,
    /// How often bookmarks go out.
    pub(crate) bookmark_interval: Duration,
}

impl WatchRequest {
    fn matches(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta_str(object, "namespace") == ns)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }

    fn event(&self, kind: &str, object: &Value, first: &mut bool) -> Bytes {
        let object = match self.table {
            Some(include) => {
                let t = table::table(
                    self.resource,
                    std::slice::from_ref(object),
                    json!({"resourceVersion": meta_str(object, "resourceVersion")}),
                    include,
                    *first,
                );
                *first = false;
                t
            }
            None => object.clone(),
        };
        line(&json!({"type": kind, "object": object}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let r = &RESOURCES[self.resource];
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({"type": "BOOKMARK", "object": {
            "kind": r.kind, "apiVersion": r.api_version(), "metadata": metadata}}))
    }
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn expired(requested: u64, oldest: u64) -> Bytes {
    let status = ApiError::Expired { requested, oldest }.status();
    line(&json!({"type": "ERROR", "object": status}))
}

/// Starts a watch; events arrive on the returned channel until it ends.
pub(crate) fn start(world: Arc<World>, req: WatchRequest) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        run(world, req, tx).await;
    });
    rx
}

async fn run(world: Arc<World>, req: WatchRequest, tx: mpsc::Sender<Bytes>) {
    let mut changes = world.subscribe();
    let mut disconnects = world.subscribe_disconnects();
    disconnects.mark_unchanged();
    let deadline = tokio::time::Instant::now() + req.timeout;
    let mut first = true;
    let opening = {
        let state = world.lock();
        match req.start {
            Start::After(rv) if rv < state.compacted() => Err(expired(rv, state.compacted())),
            Start::After(rv) => Ok((Vec::new(), rv)),
            Start::Current => {
                let ns = req.namespace.as_deref();
                let objects: Vec<Value> = state
                    .iter_type(req.resource, ns)
                    .filter(|o| req.matches(o))
                    .cloned()
                    .collect();
                Ok((objects, state.rv()))
            }
        }
    };
    let (initial, mut cursor) = match opening {
        Ok(o) => o,
        Err(event) => {
            world.count_expired();
            let _ = tx.send(event).await;
            return;
        }
    };
    for object in &initial {
        if tx
            .send(req.event("ADDED", object, &mut first))
            .await
            .is_err()
        {
            return;
        }
    }
    if req.send_initial && req.bookmarks && tx.send(req.bookmark(cursor, true)).await.is_err() {
        return;
    }
    let mut ticker = tokio::time::interval(req.bookmark_interval);
    ticker.tick().await;
    loop {
        let (events, newest, too_old) = {
            let state = world.lock();
            if cursor < state.compacted() {
                (Vec::new(), state.rv(), Some(state.compacted()))
            } else {
                let mut events = Vec::new();
                for change in state.changes_after(cursor) {
                    if change.resource != req.resource {
                        continue;
                    }
                    let now = req.matches(&change.object);
                    let before = change.old.as_ref().is_some_and(|o| req.matches(o));
                    let kind = match change.kind {
                        ChangeType::Added if now => "ADDED",
                        ChangeType::Modified if now && before => "MODIFIED",
                        ChangeType::Modified if now => "ADDED",
                        ChangeType::Modified if before => "DELETED",
                        ChangeType::Deleted if before || now => "DELETED",
                        _ => continue,
                    };
                    events.push((kind, change.object.clone()));
                }
                (events, state.rv(), None)
            }
        };
        if let Some(oldest) = too_old {
            world.count_expired();
            let _ = tx.send(expired(cursor, oldest)).await;
            return;
        }
        for (kind, object) in events {
            if tx.send(req.event(kind, &object, &mut first)).await.is_err() {
                return;
            }
        }
        cursor = newest;
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = disconnects.changed() => return,
            _ = ticker.tick() => {
                if req.bookmarks && tx.send(req.bookmark(cursor, false)).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}
