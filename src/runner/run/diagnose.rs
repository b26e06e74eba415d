//! Why a run failed or could not start, in words: the reasons a pod cannot run, the Job's
//! failure condition and the containers' exits, and the recent Events. Everything that leaves
//! here passes through the run's redactor.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::ListParams;

use super::Run;
use super::logs::TAIL_LINES;
use crate::runner::contract;

/// How long a pod may stay unschedulable, with no cluster autoscaler scaling up for it, before
/// the run fails. Why not at once: the scheduler's first verdict often comes before a node
/// frees up; why not the timeout: an IaC apply should not hang for 30 minutes on a typo in a
/// node selector.
pub(super) const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(10);

/// How many Events a failure diagnostic shows.
const EVENTS_SHOWN: usize = 10;

/// Container waiting reasons that do not resolve by waiting. Why `ErrImagePull` too: it comes
/// before `ImagePullBackOff`, and a registry that refused once rarely changes its mind within
/// the back-off.
const STUCK_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

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

impl Failure {
    /// The diagnostic's detail; `ran` says whether the run's main container ran (its Job is
    /// kept for inspection) or never started (its Job was deleted).
    pub(super) fn detail(&self, ran: bool) -> String {
        let mut text = format!("{}.", crate::text::capitalized(&self.reason));
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
        let (namespace, job) = (&self.namespace, &self.job);
        if ran {
            text.push_str(&format!(
                "\n\nThe Job {namespace}/{job} is kept until the next operation on this \
                 resource, for inspection (kubectl -n {namespace} logs job/{job} \
                 --all-containers). The next apply runs again."
            ));
        } else {
            text.push_str(&format!(
                "\n\nNothing ran: the Job {namespace}/{job} and its Secrets were deleted. Fix \
                 the cause and apply again."
            ));
        }
        text
    }
}

/// What a failure of one of the provider's own containers needs said: that it is the provider's
/// step, from `helper_image`, and, when its image cannot be pulled, how to mirror the image.
fn helper_hint(container: &str, pull: bool) -> String {
    if container == contract::MAIN_CONTAINER {
        String::new()
    } else if pull {
        format!(
            " ({container} is the provider's own step, from the provider's helper image, which \
             the runner config's helper_image names; every release carries that image as \
             terraform-provider-humanitec-helper_{version}_linux_<arch>.oci.tar: mirror it to a \
             registry your cluster can pull from, e.g. `skopeo copy \
             oci-archive:terraform-provider-humanitec-helper_{version}_linux_amd64.oci.tar \
             docker://registry.example.com/terraform-provider-humanitec-helper:{version}`, and \
             set helper_image to that name)",
            version = env!("CARGO_PKG_VERSION"),
        )
    } else {
        format!(" ({container} is the provider's own step, from the runner config's helper_image)")
    }
}

