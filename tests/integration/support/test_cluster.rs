//! The test cluster of `scripts/test-cluster.sh`: a real Kubernetes (API server, controller
//! manager, scheduler, etcd, and a node with the real kubelet and containerd) on this machine,
//! started once per test process or found running, and what the tests read from it: the API
//! server's audit log and every container log the node ever kept.
//!
//! One cluster serves every test of the process; each test works in a namespace of its own
//! (`Cluster::local`), so tests run in parallel and a test reads only its namespace's history.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value as Json;

/// The images the scenarios run; the node pulls from no registry, so they are copied from
/// podman's store into its containerd.
const IMAGES: &[&str] = &[
    "localhost/test-images/runner:1",
    "localhost/test-images/iac-runner:1",
    "localhost/test-images/git:1",
];

/// The running test cluster.
pub(crate) struct TestCluster {
    /// The admin kubeconfig (a client certificate in system:masters).
    pub(crate) kubeconfig: PathBuf,
    /// `cluster.env`: the ports and paths of the running cluster.
    env: BTreeMap<String, String>,
    /// The audit log as read so far.
    audit: Mutex<AuditRead>,
}

/// The audit log as read so far: the file being read (its inode) and where the next read
/// starts, and each namespace's events. Why kept: the tests poll the history while a run goes
/// on, and the log holds every test's requests; each line is read and parsed once.
#[derive(Default)]
struct AuditRead {
    inode: Option<u64>,
    offset: u64,
    events: HashMap<String, Vec<Json>>,
}

impl AuditRead {
    /// Reads `file` from the offset to its last complete line, keeping each event by namespace.
    fn read_on(&mut self, file: &mut std::fs::File) {
        file.seek(std::io::SeekFrom::Start(self.offset))
            .expect("seek in the audit log");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read the audit log");
        // Why up to the last newline: the API server may be writing the next line.
        let complete = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        self.offset += complete as u64;
        for line in bytes[..complete].split(|b| *b == b'\n') {
            let Ok(event) = serde_json::from_slice::<Json>(line) else {
                continue;
            };
            if let Some(namespace) = event["objectRef"]["namespace"].as_str() {
                let namespace = namespace.to_string();
                self.events.entry(namespace).or_default().push(event);
            }
        }
    }
}

/// The file of `dir` whose inode is `inode`: the audit log the API server renamed when it
/// rotated it (`audit-<time>.log`).
fn rotated_log(dir: &Path, inode: u64) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|entry| entry.metadata().is_ok_and(|m| m.ino() == inode))
        .map(|entry| entry.path())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join("scripts/test-cluster.sh"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/test-cluster.sh: {e}"));
    assert!(
        out.status.success(),
        "scripts/test-cluster.sh {args:?} failed (it needs Go, root, containerd, podman and the \
         test images: scripts/build-test-images.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestCluster {
    /// The cluster, started (or found running) once per process, with this test run's helper
    /// image and the other test images on its node.
    pub(crate) fn shared() -> &'static TestCluster {
        static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
        CLUSTER.get_or_init(|| {
            let up = script(&["up"]);
            let kubeconfig = PathBuf::from(up.lines().last().expect("up prints the kubeconfig"));
            let helper = super::cluster::helper_image();
            script(&[&["images", helper.as_str()], IMAGES].concat());
            let env = script(&["env"])
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            TestCluster {
                kubeconfig,
                env,
                audit: Mutex::default(),
            }
        })
    }

    /// Copies `image` from podman's store to the node (it pulls from no registry).
    pub(crate) fn load_image(&self, image: &str) {
        script(&["images", image]);
    }

    /// The cluster's own kubectl, of its release (`scripts/test-cluster.sh build` makes it next
    /// to the cluster's binary), so the tests need no kubectl on the machine.
    pub(crate) fn kubectl(&self) -> &Path {
        Path::new(self.env("KUBECTL"))
    }

    fn env(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("cluster.env has no {key}"))
    }

    /// The address of this machine that the node's pods reach it at (a git server for pods
    /// listens there).
    pub(crate) fn node_ip(&self) -> &str {
        self.env("NODE_IP")
    }

    /// Every audit event of a request in `namespace` (its `ResponseComplete` or, for a watch,
    /// `ResponseStarted` stage), oldest first.
    ///
    /// The API server rotates the log at 100 MB (renames it and starts another), which a whole
    /// test run passes: the rest of the renamed file is read before the new one.
    pub(crate) fn audit_events(&self, namespace: &str) -> Vec<Json> {
        use std::os::unix::fs::MetadataExt as _;
        let mut read = self.audit.lock().unwrap_or_else(|e| e.into_inner());
        let path = Path::new(self.env("AUDIT_LOG"));
        let mut file = std::fs::File::open(path).expect("the audit log");
        let inode = file.metadata().expect("the audit log's metadata").ino();
        if read.inode != Some(inode) {
            let renamed = read.inode.and_then(|old| rotated_log(path.parent()?, old));
            if let Some(mut old) = renamed.and_then(|p| std::fs::File::open(p).ok()) {
                read.read_on(&mut old);
            }
            read.inode = Some(inode);
            read.offset = 0;
        }
        read.read_on(&mut file);
        read.events.get(namespace).cloned().unwrap_or_default()
    }

    /// Every object the audit log shows in `namespace`, oldest first: each request body and
    /// response that is an object (each item of a list), for Jobs, pods, ConfigMaps and Events
    /// (logged with their bodies); Secrets are logged without them.
    pub(crate) fn audit(&self, namespace: &str) -> Vec<Json> {
        let mut objects = Vec::new();
        for event in self.audit_events(namespace) {
            for body in [&event["requestObject"], &event["responseObject"]] {
                push_objects(body, &mut objects);
            }
        }
        objects
    }

    /// The text of every container log the node kept for pods of `namespace` (deleted pods'
    /// included), each line without the CRI log prefix, grouped by container.
    pub(crate) fn container_logs(&self, namespace: &str) -> String {
        let root = Path::new(self.env("CONTAINER_LOGS"));
        let mut text = String::new();
        let Ok(pods) = std::fs::read_dir(root) else {
            return text;
        };
        let mut files = Vec::new();
        for pod in pods.flatten() {
            if !pod
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{namespace}_"))
            {
                continue;
            }
            for container in std::fs::read_dir(pod.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                for log in std::fs::read_dir(container.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    files.push(log.path());
                }
            }
        }
        files.sort();
        for file in files {
            text.push_str(&format!("== {}\n", file.display()));
            let content = std::fs::read_to_string(&file).unwrap_or_default();
            text.push_str(&cri_log_text(&content));
        }
        text
    }

    /// A bearer token of an identity bound to cluster-admin (the cluster's own admin uses a
    /// client certificate, which an exec plugin cannot hand over as a token).
    pub(crate) fn admin_token(&self) -> String {
        let kubectl = |args: &[&str], stdin: &str| {
            use std::io::Write as _;
            let mut child = Command::new(self.kubectl())
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run kubectl");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(stdin.as_bytes())
                .expect("kubectl stdin");
            let out = child.wait_with_output().expect("kubectl");
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        kubectl(&["apply", "-f", "-"], include_str!("test-admin.yaml"));
        kubectl(
            &[
                "create",
                "token",
                "test-admin",
                "-n",
                "kube-system",
                "--duration=2h",
            ],
            "",
        )
    }
}

