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
    let sandbox = Sandbox::start();
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

/// The write-only secrets of the api-mode test: (ephemeral variable, the attribute it feeds,
/// the resource holding it, the path the sandbox keeps it at).
const WRITE_ONLY: [(&str, &str, &str, &str); 5] = [
    ("pw", "source.password_wo", "wo-https", "source.password"),
    ("key", "source.ssh_key_wo", "wo-ssh", "source.ssh_key"),
    (
        "var",
        "job.secret_variables_wo",
        "wo-https",
        "job.variables.API_KEY",
    ),
    (
        "file",
        "secret_files_wo",
        "wo-https",
        "files./work/secret.tfvars",
    ),
    ("agent", "agent_url_wo", "wo-config", "agent_url"),
];

/// The write-only configuration: every secret from an ephemeral variable (so that nothing of
/// it is in the configuration or the saved plan's variables), each with its own version
/// variable, `v_<name>`.
fn write_only_hcl(provider: &str) -> String {
    let variables: String = WRITE_ONLY
        .iter()
        .map(|(name, ..)| {
            format!(
                "variable \"{name}\" {{\n  type      = string\n  ephemeral = true\n  sensitive = true\n}}\n\
                 variable \"v_{name}\" {{\n  type = string\n}}\n"
            )
        })
        .collect();
    format!(
        r#"{provider}
{variables}
resource "humanitec_runner_config" "dev" {{
  id = "wo-config"
  cluster {{
    cluster_type = "gke"
    name         = "cluster"
    project_id   = "project"
    zone         = "zone"
  }}
  agent_url_wo         = var.agent
  agent_url_wo_version = var.v_agent
}}

resource "humanitec_container_runner" "https" {{
  id   = "wo-https"
  type = "s3"
  job {{
    image                       = "ghcr.io/my-org/runner:1.0.0"
    secret_variables_wo         = {{ API_KEY = var.var }}
    secret_variables_wo_version = var.v_var
  }}
  source {{
    url                 = "https://git.example.com/org/repo.git"
    password_wo         = var.pw
    password_wo_version = var.v_pw
  }}
  secret_files_wo         = {{ "/work/secret.tfvars" = var.file }}
  secret_files_wo_version = var.v_file
  runner_config           = humanitec_runner_config.dev
}}

resource "humanitec_container_runner" "ssh" {{
  id   = "wo-ssh"
  type = "s3"
  job {{
    image = "ghcr.io/my-org/runner:1.0.0"
  }}
  source {{
    url                = "git@git.example.com:org/repo.git"
    ssh_key_wo         = var.key
    ssh_key_wo_version = var.v_key
  }}
  runner_config = humanitec_runner_config.dev
}}
"#
    )
}

/// One round of values: each secret `<name>-<round>-<tag>`, each version as given.
struct Values {
    round: &'static str,
    versions: BTreeMap<&'static str, &'static str>,
}

impl Values {
    fn new(round: &'static str) -> Self {
        let versions = WRITE_ONLY.iter().map(|(name, ..)| (*name, "1")).collect();
        Self { round, versions }
    }

    fn secret(&self, name: &str) -> String {
        format!("{name}-{}-5f0c2e", self.round)
    }

    /// Every secret of this round and the rounds before it.
    fn all_secrets(&self) -> Vec<String> {
        ["one", "two"]
            .iter()
            .flat_map(|round| {
                WRITE_ONLY
                    .iter()
                    .map(move |(name, ..)| format!("{name}-{round}-5f0c2e"))
            })
            .collect()
    }

    /// The environment that sets every variable.
    fn env(&self) -> Vec<(String, String)> {
        WRITE_ONLY
            .iter()
            .flat_map(|(name, ..)| {
                [
                    (format!("TF_VAR_{name}"), self.secret(name)),
                    (format!("TF_VAR_v_{name}"), self.versions[name].to_string()),
                ]
            })
            .collect()
    }
}

/// Runs terraform with the round's variables.
fn tf(work: &Workdir, args: &[&str], values: &Values) -> crate::support::Run {
    let env = values.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    work.tf_env(args, &env)
}

/// Fails when any of `secrets` is in `bytes`, as text or base64 (private state is base64).
fn assert_no_trace(what: &str, bytes: &[u8], secrets: &[String]) {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(bytes);
    for secret in secrets {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{what} holds {secret:?}"
        );
        // Any base64 of a text holding the secret holds one of these three.
        for shift in 0..3 {
            let padded = format!("{}{secret}", "x".repeat(shift));
            let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
            let core = &encoded[4 * shift.div_ceil(3)..encoded.len().saturating_sub(4)];
            assert!(
                core.len() < 8 || !text.contains(core),
                "{what} holds {secret:?} in base64"
            );
        }
    }
}

