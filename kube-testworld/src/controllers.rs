//! The control plane's loops: a one-node scheduler and the Job controller (as Kubernetes 1.31
//! runs it, for `restartPolicy: Never`), plus the Events they record. Both run in one task that
//! wakes on every change and every quarter second, and write through the same verbs as clients,
//! so their writes are validated, versioned and watched like any other.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::clock;
use crate::resources::{RESOURCES, ResourceId, ids};
use crate::world::{DeleteOptions, Part, Propagation, World, WriteOptions, meta_str};

/// The one node's name.
pub(crate) const NODE_NAME: &str = "testworld-node";

/// How often the loops run without a change (deadlines, TTLs).
const TICK: Duration = Duration::from_millis(250);

/// The labels of the one node, which nodeSelectors and node affinity are matched against.
fn node_labels() -> Value {
    json!({
        "kubernetes.io/hostname": NODE_NAME,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    })
}

/// Runs the loops until the world's change channel closes.
pub(crate) async fn run(world: Arc<World>) {
    let mut changes = world.subscribe();
    loop {
        reconcile(&world);
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                // Why: a burst of writes (a kubectl apply of many objects) is handled in one pass.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One pass of every loop.
pub(crate) fn reconcile(world: &World) {
    schedule(world);
    let jobs: Vec<Value> = world.lock().iter_type(ids::JOBS, None).cloned().collect();
    for job in jobs {
        reconcile_job(world, &job);
    }
}

/// Options of the controllers' own writes.
fn system_write() -> WriteOptions {
    WriteOptions {
        field_manager: Some("kube-controller-manager".into()),
        ..WriteOptions::default()
    }
}

/// Records a core/v1 Event about `object` (of type `r`).
pub(crate) fn record_event(
    world: &World,
    r: ResourceId,
    object: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let res = &RESOURCES[r];
    let now = clock::now_rfc3339();
    let ns = match meta_str(object, "namespace") {
        "" => "default",
        n => n,
    };
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{nanos:x}", meta_str(object, "name")), "namespace": ns},
        "involvedObject": {
            "kind": res.kind,
            "apiVersion": res.api_version(),
            "namespace": meta_str(object, "namespace"),
            "name": meta_str(object, "name"),
            "uid": meta_str(object, "uid"),
            "resourceVersion": meta_str(object, "resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": kind,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    match world.create(ids::EVENTS, ns, event, &system_write()) {
        Ok(w) => world.record_warnings(&w.warnings),
        Err(e) => log::warn!("could not record event {reason}: {e}"),
    }
}

/// A pod condition or job condition object.
fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = clock::now_rfc3339();
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": now, "lastTransitionTime": now});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
fn fits_node(pod: &Value) -> bool {
    let labels = node_labels();
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let terms = pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .as_array();
    let affinity_ok = match terms {
        None => true,
        Some(terms) => terms.iter().any(|term| {
            term["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|e| {
                    let actual = labels
                        .get(e["key"].as_str().unwrap_or(""))
                        .and_then(Value::as_str);
                    let values: Vec<&str> = e["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    match e["operator"].as_str().unwrap_or("") {
                        "In" => actual.is_some_and(|a| values.contains(&a)),
                        "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
                        "Exists" => actual.is_some(),
                        "DoesNotExist" => actual.is_none(),
                        _ => false,
                    }
                })
        }),
    };
    selector_ok && affinity_ok
}

/// Binds pending pods to the node, or marks them unschedulable once.
fn schedule(world: &World) {
    let pending: Vec<Value> = world
        .lock()
        .iter_type(ids::PODS, None)
        .filter(|p| {
            p["spec"].get("nodeName").is_none() && p["metadata"].get("deletionTimestamp").is_none()
        })
        .cloned()
        .collect();
    for pod in pending {
        let ns = meta_str(&pod, "namespace").to_string();
        let name = meta_str(&pod, "name").to_string();
        let already_refused = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == json!("PodScheduled") && c["status"] == json!("False"));
        if fits_node(&pod) {
            let mut bound = pod.clone();
            bound["spec"]["nodeName"] = json!(NODE_NAME);
            let bound =
                match world.update(ids::PODS, &ns, &name, bound, Part::Main, &system_write()) {
                    Ok(w) => w.object,
                    Err(e) => {
                        log::debug!("binding {ns}/{name}: {e}");
                        continue;
                    }
                };
            let mut with_status = bound.clone();
            set_condition(
                &mut with_status["status"],
                condition("PodScheduled", "True", "", ""),
            );
            if let Err(e) = world.update(
                ids::PODS,
                &ns,
                &name,
                with_status,
                Part::Status,
                &system_write(),
            ) {
                log::debug!("pod status {ns}/{name}: {e}");
            }
            record_event(
                world,
                ids::PODS,
                &bound,
                "Normal",
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {NODE_NAME}"),
                "default-scheduler",
            );
        } else if !already_refused {
            let message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
            let mut refused = pod.clone();
            set_condition(
                &mut refused["status"],
                condition("PodScheduled", "False", "Unschedulable", message),
            );
            refused["status"]["phase"] = json!("Pending");
            if let Err(e) = world.update(
                ids::PODS,
                &ns,
                &name,
                refused,
                Part::Status,
                &system_write(),
            ) {
                log::debug!("pod status {ns}/{name}: {e}");
                continue;
            }
            record_event(
                world,
                ids::PODS,
                &pod,
                "Warning",
                "FailedScheduling",
                message,
                "default-scheduler",
            );
        }
    }
}

/// Replaces the condition of the same type in `status.conditions`, or appends it. The transition
/// time is kept when the status does not change.
pub(crate) fn set_condition(status: &mut Value, new: Value) {
    if !status.is_object() {
        *status = json!({});
    }
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        match list.iter_mut().find(|c| c["type"] == new["type"]) {
            Some(existing) => {
                let mut new = new;
                if existing["status"] == new["status"] {
                    new["lastTransitionTime"] = existing["lastTransitionTime"].clone();
                }
                *existing = new;
            }
            None => list.push(new),
        }
    }
}

fn has_condition(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == json!(kind) && c["status"] == json!("True"))
}

