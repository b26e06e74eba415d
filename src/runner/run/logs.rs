//! The log lines of a run's containers: each container's log streamed once into the provider
//! log at INFO, redacted and prefixed with `pod/container`, and the last lines kept for a
//! failure diagnostic.
//!
//! A stream that drops while its container runs (a cut connection, an API server restart) is
//! opened again from where it stopped: lines come with their timestamps, the new stream starts
//! at the last line's second (`sinceTime` has whole seconds), and the lines of that second
//! already shown are skipped, so nothing is lost or shown twice.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{AsyncBufReadExt, TryStreamExt};
use jiff::Timestamp;
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

/// The first pause before a stream that ended is opened again, and the longest: the pause
/// doubles while each new stream shows nothing new.
const REOPEN_PAUSE: Duration = Duration::from_millis(500);
const REOPEN_PAUSE_MAX: Duration = Duration::from_secs(4);

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
    /// The `pod/container`s the watch saw terminated: a stream of one of these that was opened
    /// after it ended has shown its whole log.
    ended: Arc<Ended>,
    /// Set when the Job has ended, so every container has: each stream then reads once more,
    /// at once, and stops.
    job_ended: tokio::sync::watch::Sender<bool>,
}

/// The `pod/container`s seen terminated, and a wake-up for the streams that wait to open again.
#[derive(Default)]
struct Ended {
    containers: Mutex<BTreeSet<String>>,
    seen: tokio::sync::Notify,
}

impl Ended {
    fn contains(&self, key: &str) -> bool {
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// Records that `key` has terminated and wakes the streams waiting to open again.
    fn insert(&self, key: String) {
        let new = self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        if new {
            self.seen.notify_waiters();
        }
    }
}

impl Logs {
    pub(super) fn new(redactor: Redactor) -> Self {
        Logs {
            redactor,
            tail: Tail::default(),
            streams: Mutex::new(JoinSet::new()),
            followed: Mutex::default(),
            ended: Arc::default(),
            job_ended: tokio::sync::watch::Sender::new(false),
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
            let key = format!("{pod_name}/{}", container.name);
            if container
                .state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some())
            {
                self.ended.insert(key.clone());
            }
            if !followed.insert(key) {
                continue;
            }
            streams.spawn(follow_log(
                pods.clone(),
                pod_name.clone(),
                container.name.clone(),
                self.redactor.clone(),
                Arc::clone(&self.tail),
                Arc::clone(&self.ended),
                self.job_ended.subscribe(),
            ));
        }
    }

    /// Lets the log streams deliver their last lines, then stops them.
    pub(super) async fn drain(&self) {
        // Why first: the watch that reported the containers' ends has stopped, and a stream
        // waiting to open again must learn that its container has ended.
        self.job_ended.send_replace(true);
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

/// Where a container's log stream stopped: the timestamp of the last line shown and how many
/// lines with that very timestamp were shown.
#[derive(Debug, Default)]
struct Resume {
    last: Option<Timestamp>,
    at_last: usize,
    /// Lines with the last timestamp the current stream has still to skip.
    skip: usize,
}

impl Resume {
    /// Starts a stream: the `sinceTime` to ask for, the last line's whole second (earlier
    /// lines are skipped by their timestamps, that second's by their count).
    fn start(&mut self) -> Option<Timestamp> {
        self.skip = self.at_last;
        self.last
            .and_then(|t| Timestamp::from_second(t.as_second()).ok())
    }

    /// The text of a line (`<RFC 3339 timestamp> <text>`) when it is new; `None` when it was
    /// shown before. A line without a timestamp is always new.
    fn take<'a>(&mut self, line: &'a str) -> Option<&'a str> {
        let Some((time, text)) = line
            .split_once(' ')
            .and_then(|(t, text)| Some((t.parse::<Timestamp>().ok()?, text)))
        else {
            return Some(line);
        };
        match self.last {
            Some(last) if time < last => None,
            Some(last) if time == last && self.skip > 0 => {
                self.skip -= 1;
                None
            }
            Some(last) if time == last => {
                self.at_last += 1;
                Some(text)
            }
            _ => {
                self.last = Some(time);
                self.at_last = 1;
                self.skip = 0;
                Some(text)
            }
        }
    }
}

/// How often a log that cannot be opened is tried before it is given up.
const OPEN_ATTEMPTS: u32 = 5;

