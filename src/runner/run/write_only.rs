//! The Secret that keeps a resource's write-only values between its runs.
//!
//! Terraform sends a write-only value only while it applies the configuration that holds it,
//! and never stores it; the destroy run, later, needs it all the same. So a create or update
//! run that gets write-only values first writes them into a Secret of the resource's own in the
//! Job's namespace (`<id>-write-only`, labelled as the provider's, its versions in an
//! annotation), the destroy run reads them back from it, and the Secret goes once the destroy
//! run has completed, or once a run no longer has write-only values. Whoever may read Secrets
//! in that namespace may read them, as with the inputs Secret of every run.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PostParams};
use serde_json::json;

use super::{Run, RunError, delete_secret_in, is_status, kube_error, patch_params, retried};
use crate::runner::{MANAGER, WriteOnlyValues, naming};

/// The Secret's key of the values (JSON).
const VALUES_KEY: &str = "values.json";

/// The Secret's annotation with the versions of the values it holds (JSON), for people.
const VERSIONS_ANNOTATION: &str = "terraform-provider-humanitec/write-only-versions";

/// How many times a request that got no answer is sent again.
const TRIES: u32 = 5;

impl Run {
    fn write_only_name(&self) -> String {
        naming::write_only_secret_name(&self.spec.resource_id)
    }

    /// Writes `values` into the resource's Secret, creating it or replacing its values.
    pub(super) async fn keep_write_only(&self, values: &WriteOnlyValues) -> Result<(), RunError> {
        let name = self.write_only_name();
        let what = || format!("writing Secret {}/{name}", self.namespace);
        // Serializing plain data into JSON cannot fail.
        let text = serde_json::to_vec(values).unwrap_or_default();
        let versions = serde_json::to_string(&self.spec.write_only.versions).unwrap_or_default();
        let mut labels = naming::labels(&self.spec);
        labels.remove(naming::ACTION_LABEL);
        let secret = KubeSecret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([
                    (
                        naming::RESOURCE_ID_ANNOTATION.to_string(),
                        self.spec.resource_id.clone(),
                    ),
                    (VERSIONS_ANNOTATION.to_string(), versions.clone()),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([(
                VALUES_KEY.to_string(),
                ByteString(text.clone()),
            )])),
            ..KubeSecret::default()
        };
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        };
        match retried(TRIES, || self.secrets.create(&params, &secret)).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                // Why a merge patch suffices: all values are one key, replaced whole.
                let patch = json!({
                    "metadata": {"annotations": {VERSIONS_ANNOTATION: versions}},
                    "data": {VALUES_KEY: ByteString(text)},
                });
                let (params, patch) = (patch_params(), Patch::Merge(&patch));
                retried(TRIES, || self.secrets.patch(&name, &params, &patch))
                    .await
                    .map(drop)
                    .map_err(kube_error(what()))
            }
            Err(e) => Err(kube_error(what())(e)),
        }
    }

    /// The write-only values kept for the resource.
    pub(super) async fn kept_write_only(&self) -> Result<WriteOnlyValues, RunError> {
        let name = self.write_only_name();
        let found = retried(TRIES, || self.secrets.get_opt(&name))
            .await
            .map_err(kube_error(format!(
                "reading Secret {}/{name}",
                self.namespace
            )))?;
        let values = found
            .and_then(|s| s.data)
            .and_then(|d| d.get(VALUES_KEY).cloned())
            .and_then(|text| serde_json::from_slice(&text.0).ok());
        values.ok_or_else(|| RunError::WriteOnlyGone {
            namespace: self.namespace.clone(),
            secret: name,
        })
    }

    /// Deletes the resource's Secret of write-only values, if there is one.
    pub(super) async fn forget_write_only(&self) {
        delete_secret_in(&self.secrets, &self.namespace, &self.write_only_name()).await;
    }
}
