//! The test world against the real `kubectl` on PATH: discovery, create, get, list, watch, apply,
//! patch, delete with propagation, dry runs, `auth can-i`, and the error answers kubectl prints.
//! Every kubectl run is bounded by a deadline.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;

use kube_testworld::{Options, TestWorld};
use serde_json::Value;

use crate::{DEADLINE, fails, json, kubectl, kubectl_command, kubectl_in, ok, world};

#[test]
fn discovery_is_enough_for_kubectl() {
    let w = world();
    let version = json(&ok(&w, &["version", "-o", "json"]));
    assert_eq!(version["serverVersion"]["minor"], "31");
    let resources = ok(&w, &["api-resources", "-o", "name"]);
    for r in [
        "configmaps",
        "events",
        "namespaces",
        "pods",
        "secrets",
        "serviceaccounts",
        "jobs.batch",
        "leases.coordination.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
    ] {
        assert!(
            resources.lines().any(|l| l == r),
            "{r} missing from {resources}"
        );
    }
    let namespaces = ok(&w, &["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/default"));
    assert!(namespaces.contains("namespace/kube-system"));
    assert!(ok(&w, &["get", "serviceaccount", "default", "-o", "name"]).contains("default"));
    assert!(w.warnings().is_empty(), "{:?}", w.warnings());

    let ca = w.dir().join("ca.crt");
    let ca = ca.to_str().expect("utf-8 path");
    let out = Command::new("kubectl")
        .args([
            "--server",
            w.url(),
            "--certificate-authority",
            ca,
            "--token",
            "wrong",
            "get",
            "ns",
        ])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
    let token = format!("--token={}", w.admin_token());
    let out = Command::new("kubectl")
        .args([
            "--server",
            w.url(),
            "--certificate-authority",
            ca,
            &token,
            "get",
            "ns",
            "-o",
            "name",
        ])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl");
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/default"));
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  labels: {app: web, tier: front}
data:
  a: \"1\"
";

#[test]
fn create_get_list_apply_patch_delete() {
    let w = world();
    let out = kubectl_in(&w, &["create", "-f", "-"], CONFIGMAP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm = json(&ok(&w, &["get", "configmap", "demo", "-o", "json"]));
    assert_eq!(cm["data"]["a"], "1");
    assert_eq!(cm["metadata"]["uid"].as_str().map(str::len), Some(36));
    let rv1: u64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("resourceVersion");

    let table = ok(&w, &["get", "configmaps"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("demo") && table.contains("kube-root-ca.crt"));
    assert_eq!(
        ok(&w, &["get", "cm", "-l", "app=web", "-o", "name"]).trim(),
        "configmap/demo"
    );
    assert_eq!(
        ok(
            &w,
            &[
                "get",
                "cm",
                "-l",
                "app in (web,db),tier!=back",
                "-o",
                "name"
            ]
        )
        .trim(),
        "configmap/demo"
    );
    // `notin` also matches objects without the label.
    assert_eq!(
        ok(&w, &["get", "cm", "-l", "app notin (web)", "-o", "name"]).trim(),
        "configmap/kube-root-ca.crt"
    );
    assert_eq!(
        ok(&w, &["get", "cm", "-l", "!tier", "-o", "name"]).trim(),
        "configmap/kube-root-ca.crt"
    );
    assert_eq!(
        ok(
            &w,
            &[
                "get",
                "cm",
                "--field-selector",
                "metadata.name=demo",
                "-o",
                "name"
            ]
        )
        .trim(),
        "configmap/demo"
    );
    assert!(ok(&w, &["get", "cm", "-A", "-o", "name"]).lines().count() >= 5);

    // apply over a created object, then again unchanged.
    let changed = CONFIGMAP.replace("a: \"1\"", "a: \"2\"\n  b: \"3\"");
    let out = kubectl_in(&w, &["apply", "-f", "-"], &changed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl_in(&w, &["apply", "-f", "-"], &changed);
    assert!(String::from_utf8_lossy(&out.stdout).contains("unchanged"));
    let cm = json(&ok(&w, &["get", "configmap", "demo", "-o", "json"]));
    assert_eq!(cm["data"]["b"], "3");
    let rv2: u64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("resourceVersion");
    assert!(rv2 > rv1);

    ok(
        &w,
        &[
            "patch",
            "cm",
            "demo",
            "--type=merge",
            "-p",
            r#"{"data":{"b":null}}"#,
        ],
    );
    ok(
        &w,
        &[
            "patch",
            "cm",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/data/c","value":"4"}]"#,
        ],
    );
    ok(
        &w,
        &[
            "patch",
            "cm",
            "demo",
            "-p",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        ],
    );
    let cm = json(&ok(&w, &["get", "configmap", "demo", "-o", "json"]));
    assert_eq!(cm["data"], serde_json::json!({"a": "2", "c": "4"}));
    assert_eq!(cm["metadata"]["labels"]["x"], "y");

    ok(&w, &["delete", "configmap", "demo"]);
    let err = fails(&w, &["get", "configmap", "demo"]);
    assert!(
        err.contains("Error from server (NotFound): configmaps \"demo\" not found"),
        "{err}"
    );
    assert!(w.warnings().is_empty(), "{:?}", w.warnings());
}

#[test]
fn errors_read_like_a_real_api_server() {
    let w = world();
    ok(&w, &["create", "configmap", "one", "--from-literal=a=b"]);
    let err = fails(&w, &["create", "configmap", "one", "--from-literal=a=b"]);
    assert!(err.contains("configmaps \"one\" already exists"), "{err}");
    let err = fails(&w, &["-n", "nowhere", "create", "configmap", "x"]);
    assert!(err.contains("namespaces \"nowhere\" not found"), "{err}");
    let err = fails(&w, &["create", "configmap", "Bad_Name"]);
    assert!(
        err.contains("is invalid: metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );

    // A stale update is a 409.
    let cm = json(&ok(&w, &["get", "configmap", "one", "-o", "json"]));
    ok(&w, &["label", "configmap", "one", "v=2"]);
    let stale = cm.to_string();
    let out = kubectl_in(&w, &["replace", "-f", "-"], &stale);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(Conflict)") && err.contains("the object has been modified"),
        "{err}"
    );

    // Unknown fields: kubectl's default is strict, and --validate=warn shows the server's warning.
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\nfoo: bar\n";
    let out = kubectl_in(&w, &["create", "-f", "-"], bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("strict decoding error: unknown field \"foo\""),
        "{err}"
    );
    assert!(w.warnings().is_empty());
    let out = kubectl_in(&w, &["create", "--validate=warn", "-f", "-"], bad);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Warning: unknown field \"foo\""));
    assert_eq!(w.warnings(), vec!["unknown field \"foo\"".to_string()]);

    // A Job's template is immutable.
    ok(
        &w,
        &["create", "job", "j", "--image=busybox:1", "--", "true"],
    );
    let err = fails(
        &w,
        &[
            "patch",
            "job",
            "j",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"activeDeadlineSeconds":5}}}}"#,
        ],
    );
    assert!(
        err.contains("The Job \"j\" is invalid: spec.template: Invalid value"),
        "{err}"
    );
    assert!(err.contains("field is immutable"), "{err}");

    // Secrets are limited to 1 MiB.
    let big = w.dir().join("big");
    std::fs::write(&big, vec![b'x'; 1024 * 1024 + 1]).expect("write");
    let from = format!("--from-file=big={}", big.display());
    let err = fails(&w, &["create", "secret", "generic", "big", &from]);
    assert!(
        err.contains("Too long: must have at most 1048576 bytes"),
        "{err}"
    );
    std::fs::write(&big, vec![b'x'; 1024 * 1024]).expect("write");
    ok(&w, &["create", "secret", "generic", "big", &from]);

    // Unsupported field selector, bad label selector.
    let err = fails(&w, &["get", "cm", "--field-selector", "spec.x=1"]);
    assert!(err.contains("field label not supported: spec.x"), "{err}");
    let err = fails(
        &w,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?labelSelector=a%3D%3D-",
        ],
    );
    assert!(
        err.contains("BadRequest") || err.contains("unable to parse requirement"),
        "{err}"
    );
    let err = fails(&w, &["get", "--raw", "/api/v1/nothing"]);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn dry_run_generate_name_and_cascading_deletes() {
    let w = world();
    ok(
        &w,
        &[
            "create",
            "configmap",
            "dry",
            "--dry-run=server",
            "--from-literal=a=b",
        ],
    );
    fails(&w, &["get", "configmap", "dry"]);

    let generated = "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: gen-}\n";
    let out = kubectl_in(&w, &["create", "-f", "-", "-o", "name"], generated);
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        name.starts_with("configmap/gen-") && name.len() == "configmap/gen-".len() + 5,
        "{name}"
    );

    for cascade in ["background", "foreground", "orphan"] {
        ok(&w, &["create", "configmap", "owner"]);
        let uid = ok(
            &w,
            &["get", "cm", "owner", "-o", "jsonpath={.metadata.uid}"],
        );
        let dependent = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dep\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid}}}\n"
        );
        let out = kubectl_in(&w, &["create", "-f", "-"], &dependent);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ok(
            &w,
            &[
                "delete",
                "configmap",
                "owner",
                &format!("--cascade={cascade}"),
            ],
        );
        let left = kubectl(&w, &["get", "configmap", "dep", "-o", "json"]);
        if cascade == "orphan" {
            let dep = json(&String::from_utf8_lossy(&left.stdout));
            assert!(dep["metadata"].get("ownerReferences").is_none(), "{dep}");
            ok(&w, &["delete", "configmap", "dep"]);
        } else {
            assert!(
                !left.status.success(),
                "{cascade}: the dependent should be gone"
            );
        }
        fails(&w, &["get", "configmap", "owner"]);
    }

    ok(&w, &["create", "namespace", "scratch"]);
    ok(
        &w,
        &[
            "-n",
            "scratch",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=a=b",
        ],
    );
    ok(&w, &["delete", "namespace", "scratch"]);
    fails(&w, &["get", "namespace", "scratch"]);
    assert_eq!(ok(&w, &["get", "secrets", "-A", "-o", "name"]).trim(), "");
}

