//! Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for (`Accept: …;as=Table`),
//! with the columns kubectl shows for each served type.

use serde_json::{Value, json};

use crate::clock;
use crate::resources::{RESOURCES, ResourceId, ids};

/// What a row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    /// Nothing.
    None,
    /// A `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` parameter.
    pub(crate) fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn column(name: &str, kind: &str, format: &str) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
}

fn columns(r: ResourceId) -> Vec<Value> {
    let mut cols = vec![column("Name", "string", "name")];
    match r {
        ids::PODS => {
            cols.push(column("Ready", "string", ""));
            cols.push(column("Status", "string", ""));
            cols.push(column("Restarts", "string", ""));
        }
        ids::JOBS => {
            cols.push(column("Status", "string", ""));
            cols.push(column("Completions", "string", ""));
            cols.push(column("Duration", "string", ""));
        }
        ids::SECRETS => {
            cols.push(column("Type", "string", ""));
            cols.push(column("Data", "string", ""));
        }
        ids::CONFIGMAPS => cols.push(column("Data", "string", "")),
        ids::NAMESPACES => cols.push(column("Status", "string", "")),
        ids::SERVICEACCOUNTS => cols.push(column("Secrets", "string", "")),
        ids::EVENTS => {
            return vec![
                column("Last Seen", "string", ""),
                column("Type", "string", ""),
                column("Reason", "string", ""),
                column("Object", "string", ""),
                column("Message", "string", ""),
            ];
        }
        _ => {}
    }
    cols.push(column("Age", "string", ""));
    cols
}

/// The pod's STATUS column: a waiting or terminated reason, else the phase.
fn pod_status(pod: &Value) -> String {
    if pod["metadata"].get("deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    for list in ["initContainerStatuses", "containerStatuses"] {
        for cs in pod["status"][list].as_array().into_iter().flatten() {
            if let Some(reason) = cs["state"]["waiting"]["reason"].as_str() {
                if list == "initContainerStatuses" {
                    return format!("Init:{reason}");
                }
                return reason.to_string();
            }
            if list == "initContainerStatuses"
                && cs["state"]["terminated"]["exitCode"]
                    .as_i64()
                    .is_some_and(|c| c != 0)
            {
                return "Init:Error".to_string();
            }
            if list == "containerStatuses"
                && let Some(reason) = cs["state"]["terminated"]["reason"].as_str()
            {
                return reason.to_string();
            }
        }
    }
    pod["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_string()
}

fn cells(r: ResourceId, o: &Value) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    let age = clock::human_age(clock::age_seconds(
        o["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
    ));
    let count = |v: &Value| v.as_object().map_or(0, |m| m.len());
    let mut out = vec![name.clone()];
    match r {
        ids::PODS => {
            let statuses = o["status"]["containerStatuses"].as_array();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses
                .into_iter()
                .flatten()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            out.push(json!(format!("{ready}/{total}")));
            out.push(json!(pod_status(o)));
            out.push(json!(restarts.to_string()));
        }
        ids::JOBS => {
            let conditions = o["status"]["conditions"].as_array();
            let has = |t: &str| {
                conditions
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == json!(t) && c["status"] == json!("True"))
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if o["spec"]["suspend"] == json!(true) {
                "Suspended"
            } else {
                "Running"
            };
            out.push(json!(status));
            out.push(json!(format!(
                "{}/{}",
                o["status"]["succeeded"].as_i64().unwrap_or(0),
                o["spec"]["completions"].as_i64().unwrap_or(1)
            )));
            let start = o["status"]["startTime"].as_str().unwrap_or("");
            let duration = if start.is_empty() {
                String::new()
            } else {
                clock::human_age(clock::age_seconds(start))
            };
            out.push(json!(duration));
        }
        ids::SECRETS => {
            out.push(o["type"].clone());
            out.push(json!(count(&o["data"])));
        }
        ids::CONFIGMAPS => out.push(json!(count(&o["data"]) + count(&o["binaryData"]))),
        ids::NAMESPACES => out.push(o["status"]["phase"].clone()),
        ids::SERVICEACCOUNTS => out.push(json!(o["secrets"].as_array().map_or(0, Vec::len))),
        ids::EVENTS => {
            let involved = &o["involvedObject"];
            let object = format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or("").to_lowercase(),
                involved["name"].as_str().unwrap_or("")
            );
            let seen = o["lastTimestamp"]
                .as_str()
                .or(o["eventTime"].as_str())
                .or(o["metadata"]["creationTimestamp"].as_str())
                .unwrap_or("");
            return vec![
                json!(clock::human_age(clock::age_seconds(seen))),
                o["type"].clone(),
                o["reason"].clone(),
                json!(object),
                o["message"].clone(),
            ];
        }
        _ => {}
    }
    out.push(json!(age));
    out
}

fn row(r: ResourceId, object: &Value, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells(r, object)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"]});
        }
        IncludeObject::Object => {
            let mut o = object.clone();
            o["kind"] = json!(RESOURCES[r].kind);
            o["apiVersion"] = json!(RESOURCES[r].api_version());
            row["object"] = o;
        }
    }
    row
}

/// A table of `objects` (one object for a get or a watch event, the items for a list).
pub(crate) fn table(
    r: ResourceId,
    objects: &[Value],
    metadata: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = objects.iter().map(|o| row(r, o, include)).collect();
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "rows": rows});
    // Why: kubectl takes the columns from the first table of a watch; later event tables may
    // repeat them, as a real server does, which is harmless.
    if with_columns {
        t["columnDefinitions"] = json!(columns(r));
    } else {
        t["columnDefinitions"] = json!([]);
    }
    t
}
