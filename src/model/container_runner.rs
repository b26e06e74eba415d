//! The container runner's model: one field per attribute of `humanitec_container_runner`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use terraform_plugin::framework::model::{
    Sensitive, list_without_nulls, map_without_nulls, null_as_default,
};
use terraform_plugin::framework::timeouts::Timeouts;

use super::runner_config::{HelperResources, Kubernetes};

/// A container runner: one field per attribute of its schema (`crate::provider::resources`).
/// Fields of required attributes read an unknown as empty, since plans are read into the model
/// too.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct ContainerRunner {
    /// The definition id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) id: String,
    /// The display name (see [`ContainerRunner::name`]).
    pub(crate) name: Option<String>,
    /// The resource type the definition provisions.
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    pub(crate) type_: String,
    /// The cloud account whose credentials the runner gets.
    pub(crate) driver_account: Option<String>,
    /// Matching criteria.
    pub(crate) criteria: Option<Vec<MatchingCriterion>>,
    /// The Job.
    pub(crate) job: Option<Job>,
    /// The git source.
    pub(crate) source: Option<Source>,
    /// Inline files, path → content.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) files: Option<BTreeMap<String, String>>,
    /// Secret inline files; a null content is a secret whose value is not known here.
    pub(crate) secret_files: Option<BTreeMap<String, Option<Sensitive<String>>>>,
    /// Write-only secret files: set only while a create or update runs (never in state).
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) secret_files_wo: Option<BTreeMap<String, Sensitive<String>>>,
    /// The version of `secret_files_wo`.
    pub(crate) secret_files_wo_version: Option<String>,
    /// Cloud credentials for the runner.
    pub(crate) credentials_config: Option<CredentialsConfig>,
    /// The runner config it runs with.
    pub(crate) runner_config: Option<RunnerConfigLink>,
    /// Delete even while in use.
    pub(crate) force_delete: Option<bool>,
    /// Where Humanitec keeps each secret input, by dotted input path; read from the API only.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) secret_refs: Option<BTreeMap<String, SecretRef>>,
    /// The definition's driver as Humanitec reports it.
    pub(crate) driver_type: Option<String>,
    /// Driver inputs the definition has that this resource does not manage.
    #[serde(default, deserialize_with = "list_without_nulls")]
    pub(crate) unmanaged_inputs: Option<Vec<String>>,
    /// Time limits.
    pub(crate) timeouts: Option<Timeouts>,
    /// Direct mode: values whose change re-runs `create`.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) triggers: Option<BTreeMap<String, String>>,
    /// Direct mode: what the last run wrote to `OUTPUTS_FILE`.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) outputs: Option<BTreeMap<String, String>>,
    /// Direct mode: what the last run wrote to `SECRET_OUTPUTS_FILE`.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) secret_outputs: Option<BTreeMap<String, Sensitive<String>>>,
    /// Direct mode: the last run.
    pub(crate) last_run: Option<LastRun>,
}

/// The computed `last_run` attribute: the run whose results the state holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct LastRun {
    /// The Job's name.
    pub(crate) job_name: Option<String>,
    /// The Job's namespace.
    pub(crate) namespace: Option<String>,
    /// When the Job started (RFC 3339).
    pub(crate) started_at: Option<String>,
    /// When it completed (RFC 3339).
    pub(crate) finished_at: Option<String>,
    /// The commit checked out, when there was a source.
    pub(crate) commit: Option<String>,
}

/// The `job` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The runner image.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) image: String,
    /// Overrides the image's entrypoint.
    #[serde(default, deserialize_with = "list_without_nulls")]
    pub(crate) command: Option<Vec<String>>,
    /// Where the shared volume is mounted.
    pub(crate) shared_directory: Option<String>,
    /// The Job's namespace.
    pub(crate) namespace: Option<String>,
    /// The Job pod's service account.
    pub(crate) service_account: Option<String>,
    /// A partial Pod template (YAML) merged into the Job's pod.
    pub(crate) pod_template: Option<String>,
    /// Environment variables.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) variables: Option<BTreeMap<String, String>>,
    /// Secret environment variables; a null value is a secret not known here.
    pub(crate) secret_variables: Option<BTreeMap<String, Option<Sensitive<String>>>>,
    /// Write-only secret environment variables: set only while a create or update runs.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) secret_variables_wo: Option<BTreeMap<String, Sensitive<String>>>,
    /// The version of `secret_variables_wo`.
    pub(crate) secret_variables_wo_version: Option<String>,
}

