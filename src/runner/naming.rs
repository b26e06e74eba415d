//! The deterministic names, labels and annotations of what a run creates, and the hashes they
//! come from.
//!
//! A run is named after its inputs: the same [`RunSpec`] always gives the same Job name, so a
//! provider that lost track of a run (a crash, a timeout) finds it again instead of starting a
//! second one. Secret values are not part of the name; their digest travels in the inputs Secret
//! only, where [`secrets_digest`] lets a re-attaching provider tell whether they changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::{Value, json};

use super::{MANAGER, RunSpec};

/// The standard label naming what manages an object; its value is [`MANAGER`].
pub(crate) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The standard label naming an object's role; its value is [`COMPONENT`].
pub(crate) const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// The value of [`COMPONENT_LABEL`] on everything a run creates.
pub(crate) const COMPONENT: &str = "container-runner";

/// The label with the container runner's id, sanitized to a label value.
pub(crate) const RESOURCE_ID_LABEL: &str = "terraform-provider-humanitec/resource-id";

/// The label with the run's action (`create` or `destroy`).
pub(crate) const ACTION_LABEL: &str = "terraform-provider-humanitec/action";

/// The annotation with the container runner's id as the user wrote it.
pub(crate) const RESOURCE_ID_ANNOTATION: &str = "terraform-provider-humanitec/resource-id";

/// The annotation with the container runner's resource type.
pub(crate) const RESOURCE_TYPE_ANNOTATION: &str = "terraform-provider-humanitec/resource-type";

/// The annotation with the id of the runner config the run uses.
pub(crate) const RUNNER_CONFIG_ANNOTATION: &str = "terraform-provider-humanitec/runner-config";

/// The annotation with the full [`inputs_hash`] of the run: the transition it makes.
pub(crate) const INPUTS_HASH_ANNOTATION: &str = "terraform-provider-humanitec/inputs-hash";

/// The annotation with the Job name of the run before this one (empty for the first run of a
/// resource): which state the run started from.
pub(crate) const PREVIOUS_RUN_ANNOTATION: &str = "terraform-provider-humanitec/previous-run";

/// The longest Job name. Why 52 and not 63: the Job controller copies the Job name into the
/// `batch.kubernetes.io/job-name` label of its pods, whose value is limited to 63 characters,
/// and Kubernetes itself truncates Job names longer than 52 when it names their pods (the name,
/// `-` and 5 random characters); 52 keeps every derived name whole.
const MAX_JOB_NAME: usize = 52;

/// The longest label value (a DNS-1123 label).
const MAX_LABEL_VALUE: usize = 63;

/// How many hex characters of the inputs hash end the Job name.
const NAME_HASH_CHARS: usize = 10;

/// The id part of a name when nothing of the resource id survives sanitizing.
const FALLBACK_ID: &str = "run";

/// Lowercase hex SHA-256 of everything that defines the transition a run makes except secret
/// values, the timeout and the attempt: its non-secret inputs, its action and the run before
/// it. A new value of any of these is a new run.
pub(crate) fn inputs_hash(spec: &RunSpec) -> String {
    let job = &spec.job;
    // Why only the names of secret variables and the paths of secret files: their values must
    // not be derivable from a name anyone can list, and [`secrets_digest`] covers them.
    let source = spec.source.as_ref().map(|s| {
        json!({
            "url": s.url,
            "reference": s.reference,
            "path": s.path,
            "username": s.username,
            "password": s.password.is_some(),
            "ssh_key": s.ssh_key.is_some(),
        })
    });
    let canonical = json!({
        "action": spec.action.name(),
        "resource_id": spec.resource_id,
        "resource_type": spec.resource_type,
        "runner_config_id": spec.runner_config_id,
        "helper_image": spec.helper_image,
        "job": {
            "image": job.image,
            "command": job.command,
            "shared_directory": job.shared_directory,
            "namespace": job.namespace,
            "service_account": job.service_account,
            "pod_template": job.pod_template,
            "variables": job.variables,
            "secret_variables": job.secret_variables.keys().collect::<Vec<_>>(),
        },
        "source": source,
        "files": spec.files,
        "secret_files": spec.secret_files.keys().collect::<Vec<_>>(),
        "triggers": spec.triggers,
        "previous_run": spec.previous_run,
        "write_only_versions": spec.write_only.versions,
    });
    sha256_hex(&canonical)
}

