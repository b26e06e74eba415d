//! Integration tests of the test world against real clients: `kubectl` (on PATH) and the
//! `kube` crate. Every external command and every wait is bounded.

mod jobs;
mod kubectl;

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
