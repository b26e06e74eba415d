//! A completed run's results: the result Secret the collect step wrote, read with retries,
//! checked to belong to this very Job, and turned into outputs. A Secret that never came, a
//! file left out for its size, or a file that is not a flat JSON object makes the results
//! unreadable, and the run counts as failed; a request that got no answer does not.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;

use super::{Run, RunError, kube_error, retried};
use crate::runner::contract::{
    COMMIT_FILE_NAME, OMITTED_ANNOTATION, OUTPUTS_FILE_NAME, OUTPUTS_LIMIT,
    SECRET_OUTPUTS_FILE_NAME,
};
use crate::runner::{Finished, SecretValue, naming};

/// How many times a read of the result Secret that got no answer is tried.
const TRIES: u32 = 8;

/// How long the provider waits for a result Secret that is not there yet. Why: the collect step
/// writes it as the pod stops, and a Job can be marked complete a moment before that write is
/// visible.
const LATE_RESULTS: Duration = Duration::from_secs(5);

/// Why a completed run's results were not read.
pub(super) enum Unread {
    /// The cluster did not answer; the next operation re-attaches and reads them.
    Transient(kube::Error),
    /// They cannot be read, ever: the run counts as failed.
    Unreadable(String),
}

/// What a run's result Secret says.
#[derive(Debug, Default, PartialEq)]
struct Results {
    outputs: BTreeMap<String, String>,
    secret_outputs: BTreeMap<String, SecretValue>,
    commit: Option<String>,
}

pub(super) fn text_of(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key)
        .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
}

/// Whether `secret` was written for the Job with this uid (not for an earlier Job of the same
/// name).
fn owned_by(secret: &KubeSecret, uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.uid == uid)
}

impl Run {
    /// The data of the result Secret of Job `job` in `namespace`, if the collect step wrote it.
    pub(super) async fn result_data(
        &self,
        namespace: &str,
        job: &str,
    ) -> Result<Option<BTreeMap<String, ByteString>>, RunError> {
        let name = naming::result_secret_name(job);
        let secrets: Api<KubeSecret> = Api::namespaced(self.client.clone(), namespace);
        let found = retried(TRIES, || secrets.get_opt(&name))
            .await
            .map_err(kube_error(format!("reading Secret {namespace}/{name}")))?;
        Ok(found.map(|s| s.data.unwrap_or_default()))
    }

    /// The results of the completed Job `job`.
    pub(super) async fn results(&self, job: &Job) -> Result<Finished, Unread> {
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let secret_name = naming::result_secret_name(&name);
        let secrets: Api<KubeSecret> = Api::namespaced(self.client.clone(), &namespace);
        let started = tokio::time::Instant::now();
        let secret = loop {
            let found = retried(TRIES, || secrets.get_opt(&secret_name))
                .await
                .map_err(Unread::Transient)?;
            match found {
                Some(secret) if owned_by(&secret, &uid) => break secret,
                _ if started.elapsed() < LATE_RESULTS => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ => {
                    let why = match self.collect_error().await {
                        Some(error) => format!("the collect step failed: {error}"),
                        None => "the log of its collect container says why".to_string(),
                    };
                    return Err(Unread::Unreadable(format!(
                        "its result Secret {secret_name} was never written; {why}"
                    )));
                }
            }
        };
        if let Some(omitted) = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OMITTED_ANNOTATION))
        {
            return Err(Unread::Unreadable(omitted_text(omitted)));
        }
        let results = results_from_secret_data(&secret.data.unwrap_or_default())
            .map_err(Unread::Unreadable)?;
        let status = job.status.clone().unwrap_or_default();
        let time = |t: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.map(|t| t.0.to_string()).unwrap_or_default()
        };
        Ok(Finished {
            job_name: name,
            started_at: time(status.start_time),
            finished_at: time(status.completion_time),
            commit: results.commit,
            outputs: results.outputs,
            secret_outputs: results.secret_outputs,
        })
    }
}

/// The words for result files the collect step left out (`key=bytes,…`).
fn omitted_text(omitted: &str) -> String {
    let files: Vec<String> = omitted
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(key, size)| {
            let file = match key {
                OUTPUTS_FILE_NAME => "OUTPUTS_FILE",
                SECRET_OUTPUTS_FILE_NAME => "SECRET_OUTPUTS_FILE",
                other => other,
            };
            format!("{file} is {size} bytes")
        })
        .collect();
    format!(
        "{}, more than fits: OUTPUTS_FILE and SECRET_OUTPUTS_FILE may take {OUTPUTS_LIMIT} bytes \
         (960 KiB) together, since they come back in a Kubernetes Secret (at most 1 MiB); keep \
         large data elsewhere (a bucket, a ConfigMap of your own) and output where it is",
        files.join(" and ")
    )
}

/// Parses the result Secret's data, which `helper collect` copied from the result files as
/// they were. Outputs are flat JSON objects; a string value is taken as it
/// is, any other value as its JSON text (`3`, `true`, `["a"]`), since the attributes are maps
/// of strings.
fn results_from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Results, String> {
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
        outputs: outputs(OUTPUTS_FILE_NAME, "OUTPUTS_FILE")?,
        secret_outputs: outputs(SECRET_OUTPUTS_FILE_NAME, "SECRET_OUTPUTS_FILE")?
            .into_iter()
            .map(|(k, v)| (k, SecretValue(v)))
            .collect(),
        commit: text_of(data, COMMIT_FILE_NAME)
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn results_are_flat_maps_of_strings_and_bad_files_are_named_without_values() {
        let results = results_from_secret_data(&data(&[
            (
                OUTPUTS_FILE_NAME,
                r#"{"bucket": "b-1", "count": 3, "tags": ["a"]}"#,
            ),
            (SECRET_OUTPUTS_FILE_NAME, r#"{"key": "s3cr3t"}"#),
            (COMMIT_FILE_NAME, "abc123\n"),
        ]))
        .unwrap();
        assert_eq!(results.outputs["bucket"], "b-1");
        assert_eq!(results.outputs["count"], "3");
        assert_eq!(results.outputs["tags"], r#"["a"]"#);
        assert_eq!(results.secret_outputs["key"], SecretValue("s3cr3t".into()));
        assert_eq!(results.commit.as_deref(), Some("abc123"));

        assert_eq!(
            results_from_secret_data(&data(&[])).unwrap(),
            Results::default()
        );
        let bad =
            results_from_secret_data(&data(&[(SECRET_OUTPUTS_FILE_NAME, "s3cr3t")])).unwrap_err();
        assert!(bad.starts_with("SECRET_OUTPUTS_FILE is not JSON"), "{bad}");
        assert!(!bad.contains("s3cr3t"));
        let list = results_from_secret_data(&data(&[(OUTPUTS_FILE_NAME, "[1]")])).unwrap_err();
        assert_eq!(list, "OUTPUTS_FILE is not a JSON object");
    }

    #[test]
    fn files_left_out_are_named_with_their_size_and_the_limit() {
        let text = omitted_text("outputs.json=1100000");
        assert!(
            text.starts_with("OUTPUTS_FILE is 1100000 bytes, more than fits"),
            "{text}"
        );
        assert!(text.contains("983040 bytes"), "{text}");
    }
}