/// Streams one container's log into the provider log and the tail, redacted; opens it again
/// from where it stopped when the stream ends before the container did.
async fn follow_log(
    pods: Api<Pod>,
    pod: String,
    container: String,
    redactor: Redactor,
    tail: Tail,
    ended: Arc<Ended>,
    mut job_ended: tokio::sync::watch::Receiver<bool>,
) {
    let prefix = format!("{pod}/{container}");
    let mut resume = Resume::default();
    let mut failed = 0;
    let mut pause = REOPEN_PAUSE;
    loop {
        let was_ended = *job_ended.borrow_and_update() || ended.contains(&prefix);
        let params = LogParams {
            container: Some(container.clone()),
            follow: true,
            timestamps: true,
            since_time: resume.start(),
            ..LogParams::default()
        };
        match pods.log_stream(&pod, &params).await {
            Ok(stream) => {
                failed = 0;
                let mut shown = false;
                let mut lines = stream.lines();
                loop {
                    match lines.try_next().await {
                        Ok(Some(line)) => {
                            let Some(text) = resume.take(&line) else {
                                continue;
                            };
                            shown = true;
                            let text = redactor.redact(text);
                            log::info!("[{prefix}] {text}");
                            let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                            tail.push_back(format!("  [{container}] {text}"));
                            while tail.len() > TAIL_LINES * 4 {
                                tail.pop_front();
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log::debug!("the log stream of {prefix} dropped: {e}");
                            break;
                        }
                    }
                }
                // Why only then: a stream opened after the container ended has read its log
                // to the end; one that ended earlier may have been cut.
                if was_ended {
                    return;
                }
                log::debug!(
                    "the log stream of {prefix} ended; opening it again from where it stopped"
                );
                // Why the pause grows while nothing new comes: a stream of a container that has
                // ended also ends, before the watch may have said so, and opening it again
                // then only asks the API server for nothing.
                pause = if shown {
                    REOPEN_PAUSE
                } else {
                    (pause * 2).min(REOPEN_PAUSE_MAX)
                };
            }
            Err(e) => {
                failed += 1;
                log::debug!(
                    "log of {prefix} not available (attempt {failed}): {}",
                    kube_text(&e)
                );
                if failed >= OPEN_ATTEMPTS {
                    return;
                }
                pause = (pause * 2).min(REOPEN_PAUSE_MAX);
            }
        }
        // Why the wake-ups: once the watch sees the container or the Job end, one last read
        // shows the rest of the log at once. Why enabled first: an end seen between the check
        // below and the wait must still wake it.
        let seen = ended.seen.notified();
        tokio::pin!(seen);
        seen.as_mut().enable();
        if !ended.contains(&prefix) {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = job_ended.changed() => {}
                () = seen => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_stream_shows_each_line_once() {
        let mut resume = Resume::default();
        assert_eq!(resume.start(), None);
        let first = [
            "2024-05-01T10:00:00.100Z one",
            "2024-05-01T10:00:01Z two",
            "2024-05-01T10:00:01Z three",
        ];
        let shown: Vec<_> = first.iter().filter_map(|l| resume.take(l)).collect();
        assert_eq!(shown, ["one", "two", "three"]);
        // The stream was cut; the next starts at the last line's second and repeats it.
        assert_eq!(
            resume.start(),
            Some("2024-05-01T10:00:01Z".parse().expect("time"))
        );
        let second = [
            "2024-05-01T10:00:01Z two",
            "2024-05-01T10:00:01Z three",
            "2024-05-01T10:00:01Z four",
            "2024-05-01T10:00:02.5Z five",
        ];
        let shown: Vec<_> = second.iter().filter_map(|l| resume.take(l)).collect();
        assert_eq!(shown, ["four", "five"]);
        // Sub-second timestamps: the floor of the second brings earlier lines back.
        assert_eq!(
            resume.start(),
            Some("2024-05-01T10:00:02Z".parse().expect("time"))
        );
        let third = [
            "2024-05-01T10:00:02.1Z before",
            "2024-05-01T10:00:02.5Z five",
            "2024-05-01T10:00:02.7Z six",
            "no timestamp at all",
        ];
        let shown: Vec<_> = third.iter().filter_map(|l| resume.take(l)).collect();
        assert_eq!(shown, ["six", "no timestamp at all"]);
    }
}
