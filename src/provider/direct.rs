//! The direct backend: no Humanitec platform. The provider works on the cluster itself.
//!
//! A runner config records the cluster (and how to reach it) in state; its create checks that
//! the cluster answers and, unless `skip_permission_checks`, that the provider's identity may do
//! what a run does. A container runner is the result of runs (`crate::runner`): create and
//! update run `ACTION=create` when a run input changed, delete runs `ACTION=destroy` with the
//! inputs of the last apply, and read runs nothing.
//!
//! This file plans a container runner in direct mode (what only the platform gives is refused,
//! the run's results are planned unknown when a run will happen), converts between the resource
//! models and the runner's plain types, and turns the runner's errors into diagnostics.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::backend::{Backend, Backends, Failed, Read, Written, set};
use crate::model::container_runner::{ContainerRunner, LastRun, SECRETS};
use crate::model::runner_config::{Kubernetes, RunnerConfig};
use crate::runner::cluster::{self, ClusterClient, ClusterError};
use crate::runner::job::BuildError;
use crate::runner::resources::HelperResources;
use crate::runner::run::{self, Interruption, Known, Looked, RunError, RunRecord};
use crate::runner::{
    Action, Connection, DEFAULT_HELPER_IMAGE, DEFAULT_NAMESPACE, DEFAULT_SHARED_DIRECTORY,
    ExecPlugin, GitSource, JobSpec, RunSpec, SecretValue, WriteOnly, WriteOnlyValues,
};
use terraform_plugin::framework::model::Sensitive;
use terraform_plugin::framework::validate::quoted_list;
use terraform_plugin::framework::{Cancelled, Diagnostics, Operation, Plan, Private};
use terraform_plugin::value::{AttributePath, Value};

/// The direct backend.
pub(crate) struct Direct;

/// The runner's connection from a `kubernetes` block (all unset: as kubectl finds the cluster).
fn connection(kubernetes: Option<&Kubernetes>) -> Connection {
    let Some(k) = kubernetes else {
        return Connection::default();
    };
    Connection {
        config_path: k.config_path.clone(),
        config_context: k.config_context.clone(),
        host: k.host.clone(),
        cluster_ca_certificate: k.cluster_ca_certificate.clone(),
        // The write-only token is here only while the runner config's own create or update runs.
        token: k
            .token
            .as_ref()
            .or(k.token_wo.as_ref())
            .map(|t| SecretValue(t.0.clone())),
        insecure: k.insecure.unwrap_or(false),
        exec: k.exec.as_ref().map(|e| ExecPlugin {
            api_version: e.api_version.clone().unwrap_or_default(),
            command: e.command.clone().unwrap_or_default(),
            args: e.args.clone().unwrap_or_default(),
            env: e.env.clone().unwrap_or_default(),
        }),
    }
}

/// Reports a cluster problem; missing permissions come with the Role that grants them.
fn report_cluster(error: &ClusterError, diags: &mut Diagnostics) {
    match error {
        ClusterError::Missing { namespace, .. } => diags.error(
            format!("Missing permissions in namespace {namespace:?}"),
            format!(
                "{}. Nothing was created. A run creates a Secret and a Job there, watches them, \
                 reads their logs and Events and deletes them afterwards. Grant the provider's \
                 identity this Role (and bind it with a RoleBinding), or set \
                 skip_permission_checks = true on the runner config to skip this check:\n\n{}",
                crate::text::capitalized(&error.to_string()),
                cluster::role_yaml(namespace)
            ),
        ),
        other => {
            // Why one level of cause: kube's errors repeat their own causes in their text.
            let cause = std::error::Error::source(other)
                .map(|cause| format!(": {cause}"))
                .unwrap_or_default();
            diags.error(
                "The cluster cannot be used",
                format!(
                    "{}{cause}. Check the runner config's kubernetes block (or KUBECONFIG when \
                     it is unset).",
                    crate::text::capitalized(&other.to_string())
                ),
            );
        }
    }
}

/// Connects to the cluster of a connection and checks it; reports problems.
async fn checked_cluster(
    op: &Operation,
    connection: &Connection,
    namespace: &str,
    skip_permissions: bool,
    diags: &mut Diagnostics,
) -> Option<ClusterClient> {
    let checked = async {
        let cluster = cluster::connect(connection).await?;
        cluster::check(&cluster, namespace, skip_permissions).await?;
        Ok::<_, ClusterError>(cluster)
    };
    match op.unless_cancelled(checked).await {
        Ok(Ok(cluster)) => Some(cluster),
        Ok(Err(error)) => {
            report_cluster(&error, diags);
            None
        }
        Err(reason) => {
            op.report_cancelled(reason, "the cluster check", diags);
            None
        }
    }
}

