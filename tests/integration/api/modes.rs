//! An object stays with the mode it was created in: switching the provider to `mode = "direct"`
//! neither orphans nor forgets what api mode created.

use crate::support::{Sandbox, Workdir};

fn resources() -> &'static str {
    r#"
resource "humanitec_runner_config" "dev" {
  id = "config-container-runner"
  cluster {
    cluster_type = "gke"
    name         = "my-cluster"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }
}

resource "humanitec_container_runner" "s3" {
  id            = "my-s3-bucket"
  type          = "s3"
  runner_config = humanitec_runner_config.dev
  job {
    image = "ghcr.io/my-org/my-image:1.1.0"
  }
}
"#
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_created_in_api_mode_are_planned_and_destroyed_in_api_mode_after_a_switch() {
    let sandbox = Sandbox::start();
    let api = sandbox.provider_block();
    let work = Workdir::new(&format!("{api}{}", resources()));
    work.apply();
    assert_eq!(sandbox.definitions().await.len(), 2);

    // Switched to direct mode, keeping the API settings: the runner config stays in api mode
    // (it is still read from the API) and the plan says how to move it.
    let direct = api.replace("api_prefix =", "mode       = \"direct\"\n  api_prefix =");
    work.write(&format!("{direct}{}", resources()));
    let plan = work.plan();
    let all = format!("{}{}", plan.stdout, plan.stderr);
    let flat = all.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("This humanitec_runner_config stays in api mode"),
        "{flat}"
    );
    assert!(
        flat.contains("terraform apply -replace=<address>"),
        "{flat}"
    );
    assert_eq!(
        sandbox.definitions().await.len(),
        2,
        "a plan changes nothing"
    );

    // Destroyed in direct mode: the definitions are deleted through the API, not just dropped
    // from state.
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
    let left = work.state();
    let in_state = left
        .pointer("/values/root_module/resources")
        .and_then(|r| r.as_array())
        .map_or(0, Vec::len);
    assert_eq!(in_state, 0, "{left}");
}
