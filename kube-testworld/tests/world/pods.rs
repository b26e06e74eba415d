//! The kubelet: pods really run under podman with the locally built images. These tests fail
//! (they never skip) when podman or the images are missing.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{DEADLINE, eventually, fails, json, kubectl_in, ok, podman_world};
use kube_testworld::TestWorld;

fn create(w: &TestWorld, yaml: &str) {
    let out = kubectl_in(w, &["create", "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pod(w: &TestWorld, name: &str) -> Value {
    w.object("pods", "default", name).expect("the pod exists")
}

fn phase_of(w: &TestWorld, name: &str, phase: &str) -> Value {
    eventually(&format!("pod {name} to be {phase}"), || {
        let p = w.object("pods", "default", name)?;
        (p["status"]["phase"] == phase).then_some(p)
    })
}

fn waiting_reason(p: &Value) -> Option<String> {
    p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
        .as_str()
        .map(str::to_string)
}

fn event_messages(w: &TestWorld, name: &str) -> String {
    ok(
        w,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "custom-columns=REASON:.reason,MESSAGE:.message",
            "--no-headers",
        ],
    )
}

const FULL_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: full, labels: {app: demo}}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}
  initContainers:
  - name: first
    image: localhost/testworld/runner:1
    command: [sh, -c, 'echo one > /work/order']
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: localhost/testworld/runner:1
    command: [sh, -c, 'echo two >> /work/order']
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: localhost/testworld/runner:1
    command: [sh, -c]
    args:
    - |
      cat /work/order
      echo secret=$(cat /secret/renamed) mode=$(stat -c %a /secret/renamed)
      echo config=$(cat /config/only)
      echo ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)
      test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token=yes
      grep -q 'BEGIN CERTIFICATE' /var/run/secrets/kubernetes.io/serviceaccount/ca.crt && echo ca=yes
      echo env=$PLAIN/$FROM_SECRET/$FROM_CONFIG/$POD_NAME/$APP/$CFG_one
      echo api=$KUBERNETES_SERVICE_HOST
      id -u
      echo the end > /dev/termination-log
      exit 3
    env:
    - {name: PLAIN, value: plain}
    - {name: FROM_SECRET, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: FROM_CONFIG, valueFrom: {configMapKeyRef: {name: settings, key: only}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}
    envFrom:
    - {configMapRef: {name: settings}, prefix: CFG_}
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: secret, mountPath: /secret, readOnly: true}
    - {name: config, mountPath: /config}
  volumes:
  - {name: work, emptyDir: {}}
  - name: secret
    secret:
      secretName: creds
      items: [{key: password, path: renamed, mode: 0400}]
  - {name: config, configMap: {name: settings}}
";

#[test]
fn a_pod_runs_init_containers_in_order_then_its_container() {
    let w = podman_world();
    ok(
        &w,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=password=s3cret",
        ],
    );
    ok(
        &w,
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=only=value",
            "--from-literal=one=1",
        ],
    );
    let created = Instant::now();
    create(&w, FULL_POD);
    let p = phase_of(&w, "full", "Failed");
    eprintln!("pod from creation to finished: {:?}", created.elapsed());
    let terminated = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(terminated["message"], "the end\n");
    for (i, init) in p["status"]["initContainerStatuses"]
        .as_array()
        .expect("init statuses")
        .iter()
        .enumerate()
    {
        assert_eq!(
            init["state"]["terminated"]["exitCode"], 0,
            "init container {i}"
        );
    }
    let logs = ok(&w, &["logs", "full"]);
    let expected = [
        "one",
        "two",
        "secret=s3cret mode=440",
        "config=value",
        "ns=default",
        "token=yes",
        "ca=yes",
        "env=plain/s3cret/value/full/demo/1",
        "api=127.0.0.1",
        "1000",
    ];
    assert_eq!(logs.lines().collect::<Vec<_>>(), expected, "{logs}");
    assert_eq!(ok(&w, &["logs", "full", "--tail=1"]).trim(), "1000");
    let stamped = ok(&w, &["logs", "full", "--timestamps"]);
    let first = stamped.lines().next().expect("a line");
    let (ts, rest) = first.split_once(' ').expect("timestamp");
    assert!(ts.ends_with('Z') && ts.contains('.'), "{first}");
    assert_eq!(rest, "one");
    // kubectl sends sinceTime in whole seconds; lines older than it are left out.
    assert_eq!(
        ok(&w, &["logs", "full", "--since-time=2000-01-01T00:00:00Z"])
            .lines()
            .count(),
        expected.len()
    );
    assert_eq!(
        ok(&w, &["logs", "full", "--since-time=2100-01-01T00:00:00Z"]),
        ""
    );
    assert_eq!(ok(&w, &["logs", "full", "-c", "first"]).trim(), "");
    assert!(ok(&w, &["get", "pod", "full"]).contains("Error"));
    assert!(w.warnings().is_empty(), "{:?}", w.warnings());
}

