//! `helper collect`, the native sidecar of a run's pod: waits for SIGTERM (Kubernetes sends it
//! once the main container has ended), then reads the result files within the result Secret's
//! limits and writes them, with the run's secrets digest, into the result Secret owned by the
//! Job. It is the only helper step that talks to Kubernetes, with the pod's service account.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use super::{HelperError, Layout};
use crate::runner::MANAGER;
use crate::runner::contract::{
    COMMIT_FILE_NAME as COMMIT_KEY, ERROR_FILE_LIMIT, ERROR_FILE_NAME as ERROR_KEY, JOB_NAME_ENV,
    JOB_UID_ENV, NAMESPACE_ENV, OMITTED_ANNOTATION, OUTPUTS_FILE_NAME as OUTPUTS_KEY,
    OUTPUTS_LIMIT, RESULT_SECRET_ENV, SECRET_OUTPUTS_FILE_NAME as SECRET_OUTPUTS_KEY,
    SECRETS_DIGEST_ENV, SECRETS_DIGEST_KEY, TRUNCATED_ANNOTATION,
};

/// The result files in the order they get their share of the Secret's size: the small ones
/// that explain a run first.
const RESULT_KEYS: [&str; 4] = [COMMIT_KEY, ERROR_KEY, OUTPUTS_KEY, SECRET_OUTPUTS_KEY];

/// The most the commit file may put into the Secret (a commit id is 40 or 64 characters).
const COMMIT_LIMIT: u64 = 256;
/// How long `collect` keeps trying to write the Secret. Why 20 s: Kubernetes kills the sidecar
/// after the pod's grace period, 30 s by default.
pub(super) const WRITE_DEADLINE: Duration = Duration::from_secs(20);

/// Where `collect` writes: from its environment.
#[derive(Debug, Clone, PartialEq)]
struct ResultTarget {
    /// The result Secret's name.
    secret: String,
    /// The namespace.
    namespace: String,
    /// The Job's name.
    job_name: String,
    /// The Job's uid.
    job_uid: String,
    /// The digest of the run's secret values, copied into the results so that a later apply
    /// can tell, once the inputs Secret is gone, which secret values the run used.
    secrets_digest: Option<String>,
}

impl ResultTarget {
    /// Reads [`RESULT_SECRET_ENV`], [`NAMESPACE_ENV`], [`JOB_NAME_ENV`] and [`JOB_UID_ENV`].
    fn from_env() -> Result<Self, HelperError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(HelperError::MissingEnv(name))
        };
        Ok(ResultTarget {
            secret: var(RESULT_SECRET_ENV)?,
            namespace: var(NAMESPACE_ENV)?,
            job_name: var(JOB_NAME_ENV)?,
            job_uid: var(JOB_UID_ENV)?,
            secrets_digest: var(SECRETS_DIGEST_ENV).ok(),
        })
    }
}

/// The result files read for the Secret.
#[derive(Debug, Default, PartialEq)]
struct Collected {
    /// Key → content (`ERROR_FILE` possibly cut).
    data: BTreeMap<String, Vec<u8>>,
    /// Keys of files cut to their limit → their real size in bytes (`ERROR_FILE` only, which is
    /// read by people).
    truncated: BTreeMap<String, u64>,
    /// Keys of files left out because they do not fit → their real size in bytes. Why not cut
    /// them: a cut JSON file is not JSON, and the provider should say that it was too large.
    omitted: BTreeMap<String, u64>,
}

/// Reads the result files that exist in the pod, as bytes (the provider parses them, from the
/// result Secret: `crate::runner::run::results`): the commit and `ERROR_FILE` each cut to its limit,
/// `OUTPUTS_FILE` and `SECRET_OUTPUTS_FILE` whole, together within [`OUTPUTS_LIMIT`], or left
/// out. A file that cannot be read is logged and left out: the others still matter.
fn read_result_files(results: &Path) -> Collected {
    let mut collected = Collected::default();
    let mut outputs_budget = OUTPUTS_LIMIT;
    for key in RESULT_KEYS {
        let path = results.join(key);
        let (limit, cut) = match key {
            COMMIT_KEY => (COMMIT_LIMIT, true),
            ERROR_KEY => (ERROR_FILE_LIMIT, true),
            _ => (outputs_budget, false),
        };
        let mut content = Vec::new();
        let read = fs::File::open(&path).and_then(|file| {
            let size = file.metadata()?.len();
            // Why `take`: a runaway result file must not be read whole into memory.
            file.take(limit + 1).read_to_end(&mut content)?;
            Ok(size)
        });
        let size = match read {
            Ok(size) => size,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                eprintln!("helper collect: cannot read {}: {e}", path.display());
                continue;
            }
        };
        if content.len() as u64 > limit {
            let size = size.max(limit + 1);
            if cut {
                content.truncate(limit as usize);
                collected.truncated.insert(key.to_string(), size);
            } else {
                collected.omitted.insert(key.to_string(), size);
                continue;
            }
        }
        if !cut {
            outputs_budget -= content.len() as u64;
        }
        collected.data.insert(key.to_string(), content);
    }
    collected
}

