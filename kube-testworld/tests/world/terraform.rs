//! A real `terraform` (the machine's, inside the IaC runner image) in a pod, using its
//! `kubernetes` backend with in-cluster credentials: state in a Secret, the lock in a Lease,
//! through a service account whose Role allows exactly that. The path direct mode will take.

use serde_json::Value;

use crate::{eventually, kubectl_in, ok, podman_world};
use kube_testworld::TestWorld;

const SETUP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: tf}
data:
  main.tf: |
    terraform {
      backend "kubernetes" {
        secret_suffix     = "state"
        in_cluster_config = true
        namespace         = "default"
      }
    }
    resource "terraform_data" "x" {
      input = "hello"
    }
    output "greeting" {
      value = terraform_data.x.output
    }
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: iac}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: tfstate}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list, create, update, patch, delete]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, create, update, patch, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tfstate}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: tfstate}
subjects: [{kind: ServiceAccount, name: iac, namespace: default}]
"#;

fn terraform_pod(name: &str, script: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  serviceAccountName: iac
  securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
  containers:
  - name: terraform
    image: localhost/testworld/iac-runner:1
    command: [sh, -c, 'cp /config/main.tf /work/ && cd /work && terraform init -input=false -no-color && {script}']
    env: [{{name: HOME, value: /work}}, {{name: TF_IN_AUTOMATION, value: '1'}}]
    volumeMounts: [{{name: config, mountPath: /config}}, {{name: work, mountPath: /work}}]
  volumes: [{{name: config, configMap: {{name: tf}}}}, {{name: work, emptyDir: {{}}}}]
"
    )
}

fn run(w: &TestWorld, name: &str, script: &str) -> Value {
    let out = kubectl_in(w, &["create", "-f", "-"], &terraform_pod(name, script));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(&format!("terraform in {name} to finish"), || {
        let p = w.object("pods", "default", name)?;
        matches!(
            p["status"]["phase"].as_str(),
            Some("Succeeded") | Some("Failed")
        )
        .then_some(p)
    })
}

#[test]
fn terraform_keeps_state_in_a_secret_and_locks_with_a_lease() {
    let w = podman_world();
    let out = kubectl_in(&w, &["apply", "-f", "-"], SETUP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pod = run(
        &w,
        "apply",
        "terraform apply -auto-approve -input=false -no-color",
    );
    let logs = ok(&w, &["logs", "apply"]);
    assert_eq!(pod["status"]["phase"], "Succeeded", "{logs}");
    assert!(logs.contains("greeting = \"hello\""), "{logs}");

    let state = w
        .object("secrets", "default", "tfstate-default-state")
        .expect("the state Secret");
    assert_eq!(state["metadata"]["annotations"]["encoding"], "gzip");
    assert_eq!(
        state["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "terraform"
    );
    assert!(
        state["data"]["tfstate"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let lease = w
        .object("leases", "default", "lock-tfstate-default-state")
        .expect("the lock Lease");
    assert!(
        lease["spec"].get("holderIdentity").is_none(),
        "the lock is released: {lease}"
    );

    // A second run reads the state back: nothing to change.
    let pod = run(
        &w,
        "plan",
        "terraform plan -detailed-exitcode -input=false -no-color",
    );
    let logs = ok(&w, &["logs", "plan"]);
    assert_eq!(pod["status"]["phase"], "Succeeded", "{logs}");
    assert!(logs.contains("No changes."), "{logs}");
    assert!(w.warnings().is_empty(), "{:?}", w.warnings());
}
