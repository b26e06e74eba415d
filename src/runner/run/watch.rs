//! Waiting for a run's end: one watch on the Job, one on its pods and one on the warning Events
//! of its namespace; nothing polls. `Complete` and `Failed` are final. A pod that cannot run
//! ends the wait at once with the reason, rather than at the timeout: a pod the Job controller
//! cannot create (`FailedCreate`: a missing service account, an exceeded quota, a LimitRange or
//! admission denial), a pod that cannot mount its inputs, an image that cannot be pulled, a
//! container that cannot be configured, a pod that stays unschedulable, a failed checkout. A
//! Job that vanishes or is replaced is an error, never a success.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::{Pin, pin};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::Api;
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;

use super::diagnose::{self, UNSCHEDULABLE_GRACE};
use super::{Interruption, Run, RunError, is_status, kube_text, terminal};
use crate::runner::naming;

/// Where a wait ended.
pub(super) enum End {
    /// The Job reached `Complete`.
    Complete(Box<Job>),
    /// The Job reached `Failed`.
    Failed(Box<Job>),
    /// Its pod cannot run; the reason says why. Its main container never started.
    Stuck(String),
}

fn end_of(job: Job) -> End {
    match terminal(&job) {
        Some("Complete") => End::Complete(Box::new(job)),
        _ => End::Failed(Box::new(job)),
    }
}

/// The watches' backoff: 250 ms, doubling to at most 2 s. Why capped this low: after an outage
/// of the API server, a run's end must be noticed within seconds of its return, and a watch
/// is one request.
#[derive(Debug, Clone)]
pub(super) struct QuickBackoff {
    next: Duration,
}

impl QuickBackoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MOST: Duration = Duration::from_secs(2);

    pub(super) fn new() -> Self {
        QuickBackoff { next: Self::FIRST }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MOST);
        Some(now)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Waits until the Job `name` has finished, or is gone.
pub(super) async fn job_end(jobs: Api<Job>, name: &str) -> Result<(), RunError> {
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = pin!(watcher(jobs, by_name).backoff(QuickBackoff::new()));
    let mut listed = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed = false,
            Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job)) => {
                listed = true;
                if terminal(&job).is_some() {
                    return Ok(());
                }
            }
            Ok(watcher::Event::InitDone) if !listed => return Ok(()),
            Ok(watcher::Event::Delete(_)) => return Ok(()),
            Ok(watcher::Event::InitDone) => {}
            Err(e) => watch_failed(&format!("Job {name}"), e)?,
        }
    }
    Ok(())
}

/// A watch error: logged and retried with backoff, unless it cannot get better.
fn watch_failed(what: &str, error: watcher::Error) -> Result<(), RunError> {
    let source = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        watcher::Error::WatchError(status) => kube::Error::Api(status),
        watcher::Error::NoResourceVersion => {
            log::warn!("watching {what}: no resourceVersion");
            return Ok(());
        }
    };
    if is_status(&source, 403) || is_status(&source, 401) {
        return Err(RunError::Kubernetes {
            what: format!("watching {what}"),
            source,
        });
    }
    log::warn!("watching {what} failed, retrying: {}", kube_text(&source));
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One item of a watch: an event, a watch error, or the end of the stream.
type WatchItem<K> = Option<Result<watcher::Event<K>, watcher::Error>>;

/// What a wait does after an event: go on watching, or end with the run's end or an error.
type Next = ControlFlow<Result<End, RunError>>;

/// A watch error as a [`Next`]: go on (logged, retried) unless it cannot get better.
fn after_watch_error(what: &str, error: watcher::Error) -> Next {
    match watch_failed(what, error) {
        Ok(()) => ControlFlow::Continue(()),
        Err(error) => ControlFlow::Break(Err(error)),
    }
}

/// What a wait has seen so far of the Job, its pods and the warnings about them.
struct Seen {
    /// The Job's name.
    job: String,
    /// The Job's uid: a Job of the same name with another uid replaced it.
    uid: String,
    /// The run's inputs Secret, which a failed mount names.
    inputs: String,
    /// Whether the Job's watch has listed the Job since it last (re)started.
    listed: bool,
    /// Why it can be switched off: an identity that may not watch Events still gets its
    /// failures, from the pods' status.
    warnings_watched: bool,
    /// The uids of the Job's pods.
    pod_uids: BTreeSet<String>,
    /// Whether `main` has started: from then on a stuck signal is the Job's to judge.
    main_started: bool,
    /// Warnings about pods not seen yet, by the pod's uid.
    early_warnings: BTreeMap<String, Event>,
    /// Pod name → (when it has been unschedulable for too long, the scheduler's message).
    unschedulable: BTreeMap<String, (Instant, String)>,
}

