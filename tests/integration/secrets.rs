//! Secrets end to end (api mode): one container runner and its runner config walked through
//! every form their secrets can take, in one state, one apply per step, with the sandbox
//! holding exactly the right plain secret or store reference after each step.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::support::{Sandbox, Workdir, words};

/// What the sandbox must hold at one secret input path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Held {
    /// A value in the organization's primary store.
    Stored(String),
    /// A reference to a registered store: (store, ref).
    Ref(String, String),
}

/// Every `SecretReference` leaf of a definition's `driver_inputs.secret_refs`, by dotted path
/// (`source.password`, `job.variables.X`, `files./path`).
fn reference_leaves(tree: &Json, at: &mut Vec<String>, out: &mut BTreeMap<String, Json>) {
    let Some(object) = tree.as_object() else {
        return;
    };
    for (key, value) in object {
        at.push(key.clone());
        let is_leaf = value
            .as_object()
            .is_some_and(|o| o.contains_key("ref") && !o.values().any(Json::is_object));
        if is_leaf {
            out.insert(at.join("."), value.clone());
        } else {
            reference_leaves(value, at, out);
        }
        at.pop();
    }
}

/// The secret inputs a definition holds, each resolved through the sandbox's primary store.
pub(crate) async fn held_secrets(sandbox: &Sandbox, id: &str) -> BTreeMap<String, Held> {
    let definition = sandbox
        .definition(id)
        .await
        .unwrap_or_else(|| panic!("definition {id} is gone"));
    let inputs = &definition["driver_inputs"];
    assert!(
        inputs.get("secrets").is_none_or(Json::is_null),
        "the API returned secrets: {inputs:#}"
    );
    let mut leaves = BTreeMap::new();
    reference_leaves(&inputs["secret_refs"], &mut Vec::new(), &mut leaves);
    let store = sandbox.secrets().await;
    leaves
        .into_iter()
        .map(|(path, leaf)| {
            let reference = leaf["ref"].as_str().unwrap_or_default().to_string();
            let held = if leaf["store"] == store["store"] {
                let value = store["secrets"][&reference]["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{path}: {reference} not in the store: {store:#}"))
                    .to_string();
                Held::Stored(value)
            } else {
                Held::Ref(
                    leaf["store"].as_str().unwrap_or_default().to_string(),
                    reference,
                )
            };
            (path, held)
        })
        .collect()
}

