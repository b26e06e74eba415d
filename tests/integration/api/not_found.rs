//! Only Humanitec's own "this definition does not exist" makes a resource leave the state: a
//! mistyped `api_prefix`, another organization or a proxy's 404 is an error with a hint.

use crate::support::{ORG, Sandbox, Workdir, words};

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
  id   = "my-s3-bucket"
  type = "s3"
  job {
    image = "ghcr.io/my-org/my-image:1.1.0"
  }
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_endpoint_or_organization_is_an_error_not_a_deletion() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!("{provider}{RESOURCES}"));
    work.apply();

    // A mistyped path in api_prefix: every URL under it answers 404.
    let typo = provider.replace(
        &sandbox.url,
        &format!("{}/v2-typo/", sandbox.url.trim_end_matches('/')),
    );
    assert_ne!(typo, provider);
    work.write(&format!("{typo}{RESOURCES}"));
    let plan = work.plan();
    let out = words(&plan.stderr);
    assert_eq!(plan.code, 1, "{}\n{out}", plan.stdout);
    assert!(!plan.stdout.contains("will be created"), "{}", plan.stdout);
    assert!(out.contains("check api_prefix"), "{out}");
    assert!(out.contains("/v2-typo/"), "{out}");

    // Another organization: the definitions are not there, and that is not a deletion.
    let other = provider.replace(&format!("\"{ORG}\""), "\"other-org\"");
    assert_ne!(other, provider);
    work.write(&format!("{other}{RESOURCES}"));
    let plan = work.plan();
    let out = words(&plan.stderr);
    assert_eq!(plan.code, 1, "{}\n{out}", plan.stdout);
    assert!(
        out.contains(&format!("is in organization \"{ORG}\", not \"other-org\"")),
        "{out}"
    );
    assert!(!plan.stdout.contains("will be created"), "{}", plan.stdout);

    // Back to the right settings: nothing was lost, nothing to do.
    work.write(&format!("{provider}{RESOURCES}"));
    work.assert_plan_empty("with the right settings again");
    assert_eq!(sandbox.definitions().await.len(), 2);

    // A definition really deleted outside Terraform is still planned for creation.
    sandbox
        .call(reqwest::Method::DELETE, "/my-s3-bucket", None)
        .await;
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("will be created"), "{}", plan.stdout);
    work.destroy();
}
