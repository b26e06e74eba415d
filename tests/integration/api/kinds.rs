//! A resource manages only definitions of its own kind: an import of another kind is refused,
//! and a create whose id is taken says what holds it and whether an import makes sense.

use crate::support::{Sandbox, Workdir, words};

const RUNNER_CONFIG: &str = r#"
resource "humanitec_runner_config" "dev" {
  id = "shared-id"
  cluster {
    cluster_type = "gke"
    name         = "my-cluster"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }
}
"#;

fn container_runner(id: &str) -> String {
    format!(
        r#"
resource "humanitec_container_runner" "s3" {{
  count = 1
  id    = "{id}"
  type  = "s3"
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn another_kind_is_neither_imported_nor_offered_for_import() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let configs = Workdir::new(&format!("{provider}{RUNNER_CONFIG}"));
    configs.apply();

    // Importing the runner config's id as a container runner is refused, naming both kinds.
    let other = Workdir::new(&format!("{provider}{}", container_runner("shared-id")));
    let import = other.tf(&[
        "import",
        "-no-color",
        "-input=false",
        "humanitec_container_runner.s3[0]",
        "shared-id",
    ]);
    let out = words(&import.stderr);
    assert_ne!(import.code, 0, "{}\n{out}", import.stdout);
    assert!(
        out.contains("Definition \"shared-id\" is not a container runner"),
        "{out}"
    );
    assert!(
        out.contains("It is a runner config (humanitec_runner_config)"),
        "{out}"
    );

    // Creating a container runner with that id: no import is suggested for another kind.
    let apply = other.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = words(&apply.stderr);
    assert_ne!(apply.code, 0, "{}\n{out}", apply.stdout);
    assert!(out.contains("it is a runner config (humanitec_runner_config), not a container runner. Choose another id"), "{out}");
    assert!(!out.contains("terraform import"), "{out}");

    // A taken id of the same kind points at an import into the address Terraform names.
    let first = Workdir::new(&format!("{provider}{}", container_runner("runner-1")));
    first.apply();
    let second = Workdir::new(&format!("{provider}{}", container_runner("runner-1")));
    let apply = second.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = words(&apply.stderr);
    assert_ne!(apply.code, 0, "{}\n{out}", apply.stdout);
    assert!(
        out.contains("with humanitec_container_runner.s3[0]"),
        "{out}"
    );
    assert!(
        out.contains("terraform import '<address>' runner-1"),
        "{out}"
    );
    assert!(!out.contains("<name>"), "{out}");

    first.destroy();
    configs.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_definition_id_follows_the_specs_pattern_at_any_length() {
    let sandbox = Sandbox::start();
    let id = format!("runner-{}", "x".repeat(60));
    let work = Workdir::new(&format!(
        "{}{}",
        sandbox.provider_block(),
        container_runner(&id)
    ));
    work.apply();
    work.assert_plan_empty("after create");
    assert!(sandbox.definition(&id).await.is_some());
    work.destroy();
}
