//! A definition that exists is in state: a create whose answer never comes (it ran past its
//! time limit, or Terraform was interrupted) is looked up before it is given up on.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{Run, Sandbox, Workdir};

fn resources(count: usize, create_timeout: &str) -> String {
    format!(
        r#"
resource "humanitec_runner_config" "dev" {{
  id = "config-container-runner"
  cluster {{
    cluster_type = "gke"
    name         = "my-cluster"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }}
  timeouts {{
    create = "{create_timeout}"
  }}
}}

resource "humanitec_container_runner" "s3" {{
  count         = {count}
  id            = "bucket-${{count.index}}"
  type          = "s3"
  runner_config = humanitec_runner_config.dev
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  timeouts {{
    create = "{create_timeout}"
  }}
}}
"#
    )
}

/// After the faults are gone: another apply has nothing to create and nothing is duplicated.
async fn nothing_lost(sandbox: &Sandbox, work: &Workdir, expected: usize) {
    sandbox.set_after_faults(0.0, &["delay"], &[], 1).await;
    let again = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(!again.stderr.contains("already exists"), "{}", again.stderr);
    work.assert_plan_empty("after the second apply");
    assert_eq!(sandbox.definitions().await.len(), expected);
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_past_its_time_limit_is_found_and_kept() {
    let sandbox = Sandbox::start();
    // Every create is applied at once, and its answer held for 4 s.
    sandbox
        .set_after_faults(1.0, &["delay"], &["POST"], 4000)
        .await;
    let work = Workdir::new(&format!(
        "{}{}",
        sandbox.provider_block(),
        resources(2, "1s")
    ));
    let applied = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let all = format!("{}{}", applied.stdout, applied.stderr);
    let flat = all.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("was created"), "{flat}");
    assert!(flat.contains("its time limit passed"), "{flat}");
    nothing_lost(&sandbox, &work, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_apply_keeps_what_it_created() {
    let sandbox = Sandbox::start();
    sandbox
        .set_after_faults(1.0, &["delay"], &["POST"], 3000)
        .await;
    let work = Workdir::new(&format!(
        "{}{}",
        sandbox.provider_block(),
        resources(5, "20m")
    ));
    let child = work
        .command(&["apply", "-auto-approve", "-no-color", "-input=false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start terraform apply");
    // The runner config is created after 3 s; the container runners, which wait for it, are on
    // their way: interrupt, as Ctrl-C does.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let interrupted = Run::from(child.wait_with_output().expect("wait for terraform"));
    assert!(
        interrupted.stdout.contains("Interrupt received")
            || interrupted.stderr.contains("Interrupt received"),
        "{}\n{}",
        interrupted.stdout,
        interrupted.stderr
    );
    // Whatever exists now is in state.
    let state = work.state();
    let in_state = state
        .pointer("/values/root_module/resources")
        .and_then(|r| r.as_array())
        .map_or(0, Vec::len);
    let existing = sandbox.definitions().await.len();
    assert_eq!(existing, 6, "every create was sent before the interrupt");
    assert_eq!(in_state, existing, "{state}");
    nothing_lost(&sandbox, &work, 6).await;
}
