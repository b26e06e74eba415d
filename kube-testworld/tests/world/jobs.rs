//! The Job controller and the scheduler, observed through kubectl. No kubelet runs here: the
//! tests play its part by writing pod phases through the status subresource.

use serde_json::Value;

use crate::{eventually, json, kubectl_in, ok, world};
use kube_testworld::TestWorld;

fn job_yaml(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: Never
      containers:
      - {{name: main, image: 'runner:1', command: ['true']}}
"
    )
}

fn create(w: &TestWorld, yaml: &str) {
    let out = kubectl_in(w, &["create", "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pods_of(w: &TestWorld, job: &str) -> Vec<Value> {
    let list = json(&ok(
        w,
        &[
            "get",
            "pods",
            "-l",
            &format!("job-name={job}"),
            "-o",
            "json",
        ],
    ));
    list["items"].as_array().cloned().unwrap_or_default()
}

fn job(w: &TestWorld, name: &str) -> Value {
    json(&ok(w, &["get", "job", name, "-o", "json"]))
}

/// The one live (not terminal) pod of a job, once it is bound to the node.
fn bound_pod(w: &TestWorld, job: &str, not: &[String]) -> String {
    eventually("a bound pod", || {
        pods_of(w, job)
            .into_iter()
            .find(|p| {
                p["spec"]["nodeName"].is_string()
                    && !not.contains(&p["metadata"]["name"].as_str().unwrap_or("").to_string())
            })
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_string))
    })
}

fn finish(w: &TestWorld, pod: &str, phase: &str) {
    let patch = format!(r#"{{"status":{{"phase":"{phase}"}}}}"#);
    ok(
        w,
        &[
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
    );
}

fn condition_types(job: &Value) -> Vec<String> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str().map(str::to_string))
        .collect()
}

fn event_reasons(w: &TestWorld, name: &str) -> Vec<String> {
    let events = json(&ok(
        w,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "json",
        ],
    ));
    events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_job_runs_a_pod_and_completes() {
    let w = world();
    create(&w, &job_yaml("done", ""));
    let pod_name = bound_pod(&w, "done", &[]);
    let pod = json(&ok(&w, &["get", "pod", &pod_name, "-o", "json"]));
    let j = job(&w, "done");
    let uid = j["metadata"]["uid"].as_str().expect("uid");
    assert!(pod_name.starts_with("done-"));
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
    assert_eq!(labels["batch.kubernetes.io/job-name"], "done");
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(labels["job-name"], "done");
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            owner["kind"].as_str(),
            owner["controller"].as_bool(),
            owner["uid"].as_str()
        ),
        (Some("Job"), Some(true), Some(uid))
    );
    assert_eq!(pod["spec"]["nodeName"], "testworld-node");
    assert_eq!(j["status"]["active"], 1);
    assert!(j["status"]["startTime"].is_string());

    finish(&w, &pod_name, "Succeeded");
    ok(
        &w,
        &[
            "wait",
            "--for=condition=complete",
            "job/done",
            "--timeout=20s",
        ],
    );
    let j = job(&w, "done");
    assert_eq!(condition_types(&j), vec!["SuccessCriteriaMet", "Complete"]);
    assert_eq!(j["status"]["succeeded"], 1);
    assert!(j["status"].get("active").is_none());
    assert!(j["status"]["completionTime"].is_string());
    let reasons = event_reasons(&w, "done");
    assert!(
        reasons.contains(&"SuccessfulCreate".to_string())
            && reasons.contains(&"Completed".to_string()),
        "{reasons:?}"
    );
    assert!(event_reasons(&w, &pod_name).contains(&"Scheduled".to_string()));
    assert!(ok(&w, &["get", "jobs"]).contains("Complete"));
    assert!(w.warnings().is_empty(), "{:?}", w.warnings());
}

#[test]
fn failures_beyond_the_backoff_limit_fail_the_job() {
    let w = world();
    create(&w, &job_yaml("flaky", "  backoffLimit: 1\n"));
    let first = bound_pod(&w, "flaky", &[]);
    finish(&w, &first, "Failed");
    let second = bound_pod(&w, "flaky", std::slice::from_ref(&first));
    finish(&w, &second, "Failed");
    ok(
        &w,
        &[
            "wait",
            "--for=condition=failed",
            "job/flaky",
            "--timeout=20s",
        ],
    );
    let j = job(&w, "flaky");
    assert_eq!(condition_types(&j), vec!["FailureTarget", "Failed"]);
    let failed = &j["status"]["conditions"][1];
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(j["status"]["failed"], 2);
    assert!(j["status"].get("completionTime").is_none());
    assert_eq!(pods_of(&w, "flaky").len(), 2, "no third pod");
    assert!(event_reasons(&w, "flaky").contains(&"BackoffLimitExceeded".to_string()));
}

#[test]
fn the_active_deadline_stops_a_job() {
    let w = world();
    create(&w, &job_yaml("slow", "  activeDeadlineSeconds: 1\n"));
    ok(
        &w,
        &[
            "wait",
            "--for=condition=failed",
            "job/slow",
            "--timeout=20s",
        ],
    );
    let j = job(&w, "slow");
    assert_eq!(condition_types(&j), vec!["FailureTarget", "Failed"]);
    assert_eq!(j["status"]["conditions"][1]["reason"], "DeadlineExceeded");
    // Why from the audit: on a loaded machine the deadline can delete the pod before a poll
    // of the live pods sees it bound.
    let was_bound = w.audit().iter().any(|o| {
        o["kind"] == "Pod"
            && o["metadata"]["labels"]["job-name"] == "slow"
            && o["spec"]["nodeName"].is_string()
    });
    assert!(was_bound, "the job's pod was bound before the deadline");
    assert!(pods_of(&w, "slow").is_empty(), "the running pod is deleted");
    let reasons = event_reasons(&w, "slow");
    assert!(
        reasons.contains(&"DeadlineExceeded".to_string())
            && reasons.contains(&"SuccessfulDelete".to_string()),
        "{reasons:?}"
    );
}

#[test]
fn finished_jobs_expire_after_their_ttl_with_their_pods() {
    let w = world();
    create(&w, &job_yaml("brief", "  ttlSecondsAfterFinished: 1\n"));
    let pod = bound_pod(&w, "brief", &[]);
    finish(&w, &pod, "Succeeded");
    eventually("the job to expire", || {
        w.object("jobs", "default", "brief").is_none().then_some(())
    });
    eventually("its pod to be collected", || {
        w.object("pods", "default", &pod).is_none().then_some(())
    });
}

#[test]
fn an_unsatisfiable_node_selector_leaves_the_pod_pending() {
    let w = world();
    let pod = "apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  nodeSelector: {disktype: ssd}
  containers:
  - {name: main, image: 'runner:1'}
";
    create(&w, pod);
    let condition = eventually("the scheduler's verdict", || {
        let p = w.object("pods", "default", "nowhere")?;
        p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled")
            .cloned()
    });
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "Unschedulable");
    let p = w.object("pods", "default", "nowhere").expect("pod");
    assert_eq!(p["status"]["phase"], "Pending");
    assert!(p["spec"].get("nodeName").is_none());
    let events = ok(
        &w,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=nowhere,reason=FailedScheduling",
            "-o",
            "name",
        ],
    );
    assert_eq!(events.lines().count(), 1, "{events}");
}
