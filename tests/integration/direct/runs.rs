//! Direct mode's run lifecycle end to end: interrupted, killed and failed runs, one run of a
//! resource at a time, results that live until the state holds them, and runs that cannot
//! start. Each scenario drives the real `terraform` and asserts on the test cluster's history of
//! every Job version (its API server's audit log).

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::support::cluster::Cluster;
use crate::support::{Run, Workdir, words};

/// How long a test waits for something in the cluster before it fails.
const WAIT: Duration = Duration::from_secs(90);

/// A container runner whose `run.sh` sleeps `create` or `destroy` seconds by action, then
/// writes `{"action": ACTION, "version": version}`; `extra` runs before the outputs are written.
fn scripted(
    cluster: &Cluster,
    name: &str,
    version: &str,
    create: u32,
    destroy: u32,
    extra: &str,
) -> String {
    let script = format!(
        "set -eu\nif [ \"$ACTION\" = create ]; then sleep {create}; else sleep {destroy}; fi\n{extra}\nprintf '{{\"action\": \"%s\", \"version\": \"{version}\"}}' \"$ACTION\" > \"$OUTPUTS_FILE\"\n"
    );
    // Why JSON's quoting: it is a valid HCL string literal for this text (no `${`).
    let script = serde_json::to_string(&script).expect("JSON string");
    cluster.container_runner(name, "", &format!("  files = {{ \"run.sh\" = {script} }}"))
}

/// Starts `terraform <command>`, waits until a Job of `action` of the resource runs, stops
/// terraform with `signal`, and returns its output and the Job's name.
pub(crate) fn interrupted(
    cluster: &Cluster,
    work: &Workdir,
    command: &str,
    action: &str,
    signal: &str,
) -> (Run, String) {
    let child = work.spawn(command);
    let job = cluster.eventually("the Job to run", WAIT, || {
        let name = cluster
            .unfinished_jobs()
            .into_iter()
            .find(|n| n.contains(&format!("-{action}-")))?;
        let phases = cluster.kubectl_ok(
            &[
                "get",
                "pods",
                "-n",
                &cluster.namespace,
                "-l",
                &format!("batch.kubernetes.io/job-name={name}"),
                "-o",
                "jsonpath={.items[*].status.phase}",
            ],
            "",
        );
        phases.contains("Running").then_some(name)
    });
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("terraform output");
    (Run::from(output), job)
}

/// The state's record of the resource, if any.
fn recorded(work: &Workdir, address: &str) -> Option<Json> {
    let state = work.state();
    let resources = state
        .pointer("/values/root_module/resources")
        .and_then(Json::as_array)?
        .clone();
    resources.into_iter().find(|r| r["address"] == address)
}

fn waits_until_finished(cluster: &Cluster, job: &str) {
    cluster.eventually("the run to finish", WAIT, || {
        (!cluster.unfinished_jobs().contains(&job.to_string())).then_some(())
    });
}

