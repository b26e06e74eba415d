//! One run on a cluster: create the inputs Secret and the Job (or re-attach to the Job of the
//! same inputs), watch it to its end while streaming every container's log, read the results,
//! and delete what the run created.
//!
//! The Job's name is a function of the run's inputs ([`super::naming::job_name`]), so finding it
//! is how an interrupted or crashed apply re-attaches: the next apply with the same inputs waits
//! for the run in flight, or reads the results of a finished one, and never starts a second.
//!
//! Waiting is watching: one watch on the Job, one on its pods; nothing polls. `Complete` and
//! `Failed` are final. A pod that cannot start (an image that cannot be pulled, a container that
//! cannot be configured, a pod that stays unschedulable, a failed checkout) ends the wait at
//! once with the reason and the recent Events, rather than at the timeout. A Job that vanishes
//! or is replaced is an error, never a success.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod, Secret as KubeSecret};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::cluster::Cluster;
use super::job::{self, BuildError};
use super::naming;
use super::redact::Redactor;
use super::{Finished, MANAGER, RunSpec, Secret};

/// How long a pod may stay unschedulable, with no cluster autoscaler scaling up for it, before
/// the run fails. Why not at once: the scheduler's first verdict often comes before a node
/// frees up; why not the timeout: an IaC apply should not hang for 30 minutes on a typo in a
/// node selector.
const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(10);

/// How many log lines a failure diagnostic shows.
const TAIL_LINES: usize = 40;

/// How many Events a failure diagnostic shows.
const EVENTS_SHOWN: usize = 10;

/// How long, after the Job's end, the log streams get to deliver their last lines.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// Container waiting reasons that do not resolve by waiting.
const STUCK_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Why the provider stopped waiting before the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// Terraform asked to stop (Ctrl-C).
    Stop,
    /// The resource's timeout passed.
    Timeout,
}

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The inputs do not make a valid Job.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A Kubernetes request failed.
    #[error("{what} failed: {}", kube_text(.source))]
    Kubernetes {
        /// What was being done, in words.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The run failed: the Job failed, or its pod could not run.
    #[error("Job {}/{} failed: {}", .0.namespace, .0.job, .0.reason)]
    Failed(Box<Failure>),
    /// The Job disappeared, or was replaced by another of the same name, during the wait.
    #[error("Job {namespace}/{job} {what} while the provider waited for it")]
    Vanished {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// `vanished` or `was replaced`.
        what: &'static str,
    },
    /// The provider stopped waiting; the Job goes on.
    #[error("stopped waiting for Job {namespace}/{job}")]
    Detached {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// Why.
        why: Interruption,
        /// The Job's `activeDeadlineSeconds`.
        deadline_seconds: i64,
    },
    /// A run of the same resource and inputs but other secret values is still running.
    #[error("another run of this container runner is still running: Job {namespace}/{job}")]
    OtherRun {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
    },
    /// The run succeeded but its results could not be read.
    #[error("the results of Job {namespace}/{job} cannot be read: {detail}")]
    Results {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// What is wrong.
        detail: String,
    },
}

/// A failed run, with what explains it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The namespace.
    pub(crate) namespace: String,
    /// The Job.
    pub(crate) job: String,
    /// The reason, in one line.
    pub(crate) reason: String,
    /// What the runner wrote to `ERROR_FILE`, redacted.
    pub(crate) error_file: Option<String>,
    /// The last log lines, redacted, each prefixed with its container.
    pub(crate) log_tail: Vec<String>,
    /// The recent Events of the Job and its pods, redacted.
    pub(crate) events: Vec<String>,
}

