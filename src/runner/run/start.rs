//! Starting a run: one run of a resource at a time, re-attaching to the run this operation
//! would start, deleting finished runs the state no longer needs, and creating the inputs
//! Secret and the Job so that an unanswered request never leaves a Job without its inputs.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Api, ListParams, Patch, PostParams};
use serde_json::json;

use super::{
    Interruption, Looked, Run, RunError, annotation, failed, is_status, is_transient, kube_error,
    kube_text, patch_params, record_of, retried, terminal,
};
use crate::runner::contract::SECRETS_DIGEST_KEY;
use crate::runner::job;
use crate::runner::{MANAGER, naming};

/// How many attempts at one transition the provider makes before it gives up. Why a bound:
/// each failed attempt stays until the next operation deletes it, and a loop must end.
const MAX_ATTEMPTS: u32 = 20;

/// How many times a request that got no answer is sent again.
const TRIES: u32 = 5;

impl Run {
    /// The Jobs of this resource, in every namespace its runs may be in.
    pub(super) async fn resource_jobs(&self) -> Result<Vec<Job>, RunError> {
        let params =
            ListParams::default().labels(&naming::resource_selector(&self.spec.resource_id));
        let mut found = Vec::new();
        for namespace in &self.namespaces {
            let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
            let list = retried(TRIES, || jobs.list(&params))
                .await
                .map_err(kube_error(format!(
                    "listing the Jobs of container runner {:?} in namespace {namespace}",
                    self.spec.resource_id
                )))?;
            // Why the annotation too: two ids may sanitize to the same label value.
            found.extend(list.items.into_iter().filter(|j| {
                annotation(j, naming::RESOURCE_ID_ANNOTATION)
                    == Some(self.spec.resource_id.as_str())
            }));
        }
        Ok(found)
    }

    /// Whether `job` is this run's Job.
    fn is_this(&self, job: &Job, name: &str) -> bool {
        job.metadata.name.as_deref() == Some(name)
            && job.metadata.namespace.as_deref() == Some(self.namespace.as_str())
    }

    /// The Job of this run, once no other run of the resource is unfinished: re-attached to
    /// when it exists (and did not fail, and has this run's secret values), created otherwise.
    pub(super) async fn start(
        &mut self,
        mut interrupted: Pin<&mut impl Future<Output = Interruption>>,
        notes: &mut Vec<String>,
    ) -> Result<Job, RunError> {
        // Why build first: bad inputs are reported before anything is looked at.
        job::build(&self.spec)?;
        loop {
            let jobs = self.resource_jobs().await?;
            let name = self.name();
            let other = jobs.iter().find(|j| {
                !self.is_this(j, &name)
                    && terminal(j).is_none()
                    && j.metadata.deletion_timestamp.is_none()
            });
            if let Some(other) = other {
                self.wait_for_other(other, interrupted.as_mut(), notes)
                    .await?;
                continue;
            }
            let superseded = jobs
                .iter()
                .find(|j| self.is_this(j, &name))
                .is_some_and(|found| superseded(found, &jobs));
            for job in jobs
                .iter()
                .filter(|j| !self.is_this(j, &name) && terminal(j).is_some())
            {
                let record = record_of(job);
                log::info!(
                    "Job {}/{} is a finished run the state no longer needs; deleting it",
                    record.namespace,
                    record.job
                );
                self.remove(&record.namespace, &record.job).await;
            }
            self.sweep_secrets(&jobs, &name).await;
            let Some(found) = jobs.iter().find(|j| self.is_this(j, &name)) else {
                return self.create().await;
            };
            if found.metadata.deletion_timestamp.is_some() {
                // A run of this name is being deleted; its name is free once it is gone.
                self.wait_for_other(found, interrupted.as_mut(), notes)
                    .await?;
                continue;
            }
            let same_secrets = self.same_secrets(found).await?;
            if terminal(found).is_none() && !same_secrets {
                log::info!(
                    "Job {}/{name} runs these inputs with other secret values; waiting for it \
                     to end before the next attempt",
                    self.namespace
                );
                self.wait_for_other(found, interrupted.as_mut(), notes)
                    .await?;
                continue;
            }
            if terminal(found).is_some() && (failed(found) || !same_secrets || superseded) {
                self.next_attempt(&name)?;
                continue;
            }
            log::info!(
                "re-attaching to Job {}/{name}, this transition's run, started earlier",
                self.namespace
            );
            return Ok(found.clone());
        }
    }