/// Apply v1 (a slow run) and stop terraform while it runs; apply v2 at once, which waits for
/// the v1 run to end instead of running beside it; apply v1 again, which runs v1 again rather
/// than taking the abandoned run's results.
fn back_to_earlier_inputs_runs_them_again(cluster: &Cluster, signal: &str) {
    let v1 = scripted(cluster, "revert", "v1", 6, 0, "");
    let v2 = scripted(cluster, "revert", "v2", 0, 0, "");
    let work = Workdir::new(&cluster.config(&v1));
    let (_, abandoned) = interrupted(cluster, &work, "apply", "create", signal);
    assert!(cluster.unfinished_jobs().contains(&abandoned));

    work.write(&cluster.config(&v2));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.revert");
    assert_eq!(values["outputs"]["version"], "v2", "{values}");
    cluster.assert_one_run_at_a_time();

    work.write(&cluster.config(&v1));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.revert");
    assert_eq!(values["outputs"]["version"], "v1", "{values}");
    let again = values["last_run"]["job_name"].as_str().unwrap_or_default();
    assert_ne!(again, abandoned, "v1 ran again, under a name of its own");
    if let Some(uids) = cluster.job_uids(&abandoned) {
        assert_eq!(
            uids.len(),
            1,
            "the abandoned run was never run again or taken"
        );
    }
    work.assert_plan_empty("after going back to v1");
    work.destroy();
    cluster.assert_one_run_at_a_time();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

fn back_to_earlier_inputs_after_ctrl_c(cluster: &Cluster) {
    back_to_earlier_inputs_runs_them_again(cluster, "-INT");
}

fn back_to_earlier_inputs_after_a_kill(cluster: &Cluster) {
    back_to_earlier_inputs_runs_them_again(cluster, "-KILL");
}

/// Ctrl-C during a create records the run, tainted; `terraform destroy` then waits for the
/// create run to end and runs `ACTION=destroy` after it.
fn destroy_after_an_interrupted_create_runs_after_it(cluster: &Cluster) {
    let resource = scripted(cluster, "cut", "v1", 6, 0, "");
    let work = Workdir::new(&cluster.config(&resource));
    let (stopped, create) = interrupted(cluster, &work, "apply", "create", "-INT");
    let text = words(&stopped.stderr);
    assert!(text.contains("The run is recorded in the state"), "{text}");
    let state = recorded(&work, "humanitec_container_runner.cut").expect("recorded");
    assert_eq!(state["tainted"], true, "{state}");

    work.destroy();
    if let Some(lives) = cluster.job_lives() {
        let first = lives
            .iter()
            .find(|l| l.name == create)
            .expect("the create run");
        let destroy = lives
            .iter()
            .find(|l| l.action == "destroy")
            .expect("a destroy run");
        assert!(
            first.ended.is_some_and(|end| end < destroy.born),
            "the destroy run started after the create run ended: {lives:?}"
        );
        assert_eq!(destroy.outcome.as_deref(), Some("Complete"));
    }
    cluster.assert_one_run_at_a_time();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A killed `terraform` records nothing, so `terraform destroy` has nothing to destroy; the
/// next apply re-attaches to the run, and a destroy after it runs after the create run.
fn destroy_after_a_killed_create_needs_the_apply_first(cluster: &Cluster) {
    let resource = scripted(cluster, "killed-create", "v1", 5, 0, "");
    let work = Workdir::new(&cluster.config(&resource));
    let (_, create) = interrupted(cluster, &work, "apply", "create", "-KILL");
    assert!(recorded(&work, "humanitec_container_runner.killed-create").is_none());
    work.apply();
    let values = work.resource_values("humanitec_container_runner.killed-create");
    assert_eq!(
        values["last_run"]["job_name"],
        create.as_str(),
        "re-attached"
    );
    work.destroy();
    cluster.assert_one_run_at_a_time();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Destroy (a slow destroy run) is stopped; the destroy run goes on. The next apply waits for
/// it, or, once it completed, knows the resource is gone: either way it runs `ACTION=create`
/// again and reports the new run's outputs, never the old ones.
fn apply_after_an_interrupted_destroy_creates_again(cluster: &Cluster, signal: &str) {
    let resource = scripted(cluster, "undone", "v1", 0, 6, "");
    let work = Workdir::new(&cluster.config(&resource));
    work.apply();
    let first = work.resource_values("humanitec_container_runner.undone")["last_run"]["job_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, destroy) = interrupted(cluster, &work, "destroy", "destroy", signal);
    if signal == "-INT" {
        // The destroy run completes; the plan's refresh finds that the resource is gone.
        waits_until_finished(cluster, &destroy);
        let plan = work.plan();
        assert!(
            plan.stdout.contains("1 to add, 0 to change, 0 to destroy"),
            "{}",
            plan.stdout
        );
    }
    work.apply();
    let values = work.resource_values("humanitec_container_runner.undone");
    let now = values["last_run"]["job_name"].as_str().unwrap_or_default();
    assert_eq!(values["outputs"]["action"], "create");
    if let Some(lives) = cluster.job_lives() {
        let undo = lives
            .iter()
            .find(|l| l.name == destroy)
            .expect("the destroy run");
        // Why the last of that name: creating from nothing again may reuse the first name.
        let redo = lives
            .iter()
            .rev()
            .find(|l| l.name == now)
            .expect("the new create run");
        assert!(
            undo.ended.is_some_and(|end| end < redo.born),
            "a new create run started after the destroy run ended ({first} was the first): \
             {lives:?}"
        );
    }
    work.assert_plan_empty("after creating again");
    work.destroy();
    cluster.assert_one_run_at_a_time();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

fn apply_after_a_ctrl_c_destroy(cluster: &Cluster) {
    apply_after_an_interrupted_destroy_creates_again(cluster, "-INT");
}

fn apply_after_a_killed_destroy(cluster: &Cluster) {
    apply_after_an_interrupted_destroy_creates_again(cluster, "-KILL");
}

/// A create that fails after its runner started (`ERROR_FILE`, exit 1), and one that
/// succeeded but whose results are not JSON, go into state tainted; destroy runs
/// `ACTION=destroy` for what they may have made.
fn a_failed_create_is_destroyed_later(cluster: &Cluster) {
    let fails =
        "if [ \"$ACTION\" = create ]; then echo 'half of it made' > \"$ERROR_FILE\"; exit 1; fi";
    let garbled =
        "if [ \"$ACTION\" = create ]; then echo 'not json' > \"$OUTPUTS_FILE\"; exit 0; fi";
    for (name, extra, said) in [
        ("half-made", fails, "ERROR_FILE: half of it made"),
        ("garbled", garbled, "OUTPUTS_FILE is not JSON"),
    ] {
        let resource = scripted(cluster, name, "v1", 0, 0, extra);
        let work = Workdir::new(&cluster.config(&resource));
        let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
        assert_eq!(apply.code, 1, "{}", apply.stdout);
        let text = words(&apply.stderr);
        assert!(text.contains(said), "{text}");
        assert!(
            text.contains(&format!(
                "The run of ACTION=create of container runner \"{name}\" failed"
            )),
            "{text}"
        );
        let state =
            recorded(&work, &format!("humanitec_container_runner.{name}")).expect("recorded");
        assert_eq!(state["tainted"], true, "{state}");
        work.destroy();
        if let Some(lives) = cluster.job_lives() {
            let destroyed = lives.iter().any(|l| {
                l.resource == name
                    && l.action == "destroy"
                    && l.outcome.as_deref() == Some("Complete")
            });
            assert!(destroyed, "ACTION=destroy ran for {name}: {lives:?}");
        }
        assert_eq!(cluster.leftovers(), Vec::<String>::new());
    }
}

/// A service account that does not exist: the Job controller cannot create the pod; the apply
/// fails within seconds with the reason, records nothing and leaves nothing behind.
fn a_missing_service_account_fails_in_seconds(cluster: &Cluster) {
    let resource = cluster.container_runner("no-account", "", "").replace(
        "service_account = \"runner-job\"",
        "service_account = \"no-such-account\"",
    );
    assert!(resource.contains("no-such-account"));
    let work = Workdir::new(&cluster.config(&resource));
    let started = Instant::now();
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(text.contains("could not start"), "{text}");
    assert!(
        text.contains("Job controller cannot create its pod"),
        "{text}"
    );
    assert!(text.contains("no-such-account"), "{text}");
    assert!(text.contains("Nothing ran"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "long before the 20m timeout"
    );
    assert!(recorded(&work, "humanitec_container_runner.no-account").is_none());
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Outputs up to the documented limit (960 KiB for OUTPUTS_FILE and SECRET_OUTPUTS_FILE
/// together) come back whole; over it, the diagnostic names the file, its size and the limit.
fn outputs_up_to_the_limit_come_back_whole(cluster: &Cluster) {
    let writes = |bytes: usize| {
        format!(
            "if [ \"$ACTION\" = create ]; then {{ printf '{{\"big\": \"'; head -c {bytes} /dev/zero | tr '\\0' x; printf '\"}}'; }} > \"$OUTPUTS_FILE\"; exit 0; fi"
        )
    };
    let whole = scripted(cluster, "big", "v1", 0, 0, &writes(980_000));
    let work = Workdir::new(&cluster.config(&whole));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.big");
    assert_eq!(
        values["outputs"]["big"].as_str().map(str::len),
        Some(980_000)
    );
    work.destroy();

    let too_big = scripted(cluster, "too-big", "v1", 0, 0, &writes(1_000_000));
    let work = Workdir::new(&cluster.config(&too_big));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(text.contains("OUTPUTS_FILE is 1000011 bytes"), "{text}");
    assert!(text.contains("983040 bytes (960 KiB)"), "{text}");
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Import in direct mode is refused at once, before any network call: no Humanitec settings
/// are needed, and the API named by the environment is never asked.
fn import_in_direct_mode_is_refused_at_once(cluster: &Cluster) {
    let resource = scripted(cluster, "imported", "v1", 0, 0, "");
    let work = Workdir::new(&cluster.config(&resource));
    let import = work.tf_env(
        &[
            "import",
            "-no-color",
            "-input=false",
            "humanitec_container_runner.imported",
            "imported",
        ],
        &[
            ("HUMANITEC_ORG", "some-org"),
            ("HUMANITEC_TOKEN", "some-token"),
            ("HUMANITEC_API_PREFIX", "http://127.0.0.1:9/"),
        ],
    );
    assert_eq!(import.code, 1, "{}", import.stdout);
    let text = words(&import.stderr);
    assert!(
        text.contains("A humanitec_container_runner in direct mode cannot be imported"),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1:9"), "no API was asked: {text}");
    assert!(!text.contains("organization"), "{text}");
    let runner_config = work.tf(&[
        "import",
        "-no-color",
        "-input=false",
        "humanitec_runner_config.cluster",
        "config-container-runner",
    ]);
    assert_eq!(runner_config.code, 1, "{}", runner_config.stdout);
    assert!(
        words(&runner_config.stderr)
            .contains("A humanitec_runner_config in direct mode cannot be imported")
    );
}

/// A Job whose service account may not create the result Secret: the diagnostic gives the
/// collect step's own error, and the run counts as failed.
fn a_job_account_that_may_not_write_results_says_why(cluster: &Cluster) {
    cluster.kubectl_ok(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: no-rights, namespace: {}}}\n",
            cluster.namespace
        ),
    );
    let resource = scripted(cluster, "no-results", "v1", 0, 0, "").replace(
        "service_account = \"runner-job\"",
        "service_account = \"no-rights\"",
    );
    let work = Workdir::new(&cluster.config(&resource));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains("was never written; the collect step failed"),
        "{text}"
    );
    assert!(text.to_lowercase().contains("forbidden"), "{text}");
    let state = recorded(&work, "humanitec_container_runner.no-results").expect("recorded");
    assert_eq!(state["tainted"], true, "a failed run: {state}");
}

/// Leaving out an empty map or list (`variables = {}`, `files = {}`, `triggers = {}`,
/// `command = []`) changes no run input: the apply runs nothing.
fn empty_maps_and_lists_are_no_new_run(cluster: &Cluster) {
    let with_empties = cluster.container_runner(
        "empties",
        "    variables = {}\n    command   = []",
        "  files    = {}\n  triggers = {}",
    );
    let work = Workdir::new(&cluster.config(&with_empties));
    work.apply();
    let first = work.resource_values("humanitec_container_runner.empties")["last_run"].clone();
    work.write(&cluster.config(&cluster.container_runner("empties", "", "")));
    work.apply();
    let now = work.resource_values("humanitec_container_runner.empties")["last_run"].clone();
    assert_eq!(first, now, "no new run");
    if let Some(lives) = cluster.job_lives() {
        assert_eq!(
            lives.iter().filter(|l| l.resource == "empties").count(),
            1,
            "{lives:?}"
        );
    }
    work.assert_plan_empty("after leaving the empty values out");
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A write-only secret variable reaches the create run and, kept in the cluster, the destroy
/// run, though the state never holds it; a new value without a new version runs nothing, a new
/// version runs with the new value; the kept Secret goes with the destroy.
fn write_only_secrets_reach_the_run_and_its_destroy_run(cluster: &Cluster) {
    let fingerprint = |value: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", "printf %s \"$0\" | sha256sum | cut -c1-16", value])
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let resource = |value: &str, version: &str| {
        let script = "set -eu\necho \"token fingerprint: $(printf %s \"$TOKEN\" | sha256sum | cut -c1-16)\"\nprintf '{\"action\": \"%s\"}' \"$ACTION\" > \"$OUTPUTS_FILE\"\n";
        let script = serde_json::to_string(script).expect("JSON string");
        cluster.container_runner(
            "kept-wo",
            &format!(
                "    secret_variables_wo         = {{ TOKEN = \"{value}\" }}\n    secret_variables_wo_version = \"{version}\""
            ),
            &format!("  files = {{ \"run.sh\" = {script} }}"),
        )
    };
    let (first, second) = ("wo-first-s3cr3t-41c7", "wo-second-s3cr3t-9d02");
    let work = Workdir::new(&cluster.config(&resource(first, "1")));
    work.apply();
    let kept = "secret/kept-wo-write-only".to_string();
    assert!(
        cluster.leftovers().contains(&kept),
        "{:?}",
        cluster.leftovers()
    );
    // Why only where the container logs can be read: the runner prints the value's
    // fingerprint, and only the test cluster keeps every container's log.
    let logs = || cluster.container_logs();
    let seen = |value: &str| {
        logs().map(|logs| {
            logs.matches(&format!("token fingerprint: {}", fingerprint(value)))
                .count()
        })
    };
    if let Some(seen) = seen(first) {
        assert_eq!(seen, 1, "the create run got the value");
    }

    work.write(&cluster.config(&resource(second, "1")));
    work.assert_plan_empty("with a new value and the same version");
    work.write(&cluster.config(&resource(second, "2")));
    work.apply();
    if let Some(seen) = seen(second) {
        assert_eq!(seen, 1, "a new version runs with the new value");
    }
    work.destroy();
    if let (Some(seen), Some(logs)) = (seen(second), logs()) {
        assert_eq!(seen, 2, "the destroy run got the kept value");
        assert!(logs.contains("runner: ACTION=destroy"));
    }
    for file in ["terraform.tfstate", "terraform.tfstate.backup"] {
        let text = std::fs::read_to_string(work.path().join(file)).unwrap_or_default();
        for value in [first, second] {
            assert!(!text.contains(value), "{file} holds a write-only value");
        }
    }
    assert_eq!(
        cluster.leftovers(),
        Vec::<String>::new(),
        "the kept Secret went with the destroy"
    );
}

crate::support::tiers! {
    both:
        back_to_earlier_inputs_after_ctrl_c,
        back_to_earlier_inputs_after_a_kill,
        destroy_after_an_interrupted_create_runs_after_it,
        destroy_after_a_killed_create_needs_the_apply_first,
        apply_after_a_ctrl_c_destroy,
        apply_after_a_killed_destroy,
        a_failed_create_is_destroyed_later,
        a_missing_service_account_fails_in_seconds,
        outputs_up_to_the_limit_come_back_whole,
        import_in_direct_mode_is_refused_at_once,
        a_job_account_that_may_not_write_results_says_why,
        empty_maps_and_lists_are_no_new_run,
        write_only_secrets_reach_the_run_and_its_destroy_run;
    local_only:
}
