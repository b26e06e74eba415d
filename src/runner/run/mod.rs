//! The life of a container runner's runs on a cluster: one run at a time per resource, a run's
//! results kept until the state holds them, and what the cluster says about runs the state has
//! not recorded.
//!
//! A run is one Job. Its name is a function of the transition it makes: the run's non-secret
//! inputs, its action and the run before it (the Job whose results the state holds), plus an
//! attempt number ([`super::naming::job_name`]). So an apply that was interrupted or killed
//! finds the very run it started on the next apply and re-attaches to it, and a later
//! transition with the same inputs (v1, v2, v1 again) is a new run, never the old one's
//! results.
//!
//! The model, operation by operation (the provider records what it is told in the state):
//!
//! - [`run`] (create, update and delete): look at every Job of the resource; wait for any
//!   unfinished one that is not this transition's run; delete finished ones, whose results the
//!   state holds or which a later run superseded; then re-attach to this transition's run, or
//!   start it (a failed run, or one with other secret values, makes the next attempt). Wait for
//!   its end. A completed run's Job and result Secret stay until a later operation finds them
//!   recorded in its prior state, so a state write that never happens loses nothing. A run
//!   that could not start (its pod could not be created, its image pulled, its source checked
//!   out) is deleted at once: nothing ran. Any other failure or interruption hands the run
//!   back, for the state to record as pending.
//! - [`look`] (read): runs nothing. Deletes the Job whose results the state holds; reports a
//!   destroy run that completed from this state (the resource is gone), or the newest run
//!   that started from this state and is not recorded (pending: the next plan runs again),
//!   or adopts the results of a pending run of the state's own inputs.
//!
//! The parts: [`start`] (one at a time, re-attach, sweep, create), [`watch`] (to the Job's
//! end), [`diagnose`] (why a pod cannot run, failure texts), [`logs`] (the containers' log
//! lines), [`results`] (the result Secret).

mod diagnose;
mod logs;
mod results;
mod start;
mod watch;
mod write_only;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod, Secret as KubeSecret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cluster::ClusterClient;
use super::job::BuildError;
use super::naming;
use super::redact::Redactor;
use super::{Action, Finished, MANAGER, RunSpec};
pub(crate) use diagnose::Failure;

/// How long a completed destroy run's Job stays. Why not at once: a `terraform` that is killed
/// before it writes the state finds the run again within this time instead of destroying twice;
/// why not until a later operation, as for creates: no operation follows a destroy.
const DESTROYED_TTL_SECONDS: i32 = 600;

/// The Job annotation that marks a completed run whose results cannot be read, so that later
/// operations take it for a failed run.
const UNREADABLE_ANNOTATION: &str = "terraform-provider-humanitec/results";

/// A run as the state records it: enough to find its Job again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    /// The Job's name.
    pub(crate) job: String,
    /// Its namespace.
    pub(crate) namespace: String,
    /// The action it runs.
    pub(crate) action: Action,
}

/// What the state knows of a resource's runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Known {
    /// The run whose results the state holds (`last_run`).
    pub(crate) recorded: Option<RunRecord>,
    /// A run an earlier operation started whose outcome the state does not hold.
    pub(crate) pending: Option<RunRecord>,
}

/// What one [`run`] did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// The run this operation started or re-attached to, while it exists in the cluster: the
    /// state records it as pending when the operation did not succeed.
    pub(crate) run: Option<RunRecord>,
    /// Its results, or why there are none.
    pub(crate) result: Result<Finished, RunError>,
    /// What the user should know even when it succeeded (other runs it waited for).
    pub(crate) notes: Vec<String>,
}

/// What [`look`] found beyond the state.
#[derive(Debug, PartialEq)]
pub(crate) enum Looked {
    /// Nothing: the state is right.
    Recorded,
    /// A run started from this state whose outcome is not recorded: running, finished, or
    /// gone from the cluster.
    Pending(RunRecord),
    /// A destroy run that started from this state completed: the resource is gone.
    Destroyed(RunRecord),
    /// The pending run of the state's own inputs completed; these are its results.
    Adopted(RunRecord, Finished),
}

