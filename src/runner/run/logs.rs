//! The log lines of a run's containers: each container's log streamed once into the provider
//! log at INFO, redacted and prefixed with `pod/container`, and the last lines kept for a
//! failure diagnostic.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::task::JoinSet;

use super::diagnose::has_started;
use super::kube_text;
use crate::runner::redact::Redactor;

/// How many log lines a failure diagnostic shows.
pub(super) const TAIL_LINES: usize = 40;

/// How long, after the Job's end, the log streams get to deliver their last lines.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// The log lines kept for a failure diagnostic.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// The log streams of one run.
pub(super) struct Logs {
    redactor: Redactor,
    tail: Tail,
    streams: Mutex<JoinSet<()>>,
    /// The `pod/container` logs followed so far. Why: a re-listing watch hands the same pods
    /// over again, and each container's log must be streamed once.
    followed: Mutex<BTreeSet<String>>,
}

impl Logs {
    pub(super) fn new(redactor: Redactor) -> Self {
        Logs {
            redactor,
            tail: Tail::default(),
            streams: Mutex::new(JoinSet::new()),
            followed: Mutex::default(),
        }
    }

    /// Starts following the log of each container of `pod` that has started.
    pub(super) fn follow(&self, pods: &Api<Pod>, pod: &Pod) {
        let Some(pod_name) = pod.metadata.name.clone() else {
            return;
        };
        let status = pod.status.as_ref();
        let statuses = status
            .and_then(|s| s.init_container_statuses.as_deref())
            .unwrap_or_default()
            .iter()
            .chain(
                status
                    .and_then(|s| s.container_statuses.as_deref())
                    .unwrap_or_default(),
            );
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        for container in statuses.filter(|c| has_started(c)) {
            if !followed.insert(format!("{pod_name}/{}", container.name)) {
                continue;
            }
            streams.spawn(follow_log(
                pods.clone(),
                pod_name.clone(),
                container.name.clone(),
                self.redactor.clone(),
                Arc::clone(&self.tail),
            ));
        }
    }

    /// Lets the log streams deliver their last lines, then stops them.
    pub(super) async fn drain(&self) {
        let mut streams =
            std::mem::take(&mut *self.streams.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::time::timeout(LOG_DRAIN, async {
            while streams.join_next().await.is_some() {}
        })
        .await;
        streams.abort_all();
    }

    /// The last `lines` lines.
    pub(super) fn tail(&self, lines: usize) -> Vec<String> {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let skip = tail.len().saturating_sub(lines);
        tail.iter().skip(skip).cloned().collect()
    }
}

/// Streams one container's log into the provider log and the tail, redacted.
async fn follow_log(
    pods: Api<Pod>,
    pod: String,
    container: String,
    redactor: Redactor,
    tail: Tail,
) {
    let params = LogParams {
        container: Some(container.clone()),
        follow: true,
        ..LogParams::default()
    };
    let prefix = format!("{pod}/{container}");
    // Why a few attempts: a container reported as running may not serve its log for a moment.
    for attempt in 0..3 {
        match pods.log_stream(&pod, &params).await {
            Ok(stream) => {
                let mut lines = stream.lines();
                while let Ok(Some(line)) = lines.try_next().await {
                    let line = redactor.redact(&line);
                    log::info!("[{prefix}] {line}");
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    tail.push_back(format!("  [{container}] {line}"));
                    while tail.len() > TAIL_LINES * 4 {
                        tail.pop_front();
                    }
                }
                return;
            }
            Err(e) => {
                log::debug!(
                    "log of {prefix} not available yet (attempt {attempt}): {}",
                    kube_text(&e)
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}