/// Lowercase hex SHA-256 of the run's secret values (source password and SSH key, secret files,
/// secret variables). Stored inside the inputs Secret only.
pub(crate) fn secrets_digest(spec: &RunSpec) -> String {
    let secrets = |map: &BTreeMap<String, super::SecretValue>| -> BTreeMap<String, String> {
        map.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
    };
    let source = spec.source.as_ref();
    let canonical = json!({
        "source": {
            "password": source.and_then(|s| s.password.as_ref()).map(|s| &s.0),
            "ssh_key": source.and_then(|s| s.ssh_key.as_ref()).map(|s| &s.0),
        },
        "secret_files": secrets(&spec.secret_files),
        "secret_variables": secrets(&spec.job.secret_variables),
    });
    sha256_hex(&canonical)
}

/// The Job's name: `{id}-{action}-{hash10}`, at most 52 characters, where `{id}` is the
/// sanitized resource id (see [`MAX_JOB_NAME`] for the length).
pub(crate) fn job_name(spec: &RunSpec) -> String {
    let mut hash = inputs_hash(spec);
    // Why the attempt only here: the annotation's hash names the transition, which all
    // attempts at it share.
    if spec.attempt > 0 {
        hash = sha256_hex(&json!([hash, spec.attempt]));
    }
    let suffix = format!("-{}-{}", spec.action.name(), &hash[..NAME_HASH_CHARS]);
    let id = sanitized_id(&spec.resource_id, MAX_JOB_NAME - suffix.len());
    format!("{id}{suffix}")
}

/// The name of the Secret that keeps the write-only values of resource `id` between its runs.
pub(crate) fn write_only_secret_name(id: &str) -> String {
    const SUFFIX: &str = "-write-only";
    // Why 253: a Secret's name is a DNS subdomain.
    format!("{}{SUFFIX}", sanitized_id(id, 253 - SUFFIX.len()))
}

/// The name of a run's inputs Secret.
pub(crate) fn inputs_secret_name(job: &str) -> String {
    format!("{job}-inputs")
}

/// The name of the Secret the `collect` sidecar writes a run's results into.
pub(crate) fn result_secret_name(job: &str) -> String {
    format!("{job}-result")
}

/// The label selector of everything the runs of resource `id` create.
pub(crate) fn resource_selector(id: &str) -> String {
    format!(
        "{MANAGED_BY_LABEL}={MANAGER},{RESOURCE_ID_LABEL}={}",
        sanitized_id(id, MAX_LABEL_VALUE)
    )
}

/// The labels of everything a run creates: what manages it, its role, the resource and the
/// action.
pub(crate) fn labels(spec: &RunSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
        (COMPONENT_LABEL.to_string(), COMPONENT.to_string()),
        (
            RESOURCE_ID_LABEL.to_string(),
            sanitized_id(&spec.resource_id, MAX_LABEL_VALUE),
        ),
        (ACTION_LABEL.to_string(), spec.action.name().to_string()),
    ])
}

/// The annotations of a run's Job and pod: what labels cannot hold (the id as written, the
/// resource type, the runner config) and the full inputs hash.
pub(crate) fn annotations(spec: &RunSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RESOURCE_ID_ANNOTATION.to_string(), spec.resource_id.clone()),
        (
            RESOURCE_TYPE_ANNOTATION.to_string(),
            spec.resource_type.clone(),
        ),
        (
            RUNNER_CONFIG_ANNOTATION.to_string(),
            spec.runner_config_id.clone(),
        ),
        (INPUTS_HASH_ANNOTATION.to_string(), inputs_hash(spec)),
        (
            PREVIOUS_RUN_ANNOTATION.to_string(),
            spec.previous_run.clone().unwrap_or_default(),
        ),
    ])
}

/// `id` lowercased, each run of characters outside `[a-z0-9]` replaced by one `-`, trimmed of
/// `-` and cut to `max` characters; [`FALLBACK_ID`] when nothing is left.
fn sanitized_id(id: &str, max: usize) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        // Why ASCII only: `char::to_lowercase` maps some non-ASCII letters (the Kelvin sign) to
        // ASCII ones, which would make two different ids look alike for no good reason.
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    // Why cutting is safe by bytes: only ASCII is left.
    let cut = out.trim_matches('-');
    let cut = cut[..cut.len().min(max)].trim_end_matches('-');
    if cut.is_empty() {
        FALLBACK_ID.to_string()
    } else {
        cut.to_string()
    }
}