impl Seen {
    /// Nothing seen yet of the Job `job` with `uid`.
    fn new(job: String, uid: String) -> Self {
        Seen {
            inputs: naming::inputs_secret_name(&job),
            job,
            uid,
            listed: false,
            warnings_watched: true,
            pod_uids: BTreeSet::new(),
            main_started: false,
            early_warnings: BTreeMap::new(),
            unschedulable: BTreeMap::new(),
        }
    }

    /// When the next unschedulable pod has been so for too long.
    fn next_unschedulable(&self) -> Option<Instant> {
        self.unschedulable.values().map(|(at, _)| *at).min()
    }
}

impl Run {
    /// Watches the Job and its pods until the Job ends or its pod cannot run, unless
    /// `interrupted` resolves first.
    pub(super) async fn wait(
        &mut self,
        job: Job,
        mut interrupted: Pin<&mut impl Future<Output = Interruption>>,
    ) -> Result<End, RunError> {
        let name = self.name();
        if terminal(&job).is_some() {
            return Ok(end_of(job));
        }
        let deadline_seconds = job
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .unwrap_or_default();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
        // Why the uid: an earlier Job of the same name may still have pods on their way out.
        let by_job =
            watcher::Config::default().labels(&format!("batch.kubernetes.io/controller-uid={uid}"));
        let warnings = watcher::Config::default().fields("type=Warning");
        let mut job_events = pin!(watcher(self.jobs.clone(), by_name).backoff(QuickBackoff::new()));
        let mut pod_events = pin!(watcher(self.pods.clone(), by_job).backoff(QuickBackoff::new()));
        let mut warning_events =
            pin!(watcher(self.events.clone(), warnings).backoff(QuickBackoff::new()));
        let mut seen = Seen::new(name, uid);
        loop {
            let next_unschedulable = seen.next_unschedulable();
            let next = tokio::select! {
                why = &mut interrupted => {
                    return Err(RunError::Detached {
                        namespace: self.namespace.clone(),
                        job: seen.job,
                        why,
                        deadline_seconds,
                    });
                }
                event = job_events.next() => self.job_event(&mut seen, event),
                event = pod_events.next() => self.pod_event(&mut seen, event),
                event = warning_events.next(), if seen.warnings_watched => {
                    self.warning_event(&mut seen, event)
                }
                () = sleep_until(next_unschedulable), if next_unschedulable.is_some() => {
                    self.unschedulable_too_long(&mut seen).await
                }
            };
            if let ControlFlow::Break(end) = next {
                return end;
            }
        }
    }

    /// An event of the Job's watch: its end, or its replacement or deletion.
    fn job_event(&self, seen: &mut Seen, event: WatchItem<Job>) -> Next {
        match event {
            Some(Ok(watcher::Event::Init)) => seen.listed = false,
            Some(Ok(watcher::Event::Apply(j) | watcher::Event::InitApply(j))) => {
                seen.listed = true;
                if j.metadata.uid.as_deref() != Some(seen.uid.as_str()) {
                    return ControlFlow::Break(Err(self.vanished("was replaced")));
                }
                if terminal(&j).is_some() {
                    return ControlFlow::Break(Ok(end_of(j)));
                }
            }
            Some(Ok(watcher::Event::InitDone)) if !seen.listed => {
                return ControlFlow::Break(Err(self.vanished("vanished")));
            }
            Some(Ok(watcher::Event::InitDone)) => {}
            Some(Ok(watcher::Event::Delete(_))) | None => {
                return ControlFlow::Break(Err(self.vanished("vanished")));
            }
            Some(Err(e)) => return after_watch_error(&format!("Job {}", seen.job), e),
        }
        ControlFlow::Continue(())
    }

