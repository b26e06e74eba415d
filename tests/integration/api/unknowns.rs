//! Plans that Terraform accepts: a value derived from configuration that is unknown at plan
//! time is unknown in the plan too, so the apply matches it.

use crate::support::{Sandbox, Workdir};

fn config(provider: &str, path: &str) -> String {
    format!(
        r#"{provider}
resource "terraform_data" "secret_path" {{
  input = "{path}"
}}

resource "humanitec_container_runner" "git" {{
  id   = "git-runner"
  type = "s3"
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  source {{
    url = "https://my-domain.com/my-org/my-repo.git"
    password_ref {{
      store = "my-store"
      ref   = terraform_data.secret_path.output
    }}
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_reference_unknown_at_plan_time_applies_in_one_go() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&config(&provider, "path/to/git/password-v1"));
    work.apply();
    work.assert_plan_empty("after create");

    // The reference changes through a value known only after apply.
    work.write(&config(&provider, "path/to/git/password-v2"));
    let applied = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        !applied.stderr.contains("inconsistent"),
        "{}",
        applied.stderr
    );
    work.assert_plan_empty("after the update");
    let definition = sandbox.definition("git-runner").await.unwrap();
    assert_eq!(
        definition["driver_inputs"]["secret_refs"]["source"]["password"]["ref"],
        "path/to/git/password-v2"
    );
    work.destroy();
}