#[async_trait]
impl Backend<RunnerConfig> for Direct {
    fn plan(&self, _: &Backends<RunnerConfig>, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        // Why the prior value: these describe a Humanitec definition, which direct mode does
        // not make; null for a new runner config, and a state written before keeps its value
        // rather than show a change in every plan.
        for computed in ["driver_type", "unmanaged_inputs"] {
            let kept = plan.prior.get(computed).clone();
            set(&mut plan.planned, computed, kept);
        }
        // Said when the token is sent (a create, or a new version), not on every plan.
        let version = |value: &Value| value.get("kubernetes").get("token_wo_version").clone();
        let token_sent = !plan.config.get("kubernetes").get("token_wo").is_null()
            && (plan.prior.is_null() || version(plan.prior) != version(&plan.planned));
        if token_sent {
            diags.warning(
                "kubernetes.token_wo reaches this runner config only",
                "The write-only token is used for this runner config's own checks of the \
                 cluster. Terraform keeps no copy of it, so container runners that run with \
                 this runner config cannot get it: give them the cluster through \
                 kubernetes.token, kubernetes.exec or a kubeconfig.",
            );
        }
    }

    async fn create(
        &self,
        op: &mut Operation,
        planned: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        // Why the default namespace: the runner config does not know where its container
        // runners run; each of them checks its own namespace again before its run.
        let connection = connection(planned.kubernetes.as_ref());
        let skip = planned.skip_permission_checks();
        checked_cluster(op, &connection, DEFAULT_NAMESPACE, skip, diags)
            .await
            .ok_or(Failed::Nothing)?;
        Ok(RunnerConfig {
            name: Some(planned.name().to_string()),
            ..planned.clone()
        })
    }

    async fn read(
        &self,
        op: &mut Operation,
        current: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Read<RunnerConfig> {
        if op.importing {
            refuse_import("humanitec_runner_config", diags);
            return Read::Failed;
        }
        Read::Found(current.clone())
    }

    async fn update(
        &self,
        _op: &mut Operation,
        _prior: &RunnerConfig,
        planned: &RunnerConfig,
        _diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        Ok(planned.clone())
    }

    async fn delete(&self, _op: &mut Operation, _prior: &RunnerConfig, _diags: &mut Diagnostics) {}
}

/// Refuses to import a direct-mode object, saying why and what to do instead.
pub(crate) fn refuse_import(type_name: &str, diags: &mut Diagnostics) {
    diags.error(
        format!("A {type_name} in direct mode cannot be imported"),
        "In direct mode nothing of it exists outside the Terraform state: a runner config is \
         recorded only, and a container runner is the result of runs whose inputs only the \
         configuration has. Remove the import block (or stop the terraform import), add the \
         resource to the configuration and apply: a run still in flight for it is waited for \
         or re-attached to, never run twice beside it.",
    );
}

/// The run a container runner's model describes, with the defaults applied.
fn run_spec(model: &ContainerRunner, action: Action, timeout: std::time::Duration) -> RunSpec {
    let job = model.job.clone().unwrap_or_default();
    let link = model.runner_config.clone().unwrap_or_default();
    let secret = |s: &Sensitive<String>| SecretValue(s.0.clone());
    let secrets = |map: &Option<BTreeMap<String, Option<Sensitive<String>>>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_ref().map(secret).unwrap_or_default()))
            .collect()
    };
    RunSpec {
        resource_id: model.id.clone(),
        resource_type: model.type_.clone(),
        action,
        runner_config_id: link.id.clone().unwrap_or_default(),
        helper_image: link
            .helper_image
            .clone()
            .unwrap_or_else(|| DEFAULT_HELPER_IMAGE.into()),
        helper_resources: helper_resources(link.helper_resources.as_ref()),
        job: JobSpec {
            image: job.image.clone(),
            // Why empty is unset: an empty command runs the entrypoint either way.
            command: job.command.clone().filter(|c| !c.is_empty()),
            shared_directory: job
                .shared_directory
                .clone()
                .unwrap_or_else(|| DEFAULT_SHARED_DIRECTORY.into()),
            namespace: job
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            service_account: job.service_account.clone(),
            // The plan checked it is a YAML mapping.
            pod_template: job
                .pod_template
                .as_deref()
                .and_then(|text| crate::yaml::from_str(text).ok()),
            variables: job.variables.clone().unwrap_or_default(),
            secret_variables: secrets(&job.secret_variables),
        },
        source: model.source.as_ref().map(|s| GitSource {
            url: s.url.clone().unwrap_or_default(),
            reference: s.reference.clone(),
            path: s.path.clone(),
            username: s.username.clone(),
            password: s.password.as_ref().map(secret),
            ssh_key: s.ssh_key.as_ref().map(secret),
            ca_certificates: s.ca_certificates.clone(),
            known_hosts: s.known_hosts.clone(),
        }),
        files: model.files.clone().unwrap_or_default(),
        secret_files: secrets(&model.secret_files),
        triggers: model.triggers.clone().unwrap_or_default(),
        timeout,
        previous_run: None,
        attempt: 0,
        write_only: write_only(model),
    }
}