    /// Moves on to the next attempt name after the finished run `name`.
    fn next_attempt(&mut self, name: &str) -> Result<(), RunError> {
        log::info!(
            "Job {}/{name} is a failed attempt at this run (or one with other secret values); \
             starting the next attempt",
            self.namespace
        );
        if self.spec.attempt + 1 >= MAX_ATTEMPTS {
            return Err(RunError::Attempts {
                namespace: self.namespace.clone(),
            });
        }
        self.spec.attempt += 1;
        Ok(())
    }

    /// Whether the run of `job` has this run's secret values: from its inputs Secret while it
    /// exists, then from the digest the collect step copied into the results. Unknown counts as
    /// the same for an unfinished run (its own failure will tell) and as other for a finished
    /// one (the next attempt runs with the right values).
    async fn same_secrets(&self, job: &Job) -> Result<bool, RunError> {
        let name = job.metadata.name.clone().unwrap_or_default();
        let ours = naming::secrets_digest(&self.spec);
        for secret in [
            naming::inputs_secret_name(&name),
            naming::result_secret_name(&name),
        ] {
            let found = retried(TRIES, || self.secrets.get_opt(&secret))
                .await
                .map_err(kube_error(format!(
                    "reading Secret {}/{secret}",
                    self.namespace
                )))?;
            let digest = found
                .and_then(|s| s.data)
                .and_then(|d| d.get(SECRETS_DIGEST_KEY).cloned());
            if let Some(digest) = digest {
                return Ok(digest.0 == ours.as_bytes());
            }
        }
        Ok(terminal(job).is_none())
    }

