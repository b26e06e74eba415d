//! The helper image in a real pod: a Job whose pod has `helper prepare` (init container),
//! `helper collect` (native sidecar) and the test runner image, under a service account that
//! may only create Secrets, run by the real kubelet of the test cluster (`test_cluster`,
//! `scripts/test-cluster.sh`). The helper image is built from this test run's provider binary by
//! `scripts/build-test-images.sh --helper-only`.
//!
//! These tests need podman, the test images and what `scripts/test-cluster.sh` needs; without
//! them they fail (never skip) with the command to run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::support::cluster::Cluster;

/// The service account of the runs: `create` on Secrets, nothing else.
const ACCOUNT: &str = "runner";
/// The runner image (Humanitec's runner contract in shell).
const RUNNER_IMAGE: &str = "localhost/test-images/runner:1";
/// The provider binary's path in the helper image.
const HELPER_BIN: &str = "/usr/local/bin/terraform-provider-humanitec";
/// The shared directory of the runs.
const SHARED: &str = "/home/runneruser/workspace";
/// The content of the plain file.
const SETTING: &str = "region=eu-west-1";
/// The content of the secret file: must reach the main container and no log.
const SECRET_FILE_VALUE: &str = "sf-hidden-5e1b7c";
/// A secret output: must reach the result Secret and no log.
const SECRET_OUTPUT_VALUE: &str = "so-hidden-91d0a2";
/// How long a run, a command or the result Secret may take.
const DEADLINE: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn containers_conf() -> PathBuf {
    repo_root().join("scripts/podman/containers.conf")
}

/// Waits for `child`, killing it at [`DEADLINE`].
fn bounded(mut child: Child, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds the helper image from this build's binary (once per test process) and checks the
/// runner image is there; returns the helper image.
fn images() -> String {
    let helper = crate::support::cluster::helper_image();
    let runner = Command::new("podman")
        .args(["image", "exists", RUNNER_IMAGE])
        .env("CONTAINERS_CONF", containers_conf())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        runner,
        "the image {RUNNER_IMAGE} is missing: run scripts/build-test-images.sh"
    );
    helper
}

/// Where the runs go: a namespace of their own on the test cluster.
struct Env {
    /// The test cluster's namespace of the runs.
    cluster: Cluster,
    /// The warnings the API server answered the objects' creation with (kubectl prints them):
    /// its own field validation of what the tests send, an unknown or duplicate field.
    warnings: Mutex<Vec<String>>,
}

impl Env {
    /// The namespace of the runs.
    fn ns(&self) -> &str {
        &self.cluster.namespace
    }

    fn kubeconfig(&self) -> &Path {
        self.cluster.kubeconfig()
    }

    /// Runs kubectl with `stdin`.
    fn kubectl_in(&self, args: &[&str], stdin: &str) -> Output {
        let home = self
            .kubeconfig()
            .parent()
            .expect("the kubeconfig's directory");
        let mut child = Command::new(self.cluster.kubectl_program())
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        bounded(child, &format!("kubectl {args:?}"))
    }

    /// Runs kubectl and requires success; returns stdout.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_in(args, "");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates objects, in order, with kubectl (a stream of JSON documents).
    fn create(&self, items: Vec<Value>) {
        let documents: Vec<String> = items.iter().map(Value::to_string).collect();
        let out = self.kubectl_in(&["create", "-f", "-"], &documents.join("\n"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubectl create failed: {stderr}");
        let warnings = stderr.lines().filter(|l| l.starts_with("Warning:"));
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(warnings.map(str::to_string));
    }

    /// The object `kind/name` of the runs namespace, if it exists.
    fn object(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self.kubectl_in(
            &[
                "get",
                kind,
                name,
                "-n",
                self.ns(),
                "-o",
                "json",
                "--ignore-not-found",
            ],
            "",
        );
        assert!(
            out.status.success(),
            "kubectl get {kind} {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        (!text.trim().is_empty()).then(|| serde_json::from_str(&text).expect("JSON"))
    }

    /// The warnings the API server answered the objects' creation with.
    fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The host a server on this machine is reachable at from the pods.
    fn host_for_pods(&self) -> String {
        self.cluster
            .host_for_pods()
            .expect("the test cluster's node address")
    }

    /// Makes the account of the runs, allowed only to create Secrets (Humanitec's runner RBAC,
    /// without ConfigMaps), in the runs namespace.
    fn set_up(&self) {
        let ns = self.ns();
        let mut items = Vec::new();
        items.extend([
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": ACCOUNT, "namespace": ns}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": ACCOUNT, "namespace": ns},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": ACCOUNT, "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": ACCOUNT},
                   "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT,
                                 "namespace": ns}]}),
        ]);
        self.create(items);
    }
}