/// The helper containers' resources: the defaults, with each map the runner config sets
/// replacing the default one.
fn helper_resources(set: Option<&crate::model::runner_config::HelperResources>) -> HelperResources {
    let mut resources = HelperResources::default();
    let Some(set) = set else {
        return resources;
    };
    for (given, target) in [
        (&set.prepare, &mut resources.prepare),
        (&set.collect, &mut resources.collect),
    ] {
        if let Some(requests) = given.as_ref().and_then(|g| g.requests.clone()) {
            target.requests = requests;
        }
        if let Some(limits) = given.as_ref().and_then(|g| g.limits.clone()) {
            target.limits = limits;
        }
    }
    resources
}

/// The write-only values of a container runner (present while Terraform applies its
/// configuration) and their versions.
fn write_only(model: &ContainerRunner) -> WriteOnly {
    let source = model.source.clone().unwrap_or_default();
    let job = model.job.clone().unwrap_or_default();
    // Why the table's names: they are part of a run's inputs (`runner::naming`), so they stay
    // `source.password`, `job.secret_variables`, … as long as the table does.
    let versions = SECRETS.iter().filter_map(|secret| {
        let version = (secret.held)(model).write_only_version?;
        Some((secret.dotted_name(), version.clone()))
    });
    let secrets = |map: &Option<BTreeMap<String, Sensitive<String>>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), SecretValue(v.0.clone())))
            .collect::<BTreeMap<_, _>>()
    };
    let values = WriteOnlyValues {
        password: source.password_wo.map(|s| SecretValue(s.0)),
        ssh_key: source.ssh_key_wo.map(|s| SecretValue(s.0)),
        secret_variables: secrets(&job.secret_variables_wo),
        secret_files: secrets(&model.secret_files_wo),
    };
    WriteOnly {
        versions: versions.collect(),
        values: (!values.is_empty()).then_some(values),
    }
}

/// Checks at plan time that a container runner's inputs make a Job.
pub(crate) fn check_run(model: &ContainerRunner) -> Result<(), BuildError> {
    let spec = run_spec(
        model,
        Action::Create,
        terraform_plugin::framework::timeouts::DEFAULT_WRITE,
    );
    crate::runner::job::build(&spec).map(drop)
}

/// The private-state key of a run that an earlier operation started and whose outcome the
/// state does not hold (a [`RunRecord`]).
const PENDING_RUN: &str = "pending_run";

/// What the state knows of the runs of a container runner: its `last_run` and the pending run
/// in its private state.
fn known(model: &ContainerRunner, private: &Private) -> Known {
    let recorded = model.last_run.as_ref().and_then(|last| {
        Some(RunRecord {
            job: last.job_name.clone()?,
            namespace: last.namespace.clone()?,
            action: Action::Create,
        })
    });
    Known {
        recorded,
        pending: pending_run(private),
    }
}

/// The pending run recorded in a private state, if any (for the plan).
pub(crate) fn pending_run(private: &Private) -> Option<RunRecord> {
    private
        .get(PENDING_RUN)
        .and_then(|json| serde_json::from_value(json.clone()).ok())
}

fn record_pending(private: &mut Private, run: Option<&RunRecord>) {
    match run.and_then(|r| serde_json::to_value(r).ok()) {
        Some(json) => private.set(PENDING_RUN, json),
        None => {
            private.remove(PENDING_RUN);
        }
    }
}