/// Why a pod cannot run, if waiting will not help: a stuck container, or a failed `prepare`.
pub(super) fn stuck(pod: &Pod) -> Option<String> {
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
            let helper = helper_hint(&container.name, reason.contains("Pull"));
            return Some(format!(
                "container {} is {reason}{}{message}{helper}",
                container.name,
                if message.is_empty() { "" } else { ": " }
            ));
        }
    }
    let prepare = init
        .iter()
        .find(|c| c.name == contract::PREPARE_CONTAINER)?;
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
pub(super) fn unschedulable_message(pod: &Pod) -> Option<String> {
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

/// Why the Job's pod cannot be created, from a warning Event about the Job: the Job controller
/// reports a missing service account, an exceeded quota, a LimitRange or an admission denial
/// as `FailedCreate`, and keeps trying.
pub(super) fn job_warning(event: &Event) -> Option<String> {
    (event.reason.as_deref() == Some("FailedCreate")).then(|| {
        format!(
            "the Job controller cannot create its pod: {}",
            event.message.as_deref().unwrap_or("no reason given").trim()
        )
    })
}

/// Why a pod cannot run, from a warning Event about it: it cannot mount the run's inputs
/// Secret (named `inputs`), which no waiting brings back; or the kubelet failed to pull a
/// container's image, or to configure, create or start a container (reason `Failed`). Why the
/// Events as well as the pod's status: a real kubelet writes the status at its next sync, 10 s
/// or more after the Event.
pub(super) fn pod_warning(event: &Event, inputs: &str) -> Option<String> {
    let message = event.message.as_deref().unwrap_or_default().trim();
    match event.reason.as_deref() {
        Some("FailedMount") if message.contains(inputs) => Some(format!(
            "it cannot mount its inputs Secret {inputs}: {message}"
        )),
        Some("Failed")
            if message.starts_with("Error: ") || message.starts_with("Failed to pull image") =>
        {
            // `spec.containers{main}`, `spec.initContainers{prepare}`. Why only with it: an
            // Event that names no container is left to the pod's status, which does.
            let container = event
                .involved_object
                .field_path
                .as_deref()
                .and_then(|path| path.split_once('{'))
                .and_then(|(_, rest)| rest.strip_suffix('}'))?;
            let pull = message.contains("pull") || message.contains("Pull");
            let helper = helper_hint(container, pull);
            Some(format!("container {container}: {message}{helper}"))
        }
        _ => None,
    }
}

/// Whether the pod's main container has started (it runs, or ran).
pub(super) fn main_started(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.name == contract::MAIN_CONTAINER && has_started(c))
}