/// A namespace of the test cluster (enforcing Pod Security `restricted`), with the service
/// account allowed only to create Secrets.
fn test_cluster() -> Env {
    images();
    let env = Env {
        cluster: Cluster::local(),
        warnings: Mutex::default(),
    };
    env.set_up();
    env
}

/// The security context of every container: non-root, no capabilities.
fn restricted() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
}

/// The inputs Secret and the Job of one run, shaped as the Job builder makes them.
struct RunObjects {
    /// The run's name: the Job's; the inputs Secret is `<name>-inputs`, the result Secret
    /// `<name>-result`.
    name: String,
    /// `manifest.json`.
    manifest: Value,
    /// The inputs besides the manifest.
    inputs: Vec<(String, String)>,
    /// The main container's command, when not the image's.
    command: Option<Vec<String>>,
    /// The main container's extra environment.
    env: Vec<Value>,
}

impl RunObjects {
    /// A run with two files, one of them secret, and no source.
    fn with_files(name: &str) -> Self {
        RunObjects {
            name: name.to_string(),
            manifest: json!({
                "shared_directory": SHARED,
                "scripts_directory": format!("{SHARED}/scripts"),
                "source": null,
                "files": [
                    {"key": "file.0", "path": format!("{SHARED}/scripts/config/settings.txt"),
                     "secret": false},
                    {"key": "secret-file.0", "path": format!("{SHARED}/scripts/credentials.txt"),
                     "secret": true}
                ]
            }),
            inputs: vec![
                ("file.0".into(), SETTING.into()),
                ("secret-file.0".into(), SECRET_FILE_VALUE.into()),
            ],
            command: None,
            env: Vec::new(),
        }
    }

    fn result_secret(&self) -> String {
        format!("{}-result", self.name)
    }

    /// Creates the inputs Secret and the Job.
    fn create(&self, env: &Env) {
        let mut data = serde_json::Map::new();
        data.insert("manifest.json".into(), self.manifest.to_string().into());
        for (key, value) in &self.inputs {
            data.insert(key.clone(), value.clone().into());
        }
        let inputs = format!("{}-inputs", self.name);
        let label =
            |key: &str| json!({"fieldRef": {"fieldPath": format!("metadata.labels['{key}']")}});
        let mut main_env = vec![
            json!({"name": "ACTION", "value": "create"}),
            json!({"name": "SCRIPTS_DIRECTORY",
                   "value": self.manifest["scripts_directory"]}),
            json!({"name": "OUTPUTS_FILE", "value": "/humanitec/results/outputs.json"}),
            json!({"name": "SECRET_OUTPUTS_FILE",
                   "value": "/humanitec/results/secret-outputs.json"}),
            json!({"name": "ERROR_FILE", "value": "/humanitec/results/error.txt"}),
        ];
        main_env.extend(self.env.iter().cloned());
        let mut main = json!({
            "name": "main", "image": RUNNER_IMAGE, "env": main_env,
            "securityContext": restricted(),
            "volumeMounts": [{"name": "results", "mountPath": "/humanitec/results"},
                             {"name": "shared", "mountPath": SHARED}]
        });
        if let Some(command) = &self.command {
            main["command"] = json!(command);
        }
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": self.name, "namespace": env.ns()},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": DEADLINE.as_secs(),
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": ACCOUNT,
                    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                        "runAsNonRoot": true,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [
                        {"name": "prepare", "image": images(),
                         "command": [HELPER_BIN, "helper", "prepare"],
                         "securityContext": restricted(),
                         "volumeMounts": [
                             {"name": "inputs", "mountPath": "/humanitec/inputs",
                              "readOnly": true},
                             {"name": "results", "mountPath": "/humanitec/results"},
                             {"name": "shared", "mountPath": SHARED}]},
                        {"name": "collect", "image": images(), "restartPolicy": "Always",
                         "command": [HELPER_BIN, "helper", "collect"],
                         "securityContext": restricted(),
                         "env": [
                             {"name": "HUMANITEC_RESULT_SECRET", "value": self.result_secret()},
                             {"name": "HUMANITEC_NAMESPACE",
                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                             {"name": "HUMANITEC_JOB_NAME",
                              "valueFrom": label("batch.kubernetes.io/job-name")},
                             {"name": "HUMANITEC_JOB_UID",
                              "valueFrom": label("batch.kubernetes.io/controller-uid")}],
                         "volumeMounts": [{"name": "results", "mountPath": "/humanitec/results",
                                           "readOnly": true}]}
                    ],
                    "containers": [main],
                    "volumes": [
                        {"name": "inputs", "secret": {"secretName": inputs}},
                        {"name": "results", "emptyDir": {}},
                        {"name": "shared", "emptyDir": {}}
                    ]
                }}
            }
        });
        env.create(vec![
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": inputs, "namespace": env.ns()}, "stringData": data}),
            job,
        ]);
    }
}