#[test]
fn auth_can_i_answers_from_self_subject_access_reviews() {
    let w = world();
    assert_eq!(ok(&w, &["auth", "can-i", "create", "jobs"]).trim(), "yes");
    assert_eq!(
        ok(&w, &["auth", "can-i", "get", "pods", "--subresource=log"]).trim(),
        "yes"
    );
}

#[test]
fn get_watch_streams_changes() {
    let w = world();
    let mut child = kubectl_command(
        &w,
        &[
            "get",
            "configmaps",
            "--watch",
            "-o",
            "json",
            "--output-watch-events",
        ],
    )
    .spawn()
    .expect("kubectl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        // kubectl prints one pretty JSON document per event; collect them by brace depth.
        let mut depth = 0i32;
        let mut doc = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            for c in line.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            doc.push_str(&line);
            doc.push('\n');
            if depth == 0 && !doc.trim().is_empty() {
                if let Ok(v) = serde_json::from_str::<Value>(&doc)
                    && tx.send(v).is_err()
                {
                    break;
                }
                doc.clear();
            }
        }
    });
    let next = |what: &str| -> Value {
        rx.recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no watch event for {what}"))
    };
    let first = next("the existing ConfigMap");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "kube-root-ca.crt");
    ok(
        &w,
        &["create", "configmap", "watched", "--from-literal=a=1"],
    );
    let added = next("the new ConfigMap");
    assert_eq!(
        (
            added["type"].as_str(),
            added["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("watched"))
    );
    ok(&w, &["label", "configmap", "watched", "x=y"]);
    let modified = next("the label");
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["metadata"]["labels"]["x"], "y");
    ok(&w, &["delete", "configmap", "watched"]);
    let deleted = next("the deletion");
    assert_eq!(deleted["type"], "DELETED");
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
}

