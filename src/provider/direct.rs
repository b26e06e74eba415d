//! The direct backend: no Humanitec platform. The provider works on the cluster itself.
//!
//! A runner config records the cluster (and how to reach it) in state; its create checks that
//! the cluster answers and, unless `skip_permission_checks`, that the provider's identity may do
//! what a run does. A container runner is the result of runs (`crate::runner`): create and
//! update run `ACTION=create` when a run input changed, delete runs `ACTION=destroy` with the
//! inputs of the last apply, and read runs nothing.
//!
//! This file converts between the resource models and the runner's plain types, and turns the
//! runner's errors into diagnostics.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::backend::{Backend, Failed, Read, Written};
use super::resources::container_runner::{ContainerRunner, LastRun};
use super::resources::runner_config::{Kubernetes, RunnerConfig};
use crate::framework::model::Sensitive;
use crate::framework::{Cancelled, Diagnostics, Operation};
use crate::runner::cluster::{self, Cluster, ClusterError};
use crate::runner::job::BuildError;
use crate::runner::run::{self, Interruption, RunError};
use crate::runner::{
    Action, Connection, DEFAULT_HELPER_IMAGE, DEFAULT_NAMESPACE, DEFAULT_SHARED_DIRECTORY,
    ExecPlugin, GitSource, JobSpec, RunSpec, Secret,
};
use crate::value::AttributePath;

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
            .map(|t| Secret(t.0.clone())),
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
                crate::capitalized(&error.to_string()),
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
                    crate::capitalized(&other.to_string())
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
) -> Option<Cluster> {
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

fn refuse_import(type_name: &str, diags: &mut Diagnostics) {
    diags.error(
        format!("A {type_name} in direct mode cannot be imported"),
        "In direct mode nothing of it exists outside the Terraform state: a runner config is \
         recorded only, and a container runner is the result of runs whose inputs only the \
         configuration has. Add it to the configuration and apply; a run still in flight with \
         the same inputs is re-attached to, not started again.",
    );
}

/// The run a container runner's model describes, with the defaults applied.
fn run_spec(model: &ContainerRunner, action: Action, timeout: std::time::Duration) -> RunSpec {
    let job = model.job.clone().unwrap_or_default();
    let link = model.runner_config.clone().unwrap_or_default();
    let secret = |s: &Sensitive<String>| Secret(s.0.clone());
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
        job: JobSpec {
            image: job.image.clone(),
            command: job.command.clone(),
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
                .and_then(|text| serde_yaml::from_str(text).ok()),
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
        }),
        files: model.files.clone().unwrap_or_default(),
        secret_files: secrets(&model.secret_files),
        triggers: model.triggers.clone().unwrap_or_default(),
        timeout,
    }
}

/// Checks at plan time that a container runner's inputs make a Job.
pub(crate) fn check_run(model: &ContainerRunner) -> Result<(), BuildError> {
    let spec = run_spec(
        model,
        Action::Create,
        crate::framework::timeouts::DEFAULT_WRITE,
    );
    crate::runner::job::build(&spec).map(drop)
}

/// Runs `action` for `model` and reports what went wrong.
async fn run_once(
    op: &Operation,
    model: &ContainerRunner,
    action: Action,
    diags: &mut Diagnostics,
) -> Option<crate::runner::Finished> {
    let spec = run_spec(model, action, op.budget());
    let link = model.runner_config.clone().unwrap_or_default();
    let connection = connection(link.kubernetes.as_ref());
    let skip = link.skip_permission_checks.unwrap_or(false);
    let cluster = checked_cluster(op, &connection, &spec.job.namespace, skip, diags).await?;
    let interrupted = async {
        match op.cancel.fired().await {
            Cancelled::Stop => Interruption::Stop,
            Cancelled::Timeout => Interruption::Timeout,
        }
    };
    match run::run(&cluster, &spec, interrupted).await {
        Ok(finished) => Some(finished),
        Err(error) => {
            report_run(&model.id, action, &error, diags);
            None
        }
    }
}

fn report_run(id: &str, action: Action, error: &RunError, diags: &mut Diagnostics) {
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
        RunError::Detached { .. } => format!("Stopped waiting for the run of {what}"),
        RunError::Failed(_) => format!("The run of {what} failed"),
        RunError::OtherRun { .. } => format!("Another run of {what} is in progress"),
        RunError::Vanished { .. } | RunError::Kubernetes { .. } | RunError::Results { .. } => {
            format!("The run of {what} did not finish")
        }
    };
    diags.error(summary, error.detail());
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
    run_spec(prior, Action::Create, timeout) != run_spec(planned, Action::Create, timeout)
}

#[async_trait]
impl Backend<ContainerRunner> for Direct {
    async fn create(
        &self,
        op: &mut Operation,
        planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        // Why nothing in state on failure: the run's Job name is a function of its inputs, so
        // the next apply of the same inputs finds an interrupted run by itself.
        let finished = run_once(op, planned, Action::Create, diags)
            .await
            .ok_or(Failed::Nothing)?;
        Ok(with_results(planned, finished))
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
        Read::Found(current.clone())
    }

    async fn update(
        &self,
        op: &mut Operation,
        prior: &ContainerRunner,
        planned: &ContainerRunner,
        diags: &mut Diagnostics,
    ) -> Written<ContainerRunner> {
        if !runs_again(prior, planned) {
            return Ok(ContainerRunner {
                outputs: prior.outputs.clone(),
                secret_outputs: prior.secret_outputs.clone(),
                last_run: prior.last_run.clone(),
                ..planned.clone()
            });
        }
        let finished = run_once(op, planned, Action::Create, diags)
            .await
            .ok_or(Failed::Nothing)?;
        Ok(with_results(planned, finished))
    }

    async fn delete(&self, op: &mut Operation, prior: &ContainerRunner, diags: &mut Diagnostics) {
        run_once(op, prior, Action::Destroy, diags).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::resources::container_runner::{Job, RunnerConfigLink};

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
        assert_eq!(spec.job.secret_variables["KEY"], Secret("k3y".into()));
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
