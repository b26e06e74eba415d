//! A replacement that would force-delete a definition and recreate its id is refused at plan
//! time, with what to do; without force_delete it plans as usual.

use crate::support::{Sandbox, Workdir, words};

fn runner(force_delete: bool, type_: &str) -> String {
    format!(
        r#"
resource "humanitec_container_runner" "s3" {{
  id           = "forced-runner"
  type         = "{type_}"
  force_delete = {force_delete}
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_force_deleting_replacement_of_the_same_id_is_refused_at_plan() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!("{provider}{}", runner(true, "s3")));
    work.apply();
    let in_use = serde_json::json!([{"app_id": "app", "env_id": "dev", "res_id": "modules.api.externals.bucket"}]);
    assert_eq!(
        sandbox.set_active_resources("forced-runner", in_use).await,
        200
    );

    for (args, config) in [
        (
            vec![
                "plan",
                "-no-color",
                "-input=false",
                "-replace=humanitec_container_runner.s3",
            ],
            runner(true, "s3"),
        ),
        (
            vec!["plan", "-no-color", "-input=false"],
            runner(true, "postgres"),
        ),
    ] {
        work.write(&format!("{provider}{config}"));
        let plan = work.tf(&args);
        let out = words(&plan.stderr);
        assert_eq!(plan.code, 1, "{}\n{out}", plan.stdout);
        assert!(
            out.contains("A replacement cannot force-delete the definition it recreates"),
            "{out}"
        );
        assert!(out.contains("force_delete = false first"), "{out}");
    }

    // Without force_delete the replacement plans as usual.
    work.write(&format!("{provider}{}", runner(false, "s3")));
    work.apply();
    let plan = work.tf(&[
        "plan",
        "-no-color",
        "-input=false",
        "-replace=humanitec_container_runner.s3",
    ]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("will be replaced"), "{}", plan.stdout);
    assert_eq!(
        sandbox
            .set_active_resources("forced-runner", serde_json::json!([]))
            .await,
        200
    );
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}
