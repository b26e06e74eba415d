//! Direct mode under faults at the moments that matter: the provider reaches the test cluster's
//! API server through a fault-injecting proxy (`support::fault_proxy`) that resets a request
//! before it is processed, loses an answer after it was processed, cuts watches or refuses every
//! connection for a while; `terraform` is killed as a run completes; two applies of one
//! configuration run at once. Each asserts, from the API server's audit log, that no transition
//! runs twice, no outputs are lost and nothing is left behind.
//!
//! Why the test cluster only: the checks read its audit log, and a managed cluster's API server
//! is not on this machine for the proxy to sit in front of with an admin token.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cluster::Cluster;
use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::{Run, Workdir, words};

/// How long a test waits for something in the cluster before it fails.
const WAIT: Duration = Duration::from_secs(90);

/// A cluster reached through a fault proxy: the proxy, and the kubeconfig that points at it.
struct Proxied {
    cluster: Cluster,
    proxy: FaultProxy,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxied {
    fn start() -> Self {
        let cluster = Cluster::local();
        let (url, ca) = cluster.api_server();
        let proxy = FaultProxy::start(&url, &ca);
        let token = cluster
            .admin_token()
            .expect("the test cluster's admin token");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: proxied\n  cluster:\n    server: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: proxied\n  context:\n    cluster: proxied\n    user: admin\ncurrent-context: proxied\n",
                proxy.url()
            ),
        )
        .expect("write the kubeconfig");
        Proxied {
            cluster,
            proxy,
            kubeconfig,
            _dir: dir,
        }
    }

    /// A configuration whose runner config reaches the cluster through the proxy, with one
    /// container runner whose run sleeps `create` or `destroy` seconds by action.
    fn config(&self, name: &str, create: u32, destroy: u32) -> String {
        let script = format!(
            "set -eu\nif [ \"$ACTION\" = create ]; then sleep {create}; else sleep {destroy}; fi\nprintf '{{\"action\": \"%s\"}}' \"$ACTION\" > \"$OUTPUTS_FILE\"\nprintf '{{\"token\": \"tok-%s-9f3e\"}}' \"$ACTION\" > \"$SECRET_OUTPUTS_FILE\"\n"
        );
        let script = serde_json::to_string(&script).expect("JSON string");
        let resource = self.cluster.container_runner(
            name,
            "",
            &format!("  files = {{ \"run.sh\" = {script} }}"),
        );
        self.cluster.config(&resource).replace(
            &format!("config_path = \"{}\"", self.cluster.kubeconfig().display()),
            &format!("config_path = \"{}\"", self.kubeconfig.display()),
        )
    }

    /// How many Jobs of `action` of resource `name` the cluster ever held.
    fn runs(&self, name: &str, action: &str) -> usize {
        let lives = self
            .cluster
            .job_lives()
            .expect("the test cluster's history");
        lives
            .iter()
            .filter(|l| l.resource == name && l.action == action)
            .count()
    }
}

/// Resets on reading the result Secret are retried, on create and on destroy: one run each.
/// When they outlast the retries, the apply fails without recording anything, and the next
/// apply re-attaches to the completed run and reads its results instead of running it again.
fn resets_while_reading_results_never_run_a_transition_twice() {
    let proxied = Proxied::start();
    let work = Workdir::new(&proxied.config("reread", 0, 0));
    proxied
        .proxy
        .inject("GET", "-result", Fault::ResetBefore, 3);
    work.apply();
    assert_eq!(proxied.proxy.faults_applied(), 3);
    let values = work.resource_values("humanitec_container_runner.reread");
    assert_eq!(values["outputs"]["action"], "create");
    proxied
        .proxy
        .inject("GET", "-result", Fault::ResetBefore, 3);
    work.destroy();
    assert_eq!(proxied.runs("reread", "create"), 1);
    assert_eq!(proxied.runs("reread", "destroy"), 1);

    let work = Workdir::new(&proxied.config("unread", 0, 0));
    // Why the Secrets only: a reset watch would only be retried, and the run never noticed.
    proxied
        .proxy
        .inject("GET", "/secrets/unread-create-", Fault::ResetBefore, 200);
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains("completed, but its results could not be read"),
        "{text}"
    );
    assert!(!apply.stderr.contains("tok-create-9f3e"));
    proxied.proxy.clear();
    work.apply();
    let values = work.resource_values("humanitec_container_runner.unread");
    assert_eq!(values["outputs"]["action"], "create");
    assert_eq!(values["secret_outputs"]["token"], "tok-create-9f3e");
    assert_eq!(
        proxied.runs("unread", "create"),
        1,
        "re-attached, not run again"
    );
    work.destroy();
    proxied.cluster.assert_one_run_at_a_time();
    assert_eq!(proxied.cluster.leftovers(), Vec::<String>::new());
}