/// The `source` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Source {
    /// Repository URL.
    pub(crate) url: Option<String>,
    /// Git ref, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    pub(crate) reference: Option<String>,
    /// Sub-directory of the repository.
    pub(crate) path: Option<String>,
    /// User name for HTTPS authentication.
    pub(crate) username: Option<String>,
    /// Password or token for HTTPS authentication.
    pub(crate) password: Option<Sensitive<String>>,
    /// SSH private key, for `git@…` URLs.
    pub(crate) ssh_key: Option<Sensitive<String>>,
    /// The password as a secret store reference.
    pub(crate) password_ref: Option<SecretRef>,
    /// The SSH key as a secret store reference.
    pub(crate) ssh_key_ref: Option<SecretRef>,
    /// Write-only password: set only while a create or update runs (never in state).
    pub(crate) password_wo: Option<Sensitive<String>>,
    /// The version of `password_wo`.
    pub(crate) password_wo_version: Option<String>,
    /// Write-only SSH key: set only while a create or update runs.
    pub(crate) ssh_key_wo: Option<Sensitive<String>>,
    /// The version of `ssh_key_wo`.
    pub(crate) ssh_key_wo_version: Option<String>,
    /// Direct mode: CA certificates (PEM) the `https` server's certificate may chain to.
    pub(crate) ca_certificates: Option<String>,
    /// Direct mode: `known_hosts` lines pinning the `ssh` server's host keys.
    pub(crate) known_hosts: Option<String>,
}

/// A reference to a secret in a secret store registered with the organization: a
/// `password_ref` / `ssh_key_ref` block, or an entry of `secret_refs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct SecretRef {
    /// The secret store id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) store: String,
    /// The secret's key, in the store's format.
    #[serde(rename = "ref", default, deserialize_with = "null_as_default")]
    pub(crate) reference: String,
    /// The secret's version in the store; the latest when unset.
    pub(crate) version: Option<String>,
}

/// The `credentials_config` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct CredentialsConfig {
    /// Environment variable name → credential key.
    #[serde(default, deserialize_with = "map_without_nulls")]
    pub(crate) environment: Option<BTreeMap<String, String>>,
    /// A file to write the credentials to.
    pub(crate) file: Option<String>,
}

/// The `runner_config` attribute: the parts of a runner config that travel with a container
/// runner.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct RunnerConfigLink {
    /// The runner config's id.
    pub(crate) id: Option<String>,
    /// Its `skip_permission_checks`.
    pub(crate) skip_permission_checks: Option<bool>,
    /// How direct mode reaches its cluster.
    pub(crate) kubernetes: Option<Kubernetes>,
    /// The image of the provider's own steps in a direct-mode Job's pod.
    pub(crate) helper_image: Option<String>,
    /// The resources of the provider's own containers in a direct-mode Job's pod.
    pub(crate) helper_resources: Option<HelperResources>,
}

impl ContainerRunner {
    /// The display name: `name`, or the id when it is unset.
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The criteria blocks (none when unset).
    pub(crate) fn criteria(&self) -> &[MatchingCriterion] {
        self.criteria.as_deref().unwrap_or_default()
    }
}

/// A `criteria` block: which resources of the organization the definition provisions. Every part
/// that is unset matches any.
///
/// Why this field order: the derived order sorts criteria as the API's read-back is compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub(crate) struct MatchingCriterion {
    /// Application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<String>,
    /// Environment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_id: Option<String>,
    /// Environment type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env_type: Option<String>,
    /// Resource id in the deployment set, e.g. `modules.my-module.externals.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) res_id: Option<String>,
    /// Resource class; `default` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) class: Option<String>,
}

/// A secret of a container runner: the attributes of each of its forms, where it travels, and
/// where the model holds it.
///
/// Why one table: the schema's checks, the api plan, the definition payload, the reading back of
/// write-only secrets and direct mode's write-only versions all walk the same secrets; a secret
/// added here (and to the model) is seen by each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecretAttribute {
    /// The nested block it is in (none: the top level).
    pub(crate) block: Option<&'static str>,
    /// The plain, sensitive attribute (kept in the state), e.g. `password`.
    pub(crate) name: &'static str,
    /// The write-only attribute, `<name>_wo` (never kept in a plan or the state).
    pub(crate) write_only: &'static str,
    /// The write-only attribute's version, `<name>_wo_version`.
    pub(crate) write_only_version: &'static str,
    /// The block of a reference to a secret store, when the secret may be one.
    pub(crate) reference: Option<&'static str>,
    /// Where the secret is a definition's secret input, as `secret_refs` keys name it: the path
    /// itself, or for a map of secrets the prefix of one path per key (`job.variables.<key>`).
    pub(crate) input: &'static str,
    /// Whether the attribute is a map of secrets by key.
    pub(crate) by_key: bool,
    /// What a runner holds of the secret, in each form.
    pub(crate) held: for<'r> fn(&'r ContainerRunner) -> HeldSecret<'r>,
    /// Where a runner keeps the secret, to change it; with `create`, the block it is in is
    /// created when missing, else a missing block is `None`.
    pub(crate) fields: for<'r> fn(&'r mut ContainerRunner, bool) -> Option<SecretFields<'r>>,
}

