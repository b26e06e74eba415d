//! The test world against the `kube` crate: the client from the written kubeconfig, a `watcher`
//! that resumes after a forced disconnect and after a `410 Gone`, server-side apply, and (with
//! the kubelet) a followed log stream.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::json;

use crate::{DEADLINE, podman_world, world};
use kube_testworld::TestWorld;

async fn client(w: &TestWorld) -> Client {
    let kubeconfig = Kubeconfig::read_from(w.kubeconfig_path()).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube accepts the kubeconfig");
    Client::try_from(config).expect("client")
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"k": name}}))
    .expect("configmap")
}

/// Reads watcher events until `name` has been applied.
async fn until_applied<S>(events: &mut S, seen: &mut BTreeSet<String>, name: &str)
where
    S: futures_util::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let wait = async {
        while !seen.contains(name) {
            match events.next().await {
                Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                    seen.insert(cm.metadata.name.unwrap_or_default());
                }
                Some(_) => {}
                None => panic!("the watcher stream ended"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("the watcher never saw {name}"));
}

async fn watcher_resumes(config: watcher::Config) {
    let w = world();
    let api: Api<ConfigMap> = Api::namespaced(client(&w).await, "default");
    let mut events = Box::pin(watcher(api.clone(), config).default_backoff());
    let mut seen = BTreeSet::new();
    api.create(&PostParams::default(), &configmap("first"))
        .await
        .expect("create");
    until_applied(&mut events, &mut seen, "first").await;

    // A forced disconnect: the watcher re-watches from its last resourceVersion.
    w.disconnect_watches();
    api.create(&PostParams::default(), &configmap("second"))
        .await
        .expect("create");
    until_applied(&mut events, &mut seen, "second").await;
    assert_eq!(w.expired_watches(), 0);

    // A compaction: the next watch from the old resourceVersion gets 410 and the watcher
    // lists again.
    w.compact();
    w.disconnect_watches();
    api.create(&PostParams::default(), &configmap("third"))
        .await
        .expect("create");
    until_applied(&mut events, &mut seen, "third").await;
    assert!(
        w.expired_watches() >= 1,
        "the watch after compaction was answered 410"
    );
    assert!(w.warnings().is_empty(), "{:?}", w.warnings());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_resumes_after_disconnects_and_410() {
    watcher_resumes(watcher::Config::default().timeout(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_watcher_resumes_too() {
    watcher_resumes(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_creates_updates_and_records_the_manager() {
    let w = world();
    let api: Api<ConfigMap> = Api::namespaced(client(&w).await, "default");
    let params = PatchParams::apply("testworld-test");
    let applied = api
        .patch("ssa", &params, &Patch::Apply(configmap("ssa")))
        .await
        .expect("apply creates");
    assert_eq!(
        applied
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("ssa")
    );
    let mut changed = configmap("ssa");
    changed.data = Some([("k".to_string(), "v2".to_string())].into());
    let applied = api
        .patch("ssa", &params, &Patch::Apply(changed))
        .await
        .expect("apply updates");
    assert_eq!(
        applied
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("v2")
    );
    let managers: Vec<(String, String)> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("testworld-test".into(), "Apply".into())),
        "{managers:?}"
    );
    // Another manager changing the same field conflicts, unless it forces.
    let mut theirs = configmap("ssa");
    theirs.data = Some([("k".to_string(), "theirs".to_string())].into());
    let err = api
        .patch(
            "ssa",
            &PatchParams::apply("other"),
            &Patch::Apply(theirs.clone()),
        )
        .await
        .expect_err("a conflict");
    match &err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("conflict with \"testworld-test\""),
                "{}",
                status.message
            );
            assert!(status.message.contains(".data.k"), "{}", status.message);
        }
        other => panic!("{other}"),
    }
    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("other").force(),
            &Patch::Apply(theirs),
        )
        .await
        .expect("a forced apply");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("theirs")
    );
    let err = api
        .patch(
            "ssa",
            &PatchParams::default(),
            &Patch::Apply(configmap("ssa")),
        )
        .await
        .expect_err("apply without a field manager");
    assert!(err.to_string().contains("fieldManager"), "{err}");
    api.delete("ssa", &DeleteParams::default())
        .await
        .expect("delete");
    let missing = api.get("ssa").await.expect_err("gone");
    match missing {
        kube::Error::Api(status) => assert_eq!(status.code, 404),
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stream_follows_a_running_container() {
    let w = podman_world();
    let pods: Api<Pod> = Api::namespaced(client(&w).await, "default");
    let pod: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "talker"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main",
            "image": "localhost/testworld/runner:1",
            "command": ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"]}]}}))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    // Why: as a real client must, wait for the container to leave `waiting` before streaming.
    let running = async {
        loop {
            let p = pods.get("talker").await.expect("get");
            let state = p
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.state);
            if state.is_some_and(|s| s.waiting.is_none()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the container starts");
    let params = LogParams {
        follow: true,
        timestamps: true,
        ..LogParams::default()
    };
    let stream = pods
        .log_stream("talker", &params)
        .await
        .expect("log stream");
    let lines: Vec<String> = tokio::time::timeout(DEADLINE, stream.lines().try_collect())
        .await
        .expect("the stream ends with the container")
        .expect("lines");
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once(' ').map(|(_, t)| t))
        .collect();
    assert_eq!(texts, vec!["line 1", "line 2", "line 3"], "{lines:?}");
}