/// Why the provider stopped waiting before the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// Terraform asked to stop (Ctrl-C).
    Stop,
    /// The resource's timeout passed.
    Timeout,
}

impl Interruption {
    fn words(self) -> &'static str {
        match self {
            Interruption::Stop => "Terraform asked the provider to stop",
            Interruption::Timeout => "the timeout passed",
        }
    }
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
    /// The run ran and failed.
    #[error("Job {}/{} failed: {}", .0.namespace, .0.job, .0.reason)]
    Failed(Box<Failure>),
    /// The run could not start; nothing ran and its Job was deleted.
    #[error("Job {}/{} could not start: {}", .0.namespace, .0.job, .0.reason)]
    NotStarted(Box<Failure>),
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
    /// The provider stopped waiting for the run; the Job goes on.
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
    /// The provider stopped waiting for another run of the resource to end; nothing started.
    #[error("stopped waiting for Job {namespace}/{job}, an earlier run of this container runner")]
    Waiting {
        /// The namespace.
        namespace: String,
        /// The other run's Job.
        job: String,
        /// Why.
        why: Interruption,
    },
    /// The run completed but its results cannot be read; it counts as a failed run.
    #[error("the results of Job {namespace}/{job} cannot be read: {detail}")]
    Results {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// What is wrong.
        detail: String,
    },
    /// The run completed, but reading its results got no answer.
    #[error("Job {namespace}/{job} completed, but its results could not be read: {}", kube_text(.source))]
    ResultsUnread {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The Secret that keeps the resource's write-only values is gone.
    #[error("the Secret {namespace}/{secret} with this resource's write-only values is gone")]
    WriteOnlyGone {
        /// The namespace.
        namespace: String,
        /// The Secret.
        secret: String,
    },
    /// Every attempt name of this transition is taken by a failed run.
    #[error("too many failed attempts at this run in namespace {namespace}")]
    Attempts {
        /// The namespace.
        namespace: String,
    },
}

impl RunError {
    /// The long explanation for a diagnostic's detail: what happened, what it leaves, what to do.
    pub(crate) fn detail(&self) -> String {
        match self {
            RunError::Build(e) => format!("{e}."),
            RunError::Kubernetes { .. } => {
                format!("{self}. A run that was started goes on; the next apply re-attaches to it.")
            }
            RunError::Failed(failure) => failure.detail(true),
            RunError::NotStarted(failure) => failure.detail(false),
            RunError::Vanished { namespace, job, .. } => format!(
                "The provider was waiting for Job {namespace}/{job} when it was deleted (by \
                 someone else, or by its ttlSecondsAfterFinished) before its results were read. \
                 The run's outcome is unknown, so the next apply runs it again."
            ),
            RunError::Detached {
                namespace,
                job,
                why,
                deadline_seconds,
            } => format!(
                "The provider stopped waiting because {}, and left the Job running: stopping \
                 an IaC tool in the middle of an apply is how state locks and half-made \
                 resources happen. The cluster stops it after its deadline \
                 (activeDeadlineSeconds = {deadline_seconds}).\n\nFollow it with:\n  kubectl -n \
                 {namespace} logs -f job/{job} --all-containers\n\nThe next operation on this \
                 resource waits for this run to end, or re-attaches to it when it is the run \
                 it would start; it never runs a second one beside it.",
                why.words()
            ),
            RunError::Waiting {
                namespace,
                job,
                why,
            } => format!(
                "Job {namespace}/{job}, an earlier run of this container runner, is still \
                 running, and two runs at once would work on the same IaC state; the provider \
                 waited for it to end until {}. Nothing was started. Follow it with kubectl -n \
                 {namespace} logs -f job/{job} --all-containers, and apply again once it has \
                 ended (or delete it: kubectl -n {namespace} delete job/{job}).",
                why.words()
            ),
            RunError::Results { namespace, job, .. } => format!(
                "{self}. The run counts as failed. The Job {namespace}/{job} is kept until the \
                 next operation, for inspection (kubectl -n {namespace} logs job/{job} \
                 --all-containers)."
            ),
            RunError::ResultsUnread { .. } => format!(
                "{self}. The run itself succeeded and its Job keeps its results: the next \
                 operation on this resource re-attaches to it and reads them, without running \
                 it again."
            ),
            RunError::WriteOnlyGone { .. } => format!(
                "{self}, so this run would lack them; nothing was started. Apply the \
                 configuration with the write-only values and a new `_wo_version` (which runs \
                 ACTION=create and keeps them again), then run this again."
            ),
            RunError::Attempts { .. } => format!(
                "{self}. Delete the failed Jobs of this container runner (kubectl -n <namespace> \
                 get jobs) and apply again."
            ),
        }
    }
}