impl RunError {
    /// The long explanation for a diagnostic's detail: what happened, what it leaves, what to do.
    pub(crate) fn detail(&self) -> String {
        match self {
            RunError::Build(e) => format!("{e}."),
            RunError::Kubernetes { .. } => format!("{self}."),
            RunError::Failed(failure) => failure.detail(),
            RunError::Vanished { namespace, job, .. } => format!(
                "The provider was waiting for Job {namespace}/{job} when it was deleted (by \
                 someone else, or by its ttlSecondsAfterFinished) before its results were read. \
                 The run's outcome is unknown, so nothing is recorded. Apply again to run it \
                 again."
            ),
            RunError::Detached {
                namespace,
                job,
                why,
                deadline_seconds,
            } => {
                let why = match why {
                    Interruption::Stop => "Terraform asked the provider to stop".to_string(),
                    Interruption::Timeout => "the timeout passed".to_string(),
                };
                format!(
                    "The provider stopped waiting because {why}, and left the Job running: \
                     stopping an IaC tool in the middle of an apply is how state locks and \
                     half-made resources happen. The cluster stops it after its deadline \
                     (activeDeadlineSeconds = {deadline_seconds}).\n\nFollow it with:\n  \
                     kubectl -n {namespace} logs -f job/{job} --all-containers\n\nThe next \
                     apply with the same inputs re-attaches to this run and reads its results; \
                     it does not start another."
                )
            }
            RunError::OtherRun { namespace, job } => format!(
                "Job {namespace}/{job} runs this container runner with the same inputs but \
                 other secret values (an earlier apply that was interrupted). Two runs at once \
                 would work on the same state, so none is started. Wait for it to finish \
                 (kubectl -n {namespace} wait --for=condition=complete job/{job}) or delete it \
                 (kubectl -n {namespace} delete job/{job}), then apply again."
            ),
            RunError::Results { .. } => format!(
                "{self}. The runner image must write OUTPUTS_FILE and SECRET_OUTPUTS_FILE as \
                 flat JSON objects."
            ),
        }
    }
}

impl Failure {
    fn detail(&self) -> String {
        let mut text = format!("{}.", crate::capitalized(&self.reason));
        if let Some(error) = &self.error_file {
            text.push_str(&format!("\n\nERROR_FILE:\n{}", error.trim_end()));
        }
        if !self.log_tail.is_empty() {
            text.push_str(&format!(
                "\n\nThe last lines of the log:\n{}",
                self.log_tail.join("\n")
            ));
        }
        if !self.events.is_empty() {
            text.push_str(&format!("\n\nRecent events:\n{}", self.events.join("\n")));
        }
        text.push_str(&format!(
            "\n\nThe Job {}/{} and what it created were deleted; apply again to run again.",
            self.namespace, self.job
        ));
        text
    }
}

/// A Kubernetes error in one line: the API's status message when there is one.
fn kube_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => crate::error_chain(other),
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

fn kube_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Kubernetes { what, source }
}

/// Runs `spec` on `cluster`: starts the Job or re-attaches to the one of the same inputs, waits
/// for it unless `interrupted` resolves first, and returns the results.
pub(crate) async fn run(
    cluster: &Cluster,
    spec: &RunSpec,
    interrupted: impl Future<Output = Interruption>,
) -> Result<Finished, RunError> {
    let built = job::build(spec)?;
    let run = Run::new(cluster, spec, &built.name);
    let job = run.start_or_attach(&built).await?;
    let deadline_seconds = built
        .job
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .unwrap_or_default();
    let ended = {
        let interrupted = pin!(interrupted);
        run.wait(job, interrupted).await
    };
    match ended {
        Err(Ended::Interrupted(why)) => Err(RunError::Detached {
            namespace: run.namespace.clone(),
            job: run.name.clone(),
            why,
            deadline_seconds,
        }),
        Err(Ended::Error(e)) => Err(e),
        Ok(end) => {
            let outcome = run.outcome(end).await;
            run.clean_up().await;
            outcome
        }
    }
}

/// How a wait ended, when it did not reach the Job's end.
enum Ended {
    Interrupted(Interruption),
    Error(RunError),
}

/// Where a wait ended.
enum End {
    /// The Job reached `Complete`.
    Complete(Box<Job>),
    /// The Job reached `Failed`.
    Failed(Box<Job>),
    /// A pod cannot run; the reason says why.
    Stuck(String),
}

/// The log lines kept for a failure diagnostic.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// The state of one run.
struct Run<'a> {
    spec: &'a RunSpec,
    name: String,
    namespace: String,
    jobs: Api<Job>,
    pods: Api<Pod>,
    secrets: Api<KubeSecret>,
    events: Api<Event>,
    redactor: Redactor,
    tail: Tail,
    logs: Mutex<JoinSet<()>>,
    /// The `pod/container` logs followed so far. Why: a re-listing watch hands the same pods
    /// over again, and each container's log must be streamed once.
    followed: Mutex<BTreeSet<String>>,
}