/// Where a container runner keeps one secret, in each form, to change it.
#[derive(Debug)]
pub(crate) enum SecretFields<'a> {
    /// A single secret.
    One {
        /// The plain value.
        value: &'a mut Option<Sensitive<String>>,
        /// The write-only value.
        write_only: &'a mut Option<Sensitive<String>>,
        /// The write-only value's version.
        write_only_version: &'a mut Option<String>,
        /// The reference to a secret store.
        reference: &'a mut Option<SecretRef>,
    },
    /// A map of secrets by key.
    ByKey {
        /// The plain values; a null entry is a secret whose value is not known here.
        values: &'a mut Option<BTreeMap<String, Option<Sensitive<String>>>>,
        /// The write-only values.
        write_only: &'a mut Option<BTreeMap<String, Sensitive<String>>>,
        /// The write-only values' version.
        write_only_version: &'a mut Option<String>,
    },
}

impl SecretFields<'_> {
    /// The write-only value's version.
    pub(crate) fn write_only_version(&mut self) -> &mut Option<String> {
        match self {
            SecretFields::One {
                write_only_version, ..
            }
            | SecretFields::ByKey {
                write_only_version, ..
            } => write_only_version,
        }
    }

    /// Clears the write-only value; its version stays.
    pub(crate) fn forget_write_only(self) {
        match self {
            SecretFields::One { write_only, .. } => *write_only = None,
            SecretFields::ByKey { write_only, .. } => *write_only = None,
        }
    }

    /// Clears the value in every form; the write-only version stays.
    pub(crate) fn forget_values(self) {
        match self {
            SecretFields::One {
                value,
                write_only,
                reference,
                ..
            } => {
                *value = None;
                *write_only = None;
                *reference = None;
            }
            SecretFields::ByKey {
                values, write_only, ..
            } => {
                *values = None;
                *write_only = None;
            }
        }
    }
}

/// What a container runner holds of one secret, in each form. A map of secrets holds its values
/// by key; a single secret holds its one value under the key `""`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HeldSecret<'a> {
    /// The plain values; `None` is set, with a value not known here (a null map entry).
    pub(crate) values: Vec<(&'a str, Option<&'a Sensitive<String>>)>,
    /// The write-only values.
    pub(crate) write_only: Vec<(&'a str, &'a Sensitive<String>)>,
    /// The write-only attribute's version.
    pub(crate) write_only_version: Option<&'a String>,
    /// The reference to a secret store.
    pub(crate) reference: Option<&'a SecretRef>,
    /// Whether the attribute (a map of secrets) or the block (of a single secret) is set, if
    /// perhaps empty.
    pub(crate) set: bool,
}

impl<'a> HeldSecret<'a> {
    /// A single secret's forms.
    fn one(
        value: &'a Option<Sensitive<String>>,
        write_only: &'a Option<Sensitive<String>>,
        write_only_version: &'a Option<String>,
        reference: &'a Option<SecretRef>,
    ) -> Self {
        HeldSecret {
            values: value.iter().map(|v| ("", Some(v))).collect(),
            write_only: write_only.iter().map(|v| ("", v)).collect(),
            write_only_version: write_only_version.as_ref(),
            reference: reference.as_ref(),
            set: true,
        }
    }

    /// A map of secrets' forms.
    fn by_key(
        values: &'a Option<BTreeMap<String, Option<Sensitive<String>>>>,
        write_only: &'a Option<BTreeMap<String, Sensitive<String>>>,
        write_only_version: &'a Option<String>,
    ) -> Self {
        HeldSecret {
            values: values
                .iter()
                .flatten()
                .map(|(key, value)| (key.as_str(), value.as_ref()))
                .collect(),
            write_only: write_only
                .iter()
                .flatten()
                .map(|(key, value)| (key.as_str(), value))
                .collect(),
            write_only_version: write_only_version.as_ref(),
            reference: None,
            set: values.is_some(),
        }
    }
}

