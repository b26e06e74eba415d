//! Every difference the provider manages is a planned change that apply repairs, and a change
//! api mode ignores writes nothing.

use reqwest::Method;
use serde_json::json;

use crate::support::{Sandbox, Workdir};

fn resources(extra: &str) -> String {
    format!(
        r#"
resource "humanitec_runner_config" "dev" {{
  id        = "config-container-runner"
  agent_url = "https://agent.example"
  cluster {{
    cluster_type = "gke"
    name         = "my-cluster"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }}
{extra}
}}

resource "humanitec_container_runner" "s3" {{
  id   = "my-s3-bucket"
  type = "s3"
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
}}
"#
    )
}

/// The version of the runner config's stored `agent_url`.
async fn agent_url_version(sandbox: &Sandbox) -> serde_json::Value {
    let definition = sandbox.definition("config-container-runner").await.unwrap();
    definition["driver_inputs"]["secret_refs"]["agent_url"]["version"].clone()
}

/// Rewrites a definition outside Terraform, keeping what `change` leaves alone.
async fn rewrite(sandbox: &Sandbox, id: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let current = sandbox.definition(id).await.unwrap();
    let mut body = json!({
        "name": current["name"],
        "driver_type": current["driver_type"],
        "driver_inputs": {"values": current["driver_inputs"]["values"]},
    });
    change(&mut body);
    let status = sandbox
        .call(Method::PUT, &format!("/{id}"), Some(body))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_of_driver_inputs_and_secrets_is_planned_and_repaired() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!("{provider}{}", resources("")));
    work.apply();
    work.assert_plan_empty("after create");

    // The container runner's driver is changed, and a cluster input added, outside Terraform.
    rewrite(&sandbox, "my-s3-bucket", |body| {
        body["driver_type"] = json!("humanitec/echo");
        body["driver_inputs"]["values"]["cluster"] = json!({"account": "a/b"});
    })
    .await;
    let plan = work.plan();
    assert_eq!(
        plan.code, 2,
        "drift not planned:\n{}\n{}",
        plan.stdout, plan.stderr
    );
    assert!(
        plan.stdout
            .contains(r#"~ driver_type      = "humanitec/echo" -> "humanitec/container-runner""#),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("unmanaged_inputs"), "{}", plan.stdout);
    // The warning that explains it reads as a sentence.
    let said = crate::support::words(&plan.stdout);
    assert!(
        said.contains("Its driver is \"humanitec/echo\", not \"humanitec/container-runner\"; it has a `cluster` input"),
        "{said}"
    );
    work.apply();
    work.assert_plan_empty("after the repair");
    let repaired = sandbox.definition("my-s3-bucket").await.unwrap();
    assert_eq!(repaired["driver_type"], "humanitec/container-runner");
    assert!(repaired["driver_inputs"]["values"].get("cluster").is_none());

    // The runner config's agent_url is rewritten outside Terraform: a planned change too.
    rewrite(&sandbox, "config-container-runner", |body| {
        body["driver_inputs"]["secrets"] = json!({"agent_url": "https://elsewhere"});
    })
    .await;
    let plan = work.plan();
    assert_eq!(plan.code, 2, "secret drift not planned:\n{}", plan.stdout);
    assert!(plan.stdout.contains("agent_url"), "{}", plan.stdout);
    work.apply();
    work.assert_plan_empty("after writing the agent URL again");
    let secrets = sandbox.secrets().await.to_string();
    assert!(secrets.contains("https://agent.example"), "{secrets}");

    // A change api mode ignores (the kubernetes block, timeouts) makes no write: the stored
    // secret keeps its version.
    let before = agent_url_version(&sandbox).await;
    let ignored = r#"
  kubernetes {
    config_path = "/nonexistent/kubeconfig"
  }
  timeouts {
    update = "5m"
  }"#;
    work.write(&format!("{provider}{}", resources(ignored)));
    work.apply();
    work.assert_plan_empty("after an api-mode-free change");
    assert_eq!(agent_url_version(&sandbox).await, before);
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}