/// Lowercase hex SHA-256 of a value's JSON text. Canonical because every object in it is a
/// `serde_json::Map` or a `BTreeMap`, so keys come out sorted.
fn sha256_hex(value: &Value) -> String {
    let hash = digest(&SHA256, value.to_string().as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in hash.as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runner::{Action, GitSource, JobSpec, SecretValue};

    /// A run with every input set, for tests that change one input at a time.
    fn spec() -> RunSpec {
        RunSpec {
            resource_id: "postgres-db".into(),
            resource_type: "postgres".into(),
            action: Action::Create,
            runner_config_id: "eu-cluster".into(),
            helper_image: "helper:1".into(),
            helper_resources: Default::default(),
            job: JobSpec {
                image: "ghcr.io/acme/runner:1".into(),
                command: Some(vec!["/bin/run".into()]),
                shared_directory: "/home/runneruser/workspace".into(),
                namespace: "runners".into(),
                service_account: Some("runner".into()),
                pod_template: Some(json!({"spec": {"nodeSelector": {"pool": "runners"}}})),
                variables: BTreeMap::from([("REGION".into(), "eu-west-1".into())]),
                secret_variables: BTreeMap::from([(
                    "TOKEN".into(),
                    SecretValue("s3cr3t-token".into()),
                )]),
            },
            source: Some(GitSource {
                url: "https://github.com/acme/infra".into(),
                reference: Some("main".into()),
                path: Some("modules/db".into()),
                username: Some("bot".into()),
                password: Some(SecretValue("s3cr3t-password".into())),
                ssh_key: None,
                ca_certificates: None,
                known_hosts: None,
            }),
            files: BTreeMap::from([("terraform.tfvars".into(), "size = 1\n".into())]),
            secret_files: BTreeMap::from([(
                "secret.tfvars".into(),
                SecretValue("s3cr3t-file".into()),
            )]),
            triggers: BTreeMap::from([("rotate".into(), "1".into())]),
            timeout: Duration::from_secs(600),
            previous_run: None,
            attempt: 0,
            write_only: Default::default(),
        }
    }

    fn with(change: impl FnOnce(&mut RunSpec)) -> RunSpec {
        let mut s = spec();
        change(&mut s);
        s
    }

    #[test]
    fn sanitizes_and_truncates_ids() {
        let long = "a".repeat(100);
        let cases: Vec<(&str, usize, &str)> = vec![
            ("postgres-db", 63, "postgres-db"),
            ("Postgres_DB", 63, "postgres-db"),
            ("--a..b__c--", 63, "a-b-c"),
            ("ünïcödé", 63, "n-c-d"),
            ("K\u{212A}", 63, "k"),
            ("", 63, "run"),
            ("___", 63, "run"),
            ("é", 63, "run"),
            (&long, 34, &long[..34]),
            ("abc-def", 4, "abc"),
            ("abc-def", 3, "abc"),
        ];
        for (id, max, want) in cases {
            assert_eq!(sanitized_id(id, max), want, "{id:?} at most {max}");
        }
    }

    #[test]
    fn job_names_fit_and_read_well() {
        for id in ["x".repeat(200), "Ab-".repeat(40), "???".into(), "a".into()] {
            for action in [Action::Create, Action::Destroy] {
                let s = with(|s| {
                    s.resource_id = id.clone();
                    s.action = action;
                });
                let name = job_name(&s);
                assert!(name.len() <= MAX_JOB_NAME, "{name}");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{name}"
                );
                assert!(!name.starts_with('-') && !name.contains("--"), "{name}");
                let hash = &inputs_hash(&s)[..NAME_HASH_CHARS];
                assert!(
                    name.ends_with(&format!("-{}-{hash}", action.name())),
                    "{name}"
                );
            }
        }
        let name = job_name(&spec());
        assert!(name.starts_with("postgres-db-create-"), "{name}");
        assert_eq!(name.len(), "postgres-db-create-".len() + NAME_HASH_CHARS);
        assert!(job_name(&with(|s| s.resource_id = "?".into())).starts_with("run-create-"));
    }

    #[test]
    fn hashes_are_deterministic() {
        assert_eq!(inputs_hash(&spec()), inputs_hash(&spec()));
        assert_eq!(secrets_digest(&spec()), secrets_digest(&spec()));
        assert_eq!(job_name(&spec()), job_name(&spec()));
        let hash = inputs_hash(&spec());
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn every_non_secret_input_changes_the_hash() {
        type Change = fn(&mut RunSpec);
        let changes: Vec<(&str, Change)> = vec![
            ("action", |s| s.action = Action::Destroy),
            ("resource_id", |s| s.resource_id = "other".into()),
            ("resource_type", |s| s.resource_type = "mysql".into()),
            ("runner_config_id", |s| s.runner_config_id = "us".into()),
            ("helper_image", |s| s.helper_image = "helper:2".into()),
            ("job.image", |s| s.job.image = "runner:2".into()),
            ("job.command", |s| s.job.command = None),
            ("job.shared_directory", |s| {
                s.job.shared_directory = "/w".into()
            }),
            ("job.namespace", |s| s.job.namespace = "other".into()),
            ("job.service_account", |s| s.job.service_account = None),
            ("job.pod_template", |s| s.job.pod_template = None),
            ("job.variables", |s| {
                s.job.variables.insert("MORE".into(), "1".into());
            }),
            ("job.secret_variables name", |s| {
                let v = s.job.secret_variables.remove("TOKEN").unwrap();
                s.job.secret_variables.insert("TOKEN2".into(), v);
            }),
            ("source", |s| s.source = None),
            ("source.url", |s| {
                s.source.as_mut().unwrap().url = "https://x".into()
            }),
            ("source.reference", |s| {
                s.source.as_mut().unwrap().reference = None
            }),
            ("source.path", |s| s.source.as_mut().unwrap().path = None),
            ("source.username", |s| {
                s.source.as_mut().unwrap().username = None
            }),
            ("source.password set", |s| {
                s.source.as_mut().unwrap().password = None
            }),
            ("source.ssh_key set", |s| {
                s.source.as_mut().unwrap().ssh_key = Some(SecretValue("k".into()));
            }),
            ("files content", |s| {
                s.files
                    .insert("terraform.tfvars".into(), "size = 2\n".into());
            }),
            ("files path", |s| {
                let v = s.files.remove("terraform.tfvars").unwrap();
                s.files.insert("other.tfvars".into(), v);
            }),
            ("secret_files path", |s| {
                let v = s.secret_files.remove("secret.tfvars").unwrap();
                s.secret_files.insert("other.tfvars".into(), v);
            }),
            ("triggers", |s| {
                s.triggers.insert("rotate".into(), "2".into());
            }),
            ("the run before", |s| {
                s.previous_run = Some("s3-create-0123456789".into());
            }),
        ];
        let base = inputs_hash(&spec());
        let base_name = job_name(&spec());
        for (what, change) in changes {
            let changed = with(change);
            assert_ne!(inputs_hash(&changed), base, "{what}");
            assert_ne!(job_name(&changed), base_name, "{what}");
        }
    }

    #[test]
    fn another_attempt_is_another_name_for_the_same_transition() {
        let first = spec();
        let second = with(|s| s.attempt = 1);
        assert_ne!(job_name(&first), job_name(&second));
        assert_eq!(inputs_hash(&first), inputs_hash(&second));
        assert!(job_name(&second).starts_with("postgres-db-create-"));
        assert_eq!(job_name(&second).len(), job_name(&first).len());
    }

    #[test]
    fn secret_values_change_the_digest_not_the_name() {
        type Change = fn(&mut RunSpec);
        let changes: Vec<(&str, Change)> = vec![
            ("source.password", |s| {
                s.source.as_mut().unwrap().password = Some(SecretValue("other".into()));
            }),
            ("secret_files", |s| {
                s.secret_files
                    .insert("secret.tfvars".into(), SecretValue("other".into()));
            }),
            ("job.secret_variables", |s| {
                s.job
                    .secret_variables
                    .insert("TOKEN".into(), SecretValue("other".into()));
            }),
        ];
        let base = spec();
        for (what, change) in changes {
            let changed = with(change);
            assert_eq!(job_name(&changed), job_name(&base), "{what}");
            assert_eq!(annotations(&changed), annotations(&base), "{what}");
            assert_ne!(secrets_digest(&changed), secrets_digest(&base), "{what}");
        }
        let ssh = |key: &str| {
            with(|s| s.source.as_mut().unwrap().ssh_key = Some(SecretValue(key.into())))
        };
        assert_eq!(job_name(&ssh("a")), job_name(&ssh("b")));
        assert_ne!(secrets_digest(&ssh("a")), secrets_digest(&ssh("b")));
    }

    #[test]
    fn the_timeout_is_not_an_input() {
        let longer = with(|s| s.timeout = Duration::from_secs(7200));
        assert_eq!(inputs_hash(&longer), inputs_hash(&spec()));
        assert_eq!(job_name(&longer), job_name(&spec()));
    }

    #[test]
    fn labels_and_annotations() {
        let s = with(|s| s.resource_id = format!("My_DB-{}", "x".repeat(80)));
        let labels = labels(&s);
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGER);
        assert_eq!(labels[COMPONENT_LABEL], COMPONENT);
        assert_eq!(labels[ACTION_LABEL], "create");
        assert_eq!(labels[RESOURCE_ID_LABEL].len(), MAX_LABEL_VALUE);
        assert!(labels[RESOURCE_ID_LABEL].starts_with("my-db-xxx"));
        let annotations = annotations(&s);
        assert_eq!(annotations[RESOURCE_ID_ANNOTATION], s.resource_id);
        assert_eq!(annotations[RESOURCE_TYPE_ANNOTATION], "postgres");
        assert_eq!(annotations[RUNNER_CONFIG_ANNOTATION], "eu-cluster");
        assert_eq!(annotations[INPUTS_HASH_ANNOTATION], inputs_hash(&s));
        assert_eq!(inputs_secret_name("j"), "j-inputs");
        assert_eq!(result_secret_name("j"), "j-result");
    }
}