/// One log line about what was collected: keys and sizes, never content.
fn collected_summary(collected: &Collected) -> String {
    let mut parts: Vec<String> = collected
        .data
        .iter()
        .map(|(key, content)| match collected.truncated.get(key) {
            Some(size) => format!("{key} ({} bytes, truncated from {size})", content.len()),
            None => format!("{key} ({} bytes)", content.len()),
        })
        .chain(collected.omitted.iter().map(|(key, size)| {
            format!("{key} left out ({size} bytes do not fit in the {OUTPUTS_LIMIT} bytes of the outputs)")
        }))
        .collect();
    if parts.is_empty() {
        parts.push("no result files".to_string());
    }
    let absent: Vec<&str> = RESULT_KEYS
        .into_iter()
        .filter(|k| !collected.data.contains_key(*k) && !collected.omitted.contains_key(*k))
        .collect();
    let mut line = format!("collected {}", parts.join(", "));
    if !absent.is_empty() && !collected.data.is_empty() {
        line.push_str(&format!("; absent: {}", absent.join(", ")));
    }
    line
}

/// The result Secret for `collected`, owned by the Job (without blocking its deletion), so it
/// goes when the Job goes.
fn result_secret(target: &ResultTarget, collected: &Collected) -> KubeSecret {
    let sizes = |files: &BTreeMap<String, u64>| {
        files
            .iter()
            .map(|(key, size)| format!("{key}={size}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let annotations: BTreeMap<String, String> = [
        (TRUNCATED_ANNOTATION, &collected.truncated),
        (OMITTED_ANNOTATION, &collected.omitted),
    ]
    .into_iter()
    .filter(|(_, files)| !files.is_empty())
    .map(|(name, files)| (name.to_string(), sizes(files)))
    .collect();
    let annotations = (!annotations.is_empty()).then_some(annotations);
    let mut data: BTreeMap<String, ByteString> = collected
        .data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect();
    if let Some(digest) = &target.secrets_digest {
        data.insert(
            SECRETS_DIGEST_KEY.to_string(),
            ByteString(digest.clone().into_bytes()),
        );
    }
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(target.secret.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                MANAGER.to_string(),
            )])),
            annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".to_string(),
                kind: "Job".to_string(),
                name: target.job_name.clone(),
                uid: target.job_uid.clone(),
                controller: Some(false),
                block_owner_deletion: Some(false),
            }]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data),
        ..KubeSecret::default()
    }
}

/// `helper collect`: waits for SIGTERM, then writes the result files into the result Secret.
pub(super) fn run(layout: &Layout) -> Result<(), HelperError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HelperError::Runtime)?
        .block_on(collect_async(layout))
}

/// The async body of [`run`].
async fn collect_async(layout: &Layout) -> Result<(), HelperError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Why first: the main container may end, and Kubernetes send SIGTERM, right after this
    // container started; as PID 1 without a handler the signal would be dropped, and the
    // sidecar would wait until it is killed.
    let mut terminate = signal(SignalKind::terminate()).map_err(HelperError::Signal)?;
    let target = ResultTarget::from_env()?;
    // Why now: a pod without service account credentials fails here, at its start, rather
    // than after the run.
    let config = kube::Config::incluster().map_err(HelperError::InCluster)?;
    eprintln!(
        "helper collect: waiting for the main container to end; results go to Secret {}/{}",
        target.namespace, target.secret
    );
    terminate.recv().await;
    let collected = read_result_files(&layout.results);
    eprintln!("helper collect: {}", collected_summary(&collected));
    let client = kube::Client::try_from(config).map_err(HelperError::Client)?;
    let secret = result_secret(&target, &collected);
    let timeout = || HelperError::WriteTimeout {
        namespace: target.namespace.clone(),
        name: target.secret.clone(),
    };
    tokio::time::timeout(WRITE_DEADLINE, write_secret(client, &target, &secret))
        .await
        .map_err(|_| timeout())?
}