/// `terraform` killed the moment its run completes, before or after it wrote the state: the
/// next apply (or destroy) has the outputs without running the transition again.
fn a_kill_as_the_run_completes_loses_nothing() {
    let proxied = Proxied::start();
    let cluster = &proxied.cluster;
    let work = Workdir::new(&proxied.config("killed-late", 3, 3));
    for (command, action) in [("apply", "create"), ("destroy", "destroy")] {
        let child = work.spawn(command);
        cluster.eventually("the run to complete", WAIT, || {
            let lives = cluster.job_lives()?;
            lives
                .iter()
                .any(|l| l.action == action && l.outcome.as_deref() == Some("Complete"))
                .then_some(())
        });
        std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .expect("kill");
        let _ = child.wait_with_output();
        match command {
            "apply" => {
                work.apply();
                let values = work.resource_values("humanitec_container_runner.killed-late");
                assert_eq!(values["outputs"]["action"], "create");
            }
            _ => {
                work.destroy();
            }
        }
        assert_eq!(proxied.runs("killed-late", action), 1, "{action} ran once");
    }
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// The answer to the Job's create is lost: the provider finds the Job it created, keeps its
/// inputs, and the run completes; a lost answer to the inputs Secret's create is taken in
/// stride the same way.
fn lost_answers_to_creates_are_looked_up() {
    let proxied = Proxied::start();
    let work = Workdir::new(&proxied.config("lost-create", 0, 0));
    proxied.proxy.inject("POST", "/jobs", Fault::LoseAnswer, 1);
    proxied
        .proxy
        .inject("POST", "/secrets", Fault::LoseAnswer, 1);
    let started = Instant::now();
    work.apply();
    assert_eq!(proxied.proxy.faults_applied(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no wait for a timeout"
    );
    let values = work.resource_values("humanitec_container_runner.lost-create");
    assert_eq!(values["outputs"]["action"], "create");
    assert_eq!(proxied.runs("lost-create", "create"), 1);
    let audit = proxied
        .cluster
        .history()
        .expect("the test cluster's history");
    let failed_mount = audit
        .iter()
        .any(|o| o["kind"] == "Event" && o["reason"] == "FailedMount");
    assert!(!failed_mount, "the pod always had its inputs");
    work.destroy();
    assert_eq!(proxied.cluster.leftovers(), Vec::<String>::new());
}

/// The API server refuses every connection for 12 s while the run completes: its end is
/// noticed within seconds of the server's return.
fn the_end_of_a_run_is_noticed_soon_after_an_outage() {
    let proxied = Proxied::start();
    let cluster = &proxied.cluster;
    let work = Workdir::new(&proxied.config("outage", 6, 0));
    let child = work.spawn("apply");
    cluster.eventually("the run to start", WAIT, || {
        cluster
            .job_lives()?
            .iter()
            .any(|l| l.resource == "outage")
            .then_some(())
    });
    let outage = Duration::from_secs(12);
    proxied.proxy.outage(outage);
    let back = Instant::now() + outage;
    let apply = Run::from(child.wait_with_output().expect("terraform output"));
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let late = Instant::now().saturating_duration_since(back);
    assert!(proxied.proxy.refused() > 0, "the provider met the outage");
    assert!(
        late < Duration::from_secs(10),
        "noticed {late:?} after the outage"
    );
    assert_eq!(proxied.runs("outage", "create"), 1);
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A delete that fails during clean-up (every try reset) leaves the finished run for the next
/// operation on the resource, which deletes it; watches cut in the middle of a run resume.
fn a_failed_clean_up_is_done_by_the_next_operation() {
    let proxied = Proxied::start();
    let cluster = &proxied.cluster;
    let work = Workdir::new(&proxied.config("tidy", 4, 0));
    let child = work.spawn("apply");
    cluster.eventually("the run to start", WAIT, || {
        cluster
            .job_lives()?
            .iter()
            .any(|l| l.resource == "tidy")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    proxied.proxy.cut_streams();
    cluster.eventually("the Job's and the pods' watches to be cut", WAIT, || {
        (proxied.proxy.streams_cut() >= 2).then_some(())
    });
    let apply = Run::from(child.wait_with_output().expect("terraform output"));
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let job = work.resource_values("humanitec_container_runner.tidy")["last_run"]["job_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    proxied
        .proxy
        .inject("DELETE", &format!("/jobs/{job}"), Fault::ResetBefore, 100);
    work.assert_plan_empty("with the clean-up failing");
    assert!(
        cluster.jobs().contains(&job),
        "the failed delete left the run"
    );
    proxied.proxy.clear();
    work.assert_plan_empty("with the clean-up working");
    cluster.eventually("the run to be deleted", WAIT, || {
        (!cluster.jobs().contains(&job)).then_some(())
    });
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Two applies of the same configuration (two working directories) at once: both take the
/// same one run; the two destroys take the same one destroy run.
fn two_applies_of_one_configuration_share_one_run() {
    let proxied = Proxied::start();
    let config = proxied.config("twins", 3, 1);
    let (left, right) = (Workdir::new(&config), Workdir::new(&config));
    for command in ["apply", "destroy"] {
        let (a, b) = (left.spawn(command), right.spawn(command));
        for child in [a, b] {
            let run = Run::from(child.wait_with_output().expect("terraform output"));
            assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        }
        if command == "apply" {
            let l = left.resource_values("humanitec_container_runner.twins");
            let r = right.resource_values("humanitec_container_runner.twins");
            assert_eq!(l["last_run"]["job_name"], r["last_run"]["job_name"]);
            assert_eq!(l["outputs"]["action"], "create");
        }
    }
    assert_eq!(proxied.runs("twins", "create"), 1);
    assert_eq!(proxied.runs("twins", "destroy"), 1);
    proxied.cluster.assert_one_run_at_a_time();
    assert_eq!(proxied.cluster.leftovers(), Vec::<String>::new());
}

/// The requests one apply and one destroy make, as the proxy sees them: printed for the
/// record, none repeated in a loop (the same request more than three times), and none the API
/// server warned of (its field validation: an unknown or duplicate field in an object).
fn a_run_asks_the_api_a_bounded_number_of_times() {
    let proxied = Proxied::start();
    let work = Workdir::new(&proxied.config("counted", 1, 1));
    work.apply();
    let applied = proxied.proxy.requests();
    work.destroy();
    let all = proxied.proxy.requests();
    let destroyed = &all[applied.len()..];
    for (what, requests) in [("apply", &applied[..]), ("destroy", destroyed)] {
        // Why without the query: a watch's resourceVersion changes as it resumes.
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for request in requests {
            // Why the container too: each container's log is a stream of its own.
            let (path, query) = request.split_once('?').unwrap_or((request.as_str(), ""));
            let container = query
                .split('&')
                .find(|p| p.starts_with("container="))
                .map(|p| format!("?{p}"))
                .unwrap_or_default();
            let key = format!("{path}{container}");
            *counts.entry(key).or_default() += 1;
        }
        let watches = requests.iter().filter(|r| r.contains("watch=true")).count();
        eprintln!(
            "{what}: {} requests, {watches} watches: {counts:#?}",
            requests.len()
        );
        for (request, count) in &counts {
            // Why SelfSubjectAccessReviews apart: the permission check asks one per permission
            // a run needs, at once; each container runner and runner config checks once.
            if request.ends_with("/selfsubjectaccessreviews") {
                continue;
            }
            let limit = if request.starts_with("GET") { 4 } else { 3 };
            assert!(*count <= limit, "{what} repeats {request} {count} times");
        }
    }
    assert_eq!(proxied.runs("counted", "create"), 1);
    let warnings = proxied.proxy.warnings();
    assert!(warnings.is_empty(), "the API server warned: {warnings:?}");
}

/// The log streams are cut three times while the runner prints 30 numbered lines: every line
/// reaches the provider log once, in order (the streams resume from the last line's timestamp).
/// At DEBUG the log also has kube's own events (its HTTP requests, through `tracing`).
fn a_cut_log_stream_resumes_without_losing_or_repeating_lines() {
    let proxied = Proxied::start();
    let cluster = &proxied.cluster;
    let script = "set -eu\ni=1\nwhile [ $i -le 30 ]; do echo \"tick-$i-end\"; i=$((i+1)); sleep 0.25; done\nprintf '{\"action\": \"%s\"}' \"$ACTION\" > \"$OUTPUTS_FILE\"\n";
    let script = serde_json::to_string(script).expect("JSON string");
    let resource = cluster.container_runner(
        "ticks",
        "",
        &format!("  files = {{ \"run.sh\" = {script} }}"),
    );
    let config = cluster.config(&resource).replace(
        &format!("config_path = \"{}\"", cluster.kubeconfig().display()),
        &format!("config_path = \"{}\"", proxied.kubeconfig.display()),
    );
    let work = Workdir::new(&config);
    let log = work.path().join("provider.log");
    let child = work
        .command(&["apply", "-auto-approve", "-no-color", "-input=false"])
        .env("TF_LOG_PROVIDER", "DEBUG")
        .env("TF_LOG_PATH", &log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start terraform");
    let ticked = |n: usize| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains(&format!("tick-{n}-end")).then_some(())
    };
    let cuts = proxied.proxy.streams_cut();
    for after in [3, 10, 18] {
        cluster.eventually("the runner to print", WAIT, || ticked(after));
        proxied.proxy.cut_streams();
    }
    let apply = Run::from(child.wait_with_output().expect("terraform output"));
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(proxied.proxy.streams_cut() >= cuts + 3, "streams were cut");
    let text = std::fs::read_to_string(&log).expect("the provider log");
    let mut at = 0;
    for n in 1..=30 {
        let line = format!("tick-{n}-end");
        assert_eq!(text.matches(&line).count(), 1, "{line} once in the log");
        let found = text.find(&line).expect("the line");
        assert!(found > at, "{line} in order");
        at = found;
    }
    assert!(
        text.contains("provider.kube_client"),
        "kube's own events reach the log at DEBUG"
    );
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

mod test_cluster {
    #[test]
    fn resets_while_reading_results_never_run_a_transition_twice() {
        super::resets_while_reading_results_never_run_a_transition_twice();
    }
    #[test]
    fn a_kill_as_the_run_completes_loses_nothing() {
        super::a_kill_as_the_run_completes_loses_nothing();
    }
    #[test]
    fn lost_answers_to_creates_are_looked_up() {
        super::lost_answers_to_creates_are_looked_up();
    }
    #[test]
    fn the_end_of_a_run_is_noticed_soon_after_an_outage() {
        super::the_end_of_a_run_is_noticed_soon_after_an_outage();
    }
    #[test]
    fn a_failed_clean_up_is_done_by_the_next_operation() {
        super::a_failed_clean_up_is_done_by_the_next_operation();
    }
    #[test]
    fn two_applies_of_one_configuration_share_one_run() {
        super::two_applies_of_one_configuration_share_one_run();
    }
    #[test]
    fn a_run_asks_the_api_a_bounded_number_of_times() {
        super::a_run_asks_the_api_a_bounded_number_of_times();
    }
    #[test]
    fn a_cut_log_stream_resumes_without_losing_or_repeating_lines() {
        super::a_cut_log_stream_resumes_without_losing_or_repeating_lines();
    }
}