impl SecretAttribute {
    /// How messages prefix its attributes: `source.`, or nothing at the top level.
    pub(crate) fn prefix(&self) -> &'static str {
        match self.block {
            Some("source") => "source.",
            Some("job") => "job.",
            _ => "",
        }
    }

    /// Every attribute of the secret, in each form: what a definition's plain `values` leave out.
    pub(crate) fn attributes(&self) -> impl Iterator<Item = &'static str> {
        [self.name, self.write_only, self.write_only_version]
            .into_iter()
            .chain(self.reference)
    }

    /// The forms a write-only value conflicts with: the plain one and the reference.
    pub(crate) fn conflicts(&self) -> Vec<&'static str> {
        std::iter::once(self.name).chain(self.reference).collect()
    }

    /// The key of its write-only version among a direct-mode run's inputs:
    /// `source.password`, `job.secret_variables`, `secret_files`.
    pub(crate) fn dotted_name(&self) -> String {
        format!("{}{}", self.prefix(), self.name)
    }

    /// The key of the secret input at path `at` (`["job", "variables", "TOKEN"]`) if it is this
    /// secret's: the map's key, or `""` for a single secret.
    pub(crate) fn key_at<'p>(&self, at: &'p [String]) -> Option<&'p str> {
        let parts = self.input.split('.').count();
        let (path, rest) = at.split_at_checked(parts)?;
        if !path.iter().map(String::as_str).eq(self.input.split('.')) {
            return None;
        }
        match (self.by_key, rest) {
            (true, [key]) => Some(key.as_str()),
            (false, []) => Some(""),
            _ => None,
        }
    }

    /// Whether the dotted secret input path `path` (`job.variables.TOKEN`) is this secret's.
    pub(crate) fn holds_input(&self, path: &str) -> bool {
        if self.by_key {
            path.strip_prefix(self.input)
                .is_some_and(|rest| rest.starts_with('.'))
        } else {
            path == self.input
        }
    }
}

/// The secrets of a container runner: the one list of what is secret. The api payloads, the
/// plan, validation and the write-only versions read it; the schema's declarations and direct
/// mode's run are written out field by field and checked against it by tests
/// (`the_schema_declares_every_form_of_each_secret_of_the_table_and_no_other`,
/// `every_secret_of_the_table_reaches_the_run`), so a row added here fails until both have it.
pub(crate) const SECRETS: [SecretAttribute; 4] = [
    SecretAttribute {
        block: Some("source"),
        name: "password",
        write_only: "password_wo",
        write_only_version: "password_wo_version",
        reference: Some("password_ref"),
        input: "source.password",
        by_key: false,
        held: |r| {
            r.source.as_ref().map_or_else(HeldSecret::default, |s| {
                HeldSecret::one(
                    &s.password,
                    &s.password_wo,
                    &s.password_wo_version,
                    &s.password_ref,
                )
            })
        },
        fields: |r, create| {
            let s = if create {
                r.source.get_or_insert_with(Source::default)
            } else {
                r.source.as_mut()?
            };
            Some(SecretFields::One {
                value: &mut s.password,
                write_only: &mut s.password_wo,
                write_only_version: &mut s.password_wo_version,
                reference: &mut s.password_ref,
            })
        },
    },
    SecretAttribute {
        block: Some("source"),
        name: "ssh_key",
        write_only: "ssh_key_wo",
        write_only_version: "ssh_key_wo_version",
        reference: Some("ssh_key_ref"),
        input: "source.ssh_key",
        by_key: false,
        held: |r| {
            r.source.as_ref().map_or_else(HeldSecret::default, |s| {
                HeldSecret::one(
                    &s.ssh_key,
                    &s.ssh_key_wo,
                    &s.ssh_key_wo_version,
                    &s.ssh_key_ref,
                )
            })
        },
        fields: |r, create| {
            let s = if create {
                r.source.get_or_insert_with(Source::default)
            } else {
                r.source.as_mut()?
            };
            Some(SecretFields::One {
                value: &mut s.ssh_key,
                write_only: &mut s.ssh_key_wo,
                write_only_version: &mut s.ssh_key_wo_version,
                reference: &mut s.ssh_key_ref,
            })
        },
    },
    SecretAttribute {
        block: Some("job"),
        name: "secret_variables",
        write_only: "secret_variables_wo",
        write_only_version: "secret_variables_wo_version",
        reference: None,
        input: "job.variables",
        by_key: true,
        held: |r| {
            r.job.as_ref().map_or_else(HeldSecret::default, |j| {
                HeldSecret::by_key(
                    &j.secret_variables,
                    &j.secret_variables_wo,
                    &j.secret_variables_wo_version,
                )
            })
        },
        fields: |r, create| {
            let j = if create {
                r.job.get_or_insert_with(Job::default)
            } else {
                r.job.as_mut()?
            };
            Some(SecretFields::ByKey {
                values: &mut j.secret_variables,
                write_only: &mut j.secret_variables_wo,
                write_only_version: &mut j.secret_variables_wo_version,
            })
        },
    },
    SecretAttribute {
        block: None,
        name: "secret_files",
        write_only: "secret_files_wo",
        write_only_version: "secret_files_wo_version",
        reference: None,
        input: "files",
        by_key: true,
        held: |r| {
            HeldSecret::by_key(
                &r.secret_files,
                &r.secret_files_wo,
                &r.secret_files_wo_version,
            )
        },
        fields: |r, _| {
            Some(SecretFields::ByKey {
                values: &mut r.secret_files,
                write_only: &mut r.secret_files_wo,
                write_only_version: &mut r.secret_files_wo_version,
            })
        },
    },
];