/// The run's pod and the logs of its containers, for failure messages and log checks.
fn pod_report(env: &Env, job: &str) -> (Value, String) {
    let pods = env.kubectl(&[
        "get",
        "pods",
        "-n",
        env.ns(),
        "-l",
        &format!("job-name={job}"),
        "-o",
        "json",
    ]);
    let pod: Value = serde_json::from_str(&pods).expect("pods JSON");
    let pod = pod["items"][0].clone();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut logs = String::new();
    for container in ["prepare", "collect", "main"] {
        let out = env.kubectl_in(&["logs", "-n", env.ns(), &name, "-c", container], "");
        logs.push_str(&format!(
            "--- {container}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    (pod, logs)
}

/// Waits until the Job has finished; returns its final condition type (`Complete` or
/// `Failed`).
fn finished(env: &Env, job: &str) -> String {
    let started = Instant::now();
    loop {
        let conditions = env
            .object("jobs", job)
            .map(|j| j["status"]["conditions"].clone())
            .unwrap_or_default();
        let done =
            conditions.as_array().into_iter().flatten().find(|c| {
                c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed")
            });
        if let Some(condition) = done {
            return condition["type"].as_str().unwrap_or_default().to_string();
        }
        if started.elapsed() > DEADLINE {
            let (pod, logs) = pod_report(env, job);
            panic!("job {job} did not finish within {DEADLINE:?}\n{pod:#}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the result Secret; returns it with its data decoded.
fn result_secret(env: &Env, run: &RunObjects) -> (Value, Vec<(String, String)>) {
    let started = Instant::now();
    let secret = loop {
        if let Some(secret) = env.object("secrets", &run.result_secret()) {
            break secret;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let (pod, logs) = pod_report(env, &run.name);
            panic!("no result Secret for {}\n{pod:#}\n{logs}", run.name);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let data = secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().expect("base64 text"))
                .expect("base64");
            (key.clone(), String::from_utf8(bytes).expect("utf-8"))
        })
        .collect();
    (secret, data)
}

/// The value of `key` in decoded Secret data.
fn data_of<'a>(data: &'a [(String, String)], key: &str) -> Option<&'a str> {
    data.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Checks the Secret's owner and label, and that no log shows a secret value.
fn check_secret_and_logs(env: &Env, run: &RunObjects, secret: &Value) {
    let job = env.object("jobs", &run.name).expect("the job");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "terraform-provider-humanitec"
    );
    assert_eq!(
        secret["metadata"]["ownerReferences"],
        json!([{"apiVersion": "batch/v1", "kind": "Job", "name": run.name,
                "uid": job["metadata"]["uid"], "controller": false,
                "blockOwnerDeletion": false}])
    );
    let (_, logs) = pod_report(env, &run.name);
    for secret_value in [SECRET_FILE_VALUE, SECRET_OUTPUT_VALUE] {
        assert!(
            !logs.contains(secret_value),
            "a secret in the logs:\n{logs}"
        );
    }
    assert!(logs.contains("helper collect: wrote Secret"), "{logs}");
}

fn helper_image_places_the_files_and_collects_the_outputs(env: &Env) {
    let mut run = RunObjects::with_files("files");
    // The main container reports what it found, then runs the runner as usual.
    let script = r#"set -eu
d="$SCRIPTS_DIRECTORY"
export RUNNER_OUTPUTS="{\"setting\": \"$(cat "$d/config/settings.txt")\", \"setting_mode\": \"$(stat -c %a "$d/config/settings.txt")\", \"credentials_mode\": \"$(stat -c %a "$d/credentials.txt")\", \"owner\": \"$(stat -c %u "$d/credentials.txt")\"}"
export RUNNER_SECRET_OUTPUTS="{\"credentials\": \"$(cat "$d/credentials.txt")\", \"token\": \"$TOKEN\"}"
exec runner"#;
    run.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
    run.env = vec![json!({"name": "TOKEN", "value": SECRET_OUTPUT_VALUE})];
    run.create(env);

    let outcome = finished(env, &run.name);
    let (pod, logs) = pod_report(env, &run.name);
    assert_eq!(outcome, "Complete", "{pod:#}\n{logs}");
    let (secret, data) = result_secret(env, &run);
    let outputs: Value =
        serde_json::from_str(data_of(&data, "outputs.json").expect("outputs.json")).expect("JSON");
    assert_eq!(
        outputs,
        json!({"setting": SETTING, "setting_mode": "644", "credentials_mode": "600",
               "owner": "1000"})
    );
    let secret_outputs: Value =
        serde_json::from_str(data_of(&data, "secret-outputs.json").expect("secret-outputs.json"))
            .expect("JSON");
    assert_eq!(
        secret_outputs,
        json!({"credentials": SECRET_FILE_VALUE, "token": SECRET_OUTPUT_VALUE})
    );
    let keys: Vec<&str> = data.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["outputs.json", "secret-outputs.json"],
        "no error, no commit"
    );
    check_secret_and_logs(env, &run, &secret);
    assert!(env.warnings().is_empty(), "{:?}", env.warnings());
}

fn helper_image_brings_the_error_of_a_failed_run_back(env: &Env) {
    let mut run = RunObjects::with_files("failing");
    run.env = vec![json!({"name": "RUNNER_FAIL", "value": "the cloud said no"})];
    run.create(env);

    assert_eq!(finished(env, &run.name), "Failed");
    let (secret, data) = result_secret(env, &run);
    assert_eq!(data_of(&data, "error.txt"), Some("the cloud said no\n"));
    assert_eq!(data_of(&data, "outputs.json"), None);
    check_secret_and_logs(env, &run, &secret);
    let (pod, _) = pod_report(env, &run.name);
    let main = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(main["exitCode"], 1, "{pod:#}");
}

/// A `git daemon` serving `repos` on a free port, killed on drop.
struct GitDaemon {
    /// The server process.
    child: Child,
    /// The address it listens on.
    host: String,
    /// Its port.
    port: u16,
}

impl GitDaemon {
    fn start(host: &str, repos: &Path) -> Self {
        let port = std::net::TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Why the server binary and not `git daemon`: killing `git` would leave the forked
        // `git-daemon` behind.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("git --exec-path");
        let server =
            PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
        let child = Command::new(server)
            .args(["--reuseaddr", "--export-all"])
            .arg(format!("--listen={host}"))
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", repos.display()))
            .arg(repos)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git-daemon");
        let started = Instant::now();
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "git daemon never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        GitDaemon {
            child,
            host: host.to_string(),
            port,
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git is on PATH");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn helper_image_checks_out_a_git_source(env: &Env) {
    let repos = tempfile::tempdir().expect("temp dir");
    let work = repos.path().join("work");
    std::fs::create_dir_all(work.join("infra")).expect("dirs");
    // The runner image runs $SCRIPTS_DIRECTORY/run.sh when there is one.
    std::fs::write(
        work.join("infra/run.sh"),
        "printf '{\"from\": \"git\", \"placed\": \"%s\"}' \"$(cat config/settings.txt)\" > \"$OUTPUTS_FILE\"\n",
    )
    .expect("run.sh");
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["config", "user.email", "t@example.com"]);
    git(&work, &["config", "user.name", "t"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "scripts"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    git(repos.path(), &["clone", "-q", "--bare", "work", "repo.git"]);
    let daemon = GitDaemon::start(&env.host_for_pods(), repos.path());
    let url = format!("git://{}:{}/repo.git", daemon.host, daemon.port);

    let source_run = |name: &str, reference: &str| {
        let mut run = RunObjects::with_files(name);
        run.manifest["source"] = json!({"url": url, "ref": reference, "path": "infra"});
        run.manifest["scripts_directory"] = json!(format!("{SHARED}/infra"));
        run.manifest["files"][0]["path"] = json!(format!("{SHARED}/infra/config/settings.txt"));
        run
    };
    let run = source_run("checkout", "main");
    run.create(env);
    let bad_ref = source_run("bad-ref", "no-such-branch");
    bad_ref.create(env);

    let outcome = finished(env, &run.name);
    let (pod, logs) = pod_report(env, &run.name);
    assert_eq!(outcome, "Complete", "{pod:#}\n{logs}");
    let (secret, data) = result_secret(env, &run);
    assert_eq!(
        data_of(&data, "commit"),
        Some(format!("{commit}\n").as_str())
    );
    let outputs: Value =
        serde_json::from_str(data_of(&data, "outputs.json").expect("outputs.json")).expect("JSON");
    assert_eq!(outputs, json!({"from": "git", "placed": SETTING}));
    check_secret_and_logs(env, &run, &secret);

    // A ref the repository lacks: prepare fails with a one-line reason as its termination
    // message, and nothing else runs.
    assert_eq!(finished(env, &bad_ref.name), "Failed");
    let (pod, logs) = pod_report(env, &bad_ref.name);
    let prepare = &pod["status"]["initContainerStatuses"][0]["state"]["terminated"];
    assert_eq!(prepare["exitCode"], 1, "{pod:#}");
    let message = prepare["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("helper prepare: `git fetch --depth 1 origin no-such-branch` failed")
            && message.contains("couldn't find remote ref no-such-branch"),
        "{message:?}\n{logs}"
    );
    assert!(
        env.object("secrets", &bad_ref.result_secret()).is_none(),
        "collect never started"
    );
}

fn helper_image_keeps_an_earlier_result_it_may_not_replace(env: &Env) {
    let mut run = RunObjects::with_files("retried");
    run.env = vec![json!({"name": "RUNNER_FAIL", "value": "the second attempt"})];
    // An earlier attempt of the same Job wrote the result Secret; the account may create
    // Secrets but not update them.
    env.create(vec![json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": run.result_secret(), "namespace": env.ns()},
                "stringData": {"error.txt": "the first attempt\n"}})]);
    run.create(env);

    assert_eq!(finished(env, &run.name), "Failed");
    let (pod, logs) = pod_report(env, &run.name);
    let collect = &pod["status"]["initContainerStatuses"][1]["state"]["terminated"];
    assert_eq!(collect["exitCode"], 0, "{pod:#}\n{logs}");
    assert!(
        logs.contains(
            "Secret retried-result exists (an earlier attempt of this Job); replacing it"
        ) && logs.contains("may not replace Secret retried-result"),
        "{logs}"
    );
    let (_, data) = result_secret(env, &run);
    assert_eq!(data_of(&data, "error.txt"), Some("the first attempt\n"));
}

fn helper_image_answers_gits_credential_prompts(env: &Env) {
    let mut run = RunObjects::with_files("askpass");
    run.manifest["source"] = json!({"url": "https://git.example.com/r.git", "username": "me",
                                    "password_key": "source.password"});
    run.inputs
        .push(("source.password".into(), "pw-7f3a".into()));
    run.create(env);
    // git runs the binary as GIT_ASKPASS with the prompt as its only argument.
    let script = format!(
        "export {var}=1; {HELPER_BIN} \"Username for 'https://git.example.com': \"; \
         {HELPER_BIN} \"Password for 'https://me@git.example.com': \"; \
         {HELPER_BIN} 'Something else? ' 2>&1 || echo refused",
        var = humanitec_provider::HELPER_ASKPASS_ENV
    );
    env.create(vec![json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "askpass", "namespace": env.ns()},
    "spec": {
        "restartPolicy": "Never", "serviceAccountName": ACCOUNT,
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                            "runAsNonRoot": true,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "askpass", "image": crate::support::cluster::helper_image(),
            "command": ["sh", "-c", script], "securityContext": restricted(),
            "volumeMounts": [{"name": "inputs", "mountPath": "/humanitec/inputs",
                              "readOnly": true}]}],
        "volumes": [{"name": "inputs", "secret": {"secretName": "askpass-inputs"}}]
    }})]);
    let started = Instant::now();
    while env
        .object("pods", "askpass")
        .is_none_or(|p| p["status"]["phase"] != "Succeeded" && p["status"]["phase"] != "Failed")
    {
        assert!(
            started.elapsed() < DEADLINE,
            "the askpass pod never finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = env.kubectl(&["logs", "-n", env.ns(), "askpass"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[..2], ["me", "pw-7f3a"], "{logs}");
    assert!(
        logs.contains("helper askpass: cannot answer git's prompt \"Something else? \"")
            && logs.ends_with("refused\n"),
        "{logs}"
    );
}

/// Each scenario on the test cluster.
macro_rules! tiers {
    ($($scenario:ident),* $(,)?) => {
        mod test_cluster {
            $(#[test]
            fn $scenario() {
                super::$scenario(&super::test_cluster());
            })*
        }
    };
}

tiers! {
    helper_image_places_the_files_and_collects_the_outputs,
    helper_image_brings_the_error_of_a_failed_run_back,
    helper_image_checks_out_a_git_source,
    helper_image_keeps_an_earlier_result_it_may_not_replace,
    helper_image_answers_gits_credential_prompts,
}