/// A Kubernetes error in one line: the API's status message when there is one.
fn kube_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => crate::text::error_chain(other),
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Whether a failed request may succeed when tried again: no answer, or the server's own
/// trouble.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

fn kube_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Kubernetes { what, source }
}

/// Tries a request again while it fails transiently, at most `tries` times, 0.25 s, 0.5 s, 1 s,
/// 2 s … apart.
async fn retried<T, F, Fut>(tries: u32, mut request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(250);
    let mut tried = 1;
    loop {
        match request().await {
            Err(e) if tried < tries && is_transient(&e) => {
                log::debug!(
                    "request failed, trying again in {delay:?}: {}",
                    kube_text(&e)
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                tried += 1;
            }
            other => return other,
        }
    }
}

/// Runs `spec` on `cluster`, as described in the module docs: waits for other runs of the
/// resource, starts this transition's run or re-attaches to it, and waits for its end unless
/// `interrupted` resolves first. `spec.previous_run` is taken from `known`.
pub(crate) async fn run(
    cluster: &ClusterClient,
    spec: &RunSpec,
    known: &Known,
    interrupted: impl Future<Output = Interruption>,
) -> Ran {
    let spec = RunSpec {
        previous_run: known.recorded.as_ref().map(|r| r.job.clone()),
        attempt: 0,
        ..spec.clone()
    };
    let mut run = Run::new(cluster, spec, known);
    let not_started = |error| Ran {
        run: None,
        result: Err(error),
        notes: Vec::new(),
    };
    // Why before the run: an interrupted create's destroy run needs the values too.
    let write_only = match (run.spec.action, run.spec.write_only.values.clone()) {
        (Action::Create, Some(values)) if !values.is_empty() => {
            if let Err(error) = run.keep_write_only(&values).await {
                return not_started(error);
            }
            Some(values)
        }
        (Action::Destroy, _) if !run.spec.write_only.versions.is_empty() => {
            match run.kept_write_only().await {
                Ok(values) => Some(values),
                Err(error) => return not_started(error),
            }
        }
        _ => None,
    };
    if let Some(values) = &write_only {
        run.spec = run.spec.clone().with_write_only(values);
        run.redactor = Redactor::new(run.spec.secret_values());
        run.logs = logs::Logs::new(run.redactor.clone());
    }
    let mut interrupted = pin!(interrupted);
    let mut notes = Vec::new();
    let job = match run.start(interrupted.as_mut(), &mut notes).await {
        Ok(job) => job,
        Err(error) => {
            return Ran {
                run: None,
                result: Err(error),
                notes,
            };
        }
    };
    let record = run.record();
    let end = run.wait(job, interrupted.as_mut()).await;
    let (kept, result) = run.outcome(end).await;
    // Why only after success: until then a later destroy may still need the values.
    if result.is_ok() && (run.spec.action == Action::Destroy || write_only.is_none()) {
        run.forget_write_only().await;
    }
    Ran {
        run: kept.then_some(record),
        result,
        notes,
    }
}

/// Looks at the runs of the resource whose state has the inputs of `spec` (its `ACTION=create`
/// run) and whose runs `known` records; runs nothing. See the module docs.
pub(crate) async fn look(
    cluster: &ClusterClient,
    spec: &RunSpec,
    known: &Known,
) -> Result<Looked, RunError> {
    let spec = RunSpec {
        action: Action::Create,
        previous_run: known.recorded.as_ref().map(|r| r.job.clone()),
        attempt: 0,
        ..spec.clone()
    };
    let run = Run::new(cluster, spec, known);
    run.look().await
}

/// One run, or one look at a resource's runs: the clients and what the run knows.
struct Run {
    spec: RunSpec,
    known: Known,
    /// The namespace of this run's Job.
    namespace: String,
    /// Every namespace the resource's runs may be in: this run's, the recorded and the
    /// pending run's.
    namespaces: BTreeSet<String>,
    client: kube::Client,
    jobs: Api<Job>,
    pods: Api<Pod>,
    secrets: Api<KubeSecret>,
    events: Api<Event>,
    redactor: Redactor,
    logs: logs::Logs,
}

impl Run {
    fn new(cluster: &ClusterClient, spec: RunSpec, known: &Known) -> Self {
        let namespace = spec.job.namespace.clone();
        let client = cluster.client.clone();
        let mut namespaces = BTreeSet::from([namespace.clone()]);
        for record in known.recorded.iter().chain(&known.pending) {
            namespaces.insert(record.namespace.clone());
        }
        let redactor = Redactor::new(spec.secret_values());
        Run {
            jobs: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client.clone(), &namespace),
            secrets: Api::namespaced(client.clone(), &namespace),
            events: Api::namespaced(client.clone(), &namespace),
            logs: logs::Logs::new(redactor.clone()),
            redactor,
            client,
            namespaces,
            namespace,
            known: known.clone(),
            spec,
        }
    }

    /// This run's Job name.
    fn name(&self) -> String {
        naming::job_name(&self.spec)
    }

    /// This run, as the state records it.
    fn record(&self) -> RunRecord {
        RunRecord {
            job: self.name(),
            namespace: self.namespace.clone(),
            action: self.spec.action,
        }
    }

    /// Where a wait ended, as the run's outcome: whether the run is kept for the state to
    /// record, and its results or why there are none.
    async fn outcome(
        &mut self,
        end: Result<watch::End, RunError>,
    ) -> (bool, Result<Finished, RunError>) {
        let name = self.name();
        let end = match end {
            Ok(end) => end,
            Err(error) => return (true, Err(error)),
        };
        match end {
            watch::End::Complete(job) => self.completed(&job, name).await,
            watch::End::Failed(job) => {
                self.logs.drain().await;
                let reason = self.failure_reason(&job).await;
                let failure = self.failure(reason).await;
                self.delete_secret(&naming::inputs_secret_name(&name)).await;
                (true, Err(RunError::Failed(Box::new(failure))))
            }
            watch::End::Stuck(reason) => {
                self.logs.drain().await;
                let failure = self.failure(reason).await;
                // Why delete: nothing ran, and a Job left behind would start its pod later,
                // when whatever stopped it (an image, a service account) appears.
                self.remove(&self.namespace.clone(), &name).await;
                (false, Err(RunError::NotStarted(Box::new(failure))))
            }
        }
    }

    /// The outcome of a completed run: its results, read while the log streams deliver their
    /// last lines.
    async fn completed(&mut self, job: &Job, name: String) -> (bool, Result<Finished, RunError>) {
        // Why the results beside the drain: the log streams' last reads and the result
        // Secret's read are independent requests, and the apply waits for the slower only.
        let (_, results) = tokio::join!(self.logs.drain(), self.results(job));
        match results {
            Ok(finished) => {
                self.delete_secret(&naming::inputs_secret_name(&name)).await;
                if self.spec.action == Action::Destroy {
                    self.expire(&name).await;
                }
                (true, Ok(finished))
            }
            Err(results::Unread::Transient(source)) => (
                true,
                Err(RunError::ResultsUnread {
                    namespace: self.namespace.clone(),
                    job: name,
                    source,
                }),
            ),
            Err(results::Unread::Unreadable(detail)) => {
                self.mark_unreadable(&name).await;
                self.delete_secret(&naming::inputs_secret_name(&name)).await;
                let error = RunError::Results {
                    namespace: self.namespace.clone(),
                    job: name,
                    detail,
                };
                (true, Err(error))
            }
        }
    }

    /// Deletes a finished run: its Job (and so its pods) and both its Secrets. Failures are
    /// logged; the next operation on the resource, or the Job's TTL, cleans up after them.
    async fn remove(&self, namespace: &str, job: &str) {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams::background();
        match retried(3, || jobs.delete(job, &params)).await {
            Ok(_) => log::info!("deleted Job {namespace}/{job}"),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => log::warn!(
                "deleting Job {namespace}/{job} failed; the next operation on this resource \
                 tries again: {}",
                kube_text(&e)
            ),
        }
        let secrets: Api<KubeSecret> = Api::namespaced(self.client.clone(), namespace);
        for name in [
            naming::inputs_secret_name(job),
            naming::result_secret_name(job),
        ] {
            delete_secret_in(&secrets, namespace, &name).await;
        }
    }

    async fn delete_secret(&self, name: &str) {
        delete_secret_in(&self.secrets, &self.namespace, name).await;
    }

    /// Shortens a completed destroy run's time to live to [`DESTROYED_TTL_SECONDS`].
    async fn expire(&self, job: &str) {
        self.expire_in(&self.namespace, job).await;
    }

    /// [`Run::expire`] for a Job in `namespace`.
    async fn expire_in(&self, namespace: &str, job: &str) {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let patch = json!({"spec": {"ttlSecondsAfterFinished": DESTROYED_TTL_SECONDS}});
        let (params, patch) = (patch_params(), Patch::Merge(&patch));
        if let Err(e) = retried(3, || jobs.patch(job, &params, &patch)).await {
            log::warn!(
                "shortening the time to live of Job {namespace}/{job} failed; it goes after a \
                 day: {}",
                kube_text(&e)
            );
        }
    }

    /// Marks a completed run whose results cannot be read, so that later operations take it for
    /// a failed run; deletes it when the mark cannot be set.
    async fn mark_unreadable(&self, job: &str) {
        let patch = json!({"metadata": {"annotations": {UNREADABLE_ANNOTATION: "unreadable"}}});
        let (params, patch) = (patch_params(), Patch::Merge(&patch));
        if let Err(e) = retried(3, || self.jobs.patch(job, &params, &patch)).await {
            log::warn!(
                "marking Job {}/{job} as failed failed ({}); deleting it",
                self.namespace,
                kube_text(&e)
            );
            self.remove(&self.namespace.clone(), job).await;
        }
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    }
}

