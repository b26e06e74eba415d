//! The direct-mode harness: a cluster to run on, the namespace and RBAC that runs need, and the
//! HCL of a direct-mode provider and runner config that use them.
//!
//! Two tiers run the same scenarios, each test in a namespace of its own (deleted afterwards).
//! The test cluster (`Cluster::local`): the real Kubernetes of `scripts/test-cluster.sh` on this
//! machine (`support::test_cluster`), with the helper image built from this test run's provider
//! binary; its history (every version of every Job, pod, ConfigMap and Event, and every request)
//! is read from the API server's audit log and its container logs from the node, which the
//! secrets and run-lifecycle checks read. A managed cluster (`Cluster::real`), the cluster of
//! `KUBECONFIG`: the images come from `HUMANITEC_TEST_HELPER_IMAGE`,
//! `HUMANITEC_TEST_RUNNER_IMAGE` and `HUMANITEC_TEST_IAC_IMAGE` (built from
//! `containers/helper/Containerfile` and `tests/images/runner.sh`); its history cannot be seen,
//! so the checks that read it are left out there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::provider_bin;
use super::test_cluster::TestCluster;

/// The Job service account that may only create Secrets and ConfigMaps, Humanitec's runner RBAC.
pub(crate) const RUNNER_SA: &str = "runner-job";
/// The Job service account that may also keep Terraform state (Secrets) and its lock (Leases).
pub(crate) const IAC_SA: &str = "iac-job";
/// The shell runner of the Humanitec runner contract.
const RUNNER_IMAGE: &str = "localhost/test-images/runner:1";
/// The runner with the machine's `terraform` in it.
const IAC_IMAGE: &str = "localhost/test-images/iac-runner:1";