    /// An event of the pods' watch: follows a pod's logs, and ends the wait when a pod cannot
    /// run (from its status, or from a warning that came before the pod).
    fn pod_event(&self, seen: &mut Seen, event: WatchItem<Pod>) -> Next {
        match event {
            Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                self.logs.follow(&self.pods, &pod);
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                let stuck = |reason| {
                    ControlFlow::Break(Ok(End::Stuck(format!(
                        "pod {pod_name} cannot run: {reason}"
                    ))))
                };
                if let Some(pod_uid) = pod.metadata.uid.clone() {
                    seen.main_started |= diagnose::main_started(&pod);
                    if let Some(warning) = seen.early_warnings.remove(&pod_uid)
                        && !seen.main_started
                        && let Some(reason) = diagnose::pod_warning(&warning, &seen.inputs)
                    {
                        return stuck(reason);
                    }
                    seen.pod_uids.insert(pod_uid);
                }
                // Why only before `main` started: what stops a pod from running is final then;
                // afterwards the Job's own condition tells the outcome.
                if let Some(reason) = diagnose::stuck(&pod)
                    && !diagnose::main_started(&pod)
                {
                    return stuck(reason);
                }
                if let Some(message) = diagnose::unschedulable_message(&pod) {
                    let due = Instant::now() + UNSCHEDULABLE_GRACE;
                    let entry = seen
                        .unschedulable
                        .entry(pod_name.clone())
                        .or_insert((due, String::new()));
                    entry.1 = message;
                } else {
                    seen.unschedulable.remove(&pod_name);
                }
            }
            Some(Ok(watcher::Event::Delete(pod))) => {
                seen.unschedulable
                    .remove(&pod.metadata.name.unwrap_or_default());
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return after_watch_error(&format!("the pods of Job {}", seen.job), e),
            None => return ControlFlow::Break(Err(self.vanished("vanished"))),
        }
        ControlFlow::Continue(())
    }

    /// An event of the warnings' watch: ends the wait on a warning that the Job's pod cannot
    /// be created or cannot run; keeps one about a pod not seen yet for when it is.
    fn warning_event(&self, seen: &mut Seen, event: WatchItem<Event>) -> Next {
        match event {
            Some(Ok(watcher::Event::Apply(warning) | watcher::Event::InitApply(warning))) => {
                let about = &warning.involved_object;
                let kind = about.kind.as_deref().unwrap_or_default();
                let about_uid = about.uid.clone().unwrap_or_default();
                if kind == "Job" && about_uid == seen.uid {
                    if let Some(reason) = diagnose::job_warning(&warning) {
                        return ControlFlow::Break(Ok(End::Stuck(reason)));
                    }
                } else if kind == "Pod" && seen.pod_uids.contains(&about_uid) && !seen.main_started
                {
                    if let Some(reason) = diagnose::pod_warning(&warning, &seen.inputs) {
                        let pod = about.name.clone().unwrap_or_default();
                        let reason = format!("pod {pod} cannot run: {reason}");
                        return ControlFlow::Break(Ok(End::Stuck(reason)));
                    }
                } else if kind == "Pod"
                    && about
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(&format!("{}-", seen.job)))
                    && diagnose::pod_warning(&warning, &seen.inputs).is_some()
                {
                    seen.early_warnings.insert(about_uid, warning);
                }
            }
            Some(Ok(_)) => {}
            // Why not fatal: the Events only speed up a failure the pod's status shows.
            Some(Err(e)) => {
                let what = format!("the Events of namespace {}", self.namespace);
                if let Err(error) = watch_failed(&what, e) {
                    log::warn!("{error}; failures are noticed from the pods' status only");
                    seen.warnings_watched = false;
                }
            }
            None => seen.warnings_watched = false,
        }
        ControlFlow::Continue(())
    }

    /// The pods that have been unschedulable for too long: the wait ends with the first one,
    /// unless the cluster autoscaler is adding a node for it.
    async fn unschedulable_too_long(&self, seen: &mut Seen) -> Next {
        let now = Instant::now();
        let due: Vec<String> = seen
            .unschedulable
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for pod in due {
            let Some((_, message)) = seen.unschedulable.remove(&pod) else {
                continue;
            };
            if self.scale_up_triggered(&pod).await {
                log::info!("pod {pod} waits for the cluster autoscaler to add a node");
                continue;
            }
            let message = self.redactor.redact(&message).into_owned();
            return ControlFlow::Break(Ok(End::Stuck(format!(
                "pod {pod} stayed unschedulable for {} s: {message}",
                UNSCHEDULABLE_GRACE.as_secs()
            ))));
        }
        ControlFlow::Continue(())
    }

    fn vanished(&self, what: &'static str) -> RunError {
        RunError::Vanished {
            namespace: self.namespace.clone(),
            job: self.name(),
            what,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_is_capped_and_resets() {
        let mut backoff = QuickBackoff::new();
        let delays: Vec<Duration> = (&mut backoff).take(6).collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert_eq!(delays[3], Duration::from_secs(2));
        assert_eq!(delays[5], Duration::from_secs(2));
        backoff.reset();
        assert_eq!(backoff.next(), Some(Duration::from_millis(250)));
    }
}