async fn delete_secret_in(secrets: &Api<KubeSecret>, namespace: &str, name: &str) {
    let params = DeleteParams::background();
    match retried(3, || secrets.delete(name, &params)).await {
        Ok(_) => {}
        Err(e) if is_status(&e, 404) => {}
        Err(e) => log::warn!(
            "deleting Secret {namespace}/{name} failed; the next operation on this resource \
             tries again: {}",
            kube_text(&e)
        ),
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

/// Whether a finished Job counts as a failed run: it failed, or its results could not be read.
fn failed(job: &Job) -> bool {
    terminal(job) == Some("Failed") || annotation(job, UNREADABLE_ANNOTATION).is_some()
}

fn annotation<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
    job.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// A Job of the resource as a record.
fn record_of(job: &Job) -> RunRecord {
    let label = job
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(naming::ACTION_LABEL))
        .and_then(|a| Action::parse(a));
    RunRecord {
        job: job.metadata.name.clone().unwrap_or_default(),
        namespace: job.metadata.namespace.clone().unwrap_or_default(),
        action: label.unwrap_or(Action::Create),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_run_says_how_to_follow_it_and_what_the_next_operation_does() {
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

    #[test]
    fn records_round_trip_through_json() {
        let record = RunRecord {
            job: "s3-destroy-0123456789".into(),
            namespace: "runs".into(),
            action: Action::Destroy,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["action"], "destroy");
        assert_eq!(serde_json::from_value::<RunRecord>(json).unwrap(), record);
    }

    #[test]
    fn a_completed_job_marked_unreadable_counts_as_failed() {
        use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
        let mut job = Job {
            status: Some(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: "Complete".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Job::default()
        };
        assert!(!failed(&job));
        job.metadata.annotations =
            Some([(UNREADABLE_ANNOTATION.to_string(), "unreadable".to_string())].into());
        assert!(failed(&job));
    }
}