/// A saved plan's bytes, and what its zip entries hold once unpacked.
fn saved_plan(work: &Workdir, file: &str) -> (Vec<u8>, Vec<u8>) {
    let path = work.path().join(file);
    let raw = std::fs::read(&path).expect("the saved plan");
    let unpacked = std::process::Command::new("unzip")
        .arg("-p")
        .arg(&path)
        .output()
        .expect("unzip (the tests need it to look inside a saved plan)");
    assert!(unpacked.status.success(), "unzip -p failed");
    assert!(
        unpacked.stdout.len() > raw.len() / 2,
        "the saved plan did not unpack"
    );
    (raw, unpacked.stdout)
}

/// Plans into a file, checks that neither the file (raw and unpacked), `terraform show -json`
/// of it nor the plan output holds a secret, and applies it. The plan output must hold
/// `summary` (`No changes.`, `1 to change`).
fn plan_saved_and_apply(work: &Workdir, values: &Values, summary: &str, what: &str) {
    let secrets = values.all_secrets();
    let plan = tf(
        work,
        &["plan", "-no-color", "-input=false", "-out=saved.tfplan"],
        values,
    )
    .ok(&format!("plan -out, {what}"));
    assert!(
        words(&plan.stdout).contains(summary),
        "{what}: expected {summary:?}:\n{}",
        plan.stdout
    );
    assert_no_trace(
        &format!("{what}: plan output"),
        plan.stdout.as_bytes(),
        &secrets,
    );
    let (raw, unpacked) = saved_plan(work, "saved.tfplan");
    assert_no_trace(&format!("{what}: saved plan"), &raw, &secrets);
    assert_no_trace(
        &format!("{what}: saved plan, unpacked"),
        &unpacked,
        &secrets,
    );
    let shown = tf(work, &["show", "-json", "saved.tfplan"], values).ok("show -json plan");
    assert_no_trace(
        &format!("{what}: show -json of the plan"),
        shown.stdout.as_bytes(),
        &secrets,
    );
    let json: Json = serde_json::from_str(&shown.stdout).expect("plan JSON");
    for change in json["resource_changes"]
        .as_array()
        .expect("resource changes")
    {
        let after = &change["change"]["after"];
        for attribute in [
            "password_wo",
            "ssh_key_wo",
            "secret_files_wo",
            "agent_url_wo",
        ] {
            assert!(
                after.get(attribute).is_none_or(Json::is_null)
                    && after["source"].get(attribute).is_none_or(Json::is_null),
                "{what}: {attribute} planned: {after:#}"
            );
        }
    }
    let applied = tf(
        work,
        &["apply", "-no-color", "-input=false", "saved.tfplan"],
        values,
    )
    .ok(&format!("apply the saved plan, {what}"));
    assert_no_trace(
        &format!("{what}: apply output"),
        applied.stdout.as_bytes(),
        &secrets,
    );
    for file in ["terraform.tfstate", "terraform.tfstate.backup"] {
        if let Ok(bytes) = std::fs::read(work.path().join(file)) {
            assert_no_trace(&format!("{what}: {file}"), &bytes, &secrets);
        }
    }
    let plan = tf(
        work,
        &["plan", "-detailed-exitcode", "-no-color", "-input=false"],
        values,
    );
    assert_eq!(
        plan.code, 0,
        "{what}: the next plan is not empty:\n{}",
        plan.stdout
    );
}