#[test]
fn plain_http_serves_the_same_api() {
    let w = TestWorld::start(Options {
        plain_http: true,
        ..Options::default()
    })
    .expect("start");
    assert!(w.url().starts_with("http://127.0.0.1:"));
    assert!(ok(&w, &["get", "namespaces", "-o", "name"]).contains("namespace/default"));
}

#[test]
fn rbac_binds_roles_to_service_accounts() {
    let w = world();
    ok(&w, &["create", "serviceaccount", "runner"]);
    ok(
        &w,
        &[
            "create",
            "role",
            "runner",
            "--verb=get,list,watch",
            "--resource=pods,pods/log",
        ],
    );
    ok(
        &w,
        &[
            "create",
            "role",
            "writer",
            "--verb=create",
            "--resource=secrets",
        ],
    );
    ok(
        &w,
        &[
            "create",
            "rolebinding",
            "runner",
            "--role=runner",
            "--serviceaccount=default:runner",
        ],
    );
    ok(
        &w,
        &[
            "create",
            "rolebinding",
            "writer",
            "--role=writer",
            "--serviceaccount=default:runner",
        ],
    );
    let token = format!("--token={}", w.service_account_token("default", "runner"));
    let can = |args: &[&str]| {
        let mut all = vec![token.as_str(), "auth", "can-i"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&kubectl(&w, &all).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can(&["list", "pods"]), "yes");
    assert_eq!(can(&["get", "pods", "--subresource=log"]), "yes");
    assert_eq!(can(&["create", "secrets"]), "yes");
    assert_eq!(can(&["get", "secrets"]), "no");
    assert_eq!(can(&["create", "pods"]), "no");
    assert_eq!(can(&["list", "pods", "-n", "kube-system"]), "no");
    assert_eq!(can(&["create", "jobs"]), "no");

    assert_eq!(ok(&w, &[&token, "get", "pods", "-o", "name"]).trim(), "");
    ok(
        &w,
        &[
            &token,
            "create",
            "secret",
            "generic",
            "result",
            "--from-literal=a=b",
        ],
    );
    let err = fails(&w, &[&token, "get", "secret", "result"]);
    assert!(
        err.contains("secrets \"result\" is forbidden: User \"system:serviceaccount:default:runner\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    let err = fails(&w, &[&token, "get", "namespaces"]);
    assert!(
        err.contains("cannot list resource \"namespaces\" in API group \"\" at the cluster scope"),
        "{err}"
    );

    // A deleted service account's tokens stop working.
    ok(&w, &["delete", "serviceaccount", "runner"]);
    let err = fails(&w, &[&token, "get", "pods"]);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
}

#[test]
fn server_side_apply_tracks_field_managers() {
    let w = world();
    let out = kubectl_in(&w, &["apply", "--server-side", "-f", "-"], CONFIGMAP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "other" applies only data.a; the labels stay the first manager's alone.
    let changed = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {a: \"2\"}\n";
    let out = kubectl_in(
        &w,
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        changed,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("conflict"), "{err}");
    assert!(err.contains("kubectl"), "names the owning manager: {err}");
    let out = kubectl_in(
        &w,
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        changed,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm = json(&ok(
        &w,
        &[
            "get",
            "configmap",
            "demo",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    ));
    assert_eq!(cm["data"]["a"], "2");
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"other"), "{managers:?}");
    // A later apply by the first manager without the labels removes them.
    let no_labels = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {a: \"2\"}\n";
    let out = kubectl_in(&w, &["apply", "--server-side", "-f", "-"], no_labels);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm = json(&ok(&w, &["get", "configmap", "demo", "-o", "json"]));
    assert!(
        cm["metadata"]
            .get("labels")
            .is_none_or(|l| l.as_object().is_some_and(|m| m.is_empty())),
        "{cm}"
    );
}

/// The events of a raw watch that ends by its `timeoutSeconds`.
fn raw_watch(w: &TestWorld, query: &str) -> Vec<Value> {
    let path = format!("/api/v1/namespaces/default/configmaps?watch=1&{query}");
    ok(w, &["get", "--raw", &path]).lines().map(json).collect()
}

#[test]
fn raw_watches_resume_bookmark_translate_selectors_and_expire() {
    let w = TestWorld::start(Options {
        bookmark_interval: std::time::Duration::from_secs(1),
        ..Options::default()
    })
    .expect("start");
    ok(&w, &["create", "configmap", "a", "--from-literal=x=1"]);
    let rv = ok(
        &w,
        &[
            "get",
            "cm",
            "a",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    ok(&w, &["label", "configmap", "a", "team=blue"]);
    ok(&w, &["label", "configmap", "a", "team=red", "--overwrite"]);
    ok(&w, &["delete", "configmap", "a"]);

    // From a resourceVersion: exactly the later changes, then bookmarks until the timeout.
    let events = raw_watch(
        &w,
        &format!("resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=2"),
    );
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        &kinds[..3],
        ["MODIFIED", "MODIFIED", "DELETED"],
        "{events:?}"
    );
    assert!(
        kinds[3..].iter().all(|k| *k == "BOOKMARK") && kinds.len() > 3,
        "{kinds:?}"
    );
    let bookmark = &events[3]["object"];
    assert_eq!(bookmark["kind"], "ConfigMap");
    assert!(
        bookmark["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| v.parse::<u64>().is_ok())
    );

    // With a label selector the same history reads ADDED (starts matching), DELETED (stops).
    let events = raw_watch(
        &w,
        &format!("resourceVersion={rv}&labelSelector=team%3Dblue&timeoutSeconds=1"),
    );
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["ADDED", "DELETED"], "{events:?}");

    // sendInitialEvents: the current objects, then the initial-events-end bookmark.
    let events = raw_watch(
        &w,
        "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    );
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "kube-root-ca.crt");
    assert_eq!(events[1]["type"], "BOOKMARK");
    assert_eq!(
        events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // After a compaction the old resourceVersion is gone: one ERROR event with a 410 Status.
    w.compact();
    let events = raw_watch(&w, &format!("resourceVersion={rv}&timeoutSeconds=1"));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    assert_eq!(w.expired_watches(), 1);
}