/// The cluster of a container runner's `runner_config`, connected and checked for a run in
/// `namespace` (unless its `skip_permission_checks`).
async fn run_cluster(
    op: &Operation,
    model: &ContainerRunner,
    namespace: &str,
    diags: &mut Diagnostics,
) -> Option<ClusterClient> {
    let link = model.runner_config.clone().unwrap_or_default();
    let connection = connection(link.kubernetes.as_ref());
    let skip = link.skip_permission_checks.unwrap_or(false);
    checked_cluster(op, &connection, namespace, skip, diags).await
}

/// Runs `action` for `model`, records the run in the private state when it did not succeed
/// (and clears it when it did), and reports what went wrong.
async fn run_once(
    op: &mut Operation,
    model: &ContainerRunner,
    action: Action,
    diags: &mut Diagnostics,
) -> Result<crate::runner::Finished, Option<RunError>> {
    let spec = run_spec(model, action, op.budget());
    let known = known(model, &op.private);
    let cluster = run_cluster(op, model, &spec.job.namespace, diags)
        .await
        .ok_or(None)?;
    let cancel = op.cancel.clone();
    let interrupted = async move {
        match cancel.fired().await {
            Cancelled::Stop => Interruption::Stop,
            Cancelled::Timeout => Interruption::Timeout,
        }
    };
    let ran = run::run(&cluster, &spec, &known, interrupted).await;
    for note in &ran.notes {
        diags.warning("Waited for an earlier run", note.clone());
    }
    match ran.result {
        Ok(finished) => {
            record_pending(&mut op.private, None);
            Ok(finished)
        }
        Err(error) => {
            // Why keep an earlier pending run when this one never existed: its outcome is
            // still not in the state.
            if ran.run.is_some() {
                record_pending(&mut op.private, ran.run.as_ref());
            }
            let recorded = ran.run.is_some() && !matches!(error, RunError::ResultsUnread { .. });
            report_run(&model.id, action, recorded, &error, diags);
            Err(Some(error))
        }
    }
}

fn report_run(id: &str, action: Action, recorded: bool, error: &RunError, diags: &mut Diagnostics) {
    let what = format!("ACTION={} of container runner {id:?}", action.name());
    let summary = match error {
        RunError::Build(e) => {
            let at = e
                .attribute()
                .split('.')
                .fold(AttributePath::root(), |p, part| p.attribute(part));
            diags.error_at(at, "The inputs do not make a Job", error.detail());
            return;
        }
        RunError::Detached { .. } | RunError::Waiting { .. } => {
            format!("Stopped waiting for the run of {what}")
        }
        RunError::NotStarted(_) | RunError::WriteOnlyGone { .. } => {
            format!("The run of {what} could not start")
        }
        RunError::ResultsUnread { .. } => format!("The results of the run of {what} were not read"),
        RunError::Failed(_)
        | RunError::Results { .. }
        | RunError::Vanished { .. }
        | RunError::Kubernetes { .. }
        | RunError::Attempts { .. } => format!("The run of {what} failed"),
    };
    let mut detail = error.detail();
    if recorded {
        detail.push_str(match action {
            Action::Create => {
                "\n\nThe run is recorded in the state. After a create, Terraform marks the \
                 resource tainted: the next apply runs ACTION=destroy (once this run has \
                 ended) and creates it again, and terraform destroy runs ACTION=destroy. To \
                 keep this run's result instead, run terraform untaint <address>: the next \
                 apply then waits for this run and takes its outputs."
            }
            Action::Destroy => {
                "\n\nThe resource stays in the state with this run recorded. Destroy runs with \
                 the inputs of the last apply, kept in the state. If it keeps failing, fix the \
                 configuration, apply (which runs ACTION=create with the new inputs), then \
                 destroy again."
            }
        });
    }
    diags.error(summary, detail);
}

/// The model after a successful run.
fn with_results(planned: &ContainerRunner, finished: crate::runner::Finished) -> ContainerRunner {
    let namespace = planned
        .job
        .as_ref()
        .and_then(|j| j.namespace.clone())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    ContainerRunner {
        name: Some(planned.name().to_string()),
        outputs: Some(finished.outputs),
        secret_outputs: Some(
            finished
                .secret_outputs
                .into_iter()
                .map(|(k, v)| (k, Sensitive(v.0)))
                .collect(),
        ),
        last_run: Some(LastRun {
            job_name: Some(finished.job_name),
            namespace: Some(namespace),
            started_at: Some(finished.started_at),
            finished_at: Some(finished.finished_at),
            commit: finished.commit,
        }),
        ..planned.clone()
    }
}