/// Creates the result Secret, retrying transient failures; replaces it when it exists (a
/// retried pod of the same Job).
async fn write_secret(
    client: kube::Client,
    target: &ResultTarget,
    secret: &KubeSecret,
) -> Result<(), HelperError> {
    let api: Api<KubeSecret> = Api::namespaced(client, &target.namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..PostParams::default()
    };
    let failed = |source| HelperError::WriteSecret {
        namespace: target.namespace.clone(),
        name: target.secret.clone(),
        source,
    };
    loop {
        match api.create(&params, secret).await {
            Ok(_) => {
                eprintln!("helper collect: wrote Secret {}", target.secret);
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 409 => break,
            Err(e) if is_transient(&e) => {
                eprintln!("helper collect: writing the Secret failed, retrying: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(failed(e)),
        }
    }
    // Why PUT and no GET: the Job's service account may only create Secrets (Humanitec's
    // runner RBAC); a replace is tried, and without `update` the earlier attempt's results
    // stay. An unconditional update needs no resourceVersion, so nothing is read first.
    eprintln!(
        "helper collect: Secret {} exists (an earlier attempt of this Job); replacing it",
        target.secret
    );
    match api.replace(&target.secret, &params, secret).await {
        Ok(_) => {
            eprintln!("helper collect: replaced Secret {}", target.secret);
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            eprintln!(
                "helper collect: may not replace Secret {} (no `update` on secrets); it keeps the earlier results",
                target.secret
            );
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

/// Whether a failed write may succeed when tried again: no answer, or the server's own
/// trouble.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ResultTarget {
        ResultTarget {
            secret: "run-result".into(),
            namespace: "ns".into(),
            job_name: "run".into(),
            job_uid: "uid-1".into(),
            secrets_digest: None,
        }
    }

    #[test]
    fn results_are_read_within_the_limits() {
        let results = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_result_files(results.path()), Collected::default());
        assert_eq!(
            collected_summary(&Collected::default()),
            "collected no result files"
        );

        fs::write(results.path().join(OUTPUTS_KEY), r#"{"a": 1}"#).expect("outputs");
        fs::write(results.path().join(ERROR_KEY), "boom\n").expect("error");
        let collected = read_result_files(results.path());
        assert_eq!(
            collected.data.keys().collect::<Vec<_>>(),
            [ERROR_KEY, OUTPUTS_KEY]
        );
        assert_eq!(
            collected_summary(&collected),
            "collected error.txt (5 bytes), outputs.json (8 bytes); absent: commit, secret-outputs.json"
        );

        // Outputs up to the limit come back whole; a file that does not fit is left out, with
        // its size; ERROR_FILE is cut.
        let whole = vec![b'x'; OUTPUTS_LIMIT as usize - 5];
        fs::write(results.path().join(OUTPUTS_KEY), &whole).expect("outputs");
        fs::write(results.path().join(SECRET_OUTPUTS_KEY), b"{\"a\": \"b\"}").expect("secret");
        let long_error = vec![b'e'; ERROR_FILE_LIMIT as usize + 1];
        fs::write(results.path().join(ERROR_KEY), &long_error).expect("error");
        let collected = read_result_files(results.path());
        assert_eq!(collected.data[OUTPUTS_KEY].len(), whole.len());
        assert_eq!(
            collected.omitted,
            BTreeMap::from([(SECRET_OUTPUTS_KEY.to_string(), 10)])
        );
        assert_eq!(
            collected.data[ERROR_KEY].len() as u64,
            ERROR_FILE_LIMIT,
            "ERROR_FILE is cut"
        );
        assert_eq!(
            collected.truncated,
            BTreeMap::from([(ERROR_KEY.to_string(), ERROR_FILE_LIMIT + 1)])
        );
        let summary = collected_summary(&collected);
        assert!(
            summary.contains("secret-outputs.json left out (10 bytes do not fit"),
            "{summary}"
        );
        let total: u64 = collected.data.values().map(|v| v.len() as u64).sum();
        assert!(total + 64 <= 1024 * 1024, "the Secret's data fits in 1 MiB");
    }

    #[test]
    fn the_result_secret_is_owned_by_the_job() {
        let collected = Collected {
            data: BTreeMap::from([(OUTPUTS_KEY.to_string(), b"{}".to_vec())]),
            ..Collected::default()
        };
        let secret = serde_json::to_value(result_secret(&target(), &collected)).expect("JSON");
        assert_eq!(
            secret,
            serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {
                    "name": "run-result", "namespace": "ns",
                    "labels": {"app.kubernetes.io/managed-by": "terraform-provider-humanitec"},
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "run",
                        "uid": "uid-1", "controller": false, "blockOwnerDeletion": false}]
                },
                "data": {"outputs.json": "e30="}
            })
        );
        let omitted = Collected {
            omitted: BTreeMap::from([(OUTPUTS_KEY.to_string(), 2_000_000)]),
            ..collected
        };
        let with_digest = ResultTarget {
            secrets_digest: Some("d1g3st".into()),
            ..target()
        };
        let secret = result_secret(&with_digest, &omitted);
        assert_eq!(
            secret.metadata.annotations,
            Some(BTreeMap::from([(
                OMITTED_ANNOTATION.to_string(),
                "outputs.json=2000000".to_string()
            )]))
        );
        let data = secret.data.unwrap_or_default();
        assert_eq!(data[SECRETS_DIGEST_KEY].0, b"d1g3st");
    }
}