    /// Waits for another run of the resource to end (or be deleted), saying so.
    async fn wait_for_other(
        &self,
        other: &Job,
        interrupted: Pin<&mut impl Future<Output = Interruption>>,
        notes: &mut Vec<String>,
    ) -> Result<(), RunError> {
        let record = record_of(other);
        log::info!(
            "waiting for Job {}/{} (ACTION={}), an earlier run of this container runner, to end \
             before this run starts: two runs at once would work on the same IaC state",
            record.namespace,
            record.job,
            record.action.name()
        );
        let since = Instant::now();
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &record.namespace);
        tokio::select! {
            why = interrupted => Err(RunError::Waiting {
                namespace: record.namespace.clone(),
                job: record.job.clone(),
                why,
            }),
            ended = super::watch::job_end(jobs, &record.job) => {
                ended?;
                let waited = since.elapsed().as_secs();
                notes.push(format!(
                    "Waited {waited} s for Job {}/{} (ACTION={}), an earlier run of this \
                     container runner, to end before starting this run.",
                    record.namespace,
                    record.job,
                    record.action.name()
                ));
                Ok(())
            }
        }
    }

    /// Deletes the resource's Secrets in this run's namespace whose Job is gone or finished:
    /// what a failed clean-up or an unanswered create left behind. This run's own are kept.
    async fn sweep_secrets(&self, jobs: &[Job], name: &str) {
        let params =
            ListParams::default().labels(&naming::resource_selector(&self.spec.resource_id));
        let secrets = match retried(TRIES, || self.secrets.list(&params)).await {
            Ok(list) => list.items,
            Err(e) => {
                log::warn!(
                    "listing the Secrets of container runner {:?} failed; leftovers stay until \
                     the next operation: {}",
                    self.spec.resource_id,
                    kube_text(&e)
                );
                return;
            }
        };
        let running: Vec<&str> = jobs
            .iter()
            .filter(|j| {
                terminal(j).is_none() && j.metadata.namespace.as_deref() == Some(&self.namespace)
            })
            .filter_map(|j| j.metadata.name.as_deref())
            .collect();
        for secret in secrets {
            let Some(secret_name) = secret.metadata.name else {
                continue;
            };
            let Some(job) = secret_name
                .strip_suffix("-inputs")
                .or_else(|| secret_name.strip_suffix("-result"))
            else {
                continue;
            };
            if job == name || running.contains(&job) {
                continue;
            }
            log::info!(
                "Secret {}/{secret_name} belongs to no run in progress; deleting it",
                self.namespace
            );
            self.delete_secret(&secret_name).await;
        }
    }

    /// Creates this run: its inputs Secret, then its Job, then makes the Job the Secret's
    /// owner. A request without an answer is looked up before anything else happens, and the
    /// inputs of a Job that exists are never deleted.
    async fn create(&self) -> Result<Job, RunError> {
        let built = job::build(&self.spec)?;
        let inputs_name = naming::inputs_secret_name(&built.name);
        self.create_inputs(&built.inputs, &inputs_name).await?;
        // Why: the collect step may only create its result Secret, so one left by an earlier
        // Job of this name would keep this run's results out.
        self.delete_secret(&naming::result_secret_name(&built.name))
            .await;
        let job = self
            .create_job(&built.job, &built.name, &inputs_name)
            .await?;
        log::info!("created Job {}/{}", self.namespace, built.name);
        self.own_inputs(&job, &inputs_name).await;
        Ok(job)
    }

    /// Creates the inputs Secret. One of the same name with the same secret values (a
    /// concurrent apply's, or an unanswered earlier create's) is kept; one with other values is
    /// replaced: no Job uses it, since this run's Job does not exist.
    async fn create_inputs(&self, inputs: &KubeSecret, name: &str) -> Result<(), RunError> {
        let what = || format!("creating Secret {}/{name}", self.namespace);
        let params = post_params();
        match retried(TRIES, || self.secrets.create(&params, inputs)).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                let existing = retried(TRIES, || self.secrets.get_opt(name))
                    .await
                    .map_err(kube_error(format!(
                        "reading Secret {}/{name}",
                        self.namespace
                    )))?;
                let digest = |s: &KubeSecret| {
                    s.data
                        .as_ref()
                        .and_then(|d| d.get(SECRETS_DIGEST_KEY).cloned())
                };
                if existing.as_ref().and_then(digest) == digest(inputs) && existing.is_some() {
                    return Ok(());
                }
                self.delete_secret(name).await;
                retried(TRIES, || self.secrets.create(&params, inputs))
                    .await
                    .map(drop)
                    .map_err(kube_error(what()))
            }
            Err(e) => Err(kube_error(what())(e)),
        }
    }

    /// Creates the Job; an existing one of this name (a concurrent apply's, or the answer to
    /// an earlier try that got lost) is taken as this run.
    async fn create_job(&self, job: &Job, name: &str, inputs_name: &str) -> Result<Job, RunError> {
        let mut tried = 0;
        loop {
            tried += 1;
            let error = match self.jobs.create(&post_params(), job).await {
                Ok(job) => return Ok(job),
                Err(e) => e,
            };
            if is_status(&error, 409) || is_transient(&error) {
                let found =
                    retried(TRIES, || self.jobs.get_opt(name))
                        .await
                        .map_err(kube_error(format!(
                            "looking for Job {}/{name}",
                            self.namespace
                        )))?;
                match found {
                    Some(found) if found.metadata.deletion_timestamp.is_none() => {
                        log::info!(
                            "Job {}/{name} exists already (a concurrent apply, or an answer that \
                             got lost); taking it as this run",
                            self.namespace
                        );
                        return Ok(found);
                    }
                    Some(_) => {
                        // An earlier run of this name is on its way out.
                        let jobs = self.jobs.clone();
                        super::watch::job_end(jobs, name).await?;
                    }
                    None if tried < TRIES => {
                        log::debug!("creating Job {name} again after: {}", kube_text(&error));
                    }
                    None => {}
                }
                if tried < TRIES {
                    tokio::time::sleep(std::time::Duration::from_millis(250 * u64::from(tried)))
                        .await;
                    continue;
                }
            }
            // The Job does not exist (the server refused it), so its inputs serve nothing.
            let exists = retried(TRIES, || self.jobs.get_opt(name)).await;
            if matches!(exists, Ok(None)) {
                self.delete_secret(inputs_name).await;
            }
            return Err(kube_error(format!(
                "creating Job {}/{name}",
                self.namespace
            ))(error));
        }
    }

    /// Makes the Job the owner of its inputs Secret, so that the cluster deletes them together
    /// even if the provider never comes back. A failure is logged: the next operation on the
    /// resource deletes the Secret once the Job has finished.
    async fn own_inputs(&self, job: &Job, inputs_name: &str) {
        let owner = json!({ "metadata": { "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": job.metadata.name,
            "uid": job.metadata.uid, "controller": false, "blockOwnerDeletion": false,
        }]}});
        let (params, patch) = (patch_params(), Patch::Merge(&owner));
        let patched = retried(TRIES, || self.secrets.patch(inputs_name, &params, &patch)).await;
        if let Err(e) = patched {
            log::warn!(
                "making Job {}/{} the owner of Secret {inputs_name} failed: {}",
                self.namespace,
                job.metadata.name.as_deref().unwrap_or_default(),
                kube_text(&e)
            );
        }
    }

    /// What the cluster says about the runs of the resource beyond the state: see
    /// [`super::look`].
    pub(super) async fn look(&self) -> Result<Looked, RunError> {
        let jobs = self.resource_jobs().await?;
        let recorded = self.known.recorded.as_ref();
        // Why delete here: the state this read started from holds the recorded run's results.
        if let Some(recorded) = recorded
            && let Some(job) = jobs.iter().find(|j| record_of(j) == *recorded)
            && terminal(job).is_some()
        {
            log::info!(
                "Job {}/{}: its results are in the state; deleting it",
                recorded.namespace,
                recorded.job
            );
            self.remove(&recorded.namespace, &recorded.job).await;
        }
        let base = recorded.map(|r| r.job.as_str()).unwrap_or("");
        let mut unrecorded: Vec<&Job> = jobs
            .iter()
            .filter(|j| annotation(j, naming::PREVIOUS_RUN_ANNOTATION).unwrap_or("") == base)
            .filter(|j| Some(&record_of(j)) != recorded)
            .collect();
        unrecorded.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        if let Some(destroyed) = unrecorded.iter().find(|j| {
            record_of(j).action == crate::runner::Action::Destroy && terminal(j) == Some("Complete")
        }) {
            let record = record_of(destroyed);
            // Why here too: a destroy whose operation never returned (its terraform was killed)
            // has its outcome taken by this read, and its Job need not stay a day.
            if destroyed
                .spec
                .as_ref()
                .and_then(|s| s.ttl_seconds_after_finished)
                .is_some_and(|ttl| ttl > super::DESTROYED_TTL_SECONDS)
            {
                self.expire_in(&record.namespace, &record.job).await;
            }
            // Why: the operation that ran it never returned (its terraform was killed as it
            // completed), so the clean-up a run's end does falls to this read: the inputs
            // Secret, and the write-only values kept for this destroy.
            let secrets: Api<KubeSecret> = Api::namespaced(self.client.clone(), &record.namespace);
            let inputs = naming::inputs_secret_name(&record.job);
            super::delete_secret_in(&secrets, &record.namespace, &inputs).await;
            self.forget_write_only().await;
            return Ok(Looked::Destroyed(record));
        }
        let Some(newest) = unrecorded.last() else {
            return Ok(match &self.known.pending {
                Some(pending) => Looked::Pending(pending.clone()),
                None => Looked::Recorded,
            });
        };
        let record = record_of(newest);
        let own_inputs = annotation(newest, naming::INPUTS_HASH_ANNOTATION)
            == Some(naming::inputs_hash(&self.spec).as_str());
        if record.action == crate::runner::Action::Create
            && terminal(newest) == Some("Complete")
            && !failed(newest)
            && own_inputs
            && !superseded(newest, &jobs)
            && self.same_secrets(newest).await?
            && let Ok(finished) = self.results(newest).await
        {
            return Ok(Looked::Adopted(record, finished));
        }
        Ok(Looked::Pending(record))
    }
}

/// Whether another run of the resource ended after `job` was created: then `job`'s results,
/// even if it completed, describe a state that later runs changed (a create run before a
/// destroy run of the same resource), and re-attaching to it would bring them back.
fn superseded(job: &Job, jobs: &[Job]) -> bool {
    let born = job.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let ended = |other: &Job| {
        let status = other.status.as_ref()?;
        let finished = status.completion_time.as_ref().map(|t| t.0);
        let failed = status
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.status == "True" && (c.type_ == "Failed" || c.type_ == "Complete"))
            .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
            .max();
        finished.or(failed)
    };
    jobs.iter()
        .filter(|other| other.metadata.uid != job.metadata.uid)
        .filter_map(ended)
        .any(|end| born.is_some_and(|born| end > born))
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    }
}