impl<'a> Run<'a> {
    fn new(cluster: &Cluster, spec: &'a RunSpec, name: &str) -> Self {
        let namespace = spec.job.namespace.clone();
        let client = cluster.client.clone();
        Run {
            spec,
            name: name.to_string(),
            jobs: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client.clone(), &namespace),
            secrets: Api::namespaced(client.clone(), &namespace),
            events: Api::namespaced(client, &namespace),
            namespace,
            redactor: Redactor::new(spec.secret_values()),
            tail: Tail::default(),
            logs: Mutex::new(JoinSet::new()),
            followed: Mutex::default(),
        }
    }

    fn params() -> PostParams {
        PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        }
    }

    /// The Job of this run: found by name when an earlier apply started it, created otherwise.
    async fn start_or_attach(&self, built: &job::Built) -> Result<Job, RunError> {
        let inputs_name = naming::inputs_secret_name(&self.name);
        if let Some(found) = self
            .jobs
            .get_opt(&self.name)
            .await
            .map_err(kube_error(format!("looking for Job {}", self.name)))?
        {
            let inputs = self
                .secrets
                .get_opt(&inputs_name)
                .await
                .map_err(kube_error(format!("reading Secret {inputs_name}")))?;
            let digest = inputs
                .as_ref()
                .and_then(|s| s.data.as_ref()?.get(job::SECRETS_DIGEST_KEY).cloned());
            let same = digest.is_none_or(|d| d.0 == naming::secrets_digest(self.spec).as_bytes());
            if same {
                log::info!(
                    "re-attaching to Job {}/{}, started by an earlier apply with the same inputs",
                    self.namespace,
                    self.name
                );
                return Ok(found);
            }
            if terminal(&found).is_none() {
                return Err(RunError::OtherRun {
                    namespace: self.namespace.clone(),
                    job: self.name.clone(),
                });
            }
            log::info!(
                "Job {}/{} is a finished run of other secret values; deleting it",
                self.namespace,
                self.name
            );
            self.clean_up().await;
        }
        self.create_inputs(&built.inputs, &inputs_name).await?;
        let job = match self.jobs.create(&Self::params(), &built.job).await {
            Ok(job) => job,
            // Why: a concurrent apply of the same inputs created it first; wait for that one.
            Err(e) if is_status(&e, 409) => self
                .jobs
                .get(&self.name)
                .await
                .map_err(kube_error(format!("reading Job {}", self.name)))?,
            Err(e) => {
                self.delete_secret(&inputs_name).await;
                return Err(kube_error(format!("creating Job {}", self.name))(e));
            }
        };
        log::info!("created Job {}/{}", self.namespace, self.name);
        // Why after the Job: the owner needs its uid. From here the cluster deletes the inputs
        // with the Job, even if the provider never comes back.
        let owner = json!({ "metadata": { "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": self.name,
            "uid": job.metadata.uid, "controller": false, "blockOwnerDeletion": false,
        }]}});
        self.secrets
            .patch(
                &inputs_name,
                &PatchParams {
                    field_manager: Some(MANAGER.into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(owner),
            )
            .await
            .map_err(kube_error(format!(
                "making Job {} the owner of Secret {inputs_name}",
                self.name
            )))?;
        Ok(job)
    }

    /// Creates the inputs Secret; one left by a start that never made its Job is replaced.
    async fn create_inputs(&self, inputs: &KubeSecret, name: &str) -> Result<(), RunError> {
        match self.secrets.create(&Self::params(), inputs).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                self.delete_secret(name).await;
                self.secrets
                    .create(&Self::params(), inputs)
                    .await
                    .map(drop)
                    .map_err(kube_error(format!("creating Secret {name}")))
            }
            Err(e) => Err(kube_error(format!("creating Secret {name}"))(e)),
        }
    }

    /// Watches the Job and its pods until the Job ends or a pod cannot run.
    async fn wait(
        &self,
        job: Job,
        mut interrupted: std::pin::Pin<&mut impl Future<Output = Interruption>>,
    ) -> Result<End, Ended> {
        if terminal(&job).is_some() {
            return Ok(end_of(job));
        }
        let uid = job.metadata.uid.clone();
        let by_name = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let by_job = watcher::Config::default()
            .labels(&format!("batch.kubernetes.io/job-name={}", self.name));
        let mut job_events = pin!(watcher(self.jobs.clone(), by_name).default_backoff());
        let mut pod_events = pin!(watcher(self.pods.clone(), by_job).default_backoff());
        let mut listed = false;
        // Pod name → (when it has been unschedulable for too long, the scheduler's message).
        let mut unschedulable: BTreeMap<String, (Instant, String)> = BTreeMap::new();
        loop {
            let next_unschedulable = unschedulable.values().map(|(at, _)| *at).min();
            tokio::select! {
                why = &mut interrupted => return Err(Ended::Interrupted(why)),
                event = job_events.next() => match event {
                    Some(Ok(watcher::Event::Init)) => listed = false,
                    Some(Ok(watcher::Event::Apply(j) | watcher::Event::InitApply(j))) => {
                        listed = true;
                        if j.metadata.uid != uid {
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
                    Some(Err(e)) => self.watch_failed("Job", e)?,
                },
                event = pod_events.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                        self.follow_logs(&pod);
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        if let Some(reason) = stuck(&pod) {
                            return Ok(End::Stuck(format!("pod {name} cannot run: {reason}")));
                        }
                        if let Some(message) = unschedulable_message(&pod) {
                            let due = Instant::now() + UNSCHEDULABLE_GRACE;
                            let entry = unschedulable.entry(name).or_insert((due, String::new()));
                            entry.1 = message;
                        } else {
                            unschedulable.remove(&name);
                        }
                    }
                    Some(Ok(watcher::Event::Delete(pod))) => {
                        unschedulable.remove(&pod.metadata.name.unwrap_or_default());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => self.watch_failed("pods of Job", e)?,
                    None => return Err(self.vanished("vanished")),
                },
                () = sleep_until(next_unschedulable), if next_unschedulable.is_some() => {
                    let now = Instant::now();
                    let due: Vec<String> = unschedulable
                        .iter()
                        .filter(|(_, (at, _))| *at <= now)
                        .map(|(name, _)| name.clone())
                        .collect();
                    for name in due {
                        let Some((_, message)) = unschedulable.remove(&name) else {
                            continue;
                        };
                        if self.scale_up_triggered(&name).await {
                            log::info!("pod {name} waits for the cluster autoscaler to add a node");
                            continue;
                        }
                        let message = self.redactor.redact(&message).into_owned();
                        return Ok(End::Stuck(format!(
                            "pod {name} stayed unschedulable for {} s: {message}",
                            UNSCHEDULABLE_GRACE.as_secs()
                        )));
                    }
                }
            }
        }
    }

    fn vanished(&self, what: &'static str) -> Ended {
        Ended::Error(RunError::Vanished {
            namespace: self.namespace.clone(),
            job: self.name.clone(),
            what,
        })
    }

    /// A watch error: logged and retried with backoff, unless it cannot get better.
    fn watch_failed(&self, what: &str, error: watcher::Error) -> Result<(), Ended> {
        let source = match error {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => e,
            watcher::Error::WatchError(status) => kube::Error::Api(status),
            watcher::Error::NoResourceVersion => {
                log::warn!("watching the {what} {}: no resourceVersion", self.name);
                return Ok(());
            }
        };
        if is_status(&source, 403) || is_status(&source, 401) {
            return Err(Ended::Error(RunError::Kubernetes {
                what: format!("watching the {what} {}", self.name),
                source,
            }));
        }
        log::warn!(
            "watching the {what} {} failed, retrying: {}",
            self.name,
            kube_text(&source)
        );
        Ok(())
    }

    /// Starts following the log of each container of `pod` that has started.
    fn follow_logs(&self, pod: &Pod) {
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
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        for container in statuses.filter(|c| has_started(c)) {
            if !followed.insert(format!("{pod_name}/{}", container.name)) {
                continue;
            }
            logs.spawn(follow_log(
                self.pods.clone(),
                pod_name.clone(),
                container.name.clone(),
                self.redactor.clone(),
                Arc::clone(&self.tail),
            ));
        }
    }

    async fn scale_up_triggered(&self, pod: &str) -> bool {
        self.events_of(pod)
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("TriggeredScaleUp"))
    }

    async fn events_of(&self, object: &str) -> Vec<Event> {
        let params = ListParams::default().fields(&format!("involvedObject.name={object}"));
        match self.events.list(&params).await {
            Ok(list) => list.items,
            Err(e) => {
                log::warn!("listing the events of {object}: {}", kube_text(&e));
                Vec::new()
            }
        }
    }

    /// The recent Events of the Job and its pods, oldest first, redacted.
    async fn recent_events(&self) -> Vec<String> {
        let mut objects = vec![self.name.clone()];
        let params =
            ListParams::default().labels(&format!("batch.kubernetes.io/job-name={}", self.name));
        if let Ok(pods) = self.pods.list(&params).await {
            objects.extend(pods.items.into_iter().filter_map(|p| p.metadata.name));
        }
        let mut events = Vec::new();
        for object in objects {
            events.extend(self.events_of(&object).await);
        }
        events.sort_by_key(event_time);
        let shown = events.len().saturating_sub(EVENTS_SHOWN);
        events[shown..]
            .iter()
            .map(|e| {
                let text = format!(
                    "  {} {} {}: {}",
                    e.type_.as_deref().unwrap_or("Normal"),
                    e.involved_object.name.as_deref().unwrap_or(""),
                    e.reason.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("").trim()
                );
                self.redactor.redact(&text).into_owned()
            })
            .collect()
    }

    /// Lets the log streams deliver their last lines, then stops them.
    async fn drain_logs(&self) {
        let mut logs = std::mem::take(&mut *self.logs.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::time::timeout(LOG_DRAIN, async {
            while logs.join_next().await.is_some() {}
        })
        .await;
        logs.abort_all();
    }

    /// The run's outcome from where the wait ended.
    async fn outcome(&self, end: End) -> Result<Finished, RunError> {
        self.drain_logs().await;
        match end {
            End::Complete(job) => {
                let results = self.results().await?;
                let status = job.status.unwrap_or_default();
                let finished_at = status
                    .completion_time
                    .map(|t| t.0.to_string())
                    .unwrap_or_default();
                Ok(Finished {
                    job_name: self.name.clone(),
                    started_at: status
                        .start_time
                        .map(|t| t.0.to_string())
                        .unwrap_or_default(),
                    finished_at,
                    commit: results.commit,
                    outputs: results.outputs,
                    secret_outputs: results.secret_outputs,
                })
            }
            End::Failed(job) => {
                let reason = self.failure_reason(&job).await;
                Err(self.failure(reason).await)
            }
            End::Stuck(reason) => Err(self.failure(reason).await),
        }
    }

    async fn failure(&self, reason: String) -> RunError {
        let error_file = self
            .result_data()
            .await
            .ok()
            .flatten()
            .and_then(|data| text_of(&data, job::ERROR_FILE_NAME))
            .filter(|text| !text.trim().is_empty())
            .map(|text| self.redactor.redact(&text).into_owned());
        let log_tail = {
            let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            let skip = tail.len().saturating_sub(TAIL_LINES);
            tail.iter().skip(skip).cloned().collect()
        };
        RunError::Failed(Box::new(Failure {
            namespace: self.namespace.clone(),
            job: self.name.clone(),
            reason: self.redactor.redact(&reason).into_owned(),
            error_file,
            log_tail,
            events: self.recent_events().await,
        }))
    }

    /// Why a Job failed: its condition, and the main container's exit.
    async fn failure_reason(&self, job: &Job) -> String {
        let condition = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"));
        let reason = condition.and_then(|c| c.reason.clone()).unwrap_or_default();
        let mut text = match reason.as_str() {
            "DeadlineExceeded" => format!(
                "it ran longer than its deadline (activeDeadlineSeconds = {})",
                job.spec
                    .as_ref()
                    .and_then(|s| s.active_deadline_seconds)
                    .unwrap_or_default()
            ),
            _ => condition
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "the Job failed".into()),
        };
        let params =
            ListParams::default().labels(&format!("batch.kubernetes.io/job-name={}", self.name));
        if let Ok(pods) = self.pods.list(&params).await {
            for pod in pods.items {
                let status = pod.status.unwrap_or_default();
                let all = status
                    .init_container_statuses
                    .unwrap_or_default()
                    .into_iter()
                    .chain(status.container_statuses.unwrap_or_default());
                for container in all {
                    let Some(done) = container.state.and_then(|s| s.terminated) else {
                        continue;
                    };
                    if done.exit_code != 0 && container.name != job::COLLECT_CONTAINER {
                        text.push_str(&format!(
                            "; container {} exited with code {}",
                            container.name, done.exit_code
                        ));
                        if let Some(message) = done.message.filter(|m| !m.trim().is_empty()) {
                            text.push_str(&format!(": {}", message.trim()));
                        }
                    }
                }
            }
        }
        text
    }

    /// The result Secret's data, if the collector wrote it.
    async fn result_data(&self) -> Result<Option<BTreeMap<String, ByteString>>, RunError> {
        let name = naming::result_secret_name(&self.name);
        let found = self
            .secrets
            .get_opt(&name)
            .await
            .map_err(kube_error(format!("reading Secret {name}")))?;
        Ok(found.map(|s| s.data.unwrap_or_default()))
    }

    async fn results(&self) -> Result<Results, RunError> {
        let mut data = self.result_data().await?;
        if data.is_none() {
            // Why one more look: the collector writes the Secret as the pod stops, and a Job can
            // be marked complete a moment before that write is visible.
            tokio::time::sleep(Duration::from_secs(1)).await;
            data = self.result_data().await?;
        }
        let Some(data) = data else {
            return Err(RunError::Results {
                namespace: self.namespace.clone(),
                job: self.name.clone(),
                detail: format!(
                    "its result Secret {} was never written; the log of the collect container \
                     says why",
                    naming::result_secret_name(&self.name)
                ),
            });
        };
        read_results(&data).map_err(|detail| RunError::Results {
            namespace: self.namespace.clone(),
            job: self.name.clone(),
            detail,
        })
    }

    /// Deletes the Job (its pods with it) and the run's Secrets. Failures are logged: the
    /// ownerReferences and the Job's TTL clean up after them.
    async fn clean_up(&self) {
        match self
            .jobs
            .delete(&self.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => log::warn!(
                "deleting Job {}/{} failed, its ttlSecondsAfterFinished will: {}",
                self.namespace,
                self.name,
                kube_text(&e)
            ),
        }
        self.delete_secret(&naming::inputs_secret_name(&self.name))
            .await;
        self.delete_secret(&naming::result_secret_name(&self.name))
            .await;
    }

    async fn delete_secret(&self, name: &str) {
        match self.secrets.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => log::warn!(
                "deleting Secret {}/{name} failed: {}",
                self.namespace,
                kube_text(&e)
            ),
        }
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

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `Complete` or `Failed`, when the Job has reached it.
fn terminal(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|kind| {
        conditions
            .iter()
            .any(|c| c.type_ == *kind && c.status == "True")
    })
}