#[test]
fn a_missing_image_is_never_pulled() {
    let w = podman_world();
    create(
        &w,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: noimage}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: main, image: 'localhost/testworld/absent:1'}\n",
    );
    eventually("ErrImagePull", || {
        (waiting_reason(&pod(&w, "noimage")).as_deref() == Some("ErrImagePull")).then_some(())
    });
    eventually("ImagePullBackOff", || {
        (waiting_reason(&pod(&w, "noimage")).as_deref() == Some("ImagePullBackOff")).then_some(())
    });
    let events = event_messages(&w, "noimage");
    assert!(
        events.contains("Failed to pull image \"localhost/testworld/absent:1\""),
        "{events}"
    );
    assert!(events.contains("Back-off pulling image"), "{events}");
    assert_eq!(pod(&w, "noimage")["status"]["phase"], "Pending");
    assert!(!events.contains("Started"), "{events}");
    let err = fails(&w, &["logs", "noimage"]);
    assert!(
        err.contains("is waiting to start: ImagePullBackOff"),
        "{err}"
    );
}

#[test]
fn a_missing_key_is_a_config_error_until_it_appears() {
    let w = podman_world();
    create(
        &w,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: nokey}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: localhost/testworld/runner:1\n    command: [sh, -c, 'echo $V']\n    env: [{name: V, valueFrom: {secretKeyRef: {name: later, key: k}}}]\n",
    );
    let p = eventually("CreateContainerConfigError", || {
        let p = pod(&w, "nokey");
        (waiting_reason(&p).as_deref() == Some("CreateContainerConfigError")).then_some(p)
    });
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "secret \"later\" not found"
    );
    ok(
        &w,
        &[
            "create",
            "secret",
            "generic",
            "later",
            "--from-literal=other=x",
        ],
    );
    eventually("the key message", || {
        let p = pod(&w, "nokey");
        (p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            == "couldn't find key k in Secret default/later")
            .then_some(())
    });
    ok(
        &w,
        &[
            "patch",
            "secret",
            "later",
            "--type=merge",
            "-p",
            r#"{"stringData":{"k":"found"}}"#,
        ],
    );
    phase_of(&w, "nokey", "Succeeded");
    assert_eq!(ok(&w, &["logs", "nokey"]).trim(), "found");
}

#[test]
fn run_as_non_root_refuses_uid_zero() {
    let w = podman_world();
    for (name, user) in [("explicit", "runAsUser: 0, "), ("image", "")] {
        create(
            &w,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: localhost/testworld/runner:1\n    command: [id]\n    securityContext: {{{user}runAsNonRoot: true}}\n"
            ),
        );
        let p = eventually("the refusal", || {
            let p = pod(&w, name);
            (waiting_reason(&p).as_deref() == Some("CreateContainerConfigError")).then_some(p)
        });
        let message = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            message.contains("non-root") || message.contains("will run as root"),
            "{message}"
        );
    }
}