/// Each write-only secret in api mode: nothing of it in the state, a saved plan or any output;
/// its value in the sandbox; a new value alone plans nothing, a new version sends it; and one
/// changed outside Terraform is sent again.
#[tokio::test(flavor = "multi_thread")]
async fn write_only_secrets_reach_the_api_and_no_state_or_saved_plan() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&write_only_hcl(&provider));
    let held = |values: &Values, name: &str| Held::Stored(values.secret(name));

    // Create: every value reaches the sandbox.
    let one = Values::new("one");
    plan_saved_and_apply(&work, &one, "3 to add, 0 to change, 0 to destroy", "create");
    for (name, attribute, id, path) in WRITE_ONLY {
        let secrets = held_secrets(&sandbox, id).await;
        assert_eq!(secrets.get(path), Some(&held(&one, name)), "{attribute}");
    }
    let state = work.resource_values("humanitec_container_runner.https");
    assert_eq!(state["source"]["password_wo_version"], "1", "{state:#}");
    assert!(state["source"]["password_wo"].is_null());

    // New values, the same versions: nothing is planned, nothing is sent.
    let mut two = Values::new("two");
    plan_saved_and_apply(
        &work,
        &two,
        "No changes.",
        "new values without a new version",
    );
    for (name, attribute, id, path) in WRITE_ONLY {
        let secrets = held_secrets(&sandbox, id).await;
        assert_eq!(
            secrets.get(path),
            Some(&held(&one, name)),
            "{attribute} was sent"
        );
    }

    // Each version in turn: an update of the resource holding it, which sends the new value.
    for (name, attribute, id, path) in WRITE_ONLY {
        two.versions.insert(name, "2");
        let what = format!("a new {attribute}_version");
        plan_saved_and_apply(&work, &two, "0 to add, 1 to change, 0 to destroy", &what);
        let secrets = held_secrets(&sandbox, id).await;
        assert_eq!(
            secrets.get(path),
            Some(&held(&two, name)),
            "{attribute} not sent"
        );
    }

    // Changed outside Terraform: the version is forgotten, and the plan sends the value again.
    let definition = sandbox.definition("wo-https").await.expect("exists");
    let body = serde_json::json!({
        "name": definition["name"],
        "driver_type": definition["driver_type"],
        "driver_inputs": {
            "values": definition["driver_inputs"]["values"],
            "secrets": {
                "source": {"password": "by-hand"},
                "job": {"variables": {"API_KEY": "by-hand"}},
                "files": {"/work/secret.tfvars": "by-hand"},
            },
        },
    });
    assert_eq!(
        sandbox
            .call(reqwest::Method::PUT, "/wo-https", Some(body))
            .await,
        200
    );
    let plan = tf(
        &work,
        &["plan", "-detailed-exitcode", "-no-color", "-input=false"],
        &two,
    );
    assert_eq!(
        plan.code, 2,
        "drift not planned:\n{}\n{}",
        plan.stdout, plan.stderr
    );
    let plan_words = words(&plan.stdout);
    for version in [
        "password_wo_version = \"2\"",
        "secret_variables_wo_version = \"2\"",
        "secret_files_wo_version = \"2\"",
    ] {
        assert!(plan_words.contains(version), "{version}:\n{}", plan.stdout);
    }
    let repair = "0 to add, 1 to change, 0 to destroy";
    plan_saved_and_apply(&work, &two, repair, "repairing secrets written by hand");
    let secrets = held_secrets(&sandbox, "wo-https").await;
    for (name, _, id, path) in WRITE_ONLY {
        if id == "wo-https" {
            assert_eq!(secrets.get(path), Some(&held(&two, name)), "{path}");
        }
    }

    let destroyed = tf(
        &work,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        &two,
    );
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    assert!(sandbox.definitions().await.is_empty());
}

/// The runner config's write-only `kubernetes.token_wo` in direct mode: its create checks the
/// cluster with it (a wrong token fails, the right one passes), the state and a saved plan hold
/// no trace of it, a new token alone plans nothing, and the plan says that container runners
/// cannot get it.
#[test]
fn a_write_only_token_serves_the_runner_configs_cluster_check_and_stays_out_of_state() {
    use crate::support::cluster::Cluster;
    let cluster = Cluster::local();
    let token = cluster
        .admin_token()
        .expect("the test cluster's admin token");
    let (url, ca) = cluster.api_server();
    let work = Workdir::new(&format!(
        r#"{}
variable "token" {{
  type      = string
  ephemeral = true
  sensitive = true
}}

resource "humanitec_runner_config" "cluster" {{
  id = "config-container-runner"
  cluster {{
    cluster_type = "gke"
    name         = "test-cluster"
    project_id   = "local"
    zone         = "local"
  }}
  kubernetes {{
    host                   = "{url}"
    cluster_ca_certificate = <<-EOT
{ca}EOT
    token_wo         = var.token
    token_wo_version = "1"
  }}
}}
"#,
        Cluster::provider_block()
    ));
    let apply = |token: &str| {
        work.tf_env(
            &["apply", "-auto-approve", "-no-color", "-input=false"],
            &[("TF_VAR_token", token)],
        )
    };
    let refused = apply("not-the-token");
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        words(&refused.stderr).contains("The cluster cannot be used"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("not-the-token"));

    let applied = apply(&token).ok("apply with the token");
    assert!(
        words(&applied.stdout).contains("kubernetes.token_wo reaches this runner config only"),
        "{}",
        applied.stdout
    );
    let secrets = [token.clone()];
    for file in ["terraform.tfstate", "terraform.tfstate.backup"] {
        if let Ok(bytes) = std::fs::read(work.path().join(file)) {
            assert_no_trace(file, &bytes, &secrets);
        }
    }
    let values = work.resource_values("humanitec_runner_config.cluster");
    assert!(values["kubernetes"]["token_wo"].is_null(), "{values:#}");
    assert_eq!(values["kubernetes"]["token_wo_version"], "1");

    // A new token alone plans nothing (and says nothing); the saved plan holds no token.
    let plan = work.tf_env(
        &[
            "plan",
            "-detailed-exitcode",
            "-no-color",
            "-input=false",
            "-out=saved.tfplan",
        ],
        &[("TF_VAR_token", "another-token-9c1d")],
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(!plan.stdout.contains("reaches this runner config only"));
    let (raw, unpacked) = saved_plan(&work, "saved.tfplan");
    let secrets = [token.clone(), "another-token-9c1d".to_string()];
    assert_no_trace("saved plan", &raw, &secrets);
    assert_no_trace("saved plan, unpacked", &unpacked, &secrets);
    work.tf_env(
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        &[("TF_VAR_token", &token)],
    )
    .ok("destroy");
}
