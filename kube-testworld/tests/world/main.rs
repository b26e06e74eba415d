//! Integration tests of the test world against real clients: `kubectl` (on PATH) and the
//! `kube` crate. Every external command and every wait is bounded.

mod jobs;
mod kube_client;
mod kubectl;
mod pods;
mod terraform;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube_testworld::{Options, TestWorld};
use serde_json::Value;

/// How long one kubectl command may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) fn world() -> TestWorld {
    TestWorld::start(Options::default()).expect("the test world starts")
}

pub(crate) fn kubectl_command(world: &TestWorld, args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", world.kubeconfig_path())
        .env("HOME", world.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs kubectl with `stdin`, killing it at the deadline.
pub(crate) fn kubectl_in(world: &TestWorld, args: &[&str], stdin: &str) -> Output {
    let mut child = kubectl_command(world, args)
        .spawn()
        .expect("kubectl is on PATH");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("kubectl {args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn kubectl(world: &TestWorld, args: &[&str]) -> Output {
    kubectl_in(world, args, "")
}

/// Runs kubectl and requires success; returns stdout.
pub(crate) fn ok(world: &TestWorld, args: &[&str]) -> String {
    let out = kubectl(world, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl and requires failure; returns stderr.
pub(crate) fn fails(world: &TestWorld, args: &[&str]) -> String {
    let out = kubectl(world, args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded unexpectedly"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls `check` every 100 ms until it gives a value, failing the test after [`DEADLINE`].
pub(crate) fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The images the kubelet tests run (built by `scripts/build-test-images.sh`).
pub(crate) const IMAGES: [&str; 3] = [
    "localhost/testworld/git:1",
    "localhost/testworld/runner:1",
    "localhost/testworld/iac-runner:1",
];

/// The repository's containers.conf for podman on these machines.
pub(crate) fn containers_conf() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/podman/containers.conf")
}

/// A world with the kubelet. Fails (never skips) when podman or the images are missing.
pub(crate) fn podman_world() -> TestWorld {
    let conf = containers_conf();
    for image in IMAGES {
        let exists = Command::new("podman")
            .args(["image", "exists", image])
            .env("CONTAINERS_CONF", &conf)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            exists,
            "podman or the image {image} is missing: install podman and run scripts/build-test-images.sh"
        );
    }
    TestWorld::start(Options {
        kubelet: true,
        containers_conf: Some(conf),
        ..Options::default()
    })
    .expect("the test world starts with its kubelet")
}