/// Adds `body` to `objects` when it is an object (each item when it is a list).
pub(crate) fn push_objects(body: &Json, objects: &mut Vec<Json>) {
    let Some(kind) = body["kind"].as_str() else {
        return;
    };
    if matches!(kind, "Status" | "DeleteOptions" | "Scale") {
        return;
    }
    if let Some(item_kind) = kind.strip_suffix("List") {
        for item in body["items"].as_array().into_iter().flatten() {
            let mut item = item.clone();
            item["kind"] = Json::from(item_kind);
            objects.push(item);
        }
        return;
    }
    objects.push(body.clone());
}

/// The text of a CRI log file (`<time> <stream> <F|P> <text>` lines): the texts, partial lines
/// (`P`) joined with what follows.
fn cri_log_text(content: &str) -> String {
    let mut text = String::new();
    for line in content.lines() {
        let mut fields = line.splitn(4, ' ');
        let (_time, _stream, tag) = (fields.next(), fields.next(), fields.next());
        text.push_str(fields.next().unwrap_or(""));
        if tag != Some("P") {
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines_lose_their_prefix_and_partial_lines_join() {
        let content = "2026-12-05T15:40:03.1Z stdout F hello\n\
                       2026-12-05T15:40:03.2Z stderr P par\n\
                       2026-12-05T15:40:03.3Z stderr F tial\n\
                       2026-12-05T15:40:03.4Z stdout F \n";
        assert_eq!(cri_log_text(content), "hello\npartial\n\n");
    }

    #[test]
    fn the_audit_log_is_read_on_across_its_rotation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("audit.log");
        let event = |n: u32| format!("{{\"n\": {n}, \"objectRef\": {{\"namespace\": \"ns\"}}}}\n");
        let append = |path: &Path, text: &str| {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open");
            file.write_all(text.as_bytes()).expect("write");
        };
        let cluster = TestCluster {
            kubeconfig: PathBuf::new(),
            env: BTreeMap::from([("AUDIT_LOG".to_string(), log.display().to_string())]),
            audit: Mutex::default(),
        };
        append(&log, &(event(1) + &event(2) + "{\"partial"));
        assert_eq!(cluster.audit_events("ns").len(), 2);
        // The line being written is finished, then the file renamed and a new one started.
        append(&log, &format!("\": 1}}\n{}", event(3)));
        let rotated = dir.path().join("audit-2026-12-05T18-27-13.935.log");
        std::fs::rename(&log, &rotated).expect("rename");
        append(&log, &event(4));
        let numbers: Vec<_> = cluster
            .audit_events("ns")
            .iter()
            .map(|e| e["n"].as_u64().unwrap_or_default())
            .collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert!(cluster.audit_events("other").is_empty());
    }

    #[test]
    fn lists_become_their_items_and_statuses_are_skipped() {
        let mut objects = Vec::new();
        let list = serde_json::json!({"kind": "PodList", "items": [{"metadata": {"name": "a"}}]});
        push_objects(&list, &mut objects);
        push_objects(&serde_json::json!({"kind": "Status"}), &mut objects);
        push_objects(&serde_json::json!({"kind": "Job"}), &mut objects);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["kind"], "Pod");
        assert_eq!(objects[1]["kind"], "Job");
    }
}