/// Whether the change from `prior` to `planned` is a new run: whether the runs they describe
/// differ, with the defaults applied. Names, timeouts, criteria and how the cluster is reached
/// are not part of a run.
pub(crate) fn runs_again(prior: &ContainerRunner, planned: &ContainerRunner) -> bool {
    let timeout = std::time::Duration::ZERO;
    let spec = |model| {
        run_spec(model, Action::Create, timeout)
            .without_write_only_values()
            .without_how()
    };
    spec(prior) != spec(planned)
}

/// Reads what the cluster says about a container runner's runs: see [`run::look`].
async fn look(
    op: &mut Operation,
    current: &ContainerRunner,
    diags: &mut Diagnostics,
) -> Read<ContainerRunner> {
    let known = known(current, &op.private);
    let spec = run_spec(current, Action::Create, op.budget());
    let link = current.runner_config.clone().unwrap_or_default();
    let connection = connection(link.kubernetes.as_ref());
    let looked = async {
        let cluster = cluster::connect(&connection)
            .await
            .map_err(|e| crate::text::error_chain(&e))?;
        run::look(&cluster, &spec, &known)
            .await
            .map_err(|e| e.to_string())
    };
    let looked = match op.unless_cancelled(looked).await {
        Ok(Ok(looked)) => looked,
        Ok(Err(problem)) => {
            // Why an error only with a pending run: its outcome decides the plan; otherwise
            // the state stands on its own and the look only tidies up.
            let summary = "The cluster could not be asked about this container runner's runs";
            if let Some(pending) = &known.pending {
                diags.error(
                    summary,
                    format!(
                        "{}. The run of Job {}/{} (ACTION={}) is recorded in the state without                          its outcome, which only the cluster knows. Check the runner config's                          kubernetes block.",
                        crate::text::capitalized(&problem),
                        pending.namespace,
                        pending.job,
                        pending.action.name()
                    ),
                );
                return Read::Failed;
            }
            diags.warning(
                summary,
                format!(
                    "{}. The state is kept as it is; runs that finished are cleaned up next time.",
                    crate::text::capitalized(&problem)
                ),
            );
            return Read::Found(current.clone());
        }
        Err(reason) => {
            op.report_cancelled(reason, "read", diags);
            return Read::Failed;
        }
    };
    match looked {
        Looked::Recorded => {
            record_pending(&mut op.private, None);
            Read::Found(current.clone())
        }
        Looked::Pending(run) => {
            record_pending(&mut op.private, Some(&run));
            Read::Found(current.clone())
        }
        Looked::Destroyed(run) => {
            log::info!(
                "Job {}/{} destroyed this container runner; it leaves the state",
                run.namespace,
                run.job
            );
            Read::Gone
        }
        Looked::Adopted(run, finished) => {
            log::info!(
                "Job {}/{} ran this container runner's inputs and completed; its results go \
                 into the state",
                run.namespace,
                run.job
            );
            record_pending(&mut op.private, None);
            Read::Found(with_results(current, finished))
        }
    }
}