fn end_of(job: Job) -> End {
    match terminal(&job) {
        Some("Complete") => End::Complete(Box::new(job)),
        _ => End::Failed(Box::new(job)),
    }
}

fn has_started(container: &ContainerStatus) -> bool {
    container
        .state
        .as_ref()
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

/// Why a pod cannot run, if waiting will not help.
fn stuck(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let init = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    let main = status.container_statuses.as_deref().unwrap_or_default();
    for container in init.iter().chain(main) {
        let state = container.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref())
            && let Some(reason) = waiting.reason.as_deref()
            && STUCK_REASONS.contains(&reason)
        {
            let message = waiting.message.as_deref().unwrap_or("").trim();
            return Some(format!(
                "container {} is {reason}{}{message}",
                container.name,
                if message.is_empty() { "" } else { ": " }
            ));
        }
    }
    let prepare = init.iter().find(|c| c.name == job::PREPARE_CONTAINER)?;
    let done = prepare.state.as_ref()?.terminated.as_ref()?;
    (done.exit_code != 0).then(|| {
        let message = done.message.as_deref().unwrap_or("").trim();
        format!(
            "preparing the workspace (checking out the source, placing the files) failed with \
             code {}{}{message}",
            done.exit_code,
            if message.is_empty() { "" } else { ": " }
        )
    })
}

