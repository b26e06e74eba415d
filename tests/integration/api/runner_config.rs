//! `humanitec_runner_config` end to end.

use crate::support::{Sandbox, TOKEN, Workdir};

fn runner_config(name: &str, zone: &str, env_type: &str, extra: &str) -> String {
    format!(
        r#"
resource "humanitec_runner_config" "dev" {{
  id   = "config-container-runner"
  name = "{name}"

  criteria {{ env_type = "{env_type}" }}

  cluster {{
    cluster_type = "gke"
    account      = "myOrg/myAccount"
    name         = "my-cluster"
    loadbalancer = "10.10.10.10"
    project_id   = "my-gcp-project"
    zone         = "{zone}"
  }}
{extra}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_create_update_import_destroy() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let secret = r#"  agent_url = "$${resources.agent.outputs.url}""#;
    let work = Workdir::new(&format!(
        "{provider}{}",
        runner_config(
            "Config For Container Driver Runner",
            "cluster-zone",
            "development",
            secret
        )
    ));

    // Create, then nothing left to do.
    let applied = work.apply();
    assert!(
        !applied.stdout.contains("resources.agent.outputs.url"),
        "secret shown:\n{}",
        applied.stdout
    );
    work.assert_plan_empty("after create");
    let definition = sandbox
        .definition("config-container-runner")
        .await
        .expect("created");
    assert_eq!(definition["type"], "config");
    assert_eq!(definition["driver_type"], "humanitec/template");
    assert_eq!(definition["criteria"][0]["res_id"], "container-runner");
    assert_eq!(definition["criteria"][0]["env_type"], "development");
    assert!(definition["driver_inputs"]["secret_refs"]["agent_url"]["ref"].is_string());
    let secrets = sandbox.secrets().await.to_string();
    assert!(
        secrets.contains("${resources.agent.outputs.url}"),
        "agent_url not stored: {secrets}"
    );

    // Update name, cluster and criteria in place.
    work.write(&format!(
        "{provider}{}",
        runner_config("Renamed", "europe-west3-a", "staging", secret)
    ));
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("update in-place"), "{}", plan.stdout);
    work.apply();
    work.assert_plan_empty("after update");
    let definition = sandbox
        .definition("config-container-runner")
        .await
        .expect("still there");
    assert_eq!(definition["name"], "Renamed");
    let outputs = definition["driver_inputs"]["values"]["templates"]["outputs"]
        .as_str()
        .unwrap();
    assert!(outputs.contains("europe-west3-a"), "{outputs}");
    let criteria = definition["criteria"].as_array().unwrap();
    assert_eq!(criteria.len(), 1, "{criteria:?}");
    assert_eq!(criteria[0]["env_type"], "staging");

    // Import into a fresh directory: same values (the secret excepted: the API never returns it).
    let imported = Workdir::new(&format!(
        "{provider}{}",
        runner_config("Renamed", "europe-west3-a", "staging", secret)
    ));
    imported
        .tf(&[
            "import",
            "-no-color",
            "-input=false",
            "humanitec_runner_config.dev",
            "config-container-runner",
        ])
        .ok("terraform import");
    let mut want = work.resource_values("humanitec_runner_config.dev");
    let mut got = imported.resource_values("humanitec_runner_config.dev");
    for values in [&mut want, &mut got] {
        values.as_object_mut().unwrap().remove("agent_url");
    }
    assert_eq!(got, want);

    // Destroy leaves nothing.
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn import_block_generates_config_that_plans_clean() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let source = Workdir::new(&format!(
        "{provider}{}",
        runner_config("Generated", "z1", "development", "")
    ));
    source.apply();

    let target = Workdir::new(&format!(
        "{provider}\nimport {{\n  to = humanitec_runner_config.dev\n  id = \"config-container-runner\"\n}}\n"
    ));
    target
        .tf(&[
            "plan",
            "-no-color",
            "-input=false",
            "-generate-config-out=generated.tf",
        ])
        .ok("plan -generate-config-out");
    let generated = std::fs::read_to_string(target.path().join("generated.tf")).unwrap();
    assert!(generated.contains("cluster_type"), "{generated}");
    let apply = target.apply();
    assert!(apply.stdout.contains("1 imported"), "{}", apply.stdout);
    target.assert_plan_empty("after import with generated config");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_outside_terraform_is_planned_and_repaired() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!(
        "{provider}{}",
        runner_config("Drift", "z1", "development", "")
    ));
    work.apply();

    // Someone renames it and changes the cluster in the UI.
    let status = sandbox
        .call(
            reqwest::Method::PUT,
            "/config-container-runner",
            Some(serde_json::json!({
                "name": "Changed by hand",
                "driver_type": "humanitec/template",
                "driver_inputs": {"values": {"templates": {
                    "outputs": "skip_permission_checks: true\ncluster:\n  cluster:\n    cluster_type: gke\n    name: other\n    project_id: p\n    zone: z9\n"
                }}}
            })),
        )
        .await;
    assert_eq!(status, 200);
    let plan = work.plan();
    assert_eq!(plan.code, 2, "drift not planned:\n{}", plan.stdout);
    assert!(plan.stdout.contains("Changed by hand"), "{}", plan.stdout);
    work.apply();
    work.assert_plan_empty("after repairing drift");
    let definition = sandbox.definition("config-container-runner").await.unwrap();
    assert_eq!(definition["name"], "Drift");

    // Someone deletes it: the next plan creates it again.
    assert_eq!(
        sandbox
            .call(reqwest::Method::DELETE, "/config-container-runner", None)
            .await,
        204
    );
    let plan = work.plan();
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("will be created"), "{}", plan.stdout);
    work.apply();
    assert!(
        sandbox
            .definition("config-container-runner")
            .await
            .is_some()
    );
    work.destroy();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_the_attribute() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let cases = [
        (
            "cluster {\n cluster_type = \"k3s\"\n name = \"c\"\n}",
            "cluster.cluster_type",
            r#""gke", "eks" or "aks""#,
        ),
        (
            "cluster {\n cluster_type = \"gke\"\n name = \"c\"\n project_id = \"p\"\n}",
            "cluster.zone",
            "set cluster.zone",
        ),
        (
            "cluster {\n cluster_type = \"eks\"\n name = \"c\"\n region = \"r\"\n zone = \"z\"\n}",
            "cluster.zone",
            "remove cluster.zone",
        ),
    ];
    for (cluster, attribute, hint) in cases {
        let work = Workdir::new(&format!(
            "{provider}\nresource \"humanitec_runner_config\" \"bad\" {{\n  id = \"bad-config\"\n  {cluster}\n}}\n"
        ));
        let run = work.tf(&["plan", "-no-color", "-input=false"]);
        assert_eq!(run.code, 1, "{attribute}: plan should fail\n{}", run.stdout);
        assert!(
            run.stderr.contains(attribute),
            "{attribute} not named:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains(hint), "{hint} missing:\n{}", run.stderr);
        assert!(!run.stderr.contains(TOKEN));
    }
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_do_not_duplicate_or_lose_definitions() {
    let sandbox = Sandbox::start_with_fault_rate(0.3);
    let provider = sandbox.provider_block();
    let count = 12;
    let main_tf = format!(
        r#"{provider}
resource "humanitec_runner_config" "many" {{
  count = {count}
  id    = "runner-${{count.index}}"
  criteria {{ env_id = "env-${{count.index}}" }}
  cluster {{
    cluster_type = "eks"
    name         = "c"
    region       = "eu-central-1"
  }}
}}
"#
    );
    let work = Workdir::new(&main_tf);
    work.apply();
    let definitions = sandbox.definitions().await;
    assert_eq!(definitions.len(), count, "{definitions:#?}");
    for definition in &definitions {
        assert_eq!(
            definition["criteria"].as_array().unwrap().len(),
            1,
            "{definition:#}"
        );
    }
    sandbox.set_faults(0.3).await;
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}