#[test]
fn a_job_runs_the_runner_image_to_completion_and_failure() {
    let w = podman_world();
    let job = |name: &str, env: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: runner\n        image: localhost/testworld/runner:1\n        env:\n        - {{name: ACTION, value: create}}\n        - {{name: OUTPUTS_FILE, value: /out/outputs}}\n        - {{name: SECRET_OUTPUTS_FILE, value: /out/secret}}\n        - {{name: ERROR_FILE, value: /out/error}}\n{env}"
        )
    };
    create(&w, &job("good", ""));
    ok(
        &w,
        &[
            "wait",
            "--for=condition=complete",
            "job/good",
            "--timeout=30s",
        ],
    );
    let logs = ok(&w, &["logs", "job/good"]);
    assert!(
        logs.contains("runner: ACTION=create") && logs.contains("runner: done"),
        "{logs}"
    );
    create(
        &w,
        &job(
            "bad",
            "        - {name: RUNNER_FAIL, value: broken on purpose}\n",
        ),
    );
    ok(
        &w,
        &["wait", "--for=condition=failed", "job/bad", "--timeout=30s"],
    );
    let j = json(&ok(&w, &["get", "job", "bad", "-o", "json"]));
    assert_eq!(
        j["status"]["conditions"][1]["reason"],
        "BackoffLimitExceeded"
    );
    assert!(ok(&w, &["logs", "job/bad"]).contains("runner: broken on purpose"));
}

#[test]
fn logs_follow_and_deletion_stops_containers_gracefully() {
    let w = podman_world();
    create(
        &w,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: loop}\nspec:\n  terminationGracePeriodSeconds: 20\n  containers:\n  - name: main\n    image: localhost/testworld/runner:1\n    command: [sh, -c, 'trap \"echo stopping; exit 0\" TERM; echo started; while true; do sleep 0.2; done']\n",
    );
    phase_of(&w, "loop", "Running");
    let mut follow = crate::kubectl_command(&w, &["logs", "-f", "loop"])
        .spawn()
        .expect("kubectl logs -f");
    eventually("the first line", || {
        ok(&w, &["logs", "loop"]).contains("started").then_some(())
    });
    let started = Instant::now();
    ok(&w, &["delete", "pod", "loop", "--wait=false"]);
    let p = pod(&w, "loop");
    assert!(
        p["metadata"]["deletionTimestamp"].is_string(),
        "deleted gracefully, not at once"
    );
    eventually("the pod to go", || {
        w.object("pods", "default", "loop").is_none().then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "SIGTERM ends it well before the grace period"
    );
    let deadline = Instant::now() + DEADLINE;
    while follow.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "logs -f did not end with the container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = follow.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("started") && text.contains("stopping"),
        "{text}"
    );
}