/// The namespace, service accounts and RBAC of the runs (`runs-namespace.yaml`, which
/// `scripts/bench-direct.py` reads too).
const SETUP: &str = include_str!("runs-namespace.yaml");

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The helper image built from this test run's provider binary, by its content tag
/// (`localhost/test-images/helper:in-<hash>`), once per process; the script hashes its inputs, so
/// an unchanged binary costs only the hash. Why the content tag and not `:1`: another checkout
/// on the same machine builds `:1` from its own binary, at any moment.
pub(crate) fn helper_image() -> String {
    static BUILT: OnceLock<Result<String, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/build-test-images.sh"))
            .args(["--helper-only", "--helper-binary"])
            .arg(provider_bin())
            .env(
                "CONTAINERS_CONF",
                repo().join("scripts/podman/containers.conf"),
            )
            .output()
            .map_err(|e| format!("running scripts/build-test-images.sh: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let hash = stdout
            .lines()
            .filter(|l| l.contains("localhost/test-images/helper"))
            .find_map(|l| Some(l.rsplit_once('(')?.1.strip_suffix(')')?.to_string()));
        match hash {
            Some(hash) if out.status.success() => {
                Ok(format!("localhost/test-images/helper:in-{hash}"))
            }
            _ => Err(format!(
                "scripts/build-test-images.sh --helper-only failed (install podman, runc, \
                 busybox-static and git, then run scripts/build-test-images.sh):\n{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    });
    match built {
        Ok(image) => image.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// One Job of the cluster's history.
#[derive(Debug, Clone)]
pub(crate) struct JobLife {
    /// Its name.
    pub(crate) name: String,
    /// Its uid.
    pub(crate) uid: String,
    /// The container runner it ran (its resource-id annotation).
    pub(crate) resource: String,
    /// `create` or `destroy`.
    pub(crate) action: String,
    /// Where in the history (the namespace's audit events) its first version is.
    pub(crate) born: usize,
    /// Where it finished (its first `Complete` or `Failed` version), or, when it was deleted
    /// before it finished, its deletion; `None` while it runs.
    pub(crate) ended: Option<usize>,
    /// `Complete` or `Failed`, once finished.
    pub(crate) outcome: Option<String>,
}

/// A cluster with the runs namespace, its service accounts and the images.
pub(crate) struct Cluster {
    /// The test cluster, when the cluster is it.
    local: Option<&'static TestCluster>,
    /// The admin kubeconfig.
    kubeconfig: PathBuf,
    /// The kubectl to drive it with: the test cluster's own build, else the one on PATH.
    kubectl: PathBuf,
    /// The namespace runs go into.
    pub(crate) namespace: String,
    /// The helper image.
    pub(crate) helper_image: String,
    /// The shell runner image.
    pub(crate) runner_image: String,
    /// The runner image with `terraform`.
    pub(crate) iac_image: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.kubectl(
            &["delete", "namespace", &self.namespace, "--wait=false"],
            "",
        );
    }
}

impl Cluster {
    /// The managed cluster of `KUBECONFIG`. Fails, never skips, when it is unset: the
    /// `real_cluster` tier is ignored unless asked for (`cargo test -- --ignored`).
    pub(crate) fn real() -> Self {
        let kubeconfig = std::env::var_os("KUBECONFIG")
            .filter(|k| !k.is_empty())
            .expect("the real-cluster tier runs on the cluster of KUBECONFIG: set it");
        let image = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("KUBECONFIG is set, so the real-cluster tier runs: set {name} too")
            })
        };
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let namespace = format!(
            "tfp-humanitec-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let cluster = Self {
            local: None,
            kubeconfig: PathBuf::from(kubeconfig),
            kubectl: PathBuf::from("kubectl"),
            namespace,
            helper_image: image("HUMANITEC_TEST_HELPER_IMAGE"),
            runner_image: image("HUMANITEC_TEST_RUNNER_IMAGE"),
            iac_image: image("HUMANITEC_TEST_IAC_IMAGE"),
        };
        cluster.set_up();
        cluster
    }

    /// The test cluster of `scripts/test-cluster.sh`, started once per test process (or found
    /// running), with a namespace of this test's own. Fails, never skips, when it cannot start.
    pub(crate) fn local() -> Self {
        let local = TestCluster::shared();
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let cluster = Self {
            local: Some(local),
            kubeconfig: local.kubeconfig.clone(),
            kubectl: local.kubectl().to_path_buf(),
            namespace: format!(
                "runs-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            helper_image: helper_image(),
            runner_image: RUNNER_IMAGE.into(),
            iac_image: IAC_IMAGE.into(),
        };
        cluster.set_up();
        cluster
    }

    /// Every version of every object of the runs namespace the cluster ever held, oldest
    /// first, from the test cluster's audit log (whose Secrets carry no data). `None` on a
    /// managed cluster, whose history cannot be seen.
    pub(crate) fn history(&self) -> Option<Vec<serde_json::Value>> {
        Some(self.local?.audit(&self.namespace))
    }

    /// The text of every container that ran in the runs namespace, deleted pods' included.
    /// `None` on a real cluster.
    pub(crate) fn container_logs(&self) -> Option<String> {
        Some(self.local?.container_logs(&self.namespace))
    }

    /// A bearer token of a cluster admin. `None` on a real cluster.
    pub(crate) fn admin_token(&self) -> Option<String> {
        Some(self.local?.admin_token())
    }

    /// The host a server on this machine is reachable at from the test cluster's pods: this
    /// machine's address (they have a network of their own, so not 127.0.0.1). `None` on a
    /// managed cluster.
    pub(crate) fn host_for_pods(&self) -> Option<String> {
        Some(self.local?.node_ip().to_string())
    }

    /// Copies `image` from podman's store to the test cluster's node, which pulls from no
    /// registry. Fails on a managed cluster, whose nodes pull from registries.
    pub(crate) fn load_image(&self, image: &str) {
        self.local
            .expect("the test cluster, whose node takes images from podman")
            .load_image(image);
    }

    fn set_up(&self) {
        let setup = SETUP.replace("name: runs", &format!("name: {}", self.namespace));
        let setup = setup.replace("namespace: runs", &format!("namespace: {}", self.namespace));
        self.kubectl_ok(&["apply", "-f", "-"], &setup);
    }

    /// The admin kubeconfig.
    pub(crate) fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubectl program that drives this cluster.
    pub(crate) fn kubectl_program(&self) -> &Path {
        &self.kubectl
    }

    /// Runs kubectl against the cluster with `stdin`.
    pub(crate) fn kubectl(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(&self.kubectl)
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

    /// A container runner on the shell runner image in the runs namespace, with its runner
    /// config `humanitec_runner_config.cluster`; `job` and `rest` are extra HCL lines.
    pub(crate) fn container_runner(&self, name: &str, job: &str, rest: &str) -> String {
        let (image, namespace) = (&self.runner_image, &self.namespace);
        format!(
            r#"resource "humanitec_container_runner" "{name}" {{
  id            = "{name}"
  type          = "s3"
  runner_config = humanitec_runner_config.cluster
  job {{
    image           = "{image}"
    namespace       = "{namespace}"
    service_account = "{RUNNER_SA}"
{job}
  }}
{rest}
}}
"#
        )
    }

    /// A whole configuration: the direct-mode provider, the runner config and `resources`.
    pub(crate) fn config(&self, resources: &str) -> String {
        format!(
            "{}\n{}\n{resources}",
            Self::provider_block(),
            self.runner_config()
        )
    }

    /// A runner config named `cluster` that reaches the cluster through its kubeconfig.
    pub(crate) fn runner_config(&self) -> String {
        format!(
            r#"resource "humanitec_runner_config" "cluster" {{
  id = "config-container-runner"
  cluster {{
    cluster_type = "gke"
    name         = "test-cluster"
    project_id   = "local"
    zone         = "local"
  }}
  kubernetes {{
    config_path = "{}"
  }}
  helper_image = "{}"
}}
"#,
            self.kubeconfig().display(),
            self.helper_image
        )
    }

    /// A git server on this machine that the cluster's pods reach (see `host_for_pods`).
    pub(crate) fn git_server(
        &self,
        repo_dir: &Path,
        username: &str,
        password: &str,
    ) -> super::git_server::GitServer {
        let host = self
            .host_for_pods()
            .expect("a cluster whose pods reach this machine");
        super::git_server::GitServer::start_on(&host, repo_dir, username, password)
    }

    /// The provider's objects in the runs namespace (`kind/name`), except what the run model
    /// keeps on purpose after a destroy: each completed destroy run, that is its Job (whose
    /// `ttlSecondsAfterFinished` must then be at most 600 s), its pods and its result Secret.
    /// An inputs Secret is never kept. Why a wait: on a real cluster the garbage collector
    /// deletes a deleted Job's pods after the Job, and the kubelet removes each pod after
    /// stopping it; what is left after 30 s is left for good.
    pub(crate) fn leftovers(&self) -> Vec<String> {
        let start = Instant::now();
        loop {
            let left = self.leftovers_now();
            if left.is_empty() || start.elapsed() > Duration::from_secs(30) {
                return left;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn leftovers_now(&self) -> Vec<String> {
        let kept = self.completed_destroy_runs();
        let mut left = Vec::new();
        for kind in ["jobs", "pods", "secrets", "configmaps"] {
            let out = self.kubectl_ok(
                &[
                    "get",
                    kind,
                    "-n",
                    &self.namespace,
                    "-l",
                    "app.kubernetes.io/managed-by=terraform-provider-humanitec",
                    "-o",
                    "name",
                ],
                "",
            );
            left.extend(out.lines().map(str::to_string).filter(|object| {
                !kept.iter().any(|job| {
                    *object == format!("job.batch/{job}")
                        || object.starts_with(&format!("pod/{job}-"))
                        || *object == format!("secret/{job}-result")
                })
            }));
        }
        left
    }

    /// The names of the completed destroy runs' Jobs in the runs namespace; fails the test if
    /// one keeps a time to live longer than 600 s.
    pub(crate) fn completed_destroy_runs(&self) -> Vec<String> {
        let out = self.kubectl_ok(
            &[
                "get",
                "jobs",
                "-n",
                &self.namespace,
                "-l",
                "terraform-provider-humanitec/action=destroy",
                "-o",
                "json",
            ],
            "",
        );
        let list: serde_json::Value = serde_json::from_str(&out).expect("kubectl get jobs -o json");
        let mut names = Vec::new();
        for job in list["items"].as_array().into_iter().flatten() {
            let complete = job["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Complete" && c["status"] == "True");
            if !complete {
                continue;
            }
            let name = job["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ttl = job["spec"]["ttlSecondsAfterFinished"]
                .as_i64()
                .unwrap_or(i64::MAX);
            assert!(
                ttl <= 600,
                "Job {name} is kept with a time to live of {ttl} s"
            );
            names.push(name);
        }
        names
    }

    /// The provider's Jobs in the runs namespace that have not finished.
    pub(crate) fn unfinished_jobs(&self) -> Vec<String> {
        let out = self.kubectl_ok(
            &[
                "get",
                "jobs",
                "-n",
                &self.namespace,
                "-l",
                "app.kubernetes.io/managed-by=terraform-provider-humanitec",
                "-o",
                "json",
            ],
            "",
        );
        let list: serde_json::Value = serde_json::from_str(&out).expect("kubectl get jobs -o json");
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|job| {
                !job["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                    })
            })
            .filter_map(|job| job["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Every Job of the runs namespace the cluster ever held, from the audit log, oldest
    /// first. `None` on a managed cluster, whose history cannot be seen.
    pub(crate) fn job_lives(&self) -> Option<Vec<JobLife>> {
        let events = self.local?.audit_events(&self.namespace);
        let mut lives: Vec<JobLife> = Vec::new();
        for (at, event) in events.iter().enumerate() {
            if event["objectRef"]["resource"] != "jobs" {
                continue;
            }
            // A Job deleted before it finished ended with its deletion.
            if event["verb"] == "delete" {
                let deleted = event["responseStatus"]["code"]
                    .as_u64()
                    .is_some_and(|code| code < 300);
                let name = &event["objectRef"]["name"];
                let life = lives.iter_mut().rev().find(|l| *name == l.name.as_str());
                if let Some(life) = life.filter(|_| deleted)
                    && life.ended.is_none()
                {
                    life.ended = Some(at);
                }
                continue;
            }
            // Why both bodies: a create's request has no uid yet; a list's response holds
            // every Job as the client saw it.
            let mut jobs = Vec::new();
            for body in [&event["requestObject"], &event["responseObject"]] {
                super::test_cluster::push_objects(body, &mut jobs);
            }
            for job in jobs.iter().filter(|o| o["kind"] == "Job") {
                let Some(uid) = job["metadata"]["uid"].as_str() else {
                    continue;
                };
                let finished = job["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| {
                        (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                    })
                    .and_then(|c| c["type"].as_str());
                let life = match lives.iter().position(|l| l.uid == uid) {
                    Some(i) => &mut lives[i],
                    None => {
                        let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
                        lives.push(JobLife {
                            name: text(&job["metadata"]["name"]),
                            uid: uid.to_string(),
                            resource: text(&job["metadata"]["annotations"]["terraform-provider-humanitec/resource-id"]),
                            action: text(&job["metadata"]["labels"]["terraform-provider-humanitec/action"]),
                            born: at,
                            ended: None,
                            outcome: None,
                        });
                        lives.last_mut().expect("just pushed")
                    }
                };
                if life.ended.is_none()
                    && let Some(outcome) = finished
                {
                    life.ended = Some(at);
                    life.outcome = Some(outcome.to_string());
                }
            }
        }
        Some(lives)
    }

    /// Fails the test when two runs of one container runner were ever unfinished at once.
    pub(crate) fn assert_one_run_at_a_time(&self) {
        let Some(lives) = self.job_lives() else {
            return;
        };
        for (i, a) in lives.iter().enumerate() {
            for b in &lives[i + 1..] {
                if a.resource != b.resource {
                    continue;
                }
                let a_end = a.ended.unwrap_or(usize::MAX);
                let b_end = b.ended.unwrap_or(usize::MAX);
                assert!(
                    a_end < b.born || b_end < a.born,
                    "two runs of {} at once: {a:?} and {b:?}",
                    a.resource
                );
            }
        }
    }

    /// Every version of every Job the cluster ever stored, by name: how many distinct Jobs
    /// (uids) had that name. `None` on a real cluster, whose history cannot be seen.
    pub(crate) fn job_uids(&self, name: &str) -> Option<Vec<String>> {
        let mut uids: Vec<String> = Vec::new();
        for object in self.history()? {
            if object["kind"] == "Job"
                && object["metadata"]["name"] == name
                && let Some(uid) = object["metadata"]["uid"].as_str()
                && !uids.iter().any(|u| u == uid)
            {
                uids.push(uid.to_string());
            }
        }
        Some(uids)
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

    /// A token of a service account in the runs namespace.
    pub(crate) fn service_account_token(&self, name: &str) -> String {
        self.kubectl_ok(&["create", "token", name, "-n", &self.namespace], "")
            .trim()
            .to_string()
    }

    /// The API server's URL and CA certificate (PEM).
    pub(crate) fn api_server(&self) -> (String, String) {
        let view = |path: &str| {
            self.kubectl_ok(
                &[
                    "config",
                    "view",
                    "--raw",
                    "--minify",
                    "-o",
                    &format!("jsonpath={{{path}}}"),
                ],
                "",
            )
        };
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(view(".clusters[0].cluster.certificate-authority-data").trim())
            .expect("the kubeconfig's CA data");
        (
            view(".clusters[0].cluster.server").trim().to_string(),
            String::from_utf8(ca).expect("PEM"),
        )
    }

    /// The names of the Jobs in the runs namespace now.
    pub(crate) fn jobs(&self) -> Vec<String> {
        let out = self.kubectl_ok(&["get", "jobs", "-n", &self.namespace, "-o", "name"], "");
        out.lines()
            .map(|l| l.trim_start_matches("job.batch/").to_string())
            .collect()
    }
}