/// Whether a container started (ran or is running).
pub(super) fn has_started(container: &ContainerStatus) -> bool {
    container
        .state
        .as_ref()
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
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

impl Run {
    pub(super) async fn scale_up_triggered(&self, pod: &str) -> bool {
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
                log::warn!("listing the events of {object}: {}", super::kube_text(&e));
                Vec::new()
            }
        }
    }

    /// The pods of this run's Job.
    async fn pods_of_job(&self) -> Vec<Pod> {
        let params =
            ListParams::default().labels(&format!("batch.kubernetes.io/job-name={}", self.name()));
        match self.pods.list(&params).await {
            Ok(list) => list.items,
            Err(e) => {
                log::warn!(
                    "listing the pods of Job {}: {}",
                    self.name(),
                    super::kube_text(&e)
                );
                Vec::new()
            }
        }
    }

    /// The recent Events of the Job and its pods, oldest first, redacted.
    async fn recent_events(&self) -> Vec<String> {
        let mut objects = vec![self.name()];
        objects.extend(
            self.pods_of_job()
                .await
                .into_iter()
                .filter_map(|p| p.metadata.name),
        );
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

    /// A failure with everything that explains it: `ERROR_FILE`, the log's tail, the Events.
    pub(super) async fn failure(&self, reason: String) -> Failure {
        let name = self.name();
        let error_file = self
            .result_data(&self.namespace, &name)
            .await
            .ok()
            .flatten()
            .and_then(|data| super::results::text_of(&data, contract::ERROR_FILE_NAME))
            .filter(|text| !text.trim().is_empty())
            .map(|text| self.redactor.redact(&text).into_owned());
        let log_tail = self.logs.tail(TAIL_LINES);
        Failure {
            namespace: self.namespace.clone(),
            job: name,
            reason: self.redactor.redact(&reason).into_owned(),
            error_file,
            log_tail,
            events: self.recent_events().await,
        }
    }

    /// Why a Job failed: its condition, and how its containers exited.
    pub(super) async fn failure_reason(&self, job: &Job) -> String {
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
        for pod in self.pods_of_job().await {
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
                if done.exit_code != 0 && container.name != contract::COLLECT_CONTAINER {
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
        text
    }

    /// What the collect step said when it could not write the results: its termination
    /// message, when it ended with an error.
    pub(super) async fn collect_error(&self) -> Option<String> {
        self.pods_of_job().await.into_iter().find_map(|pod| {
            let status = pod.status?;
            let collect = status
                .init_container_statuses?
                .into_iter()
                .find(|c| c.name == contract::COLLECT_CONTAINER)?;
            let done = collect
                .last_state
                .and_then(|s| s.terminated)
                .into_iter()
                .chain(collect.state.and_then(|s| s.terminated))
                .find(|t| t.exit_code != 0)?;
            let message = done.message.unwrap_or_default();
            let message = message.trim();
            (!message.is_empty()).then(|| self.redactor.redact(message).into_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ObjectReference,
        PodCondition, PodStatus,
    };

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
        let first_pull = pod_with(vec![], vec![waiting("main", "ErrImagePull")]);
        assert!(stuck(&first_pull).unwrap().contains("is ErrImagePull"));
        let helper = pod_with(vec![waiting("prepare", "ImagePullBackOff")], vec![]);
        let text = stuck(&helper).unwrap();
        assert!(text.contains("the provider's own step"), "{text}");
        assert!(text.contains("helper_image"), "{text}");
        assert!(text.contains("mirror it"), "{text}");
        assert!(
            text.contains("skopeo copy oci-archive:terraform-provider-humanitec-helper_"),
            "{text}"
        );
        let creating = pod_with(vec![], vec![waiting("main", "ContainerCreating")]);
        assert_eq!(stuck(&creating), None);
        let checkout = pod_with(vec![terminated(contract::PREPARE_CONTAINER, 1)], vec![]);
        assert!(
            stuck(&checkout)
                .unwrap()
                .contains("code 1: fetching refs/heads/nope failed")
        );
        let prepared = pod_with(vec![terminated(contract::PREPARE_CONTAINER, 0)], vec![]);
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

    fn warning(kind: &str, reason: &str, message: &str) -> Event {
        Event {
            reason: Some(reason.into()),
            message: Some(message.into()),
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                ..ObjectReference::default()
            },
            ..Event::default()
        }
    }

    #[test]
    fn warnings_that_mean_a_pod_will_never_run_are_recognised() {
        let sa = warning(
            "Job",
            "FailedCreate",
            "Error creating: pods \"x\" is forbidden: error looking up service account runs/nope",
        );
        let text = job_warning(&sa).unwrap();
        assert!(
            text.starts_with("the Job controller cannot create its pod: Error creating"),
            "{text}"
        );
        assert_eq!(
            job_warning(&warning("Job", "BackoffLimitExceeded", "x")),
            None
        );

        let mount = warning(
            "Pod",
            "FailedMount",
            "MountVolume.SetUp failed for volume \"inputs\" : secret \"s3-create-0123456789-inputs\" not found",
        );
        let text = pod_warning(&mount, "s3-create-0123456789-inputs").unwrap();
        assert!(text.contains("cannot mount its inputs Secret"), "{text}");
        let other_volume = warning("Pod", "FailedMount", "volume \"cache\" not attached yet");
        assert_eq!(
            pod_warning(&other_volume, "s3-create-0123456789-inputs"),
            None
        );

        let mut pull = warning(
            "Pod",
            "Failed",
            "Failed to pull image \"localhost/nope:1\": not found",
        );
        pull.involved_object.field_path = Some("spec.containers{main}".into());
        let text = pod_warning(&pull, "x-inputs").unwrap();
        assert_eq!(
            text,
            "container main: Failed to pull image \"localhost/nope:1\": not found"
        );
        let mut config = warning(
            "Pod",
            "Failed",
            "Error: secret \"no-such-secret\" not found",
        );
        config.involved_object.field_path = Some("spec.initContainers{prepare}".into());
        let text = pod_warning(&config, "x-inputs").unwrap();
        assert!(
            text.starts_with("container prepare: Error: secret"),
            "{text}"
        );
        assert!(text.contains("helper_image"), "{text}");
        let probe = warning("Pod", "Unhealthy", "Readiness probe failed");
        assert_eq!(pod_warning(&probe, "x-inputs"), None);
    }
}