#[async_trait]
impl Backend<ContainerRunner> for Direct {
    /// The plan of a container runner in direct mode: refuses what only the platform gives,
    /// checks that the inputs make a Job, and plans the run's results as unknown when a run
    /// will happen.
    fn plan(
        &self,
        backends: &Backends<ContainerRunner>,
        plan: &mut Plan<'_>,
        diags: &mut Diagnostics,
    ) {
        refuse_platform_only(plan.config, diags);
        // Why null: these describe a Humanitec definition, which direct mode does not make.
        for computed in ["driver_type", "unmanaged_inputs", "secret_refs"] {
            set(&mut plan.planned, computed, Value::Null);
        }
        // Why the prior value when there is one: a state written before kept the default, and
        // dropping it now would be a change in every plan.
        if plan.config.get("force_delete").is_null() {
            let kept = plan.prior.get("force_delete").clone();
            set(&mut plan.planned, "force_delete", kept);
        }
        warn_of_placeholders(plan.config, diags);
        let known = RUN_INPUTS
            .iter()
            .all(|name| plan.planned.get(name).is_wholly_known());
        if known
            && let Some(model) = backends.model(&plan.planned, diags)
            && let Err(error) = check_run(&model)
        {
            diags.error_at(
                attribute_path(error.attribute()),
                "The inputs do not make a Job",
                format!("{error}."),
            );
        }
        let config = plan.planned.get("runner_config");
        let known = known
            && config.get("id").is_wholly_known()
            && config.get("helper_image").is_wholly_known();
        // Why through the models: the backend decides on the runs they describe, with the
        // defaults applied, and the plan must agree with it.
        let pending = pending_run(&plan.private);
        if let (false, Some(run)) = (plan.prior.is_null(), &pending) {
            diags.warning(
                "An earlier run of this container runner has no recorded outcome",
                format!(
                    "Job {}/{} (ACTION={}) was started by an earlier operation that did not \
                     record how it ended (it was interrupted, failed, or is still running), so \
                     what it made may differ from the state. This apply runs ACTION=create \
                     again, after that run has ended.",
                    run.namespace,
                    run.job,
                    run.action.name()
                ),
            );
        }
        let runs = plan.prior.is_null()
            || pending.is_some()
            || !known
            || match (
                backends.model(plan.prior, diags),
                backends.model(&plan.planned, diags),
            ) {
                (Some(before), Some(after)) => runs_again(&before, &after),
                _ => true,
            };
        for computed in ["outputs", "secret_outputs", "last_run"] {
            let value = if runs {
                Value::Unknown
            } else {
                plan.prior.get(computed).clone()
            };
            set(&mut plan.planned, computed, value);
        }
    }

    async fn create(
        &self,
        op: &mut Operation,
        planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        let ran = run_once(op, planned, Action::Create, diags).await;
        match ran {
            Ok(finished) => Ok(with_results(planned, finished)),
            // Why nothing in state: the run completed and its Job keeps the results, which the
            // next apply reads by re-attaching; a tainted state would destroy and run it again.
            Err(Some(RunError::ResultsUnread { .. })) => {
                record_pending(&mut op.private, None);
                Err(Failed::Nothing)
            }
            // Why into state: the run ran (or may still run), and whatever it made must be
            // destroyed one day; Terraform taints a create that returns an error.
            Err(_) if pending_run(&op.private).is_some() => Err(Failed::Partly(ContainerRunner {
                name: Some(planned.name().to_string()),
                outputs: None,
                secret_outputs: None,
                last_run: None,
                ..planned.clone()
            })),
            Err(_) => Err(Failed::Nothing),
        }
    }

