//! Errors a person can act on, early: bad provider settings and bad values fail the plan, before
//! anything is approved; an unreachable API fails fast and says which URL; a change inside a
//! runner config does not ripple into every container runner's plan.

use crate::support::{ORG, Sandbox, TOKEN, Workdir, words};

const RESOURCES: &str = r#"
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
  count         = 2
  id            = "bucket-${count.index}"
  type          = "s3"
  runner_config = humanitec_runner_config.dev
  job {
    image = "ghcr.io/my-org/my-image:1.1.0"
  }
}
"#;

fn provider(settings: &str) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    humanitec = {{ source = \"container-runner/humanitec\" }}\n  }}\n}}\n\nprovider \"humanitec\" {{\n{settings}\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_provider_settings_fail_the_plan() {
    let sandbox = Sandbox::start();
    let url = &sandbox.url;
    let cases = [
        (
            format!("  token = \"{TOKEN}\"\n  api_prefix = \"{url}\""),
            "Missing Humanitec organization id",
        ),
        (
            format!("  org_id = \"{ORG}\"\n  token = \"{TOKEN}\\n\"\n  api_prefix = \"{url}\""),
            "wrap it in trimspace()",
        ),
        (
            format!(
                "  org_id = \"{ORG}\"\n  token = \"{TOKEN}\"\n  api_prefix = \"api.humanitec.io\""
            ),
            "api_prefix must be a URL with its scheme",
        ),
    ];
    for (settings, expected) in cases {
        let work = Workdir::new(&format!("{}{RESOURCES}", provider(&settings)));
        let plan = work.plan();
        let out = words(&plan.stderr);
        assert_eq!(plan.code, 1, "{expected}: {}\n{out}", plan.stdout);
        assert!(out.contains(expected), "{expected}: {out}");
        assert!(!out.contains(TOKEN), "the token is shown: {out}");
        // Said once, not once per resource.
        assert_eq!(out.matches(expected).count(), 1, "{out}");
    }
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_values_fail_the_plan() {
    let sandbox = Sandbox::start();
    let cases = [
        (
            r#"
resource "humanitec_runner_config" "zero" {
  id = "zero"
  cluster {
    cluster_type = "gke"
    name         = "c"
    project_id   = "p"
    zone         = "z"
  }
  timeouts {
    create = "0s"
  }
}"#,
            "\"0s\" is zero",
        ),
        (
            r#"
resource "humanitec_runner_config" "exec" {
  id = "exec"
  cluster {
    cluster_type = "gke"
    name         = "c"
    project_id   = "p"
    zone         = "z"
  }
  kubernetes {
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = ""
    }
  }
}"#,
            "kubernetes.exec.command must not be empty",
        ),
        (
            r#"
resource "humanitec_container_runner" "key" {
  id   = "key"
  type = "s3"
  job {
    image = "ghcr.io/my-org/my-image:1.1.0"
  }
  source {
    url     = "git@example.com:org/repo.git"
    ssh_key = ""
  }
}"#,
            "source.ssh_key must not be empty",
        ),
        (
            r#"
resource "humanitec_runner_config" "gke" {
  id = "gke"
  cluster {
    cluster_type = "gke"
    name         = "c"
  }
}"#,
            r#"needs "name", "project_id" and "zone""#,
        ),
        (
            r#"
resource "humanitec_container_runner" "template" {
  id   = "template"
  type = "s3"
  job {
    image        = "ghcr.io/my-org/my-image:1.1.0"
    pod_template = "spec:\n  containers: [unclosed\n"
  }
}"#,
            // The line of the bracket that is never closed.
            "job.pod_template is not valid YAML on line 2:",
        ),
    ];
    for (config, expected) in cases {
        let work = Workdir::new(&format!("{}{config}", sandbox.provider_block()));
        let plan = work.plan();
        let out = words(&plan.stderr);
        assert_eq!(plan.code, 1, "{expected}: {}\n{out}", plan.stdout);
        assert!(out.contains(expected), "{expected}: {out}");
        // The line is said once, and the example is shown as YAML, not as an escaped string.
        assert!(!out.contains("at line"), "{out}");
        let example = out.split("such as").nth(1).unwrap_or_default();
        assert!(!example.contains("\\n"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_fails_fast_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let settings =
        format!("  org_id = \"{ORG}\"\n  token = \"{TOKEN}\"\n  api_prefix = \"{closed}\"");
    let work = Workdir::new(&format!("{}{RESOURCES}", provider(&settings)));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = words(&apply.stderr);
    assert_eq!(apply.code, 1, "{}\n{out}", apply.stdout);
    let url = closed.trim_end_matches('/');
    assert!(
        out.contains(&format!("could not connect to the Humanitec API at {url}")),
        "{out}"
    );
    assert!(out.contains("check api_prefix"), "{out}");
    assert!(
        !out.contains("tcp connect error"),
        "HTTP client internals: {out}"
    );
    assert!(
        !out.contains("gave up"),
        "the whole retry budget was spent: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_inside_the_runner_config_does_not_ripple() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let with_token = |token: &str| {
        RESOURCES.replace(
            "    zone         = \"cluster-zone\"\n  }\n}",
            &format!(
                "    zone         = \"cluster-zone\"\n  }}\n  kubernetes {{\n    host  = \"https://k8s.example\"\n    token = \"{token}\"\n  }}\n}}"
            ),
        )
    };
    let work = Workdir::new(&format!("{provider}{}", with_token("first-k8s-token")));
    work.apply();
    work.assert_plan_empty("after create");

    // The runner config's credentials rotate: only the runner config changes.
    work.write(&format!("{provider}{}", with_token("second-k8s-token")));
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("0 to add, 1 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("second-k8s-token"), "{}", plan.stdout);
    work.apply();
    work.assert_plan_empty("after the rotation");

    // In the state, the runner_config a container runner keeps is marked sensitive.
    let state = work.state();
    let runner = state
        .pointer("/values/root_module/resources")
        .and_then(|r| r.as_array())
        .and_then(|r| r.iter().find(|r| r["type"] == "humanitec_container_runner"))
        .expect("a container runner in state")
        .clone();
    assert_eq!(
        runner["sensitive_values"]["runner_config"], true,
        "{runner}"
    );
    work.destroy();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_that_waits_says_why_as_it_starts() {
    let sandbox = Sandbox::start();
    let config = r#"
resource "humanitec_container_runner" "used" {
  id   = "used-runner"
  type = "s3"
  job {
    image = "ghcr.io/my-org/my-image:1.1.0"
  }
  timeouts {
    delete = "4s"
  }
}
"#;
    let work = Workdir::new(&format!("{}{config}", sandbox.provider_block()));
    work.apply();
    let in_use = serde_json::json!([{"app_id": "app", "env_id": "dev", "res_id": "bucket"}]);
    assert_eq!(
        sandbox.set_active_resources("used-runner", in_use).await,
        200
    );
    let destroy = work.tf_env(
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        &[("TF_LOG_PROVIDER", "INFO")],
    );
    assert_eq!(destroy.code, 1, "{}\n{}", destroy.stdout, destroy.stderr);
    let log = words(&destroy.stderr);
    assert!(
        log.contains("\"used-runner\" is in use by 1 resource(s); waiting for them to move"),
        "{log}"
    );
    assert!(log.contains("(timeouts.delete)"), "{log}");
    assert_eq!(
        sandbox
            .set_active_resources("used-runner", serde_json::json!([]))
            .await,
        200
    );
    work.destroy();
}
