//! Waiting for a run's end: one watch on the Job, one on its pods and one on the warning Events
//! of its namespace; nothing polls. `Complete` and `Failed` are final. A pod that cannot run
//! ends the wait at once with the reason, rather than at the timeout: a pod the Job controller
//! cannot create (`FailedCreate`: a missing service account, an exceeded quota, a LimitRange or
//! admission denial), a pod that cannot mount its inputs, an image that cannot be pulled, a
//! container that cannot be configured, a pod that stays unschedulable, a failed checkout. A
//! Job that vanishes or is replaced is an error, never a success.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
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
        let inputs = naming::inputs_secret_name(&name);
        let mut listed = false;
        // Why it can be switched off: an identity that may not watch Events still gets its
        // failures, from the pods' status.
        let mut warnings_watched = true;
        let mut pod_uids: BTreeSet<String> = BTreeSet::new();
        // Whether `main` has started: from then on a stuck signal is the Job's to judge.
        let mut main_started = false;
        // Warnings about pods not seen yet, by the pod's uid.
        let mut early_warnings: BTreeMap<String, Event> = BTreeMap::new();
        // Pod name → (when it has been unschedulable for too long, the scheduler's message).
        let mut unschedulable: BTreeMap<String, (Instant, String)> = BTreeMap::new();
        let detached = |why| RunError::Detached {
            namespace: self.namespace.clone(),
            job: name.clone(),
            why,
            deadline_seconds,
        };
        loop {
            let next_unschedulable = unschedulable.values().map(|(at, _)| *at).min();
            tokio::select! {
                why = &mut interrupted => return Err(detached(why)),
                event = job_events.next() => match event {
                    Some(Ok(watcher::Event::Init)) => listed = false,
                    Some(Ok(watcher::Event::Apply(j) | watcher::Event::InitApply(j))) => {
                        listed = true;
                        if j.metadata.uid.as_deref() != Some(uid.as_str()) {
                            return Err(self.vanished("was replaced"));
                        }
                        if terminal(&j).is_some() {
                            return Ok(end_of(j));
                        }
                    }
                    Some(Ok(watcher::Event::InitDone)) if !listed => {
                        return Err(self.vanished("vanished"));
                    }
                    Some(Ok(watcher::Event::InitDone)) => {}
                    Some(Ok(watcher::Event::Delete(_))) | None => {
                        return Err(self.vanished("vanished"));
                    }
                    Some(Err(e)) => watch_failed(&format!("Job {name}"), e)?,
                },
                event = pod_events.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                        self.logs.follow(&self.pods, &pod);
                        let pod_name = pod.metadata.name.clone().unwrap_or_default();
                        if let Some(pod_uid) = pod.metadata.uid.clone() {
                            main_started |= diagnose::main_started(&pod);
                            if let Some(warning) = early_warnings.remove(&pod_uid)
                                && !main_started
                                && let Some(reason) = diagnose::pod_warning(&warning, &inputs)
                            {
                                return Ok(End::Stuck(format!("pod {pod_name} cannot run: {reason}")));
                            }
                            pod_uids.insert(pod_uid);
                        }
                        // Why only before `main` started: what stops a pod from running is
                        // final then; afterwards the Job's own condition tells the outcome.
                        if let Some(reason) = diagnose::stuck(&pod)
                            && !diagnose::main_started(&pod)
                        {
                            return Ok(End::Stuck(format!("pod {pod_name} cannot run: {reason}")));
                        }
                        if let Some(message) = diagnose::unschedulable_message(&pod) {
                            let due = Instant::now() + UNSCHEDULABLE_GRACE;
                            let entry = unschedulable.entry(pod_name).or_insert((due, String::new()));
                            entry.1 = message;
                        } else {
                            unschedulable.remove(&pod_name);
                        }
                    }
                    Some(Ok(watcher::Event::Delete(pod))) => {
                        unschedulable.remove(&pod.metadata.name.unwrap_or_default());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => watch_failed(&format!("the pods of Job {name}"), e)?,
                    None => return Err(self.vanished("vanished")),
                },
                event = warning_events.next(), if warnings_watched => match event {
                    Some(Ok(watcher::Event::Apply(warning) | watcher::Event::InitApply(warning))) => {
                        let about = &warning.involved_object;
                        let kind = about.kind.as_deref().unwrap_or_default();
                        let about_uid = about.uid.clone().unwrap_or_default();
                        if kind == "Job" && about_uid == uid {
                            if let Some(reason) = diagnose::job_warning(&warning) {
                                return Ok(End::Stuck(reason));
                            }
                        } else if kind == "Pod" && pod_uids.contains(&about_uid) && !main_started {
                            if let Some(reason) = diagnose::pod_warning(&warning, &inputs) {
                                let pod = about.name.clone().unwrap_or_default();
                                return Ok(End::Stuck(format!("pod {pod} cannot run: {reason}")));
                            }
                        } else if kind == "Pod"
                            && about.name.as_deref().is_some_and(|n| n.starts_with(&format!("{name}-")))
                            && diagnose::pod_warning(&warning, &inputs).is_some()
                        {
                            early_warnings.insert(about_uid, warning);
                        }
                    }
                    Some(Ok(_)) => {}
                    // Why not fatal: the Events only speed up a failure the pod's status shows.
                    Some(Err(e)) => {
                        let what = format!("the Events of namespace {}", self.namespace);
                        if let Err(error) = watch_failed(&what, e) {
                            log::warn!("{error}; failures are noticed from the pods' status only");
                            warnings_watched = false;
                        }
                    }
                    None => warnings_watched = false,
                },
                () = sleep_until(next_unschedulable), if next_unschedulable.is_some() => {
                    let now = Instant::now();
                    let due: Vec<String> = unschedulable
                        .iter()
                        .filter(|(_, (at, _))| *at <= now)
                        .map(|(name, _)| name.clone())
                        .collect();
                    for pod in due {
                        let Some((_, message)) = unschedulable.remove(&pod) else {
                            continue;
                        };
                        if self.scale_up_triggered(&pod).await {
                            log::info!("pod {pod} waits for the cluster autoscaler to add a node");
                            continue;
                        }
                        let message = self.redactor.redact(&message).into_owned();
                        return Ok(End::Stuck(format!(
                            "pod {pod} stayed unschedulable for {} s: {message}",
                            UNSCHEDULABLE_GRACE.as_secs()
                        )));
                    }
                }
            }
        }
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