    async fn read(
        &self,
        op: &mut Operation,
        current: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Read<ContainerRunner> {
        if op.importing {
            refuse_import("humanitec_container_runner", diags);
            return Read::Failed;
        }
        look(op, current, diags).await
    }

    async fn update(
        &self,
        op: &mut Operation,
        prior: &ContainerRunner,
        planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        if !runs_again(prior, planned) && pending_run(&op.private).is_none() {
            return Ok(ContainerRunner {
                outputs: prior.outputs.clone(),
                secret_outputs: prior.secret_outputs.clone(),
                last_run: prior.last_run.clone(),
                ..planned.clone()
            });
        }
        // Why the prior's last run with the planned inputs: the run starts from the state.
        let from = ContainerRunner {
            last_run: prior.last_run.clone(),
            ..planned.clone()
        };
        let finished = run_once(op, &from, Action::Create, diags)
            .await
            .map_err(|_| Failed::Nothing)?;
        Ok(with_results(planned, finished))
    }

    async fn delete(&self, op: &mut Operation, prior: &ContainerRunner, diags: &mut Diagnostics) {
        let _ = run_once(op, prior, Action::Destroy, diags).await;
    }
}

/// What only the Humanitec platform gives, with what to use in direct mode instead: (attribute
/// path, name, what to do).
const PLATFORM_ONLY: [(&[&str], &str, &str); 4] = [
    (
        &["driver_account"],
        "driver_account",
        "Direct mode has no Humanitec cloud accounts. Give the container its cloud credentials \
         as job.secret_variables (e.g. AWS_ACCESS_KEY_ID), or through the identity of \
         job.service_account (workload identity).",
    ),
    (
        &["credentials_config"],
        "credentials_config",
        "Direct mode has no Humanitec cloud accounts whose credentials could be mapped. Set the \
         variables directly in job.secret_variables, or use the identity of job.service_account.",
    ),
    (
        &["source", "password_ref"],
        "source.password_ref",
        "Direct mode has no Humanitec secret stores. Set source.password (sensitive) instead, \
         e.g. from a variable or a data source of your secret manager.",
    ),
    (
        &["source", "ssh_key_ref"],
        "source.ssh_key_ref",
        "Direct mode has no Humanitec secret stores. Set source.ssh_key (sensitive) instead, \
         e.g. from a variable or a data source of your secret manager.",
    ),
];

/// The attributes a direct-mode run is made from, besides the runner config's `id` and
/// `helper_image`. The rest (names, timeouts, criteria, the credentials to reach the cluster) is
/// recorded without running anything.
const RUN_INPUTS: [&str; 6] = ["type", "job", "source", "files", "secret_files", "triggers"];

/// Refuses what only the Humanitec platform gives, and a container runner without the runner
/// config whose cluster it runs on.
fn refuse_platform_only(config: &Value, diags: &mut Diagnostics) {
    for (path, name, instead) in PLATFORM_ONLY {
        let value = path.iter().fold(config, |v, key| v.get(key));
        if !value.is_null() {
            let at = path
                .iter()
                .fold(AttributePath::root(), |p, key| p.attribute(*key));
            diags.error_at(at, format!("{name} has no meaning in direct mode"), instead);
        }
    }
    if config.get("runner_config").is_null() {
        diags.error_at(
            AttributePath::root().attribute("runner_config"),
            "Direct mode needs runner_config",
            "In direct mode the Job runs on the cluster of the runner config: set \
             runner_config = humanitec_runner_config.<name>.",
        );
    }
}

/// Warns when inputs hold Humanitec placeholders (`${context.app.id}`), which only the
/// platform resolves: in direct mode they reach the container as written.
fn warn_of_placeholders(config: &Value, diags: &mut Diagnostics) {
    let places = [
        ("files", config.get("files")),
        ("job.variables", config.get("job").get("variables")),
        ("job.pod_template", config.get("job").get("pod_template")),
        ("source.url", config.get("source").get("url")),
        ("source.ref", config.get("source").get("ref")),
    ];
    let has_placeholder = |v: &Value| {
        let texts: Vec<&str> = match v.as_map() {
            Some(map) => map.values().filter_map(Value::as_str).collect(),
            None => v.as_str().into_iter().collect(),
        };
        texts.iter().any(|t| {
            ["${context.", "${resources.", "${values.", "${shared."]
                .iter()
                .any(|p| t.contains(p))
        })
    };
    let found: Vec<&str> = places
        .iter()
        .filter(|(_, v)| has_placeholder(v))
        .map(|(name, _)| *name)
        .collect();
    if !found.is_empty() {
        diags.warning(
            "Humanitec placeholders are not resolved in direct mode",
            format!(
                "{} hold placeholders such as ${{context.app.id}}. Only the Humanitec \
                 platform resolves them; in direct mode they reach the container as written. \
                 Use Terraform values instead.",
                quoted_list(&found, "and")
            ),
        );
    }
}

/// The path of an attribute named in words (`job.pod_template`).
fn attribute_path(words: &str) -> AttributePath {
    words
        .split('.')
        .fold(AttributePath::root(), |p, part| p.attribute(part))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container_runner::{Job, RunnerConfigLink};

    fn runner() -> ContainerRunner {
        ContainerRunner {
            id: "s3".into(),
            type_: "s3".into(),
            job: Some(Job {
                image: "runner:1".into(),
                secret_variables: Some(BTreeMap::from([(
                    "KEY".to_string(),
                    Some(Sensitive("k3y".to_string())),
                )])),
                ..Job::default()
            }),
            runner_config: Some(RunnerConfigLink {
                id: Some("config".into()),
                ..RunnerConfigLink::default()
            }),
            ..ContainerRunner::default()
        }
    }

    #[test]
    fn write_only_versions_keep_the_names_a_run_is_hashed_with() {
        let version = |v: &str| Some(v.to_string());
        let mut model = runner();
        model.source = Some(crate::model::container_runner::Source {
            password_wo_version: version("1"),
            ssh_key_wo_version: version("2"),
            ..Default::default()
        });
        if let Some(job) = model.job.as_mut() {
            job.secret_variables_wo_version = version("3");
        }
        model.secret_files_wo_version = version("4");
        let kept = write_only(&model);
        let versions: Vec<(&str, &str)> = kept
            .versions
            .iter()
            .map(|(name, version)| (name.as_str(), version.as_str()))
            .collect();
        assert_eq!(
            versions,
            [
                ("job.secret_variables", "3"),
                ("secret_files", "4"),
                ("source.password", "1"),
                ("source.ssh_key", "2"),
            ]
        );
        model.source = None;
        assert_eq!(write_only(&model).versions.len(), 2);
    }

    /// The run reads every secret of the model's table (`SECRETS`), in its plain and its
    /// write-only form, so that each reaches the Job's inputs Secret and the run's redaction
    /// (`RunSpec::secret_values`): a row added to the table without a place in the run fails here.
    #[test]
    fn every_secret_of_the_table_reaches_the_run() {
        use crate::model::container_runner::SecretFields;
        let mut model = runner();
        model.job.as_mut().unwrap().secret_variables = None;
        for (index, secret) in SECRETS.iter().enumerate() {
            let plain = Sensitive(format!("plain-{index}"));
            let write_only = Sensitive(format!("write-only-{index}"));
            match (secret.fields)(&mut model, true).expect("created") {
                SecretFields::One {
                    value,
                    write_only: wo,
                    ..
                } => {
                    *value = Some(plain);
                    *wo = Some(write_only);
                }
                SecretFields::ByKey {
                    values,
                    write_only: wo,
                    ..
                } => {
                    *values = Some(BTreeMap::from([("KEY".into(), Some(plain))]));
                    *wo = Some(BTreeMap::from([("KEY".into(), write_only)]));
                }
            }
        }
        let spec = run_spec(&model, Action::Create, std::time::Duration::from_secs(60));
        let mut reached = spec.secret_values();
        reached.sort_unstable();
        let expected: Vec<String> = (0..SECRETS.len()).map(|i| format!("plain-{i}")).collect();
        assert_eq!(reached, expected);
        let write_only = serde_json::to_string(&spec.write_only.values).unwrap();
        for (index, secret) in SECRETS.iter().enumerate() {
            assert!(
                write_only.contains(&format!("\"write-only-{index}\"")),
                "{} reaches the run: {write_only}",
                secret.write_only
            );
        }
    }

    #[test]
    fn a_run_takes_the_documented_defaults() {
        let spec = run_spec(
            &runner(),
            Action::Destroy,
            std::time::Duration::from_secs(60),
        );
        assert_eq!(spec.job.namespace, DEFAULT_NAMESPACE);
        assert_eq!(spec.job.shared_directory, DEFAULT_SHARED_DIRECTORY);
        assert_eq!(spec.helper_image, DEFAULT_HELPER_IMAGE);
        assert_eq!(spec.runner_config_id, "config");
        assert_eq!(spec.job.secret_variables["KEY"], SecretValue("k3y".into()));
        assert_eq!(spec.action, Action::Destroy);
        assert!(check_run(&runner()).is_ok());
    }

    #[test]
    fn only_run_inputs_make_a_new_run() {
        let before = runner();
        type Change = Box<dyn Fn(&mut ContainerRunner)>;
        let cases: Vec<(&str, Change, bool)> = vec![
            ("name", Box::new(|r| r.name = Some("S3".into())), false),
            (
                "timeouts",
                Box::new(|r| r.timeouts = Some(Default::default())),
                false,
            ),
            (
                "cluster access",
                Box::new(|r| {
                    r.runner_config.as_mut().unwrap().kubernetes = Some(Kubernetes {
                        config_context: Some("other".into()),
                        ..Kubernetes::default()
                    })
                }),
                false,
            ),
            (
                "an explicit default namespace",
                Box::new(|r| r.job.as_mut().unwrap().namespace = Some(DEFAULT_NAMESPACE.into())),
                false,
            ),
            (
                "triggers",
                Box::new(|r| r.triggers = Some(BTreeMap::from([("v".into(), "2".into())]))),
                true,
            ),
            (
                "a secret variable",
                Box::new(|r| {
                    r.job.as_mut().unwrap().secret_variables = Some(BTreeMap::new());
                }),
                true,
            ),
            (
                "the helper image",
                Box::new(|r| {
                    r.runner_config.as_mut().unwrap().helper_image = Some("mirror/h:1".into())
                }),
                true,
            ),
        ];
        for (what, change, runs) in cases {
            let mut after = before.clone();
            change(&mut after);
            assert_eq!(runs_again(&before, &after), runs, "{what}");
        }
    }
}
