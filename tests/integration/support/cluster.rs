//! The direct-mode harness: a Kubernetes test world whose kubelet really runs pods under podman,
//! the namespace and RBAC that runs need, the helper image built from this test run's provider
//! binary, and the HCL of a direct-mode provider and runner config that use them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube_testworld::{Options, TestWorld};

use super::provider_bin;

/// The namespace runs go into.
pub(crate) const NAMESPACE: &str = "runs";
/// The Job service account that may only create Secrets and ConfigMaps, Humanitec's runner RBAC.
pub(crate) const RUNNER_SA: &str = "runner-job";
/// The Job service account that may also keep Terraform state (Secrets) and its lock (Leases).
pub(crate) const IAC_SA: &str = "iac-job";
/// The helper image the harness builds from the provider under test.
pub(crate) const HELPER_IMAGE: &str = "localhost/testworld/helper:1";
/// The shell runner of the Humanitec runner contract.
pub(crate) const RUNNER_IMAGE: &str = "localhost/testworld/runner:1";
/// The runner with the machine's `terraform` in it.
pub(crate) const IAC_IMAGE: &str = "localhost/testworld/iac-runner:1";

const SETUP: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: runs
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner-job, namespace: runs}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: runner-job, namespace: runs}
rules:
- {apiGroups: [""], resources: [secrets, configmaps], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: runner-job, namespace: runs}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: runner-job}
subjects: [{kind: ServiceAccount, name: runner-job, namespace: runs}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: iac-job, namespace: runs}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: iac-job, namespace: runs}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list, create, update, patch, delete]}
- {apiGroups: [""], resources: [configmaps], verbs: [create]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, create, update, patch, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: iac-job, namespace: runs}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: iac-job}
subjects: [{kind: ServiceAccount, name: iac-job, namespace: runs}]
"#;

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the helper image from the provider binary of this test run, once per process. The
/// script hashes its inputs, so an unchanged binary costs only the hash.
fn build_helper_image() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/build-test-images.sh"))
            .args(["--helper-only", "--helper-binary"])
            .arg(provider_bin())
            .output()
            .map_err(|e| format!("running scripts/build-test-images.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/build-test-images.sh --helper-only failed (install podman, runc, \
                 busybox-static and git, then run scripts/build-test-images.sh):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// A test world with the runs namespace, its service accounts and the helper image.
pub(crate) struct Cluster {
    /// The world.
    pub(crate) world: TestWorld,
}

impl Cluster {
    /// Starts a world with its kubelet. Fails, never skips, when podman cannot run.
    pub(crate) fn start() -> Self {
        build_helper_image();
        let options = Options {
            kubelet: true,
            containers_conf: Some(repo().join("scripts/podman/containers.conf")),
            ..Options::default()
        };
        let world = TestWorld::start(options).unwrap_or_else(|e| {
            panic!("the test world did not start: {e} (run scripts/build-test-images.sh)")
        });
        let cluster = Self { world };
        cluster.kubectl_ok(&["apply", "-f", "-"], SETUP);
        cluster
    }

    /// The admin kubeconfig.
    pub(crate) fn kubeconfig(&self) -> &Path {
        self.world.kubeconfig_path()
    }

    /// Runs kubectl against the world with `stdin`.
    pub(crate) fn kubectl(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl, which must succeed; returns its stdout.
    pub(crate) fn kubectl_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The provider block of direct mode.
    pub(crate) fn provider_block() -> String {
        "terraform {\n  required_providers {\n    humanitec = { source = \"container-runner/humanitec\" }\n  }\n}\n\nprovider \"humanitec\" {\n  mode = \"direct\"\n}\n".into()
    }

    /// A runner config named `cluster` that reaches the world through its kubeconfig.
    pub(crate) fn runner_config(&self) -> String {
        format!(
            r#"resource "humanitec_runner_config" "cluster" {{
  id = "config-container-runner"
  cluster {{
    cluster_type = "gke"
    name         = "test-world"
    project_id   = "local"
    zone         = "local"
  }}
  kubernetes {{
    config_path = "{}"
  }}
  helper_image = "{HELPER_IMAGE}"
}}
"#,
            self.kubeconfig().display()
        )
    }

    /// Everything of the provider's left in the cluster: `kind/name` of each Job, pod, Secret
    /// and ConfigMap that a run made.
    pub(crate) fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for kind in ["jobs", "pods", "secrets", "configmaps"] {
            let out = self.kubectl_ok(
                &[
                    "get",
                    kind,
                    "-n",
                    NAMESPACE,
                    "-l",
                    "app.kubernetes.io/managed-by=terraform-provider-humanitec",
                    "-o",
                    "name",
                ],
                "",
            );
            left.extend(out.lines().map(str::to_string));
        }
        left
    }

    /// Every version of every Job the world ever stored, by name: how many distinct Jobs
    /// (uids) had that name.
    pub(crate) fn job_uids(&self, name: &str) -> Vec<String> {
        let mut uids: Vec<String> = Vec::new();
        for object in self.world.audit() {
            if object["kind"] == "Job"
                && object["metadata"]["name"] == name
                && let Some(uid) = object["metadata"]["uid"].as_str()
                && !uids.iter().any(|u| u == uid)
            {
                uids.push(uid.to_string());
            }
        }
        uids
    }

    /// Waits until `check` gives a value, at most `limit`.
    pub(crate) fn eventually<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(found) = check() {
                return found;
            }
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The names of the Jobs in the runs namespace now.
    pub(crate) fn jobs(&self) -> Vec<String> {
        let out = self.kubectl_ok(&["get", "jobs", "-n", NAMESPACE, "-o", "name"], "");
        out.lines()
            .map(|l| l.trim_start_matches("job.batch/").to_string())
            .collect()
    }
}
