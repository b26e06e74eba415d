//! Measures the test world (for closing notes; never a timed test): how long `TestWorld::start`
//! takes, kubectl's first answer, and a pod's time from `kubectl create` to its container
//! running under podman. Needs podman and the images of `scripts/build-test-images.sh`.
//! Run with `scripts/measure-testworld.sh`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_testworld::{Options, TestWorld};

const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn kubectl(w: &TestWorld, args: &[&str], stdin: &str) {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", w.kubeconfig_path())
        .env("HOME", w.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kubectl");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin");
    }
    assert!(
        child.wait().expect("kubectl").success(),
        "kubectl {args:?} failed"
    );
}

fn main() {
    let conf =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/podman/containers.conf");
    let options = || Options {
        kubelet: true,
        containers_conf: Some(conf.clone()),
        ..Options::default()
    };
    let mut starts = Vec::new();
    let mut first_answers = Vec::new();
    let mut to_running = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let w = TestWorld::start(options()).expect("start");
        starts.push(started.elapsed());
        let asked = Instant::now();
        kubectl(&w, &["get", "--raw", "/version"], "");
        first_answers.push(asked.elapsed());
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{run}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: main, image: 'localhost/testworld/runner:1', command: [sleep, '2']}}\n"
        );
        let created = Instant::now();
        kubectl(&w, &["create", "-f", "-"], &pod);
        loop {
            let p = w
                .object("pods", "default", &format!("p{run}"))
                .expect("pod");
            let state = &p["status"]["containerStatuses"][0]["state"];
            if state.get("running").is_some() || state.get("terminated").is_some() {
                break;
            }
            assert!(
                created.elapsed() < Duration::from_secs(60),
                "the pod never ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        to_running.push(created.elapsed());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "runs: {RUNS} (medians)");
    let _ = writeln!(
        out,
        "TestWorld::start (HTTPS, CA generation, kubeconfig, kubelet check): {:?}",
        median(starts)
    );
    let _ = writeln!(
        out,
        "first kubectl answer (process start included): {:?}",
        median(first_answers)
    );
    let _ = writeln!(
        out,
        "pod from `kubectl create` to its container running under podman: {:?}",
        median(to_running)
    );
}