/// The secrets of a block (`source`, `job`; none: the top level).
pub(crate) fn secrets_in(block: Option<&str>) -> impl Iterator<Item = &'static SecretAttribute> {
    SECRETS.iter().filter(move |secret| secret.block == block)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runner with every secret set in every form its row allows.
    fn every_form() -> ContainerRunner {
        let value = || Some(Sensitive("value".to_string()));
        let version = || Some("1".to_string());
        let reference = || {
            Some(SecretRef {
                store: "store".into(),
                reference: "ref".into(),
                version: None,
            })
        };
        let map = || Some(BTreeMap::from([("KEY".to_string(), value())]));
        let write_only_map = || Some(BTreeMap::from([("WO".to_string(), value().unwrap())]));
        ContainerRunner {
            source: Some(Source {
                password: value(),
                password_wo: value(),
                password_wo_version: version(),
                password_ref: reference(),
                ssh_key: value(),
                ssh_key_wo: value(),
                ssh_key_wo_version: version(),
                ssh_key_ref: reference(),
                ..Source::default()
            }),
            job: Some(Job {
                secret_variables: map(),
                secret_variables_wo: write_only_map(),
                secret_variables_wo_version: version(),
                ..Job::default()
            }),
            secret_files: map(),
            secret_files_wo: write_only_map(),
            secret_files_wo_version: version(),
            ..ContainerRunner::default()
        }
    }

    #[test]
    fn each_row_reads_and_changes_the_same_fields() {
        for (index, secret) in SECRETS.iter().enumerate() {
            let mut runner = every_form();
            let held = (secret.held)(&runner);
            assert!(held.set, "{}", secret.name);
            assert_eq!(held.values.len(), 1, "{}", secret.name);
            assert_eq!(held.write_only.len(), 1, "{}", secret.name);
            assert!(held.write_only_version.is_some(), "{}", secret.name);
            assert_eq!(held.reference.is_some(), secret.reference.is_some());
            (secret.fields)(&mut runner, false)
                .expect("the block is there")
                .forget_values();
            let held = (secret.held)(&runner);
            assert!(held.values.is_empty() && held.write_only.is_empty());
            assert!(held.reference.is_none() && held.write_only_version.is_some());
            // Every other secret is untouched.
            for (other_index, other) in SECRETS.iter().enumerate() {
                if other_index != index {
                    assert_eq!((other.held)(&runner), (other.held)(&every_form()));
                }
            }
        }
    }

    #[test]
    fn a_secret_input_path_names_its_row_and_key() {
        let at = |path: &[&str]| path.iter().map(|p| (*p).to_string()).collect::<Vec<_>>();
        let row = |input: &str| {
            SECRETS
                .iter()
                .find(|secret| secret.input == input)
                .expect("a row")
        };
        let (password, ssh_key) = (row("source.password"), row("source.ssh_key"));
        let (variables, files) = (row("job.variables"), row("files"));
        assert_eq!(password.key_at(&at(&["source", "password"])), Some(""));
        assert_eq!(ssh_key.key_at(&at(&["source", "password"])), None);
        assert_eq!(password.key_at(&at(&["source", "password", "x"])), None);
        assert_eq!(
            variables.key_at(&at(&["job", "variables", "TOKEN"])),
            Some("TOKEN")
        );
        assert_eq!(variables.key_at(&at(&["job", "variables"])), None);
        assert_eq!(variables.key_at(&at(&["job", "variables", "a", "b"])), None);
        assert_eq!(
            files.key_at(&at(&["files", "config.yaml"])),
            Some("config.yaml")
        );
        let mut runner = ContainerRunner::default();
        assert!((password.fields)(&mut runner, false).is_none());
        assert!((password.fields)(&mut runner, true).is_some());
        assert!(runner.source.is_some());
    }
}