/// The scheduler's message, when the pod is unschedulable.
fn unschedulable_message(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let condition = conditions.iter().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    })?;
    Some(
        condition
            .message
            .clone()
            .unwrap_or_else(|| "no reason given".into()),
    )
}

fn event_time(event: &Event) -> String {
    let time = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0.to_string()));
    time.or_else(|| {
        event
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
    })
    .unwrap_or_default()
}

/// What a run's result Secret says.
#[derive(Debug, Default, PartialEq)]
struct Results {
    outputs: BTreeMap<String, String>,
    secret_outputs: BTreeMap<String, Secret>,
    commit: Option<String>,
}

fn text_of(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key)
        .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
}

/// Reads the result Secret's data. Outputs are flat JSON objects; a string value is taken as it
/// is, any other value as its JSON text (`3`, `true`, `["a"]`), since the attributes are maps
/// of strings.
fn read_results(data: &BTreeMap<String, ByteString>) -> Result<Results, String> {
    let outputs = |key: &str, file: &str| -> Result<BTreeMap<String, String>, String> {
        let Some(text) = text_of(data, key).filter(|t| !t.trim().is_empty()) else {
            return Ok(BTreeMap::new());
        };
        // Why no value in the message: secret outputs are read here too.
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{file} is not JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(format!("{file} is not a JSON object"));
        };
        Ok(map
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => (name, text),
                other => (name, other.to_string()),
            })
            .collect())
    };
    Ok(Results {
        outputs: outputs(job::OUTPUTS_FILE_NAME, "OUTPUTS_FILE")?,
        secret_outputs: outputs(job::SECRET_OUTPUTS_FILE_NAME, "SECRET_OUTPUTS_FILE")?
            .into_iter()
            .map(|(k, v)| (k, Secret(v)))
            .collect(),
        commit: text_of(data, job::COMMIT_FILE_NAME)
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, PodCondition, PodStatus,
    };

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn results_are_flat_maps_of_strings_and_bad_files_are_named_without_values() {
        let results = read_results(&data(&[
            (
                job::OUTPUTS_FILE_NAME,
                r#"{"bucket": "b-1", "count": 3, "tags": ["a"]}"#,
            ),
            (job::SECRET_OUTPUTS_FILE_NAME, r#"{"key": "s3cr3t"}"#),
            (job::COMMIT_FILE_NAME, "abc123\n"),
        ]))
        .unwrap();
        assert_eq!(results.outputs["bucket"], "b-1");
        assert_eq!(results.outputs["count"], "3");
        assert_eq!(results.outputs["tags"], r#"["a"]"#);
        assert_eq!(results.secret_outputs["key"], Secret("s3cr3t".into()));
        assert_eq!(results.commit.as_deref(), Some("abc123"));

        assert_eq!(read_results(&data(&[])).unwrap(), Results::default());
        let bad = read_results(&data(&[(job::SECRET_OUTPUTS_FILE_NAME, "s3cr3t")])).unwrap_err();
        assert!(bad.starts_with("SECRET_OUTPUTS_FILE is not JSON"), "{bad}");
        assert!(!bad.contains("s3cr3t"));
        let list = read_results(&data(&[(job::OUTPUTS_FILE_NAME, "[1]")])).unwrap_err();
        assert_eq!(list, "OUTPUTS_FILE is not a JSON object");
    }

    fn pod_with(init: Vec<ContainerStatus>, main: Vec<ContainerStatus>) -> Pod {
        Pod {
            status: Some(PodStatus {
                init_container_statuses: Some(init),
                container_statuses: Some(main),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn waiting(name: &str, reason: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some("Back-off pulling image".into()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }

    fn terminated(name: &str, code: i32) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    message: Some("fetching refs/heads/nope failed".into()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }

    #[test]
    fn pods_that_cannot_run_are_told_apart_from_pods_that_wait() {
        let pull = pod_with(vec![], vec![waiting("main", "ImagePullBackOff")]);
        assert_eq!(
            stuck(&pull).unwrap(),
            "container main is ImagePullBackOff: Back-off pulling image"
        );
        let creating = pod_with(vec![], vec![waiting("main", "ContainerCreating")]);
        assert_eq!(stuck(&creating), None);
        let checkout = pod_with(vec![terminated(job::PREPARE_CONTAINER, 1)], vec![]);
        assert!(
            stuck(&checkout)
                .unwrap()
                .contains("code 1: fetching refs/heads/nope failed")
        );
        let prepared = pod_with(vec![terminated(job::PREPARE_CONTAINER, 0)], vec![]);
        assert_eq!(stuck(&prepared), None);

        let unschedulable = Pod {
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some("0/1 nodes are available".into()),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        assert_eq!(
            unschedulable_message(&unschedulable).as_deref(),
            Some("0/1 nodes are available")
        );
        assert_eq!(unschedulable_message(&pull), None);
    }

    #[test]
    fn a_detached_run_says_how_to_follow_it_and_that_the_next_apply_re_attaches() {
        let error = RunError::Detached {
            namespace: "runs".into(),
            job: "s3-create-0123456789".into(),
            why: Interruption::Stop,
            deadline_seconds: 1860,
        };
        let detail = error.detail();
        assert!(
            detail.contains("kubectl -n runs logs -f job/s3-create-0123456789 --all-containers")
        );
        assert!(detail.contains("re-attaches"));
        assert!(detail.contains("activeDeadlineSeconds = 1860"));
    }
}