fn condition_reason(job: &Value, kind: &str) -> Option<String> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == json!(kind) && c["status"] == json!("True"))
        .and_then(|c| c["reason"].as_str().map(str::to_string))
}

/// The pods a Job controls (by controller ownerReference).
fn job_pods(world: &World, job: &Value) -> Vec<Value> {
    let uid = meta_str(job, "uid");
    world
        .lock()
        .iter_type(ids::PODS, Some(meta_str(job, "namespace")))
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["uid"] == json!(uid) && r["controller"] == json!(true))
        })
        .cloned()
        .collect()
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

/// One Job's reconciliation.
fn reconcile_job(world: &World, job: &Value) {
    let ns = meta_str(job, "namespace").to_string();
    let name = meta_str(job, "name").to_string();
    if job["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let complete = has_condition(job, "Complete");
    let failed = has_condition(job, "Failed");
    if complete || failed {
        expire_finished(world, job, &ns, &name);
        return;
    }
    if job["spec"]["suspend"] == json!(true) {
        return;
    }
    let pods = job_pods(world, job);
    let terminating = |p: &&Value| p["metadata"].get("deletionTimestamp").is_some();
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && !terminating(p))
        .collect();
    let terminating_count = pods
        .iter()
        .filter(|p| terminating(p) && !matches!(phase(p), "Succeeded" | "Failed"))
        .count();
    let counted = |ph: &str, field: &str| {
        let now = pods.iter().filter(|p| phase(p) == ph).count() as i64;
        // Why: terminated pods may be deleted by others; the counters never go down.
        now.max(job["status"][field].as_i64().unwrap_or(0))
    };
    let succeeded = counted("Succeeded", "succeeded");
    let failed_count = counted("Failed", "failed");
    let ready = active
        .iter()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == json!("Ready") && c["status"] == json!("True"))
        })
        .count();
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
    let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);

    let mut status = job["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    let now = clock::now_rfc3339();
    if status.get("startTime").is_none() {
        status["startTime"] = json!(now);
    }
    let started = clock::parse_rfc3339(status["startTime"].as_str().unwrap_or(""))
        .unwrap_or_else(SystemTime::now);

    // Why: 1.31 first sets the interim condition (SuccessCriteriaMet / FailureTarget), waits for
    // the pods to stop, then sets the final one.
    let target = if let Some(reason) = condition_reason(job, "FailureTarget") {
        Some(("FailureTarget", reason))
    } else if has_condition(job, "SuccessCriteriaMet") || succeeded >= completions {
        Some(("SuccessCriteriaMet", "CompletionsReached".to_string()))
    } else if failed_count > backoff_limit {
        Some(("FailureTarget", "BackoffLimitExceeded".to_string()))
    } else if job["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|d| {
            SystemTime::now()
                .duration_since(started)
                .unwrap_or_default()
                >= Duration::from_secs(d as u64)
        })
    {
        Some(("FailureTarget", "DeadlineExceeded".to_string()))
    } else {
        None
    };
    let message_for = |reason: &str| match reason {
        "BackoffLimitExceeded" => "Job has reached the specified backoff limit",
        "DeadlineExceeded" => "Job was active longer than specified deadline",
        _ => "Reached expected number of succeeded pods",
    };

    let mut events: Vec<(&str, String, String)> = Vec::new();
    match &target {
        Some((interim, reason)) => {
            if !has_condition(job, interim) {
                set_condition(
                    &mut status,
                    condition(interim, "True", reason, message_for(reason)),
                );
            }
            for pod in &active {
                let pod_name = meta_str(pod, "name").to_string();
                let opts = DeleteOptions {
                    propagation: Some(Propagation::Background),
                    ..DeleteOptions::default()
                };
                if world.delete(ids::PODS, &ns, &pod_name, &opts).is_ok() {
                    events.push((
                        "Normal",
                        "SuccessfulDelete".into(),
                        format!("Deleted pod: {pod_name}"),
                    ));
                }
            }
            if active.is_empty() && terminating_count == 0 {
                if *interim == "SuccessCriteriaMet" {
                    set_condition(
                        &mut status,
                        condition("Complete", "True", reason, message_for(reason)),
                    );
                    status["completionTime"] = json!(now);
                    events.push(("Normal", "Completed".into(), "Job completed".into()));
                } else {
                    set_condition(
                        &mut status,
                        condition("Failed", "True", reason, message_for(reason)),
                    );
                    events.push(("Warning", reason.clone(), message_for(reason).to_string()));
                }
            }
        }
        None => {
            let wanted = parallelism.min(completions - succeeded) - active.len() as i64;
            for _ in 0..wanted.max(0) {
                match create_pod(world, job) {
                    Ok(pod_name) => events.push((
                        "Normal",
                        "SuccessfulCreate".into(),
                        format!("Created pod: {pod_name}"),
                    )),
                    Err(e) => {
                        events.push((
                            "Warning",
                            "FailedCreate".into(),
                            format!("Error creating: {e}"),
                        ));
                        break;
                    }
                }
            }
        }
    }
    let active_now = if target.is_some() {
        0
    } else {
        job_pods(world, job)
            .iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && !terminating(p))
            .count()
    };
    status["active"] = json!(active_now);
    status["ready"] = json!(ready.min(active_now));
    status["terminating"] = json!(terminating_count);
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(failed_count);
    status["uncountedTerminatedPods"] = json!({});
    for field in ["active", "succeeded", "failed"] {
        // Why: the API omits zero counters (omitempty), and so do real Job statuses.
        if status[field] == json!(0)
            && let Some(m) = status.as_object_mut()
        {
            m.remove(field);
        }
    }
    if status != job["status"] {
        let mut updated = job.clone();
        updated["status"] = status;
        if let Err(e) = world.update(
            ids::JOBS,
            &ns,
            &name,
            updated,
            Part::Status,
            &system_write(),
        ) {
            log::debug!("job status {ns}/{name}: {e}");
            return;
        }
    }
    for (kind, reason, message) in events {
        record_event(
            world,
            ids::JOBS,
            job,
            kind,
            &reason,
            &message,
            "job-controller",
        );
    }
}