/// The source secret of one step.
#[derive(Debug, Clone)]
enum SourceSecret {
    None,
    Password(&'static str),
    PasswordRef(&'static str),
    SshKey(&'static str),
    SshKeyRef(&'static str),
}

/// One step of the walk: the secrets of both resources.
#[derive(Debug, Clone)]
struct Step {
    source: SourceSecret,
    secret_variables: Option<&'static str>,
    secret_file: Option<&'static str>,
    agent_url: Option<&'static str>,
}

const STORE: &str = "my-store";
const FILE: &str = "/home/runneruser/workspace/s3/secret.auto.tfvars";
const PASSWORD_1: &str = "pw-first-51ab0c";
const PASSWORD_2: &str = "pw-second-9e2d77";
const SSH_KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nkey-4c1f3a\n-----END OPENSSH PRIVATE KEY-----\n";
const VARIABLE_1: &str = "sv-first-0c5e1d";
const VARIABLE_2: &str = "sv-second-a83b4f";
const FILE_1: &str = "sf-first-27de90";
const FILE_2: &str = "sf-second-f1c6b2";
const AGENT_1: &str = "https://agent-one.example.com";
const AGENT_2: &str = "$${resources.agent.outputs.url}";
const SECRETS: [&str; 9] = [
    PASSWORD_1,
    PASSWORD_2,
    "key-4c1f3a",
    VARIABLE_1,
    VARIABLE_2,
    FILE_1,
    FILE_2,
    "agent-one",
    "resources.agent.outputs.url",
];

impl Step {
    fn none() -> Self {
        Self {
            source: SourceSecret::None,
            secret_variables: None,
            secret_file: None,
            agent_url: None,
        }
    }

    fn hcl(&self, provider: &str) -> String {
        let (url, source_secret) = match &self.source {
            SourceSecret::None => ("https://git.example.com/org/repo.git", String::new()),
            SourceSecret::Password(p) => (
                "https://git.example.com/org/repo.git",
                format!("    password = {}\n", quoted(p)),
            ),
            SourceSecret::PasswordRef(r) => (
                "https://git.example.com/org/repo.git",
                format!(
                    "    password_ref {{\n      store = \"{STORE}\"\n      ref   = \"{r}\"\n    }}\n"
                ),
            ),
            SourceSecret::SshKey(k) => (
                "git@git.example.com:org/repo.git",
                format!("    ssh_key = {}\n", quoted(k)),
            ),
            SourceSecret::SshKeyRef(r) => (
                "git@git.example.com:org/repo.git",
                format!(
                    "    ssh_key_ref {{\n      store = \"{STORE}\"\n      ref   = \"{r}\"\n    }}\n"
                ),
            ),
        };
        let secret_variables = self
            .secret_variables
            .map(|v| {
                format!(
                    "    secret_variables = {{ AWS_SECRET_ACCESS_KEY = {} }}\n",
                    quoted(v)
                )
            })
            .unwrap_or_default();
        let secret_files = self
            .secret_file
            .map(|v| format!("  secret_files = {{ \"{FILE}\" = {} }}\n", quoted(v)))
            .unwrap_or_default();
        let agent_url = self
            .agent_url
            .map(|v| format!("  agent_url = \"{v}\"\n"))
            .unwrap_or_default();
        format!(
            r#"{provider}
resource "humanitec_runner_config" "dev" {{
  id = "walk-config"
  criteria {{ env_type = "walk" }}
  cluster {{
    cluster_type = "gke"
    account      = "org/account"
    name         = "cluster"
    project_id   = "project"
    zone         = "zone"
  }}
{agent_url}}}

resource "humanitec_container_runner" "s3" {{
  id   = "walk-s3"
  type = "s3"
  criteria {{ env_type = "walk" }}
  job {{
    image     = "ghcr.io/my-org/runner:1.0.0"
    variables = {{ TF_LOG = "info" }}
{secret_variables}  }}
  source {{
    url = "{url}"
    ref = "refs/heads/main"
{source_secret}  }}
  files = {{ "main.tf" = "locals {{}}" }}
{secret_files}  runner_config = humanitec_runner_config.dev
}}
"#
        )
    }

    /// What the container runner's definition must hold.
    fn runner_secrets(&self) -> BTreeMap<String, Held> {
        let mut want = BTreeMap::new();
        match &self.source {
            SourceSecret::None => {}
            SourceSecret::Password(p) => {
                want.insert("source.password".into(), Held::Stored(p.to_string()));
            }
            SourceSecret::PasswordRef(r) => {
                want.insert(
                    "source.password".into(),
                    Held::Ref(STORE.into(), r.to_string()),
                );
            }
            SourceSecret::SshKey(k) => {
                want.insert("source.ssh_key".into(), Held::Stored(k.to_string()));
            }
            SourceSecret::SshKeyRef(r) => {
                want.insert(
                    "source.ssh_key".into(),
                    Held::Ref(STORE.into(), r.to_string()),
                );
            }
        }
        if let Some(v) = self.secret_variables {
            want.insert(
                "job.variables.AWS_SECRET_ACCESS_KEY".into(),
                Held::Stored(v.into()),
            );
        }
        if let Some(v) = self.secret_file {
            want.insert(format!("files.{FILE}"), Held::Stored(v.into()));
        }
        want
    }

    /// What the runner config's definition must hold: the Agent URL as written (HCL's `$$`
    /// escape undone), empty when unset.
    fn config_secrets(&self) -> BTreeMap<String, Held> {
        let url = self.agent_url.unwrap_or_default().replace("$${", "${");
        BTreeMap::from([("agent_url".to_string(), Held::Stored(url))])
    }
}

/// An HCL string literal holding `s` exactly.
fn quoted(s: &str) -> String {
    serde_json::to_string(s)
        .expect("string to JSON")
        .replace("${", "$${")
}

/// Imports both definitions into a fresh directory with `-generate-config-out`, applies that
/// configuration (an import and nothing else), and checks that neither definition changed.
async fn import_elsewhere(sandbox: &Sandbox, provider: &str, when: &str) {
    let before = (
        sandbox.definition("walk-s3").await,
        sandbox.definition("walk-config").await,
    );
    let other = Workdir::new(&format!(
        "{provider}\nimport {{\n  to = humanitec_container_runner.s3\n  id = \"walk-s3\"\n}}\n\
         import {{\n  to = humanitec_runner_config.dev\n  id = \"walk-config\"\n}}\n"
    ));
    other
        .tf(&[
            "plan",
            "-no-color",
            "-input=false",
            "-generate-config-out=generated.tf",
        ])
        .ok(&format!("plan -generate-config-out {when}"));
    let generated = std::fs::read_to_string(other.path().join("generated.tf")).unwrap();
    for secret in SECRETS {
        assert!(
            !generated.contains(secret),
            "{when}: generated configuration shows {secret:?}:\n{generated}"
        );
    }
    let applied = other.apply();
    assert!(
        words(&applied.stdout).contains("2 imported, 0 added, 0 changed, 0 destroyed"),
        "{when}: applying the generated configuration changed something:\n{generated}\n{}",
        applied.stdout
    );
    other.assert_plan_empty(&format!("{when}, in the importing directory"));
    let after = (
        sandbox.definition("walk-s3").await,
        sandbox.definition("walk-config").await,
    );
    assert_eq!(after, before, "{when}: importing changed a definition");
}

/// Applies one step, then checks: an empty plan, nothing secret in the output or the plan, and
/// the sandbox holding exactly the secrets the step configures.
async fn walk(sandbox: &Sandbox, work: &Workdir, provider: &str, step: &Step, what: &str) {
    work.write(&step.hcl(provider));
    let applied = work.apply();
    for secret in SECRETS {
        assert!(
            !applied.stdout.contains(secret) && !applied.stderr.contains(secret),
            "{what}: apply output shows {secret:?}:\n{}",
            applied.stdout
        );
    }
    work.assert_plan_empty(&format!("after {what}"));
    assert_eq!(
        held_secrets(sandbox, "walk-s3").await,
        step.runner_secrets(),
        "{what}: the container runner's secrets"
    );
    assert_eq!(
        held_secrets(sandbox, "walk-config").await,
        step.config_secrets(),
        "{what}: the runner config's secrets"
    );
}

/// Every form a secret can take, one after the other, in one state: the switch from a store
/// reference back to a plain value used to break every later plan.
#[tokio::test(flavor = "multi_thread")]
async fn every_form_of_every_secret_in_one_state() {
    let sandbox = Sandbox::start(&[]);
    let provider = sandbox.provider_block();
    let work = Workdir::new(&Step::none().hcl(&provider));
    let steps: Vec<(&str, Step, bool)> = vec![
        ("no secrets", Step::none(), false),
        (
            "source.password",
            Step {
                source: SourceSecret::Password(PASSWORD_1),
                ..Step::none()
            },
            true,
        ),
        (
            "source.password_ref",
            Step {
                source: SourceSecret::PasswordRef("git/password"),
                ..Step::none()
            },
            true,
        ),
        (
            "source.password, a new value",
            Step {
                source: SourceSecret::Password(PASSWORD_2),
                ..Step::none()
            },
            true,
        ),
        (
            "source.ssh_key for a git@ URL",
            Step {
                source: SourceSecret::SshKey(SSH_KEY),
                ..Step::none()
            },
            true,
        ),
        (
            "source.ssh_key_ref",
            Step {
                source: SourceSecret::SshKeyRef("git/ssh-key"),
                ..Step::none()
            },
            true,
        ),
        ("no source secret", Step::none(), false),
        (
            "job.secret_variables added",
            Step {
                secret_variables: Some(VARIABLE_1),
                ..Step::none()
            },
            true,
        ),
        (
            "job.secret_variables changed",
            Step {
                secret_variables: Some(VARIABLE_2),
                ..Step::none()
            },
            false,
        ),
        ("job.secret_variables removed", Step::none(), false),
        (
            "secret_files added",
            Step {
                secret_file: Some(FILE_1),
                ..Step::none()
            },
            true,
        ),
        (
            "secret_files changed",
            Step {
                secret_file: Some(FILE_2),
                ..Step::none()
            },
            false,
        ),
        ("secret_files removed", Step::none(), false),
        (
            "agent_url set",
            Step {
                agent_url: Some(AGENT_1),
                ..Step::none()
            },
            true,
        ),
        (
            "agent_url changed",
            Step {
                agent_url: Some(AGENT_2),
                ..Step::none()
            },
            false,
        ),
        ("agent_url cleared", Step::none(), true),
    ];
    for (what, step, import) in &steps {
        walk(&sandbox, &work, &provider, step, what).await;
        if *import {
            import_elsewhere(&sandbox, &provider, &format!("after {what}")).await;
            // The first directory still plans and applies.
            work.assert_plan_empty(&format!("after {what}, once imported elsewhere"));
            work.apply();
        }
    }
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}
