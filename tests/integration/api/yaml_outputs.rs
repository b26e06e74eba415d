//! The runner config's `templates.outputs` reads back as exactly the strings configured in every
//! YAML reader, including the YAML 1.1 ones the platform's tools use (PyYAML here, like Go's
//! yaml.v2).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::{Sandbox, Workdir};

const CONFIG: &str = r#"
resource "humanitec_runner_config" "dev" {
  id = "config-container-runner"
  cluster {
    cluster_type = "gke"
    account      = "null"
    name         = "yes"
    loadbalancer = "on"
    project_id   = "0123"
    zone         = "1e3"
  }
}
"#;

/// The document parsed by PyYAML (a YAML 1.1 reader), as JSON.
fn pyyaml(document: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (the tests need it, with PyYAML: .ci/run installs both)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyYAML could not read the outputs (is PyYAML installed? `pip install pyyaml`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_values_read_back_as_the_strings_configured() {
    let sandbox = Sandbox::start();
    let work = Workdir::new(&format!("{}{CONFIG}", sandbox.provider_block()));
    work.apply();
    work.assert_plan_empty("after create");
    let definition = sandbox.definition("config-container-runner").await.unwrap();
    let outputs = definition["driver_inputs"]["values"]["templates"]["outputs"]
        .as_str()
        .expect("outputs template as text")
        .to_string();
    let read = pyyaml(&outputs);
    let cluster = &read["cluster"]["cluster"];
    assert_eq!(cluster["name"], "yes", "{outputs}");
    assert_eq!(cluster["loadbalancer"], "on", "{outputs}");
    assert_eq!(cluster["project_id"], "0123", "{outputs}");
    assert_eq!(cluster["zone"], "1e3", "{outputs}");
    assert_eq!(read["cluster"]["account"], "null", "{outputs}");
    assert_eq!(read["skip_permission_checks"], false);
    work.destroy();
}