#[test]
fn a_native_sidecar_runs_beside_the_main_container_and_stops_after_it() {
    let w = podman_world();
    // The main container waits for the sidecar's file: a started sidecar has not necessarily
    // run its first command yet (as on a real node without a startup probe).
    create(&w, "apiVersion: v1
kind: Pod
metadata: {name: sidecar}
spec:
  restartPolicy: Never
  initContainers:
  - name: collector
    image: localhost/testworld/runner:1
    restartPolicy: Always
    command: [sh, -c, 'trap \"echo collected; exit 0\" TERM; echo up > /shared/up; while true; do sleep 0.1; done']
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: main
    image: localhost/testworld/runner:1
    command: [sh, -c, 'while [ ! -f /shared/up ]; do sleep 0.05; done; cat /shared/up']
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes: [{name: shared, emptyDir: {}}]
");
    let p = phase_of(&w, "sidecar", "Succeeded");
    assert_eq!(ok(&w, &["logs", "sidecar", "-c", "main"]).trim(), "up");
    let side = &p["status"]["initContainerStatuses"][0];
    assert!(
        side["state"]["terminated"].is_object(),
        "the sidecar was stopped: {side}"
    );
    assert_eq!(
        ok(&w, &["logs", "sidecar", "-c", "collector"]).trim(),
        "collected"
    );
}

#[test]
fn a_pod_clones_from_a_local_git_server_over_host_networking() {
    let w = podman_world();
    let repos = w.dir().join("repos");
    let work = w.dir().join("work");
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::create_dir_all(&work).expect("mkdir");
    std::fs::create_dir_all(&repos).expect("mkdir");
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("hello.txt"), "from git\n").expect("write");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(
        &repos,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().expect("utf-8"),
            "repo.git",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let base = format!("--base-path={}", repos.display());
    // Why: `git daemon` forks `git-daemon`, which killing `git` would leave behind; the server
    // binary is started directly and killed on drop, also when an assertion fails.
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path");
    let server = std::path::PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim())
        .join("git-daemon");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = KillOnDrop(
        std::process::Command::new(server)
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &base,
            ])
            .arg(&repos)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git-daemon"),
    );
    eventually("git daemon to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    create(&w, &format!("apiVersion: v1
kind: Pod
metadata: {{name: clone}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true}}
  containers:
  - name: git
    image: localhost/testworld/git:1
    command: [sh, -c, 'git clone -q --depth 1 git://127.0.0.1:{port}/repo.git /src/checkout && cat /src/checkout/hello.txt']
    env: [{{name: HOME, value: /tmp}}]
    securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
    volumeMounts: [{{name: src, mountPath: /src}}]
  volumes: [{{name: src, emptyDir: {{}}}}]
"));
    let p = eventually("the clone to finish", || {
        let p = w.object("pods", "default", "clone")?;
        matches!(
            p["status"]["phase"].as_str(),
            Some("Succeeded") | Some("Failed")
        )
        .then_some(p)
    });
    let logs = ok(&w, &["logs", "clone"]);
    assert_eq!(p["status"]["phase"], "Succeeded", "{logs}");
    assert_eq!(logs.trim(), "from git");
}

#[test]
fn the_audit_and_the_container_logs_outlive_a_deleted_pod() {
    let w = podman_world();
    create(
        &w,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: gone}\nspec:\n  restartPolicy: Never\n  initContainers:\n  - {name: setup, image: localhost/testworld/runner:1, command: [sh, -c, 'echo from-init-4f1c']}\n  containers:\n  - {name: main, image: localhost/testworld/runner:1, command: [sh, -c, 'echo from-main-9d2e; echo to-stderr-77ab >&2']}\n",
    );
    let finished = phase_of(&w, "gone", "Succeeded");
    let uid = finished["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let rv = |o: &Value| -> u64 {
        o["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("resourceVersion")
    };
    ok(&w, &["delete", "pod", "gone"]);
    assert!(w.object("pods", "default", "gone").is_none());

    let logs = w.container_logs();
    for line in ["from-init-4f1c", "from-main-9d2e", "to-stderr-77ab"] {
        assert!(logs.lines().any(|l| l == line), "{line} in {logs:?}");
    }
    let versions: Vec<Value> = w
        .audit()
        .into_iter()
        .filter(|o| o["kind"] == "Pod" && o["metadata"]["uid"] == uid.as_str())
        .collect();
    let phases: Vec<&str> = versions
        .iter()
        .filter_map(|p| p["status"]["phase"].as_str())
        .collect();
    assert_eq!(phases.first(), Some(&"Pending"), "{phases:?}");
    assert!(phases.contains(&"Running"), "{phases:?}");
    let last = versions.last().expect("versions");
    assert_eq!(last["status"]["phase"], "Succeeded");
    assert!(
        rv(last) > rv(&finished),
        "the last version is the deletion's: {last}"
    );
    let events: Vec<Value> = w
        .audit()
        .into_iter()
        .filter(|o| o["kind"] == "Event" && o["involvedObject"]["uid"] == uid.as_str())
        .collect();
    assert!(
        events.iter().any(|e| e["reason"] == "Started"),
        "the pod's events are audited too"
    );
}