/// Deletes a finished Job once its `ttlSecondsAfterFinished` has passed.
fn expire_finished(world: &World, job: &Value, ns: &str, name: &str) {
    let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() else {
        return;
    };
    let finished = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            (c["type"] == json!("Complete") || c["type"] == json!("Failed"))
                && c["status"] == json!("True")
        })
        .filter_map(|c| c["lastTransitionTime"].as_str())
        .filter_map(clock::parse_rfc3339)
        .next();
    let Some(finished) = finished else { return };
    if SystemTime::now()
        .duration_since(finished)
        .unwrap_or_default()
        >= Duration::from_secs(ttl.max(0) as u64)
    {
        let opts = DeleteOptions {
            propagation: Some(Propagation::Background),
            precondition_uid: Some(meta_str(job, "uid").to_string()),
            ..DeleteOptions::default()
        };
        if let Err(e) = world.delete(ids::JOBS, ns, name, &opts) {
            log::debug!("ttl delete {ns}/{name}: {e}");
        }
    }
}

/// Creates one pod from the Job's template.
fn create_pod(world: &World, job: &Value) -> Result<String, crate::status::ApiError> {
    let template = &job["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["generateName"] = json!(format!("{}-", meta_str(job, "name")));
    metadata["namespace"] = json!(meta_str(job, "namespace"));
    if let Some(m) = metadata.as_object_mut() {
        m.remove("name");
        m.remove("creationTimestamp");
    }
    metadata["ownerReferences"] = json!([{
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta_str(job, "name"),
        "uid": meta_str(job, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]});
    let written = world.create(ids::PODS, meta_str(job, "namespace"), pod, &system_write())?;
    world.record_warnings(&written.warnings);
    Ok(meta_str(&written.object, "name").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_selectors_and_affinity_are_matched_against_the_node() {
        assert!(fits_node(
            &json!({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}})
        ));
        assert!(!fits_node(
            &json!({"spec": {"nodeSelector": {"disktype": "ssd"}}})
        ));
        let affinity = |op: &str| {
            json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": op, "values": ["amd64"]}]}]}}}}})
        };
        assert!(fits_node(&affinity("In")));
        assert!(!fits_node(&affinity("NotIn")));
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut status = json!({});
        let mut first = condition("Ready", "True", "", "");
        first["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_condition(&mut status, first);
        set_condition(&mut status, condition("Ready", "True", "", ""));
        assert_eq!(
            status["conditions"][0]["lastTransitionTime"],
            json!("2020-01-01T00:00:00Z")
        );
        set_condition(&mut status, condition("Ready", "False", "X", ""));
        assert_ne!(
            status["conditions"][0]["lastTransitionTime"],
            json!("2020-01-01T00:00:00Z")
        );
        assert_eq!(status["conditions"].as_array().map(Vec::len), Some(1));
    }
}
