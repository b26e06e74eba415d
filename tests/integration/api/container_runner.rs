//! `humanitec_container_runner` end to end: each resource becomes a `humanitec/container-runner`
//! definition in the sandbox (api mode).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::support::{Run, Sandbox, TOKEN, Workdir, words};

/// The doc page's tfvars file.
const TFVARS: &str = "/home/runneruser/workspace/s3/terraform.tfvars.json";
/// A secret file of the lifecycle test.
const SECRET_FILE: &str = "/home/runneruser/workspace/s3/secret.auto.tfvars";
/// Secret values of the lifecycle test: they must reach the sandbox's store and nothing else.
const SECRET_VARIABLE_1: &str = "sv-first-3b9f01";
const SECRET_VARIABLE_2: &str = "sv-second-77c1e2";
const SECRET_FILE_VALUE: &str = "sf-content-c0d3a4";

/// An HCL string literal holding `s` exactly (no interpolation).
fn hcl_str(s: &str) -> String {
    serde_json::to_string(s)
        .expect("string to JSON")
        .replace("${", "$${")
        .replace("%{", "%%{")
}

/// A YAML document, parsed for comparing by meaning.
fn yaml(text: &str) -> Json {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}): {text:?}"))
}

/// A definition's criteria as sorted `key=value,…` strings (ids left out).
fn criteria(definition: &Json) -> Vec<String> {
    let mut out: Vec<String> = definition["criteria"]
        .as_array()
        .unwrap_or_else(|| panic!("no criteria in {definition:#}"))
        .iter()
        .map(|c| {
            ["app_id", "env_id", "env_type", "res_id", "class"]
                .iter()
                .filter_map(|k| c[*k].as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    out.sort();
    out
}

/// Sorted owned strings, to compare with [`criteria`].
fn sorted(items: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// Asserts that none of `secrets` occurs in `text`.
fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret:?}:\n{text}"
        );
    }
}

/// Applies a changed configuration that must be an in-place update of one resource, then checks
/// that the next plan is empty.
fn update_in_place(work: &Workdir, main_tf: &str, what: &str) -> Run {
    work.write(main_tf);
    let plan = work.plan();
    assert_eq!(
        plan.code, 2,
        "{what}: no change planned\nstdout:\n{}\nstderr:\n{}",
        plan.stdout, plan.stderr
    );
    assert!(
        plan.stdout.contains("0 to add, 1 to change, 0 to destroy"),
        "{what}: not an in-place update:\n{}",
        plan.stdout
    );
    let applied = work.apply();
    work.assert_plan_empty(&format!("after {what}"));
    applied
}

/// The value and version the sandbox's primary store holds for a `{store, ref, version}` leaf of
/// a definition's `secret_refs`.
async fn stored_secret(sandbox: &Sandbox, leaf: &Json) -> (String, u64) {
    let reference = leaf["ref"]
        .as_str()
        .unwrap_or_else(|| panic!("not a secret reference: {leaf}"));
    let all = sandbox.secrets().await;
    assert_eq!(
        leaf["store"], all["store"],
        "not in the primary store: {leaf}"
    );
    let entry = &all["secrets"][reference];
    let value = entry["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{reference} not stored: {all:#}"))
        .to_string();
    let version: u64 = entry["version"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        leaf["version"].as_str(),
        Some(version.to_string().as_str()),
        "the reference names another version than the store holds"
    );
    (value, version)
}

/// Removes `path` (object keys; single-element lists are looked through) from a state value.
fn strip(value: &mut Json, path: &[&str]) {
    match (value, path) {
        (Json::Array(items), _) => items.iter_mut().for_each(|item| strip(item, path)),
        (Json::Object(map), [last]) => {
            map.remove(*last);
        }
        (Json::Object(map), [first, rest @ ..]) => {
            if let Some(inner) = map.get_mut(*first) {
                strip(inner, rest);
            }
        }
        _ => {}
    }
}

/// Whether a `sensitive_values` tree of `terraform show -json` marks `path` as sensitive.
fn marked_sensitive(sensitive: &Json, path: &[&str]) -> bool {
    match (sensitive, path) {
        (Json::Bool(true), _) => true,
        (Json::Array(items), _) => items.iter().any(|item| marked_sensitive(item, path)),
        (Json::Object(map), [first, rest @ ..]) => map
            .get(*first)
            .is_some_and(|inner| marked_sensitive(inner, rest)),
        _ => false,
    }
}

/// The lifecycle test's configuration; each step changes some of it.
#[derive(Clone)]
struct Lifecycle {
    image: &'static str,
    command: &'static str,
    pod_template: &'static str,
    variables: &'static str,
    secret_variable: &'static str,
    source_ref: &'static str,
    source_path: &'static str,
    password_ref: &'static str,
    files: &'static str,
    criteria: Vec<&'static str>,
}

const POD_TEMPLATE_1: &str = "spec:\n  imagePullSecrets:\n    - name: ghcr-private-registry\n";
const POD_TEMPLATE_2: &str = "metadata:\n  labels:\n    team: platform\nspec:\n  imagePullSecrets:\n    - name: ghcr-private-registry\n  nodeSelector:\n    pool: runners\n";

impl Lifecycle {
    fn first() -> Self {
        Self {
            image: "ghcr.io/my-org/my-image:1.1.0",
            command: r#"["/opt/container", "--verbose"]"#,
            pod_template: POD_TEMPLATE_1,
            variables: r#"{ TF_LOG = "info" }"#,
            secret_variable: SECRET_VARIABLE_1,
            source_ref: "refs/heads/main",
            source_path: "s3",
            password_ref: "store = \"my-store\"\n      ref   = \"path/to/git/password\"",
            files: r#"{ "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({ bucket = "$${context.app.id}-$${context.env.id}" }) }"#,
            criteria: vec![
                "env_type = \"development\"",
                "app_id = \"app-one\"\n    class  = \"large\"",
            ],
        }
    }

    fn hcl(&self, provider: &str) -> String {
        let criteria: String = self
            .criteria
            .iter()
            .map(|c| format!("  criteria {{\n    {c}\n  }}\n"))
            .collect();
        format!(
            r#"{provider}
resource "humanitec_container_runner" "s3" {{
  id             = "life-s3"
  name           = "Lifecycle S3"
  type           = "s3"
  driver_account = "my-aws-account"

{criteria}
  job {{
    image            = "{image}"
    command          = {command}
    shared_directory = "/home/runneruser/workspace"
    namespace        = "humanitec-runner"
    service_account  = "humanitec-runner-job"
    pod_template     = {pod_template}
    variables        = {variables}
    secret_variables = {{ AWS_SECRET_ACCESS_KEY = "{secret_variable}" }}
  }}

  source {{
    url      = "https://my-domain.com/my-org/my-repo.git"
    ref      = "{source_ref}"
    path     = "{source_path}"
    username = "my-git-handler"
    password_ref {{
      {password_ref}
    }}
  }}

  files        = {files}
  secret_files = {{ "{SECRET_FILE}" = "{SECRET_FILE_VALUE}" }}

  credentials_config {{
    environment = {{ AWS_ACCESS_KEY_ID = "AccessKeyId", AWS_SECRET_ACCESS_KEY = "SecretAccessKey" }}
    file        = "credentials.json"
  }}

  force_delete = false
  timeouts {{
    create = "5m"
    update = "5m"
    delete = "1m"
  }}
}}
"#,
            image = self.image,
            command = self.command,
            pod_template = hcl_str(self.pod_template),
            variables = self.variables,
            secret_variable = self.secret_variable,
            source_ref = self.source_ref,
            source_path = self.source_path,
            password_ref = self.password_ref,
            files = self.files,
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_create_update_each_field_import_destroy() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let mut config = Lifecycle::first();
    let work = Workdir::new(&config.hcl(&provider));
    let secrets = [SECRET_VARIABLE_1, SECRET_VARIABLE_2, SECRET_FILE_VALUE];

    // Create, then nothing left to do.
    let applied = work.apply();
    assert_hidden("apply output", &applied.stdout, &secrets);
    work.assert_plan_empty("after create");

    let definition = sandbox.definition("life-s3").await.expect("created");
    assert_hidden("the definition", &definition.to_string(), &secrets);
    assert_eq!(definition["type"], "s3");
    assert_eq!(definition["name"], "Lifecycle S3");
    assert_eq!(definition["driver_type"], "humanitec/container-runner");
    assert_eq!(definition["driver_account"], "my-aws-account");
    let created_at = definition["created_at"].clone();
    let values = &definition["driver_inputs"]["values"];
    let mut keys: Vec<&String> = values.as_object().expect("values").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["credentials_config", "files", "job", "source"],
        "{values:#}"
    );
    let job = &values["job"];
    assert_eq!(job["image"], "ghcr.io/my-org/my-image:1.1.0");
    assert_eq!(job["command"], json!(["/opt/container", "--verbose"]));
    assert_eq!(job["shared_directory"], "/home/runneruser/workspace");
    assert_eq!(job["namespace"], "humanitec-runner");
    assert_eq!(job["service_account"], "humanitec-runner-job");
    assert_eq!(
        yaml(job["pod_template"].as_str().expect("pod_template string")),
        yaml(POD_TEMPLATE_1)
    );
    assert_eq!(job["variables"], json!({"TF_LOG": "info"}));
    assert!(job.get("secret_variables").is_none(), "{job:#}");
    assert_eq!(
        values["source"],
        json!({
            "url": "https://my-domain.com/my-org/my-repo.git",
            "ref": "refs/heads/main",
            "path": "s3",
            "username": "my-git-handler"
        })
    );
    let files = values["files"].as_object().expect("files");
    assert_eq!(files.keys().collect::<Vec<_>>(), [TFVARS], "{files:#?}");
    let tfvars: Json = serde_json::from_str(files[TFVARS].as_str().unwrap()).unwrap();
    assert_eq!(
        tfvars,
        json!({"bucket": "${context.app.id}-${context.env.id}"})
    );
    assert_eq!(
        values["credentials_config"],
        json!({
            "environment": {"AWS_ACCESS_KEY_ID": "AccessKeyId", "AWS_SECRET_ACCESS_KEY": "SecretAccessKey"},
            "file": "credentials.json"
        })
    );
    // Secrets come back only as references: the store reference as given, the plain ones in the
    // primary store.
    let refs = &definition["driver_inputs"]["secret_refs"];
    assert_eq!(refs["source"]["password"]["store"], "my-store", "{refs:#}");
    assert_eq!(refs["source"]["password"]["ref"], "path/to/git/password");
    assert!(
        refs["source"]["password"]["version"].is_string(),
        "{refs:#}"
    );
    let variable_ref = refs["job"]["variables"]["AWS_SECRET_ACCESS_KEY"].clone();
    let (value, first_version) = stored_secret(&sandbox, &variable_ref).await;
    assert_eq!(value, SECRET_VARIABLE_1);
    let (value, _) = stored_secret(&sandbox, &refs["files"][SECRET_FILE]).await;
    assert_eq!(value, SECRET_FILE_VALUE);
    assert_eq!(
        criteria(&definition),
        sorted(&[
            "app_id=app-one,class=large",
            "env_type=development,class=default"
        ])
    );
    let state = work.resource_values("humanitec_container_runner.s3");
    let state_refs = &state["secret_refs"];
    assert_eq!(
        state_refs["source.password"]["store"], "my-store",
        "{state:#}"
    );
    assert_eq!(state_refs["source.password"]["ref"], "path/to/git/password");
    assert_eq!(
        state_refs["job.variables.AWS_SECRET_ACCESS_KEY"]["ref"], variable_ref["ref"],
        "{state:#}"
    );
    assert!(
        state_refs[format!("files.{SECRET_FILE}").as_str()]["ref"].is_string(),
        "{state:#}"
    );
    let state_criteria = state["criteria"].to_string();
    assert!(
        state_criteria.contains(r#""class":"default""#),
        "class does not default to \"default\": {state_criteria}"
    );

    // job: image, command, pod_template, variables.
    config.image = "ghcr.io/my-org/my-image:1.2.0";
    config.command = r#"["/opt/container"]"#;
    config.pod_template = POD_TEMPLATE_2;
    config.variables = r#"{ TF_LOG = "debug", AWS_REGION = "eu-west-1" }"#;
    update_in_place(&work, &config.hcl(&provider), "changing job");
    let definition = sandbox.definition("life-s3").await.unwrap();
    assert_eq!(definition["created_at"], created_at, "recreated");
    let job = &definition["driver_inputs"]["values"]["job"];
    assert_eq!(job["image"], "ghcr.io/my-org/my-image:1.2.0");
    assert_eq!(job["command"], json!(["/opt/container"]));
    assert_eq!(
        yaml(job["pod_template"].as_str().unwrap()),
        yaml(POD_TEMPLATE_2)
    );
    assert_eq!(
        job["variables"],
        json!({"TF_LOG": "debug", "AWS_REGION": "eu-west-1"})
    );
    // PUT replaces the whole definition: the secrets must have been sent again.
    let refs = &definition["driver_inputs"]["secret_refs"];
    assert_eq!(refs["source"]["password"]["ref"], "path/to/git/password");
    let (value, _) =
        stored_secret(&sandbox, &refs["job"]["variables"]["AWS_SECRET_ACCESS_KEY"]).await;
    assert_eq!(value, SECRET_VARIABLE_1);
    let (value, _) = stored_secret(&sandbox, &refs["files"][SECRET_FILE]).await;
    assert_eq!(value, SECRET_FILE_VALUE);

    // source: ref, path and the store reference (with an explicit version).
    config.source_ref = "refs/tags/v2";
    config.source_path = "s3/v2";
    config.password_ref = "store   = \"my-store\"\n      ref     = \"path/to/git/password-v2\"\n      version = \"7\"";
    update_in_place(&work, &config.hcl(&provider), "changing source");
    let definition = sandbox.definition("life-s3").await.unwrap();
    assert_eq!(definition["created_at"], created_at, "recreated");
    let source = &definition["driver_inputs"]["values"]["source"];
    assert_eq!(source["ref"], "refs/tags/v2");
    assert_eq!(source["path"], "s3/v2");
    assert_eq!(
        definition["driver_inputs"]["secret_refs"]["source"]["password"],
        json!({"store": "my-store", "ref": "path/to/git/password-v2", "version": "7"})
    );
    let state = work.resource_values("humanitec_container_runner.s3");
    assert_eq!(state["secret_refs"]["source.password"]["version"], "7");

    // files: one changed, one added.
    config.files = r#"{
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({ bucket = "$${context.app.id}-$${context.env.id}-v2" })
    "/home/runneruser/workspace/s3/versions.tf"           = "terraform {\n  required_version = \">= 1.5\"\n}\n"
  }"#;
    update_in_place(&work, &config.hcl(&provider), "changing files");
    let definition = sandbox.definition("life-s3").await.unwrap();
    assert_eq!(definition["created_at"], created_at, "recreated");
    let files = &definition["driver_inputs"]["values"]["files"];
    assert_eq!(files.as_object().unwrap().len(), 2, "{files:#}");
    let tfvars: Json = serde_json::from_str(files[TFVARS].as_str().unwrap()).unwrap();
    assert_eq!(
        tfvars,
        json!({"bucket": "${context.app.id}-${context.env.id}-v2"})
    );
    assert_eq!(
        files["/home/runneruser/workspace/s3/versions.tf"],
        "terraform {\n  required_version = \">= 1.5\"\n}\n"
    );

    // secret_variables: a new value reaches the store as a new version, and is never shown.
    let definition = sandbox.definition("life-s3").await.unwrap();
    let (_, before) = stored_secret(
        &sandbox,
        &definition["driver_inputs"]["secret_refs"]["job"]["variables"]["AWS_SECRET_ACCESS_KEY"],
    )
    .await;
    assert!(before >= first_version);
    config.secret_variable = SECRET_VARIABLE_2;
    work.write(&config.hcl(&provider));
    let plan = work.plan();
    assert_eq!(plan.code, 2, "secret change not planned:\n{}", plan.stdout);
    assert_hidden("plan output", &plan.stdout, &secrets);
    let applied = update_in_place(&work, &config.hcl(&provider), "changing a secret variable");
    assert_hidden("apply output", &applied.stdout, &secrets);
    let definition = sandbox.definition("life-s3").await.unwrap();
    assert_eq!(definition["created_at"], created_at, "recreated");
    let (value, after) = stored_secret(
        &sandbox,
        &definition["driver_inputs"]["secret_refs"]["job"]["variables"]["AWS_SECRET_ACCESS_KEY"],
    )
    .await;
    assert_eq!(value, SECRET_VARIABLE_2);
    assert!(after > before, "version {before} -> {after}");

    // criteria: one added and one changed, then one removed, all without recreating.
    config.criteria = vec![
        "env_type = \"development\"",
        "app_id = \"app-two\"\n    class  = \"large\"",
        "env_id = \"env-three\"",
    ];
    update_in_place(
        &work,
        &config.hcl(&provider),
        "adding and changing criteria",
    );
    let definition = sandbox.definition("life-s3").await.unwrap();
    assert_eq!(definition["created_at"], created_at, "recreated");
    assert_eq!(
        criteria(&definition),
        sorted(&[
            "app_id=app-two,class=large",
            "env_id=env-three,class=default",
            "env_type=development,class=default",
        ])
    );
    config.criteria = vec![
        "app_id = \"app-two\"\n    class  = \"large\"",
        "env_id = \"env-three\"",
    ];
    update_in_place(&work, &config.hcl(&provider), "removing a criterion");
    let definition = sandbox.definition("life-s3").await.unwrap();
    assert_eq!(definition["created_at"], created_at, "recreated");
    assert_eq!(
        criteria(&definition),
        sorted(&[
            "app_id=app-two,class=large",
            "env_id=env-three,class=default"
        ])
    );
    assert_eq!(
        definition["driver_inputs"]["values"]["job"]["image"], "ghcr.io/my-org/my-image:1.2.0",
        "criteria changes touched the values"
    );

    // A new type or id replaces the definition (planned only).
    for (from, to) in [
        ("type           = \"s3\"", "type           = \"s3-archive\""),
        (
            "id             = \"life-s3\"",
            "id             = \"life-s3-new\"",
        ),
    ] {
        let main_tf = config.hcl(&provider);
        assert!(main_tf.contains(from));
        work.write(&main_tf.replace(from, to));
        let plan = work.plan();
        assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
        assert!(
            plan.stdout.contains("must be replaced")
                && plan.stdout.contains("1 to add, 0 to change, 1 to destroy"),
            "{to}:\n{}",
            plan.stdout
        );
    }
    work.write(&config.hcl(&provider));

    // Import into a fresh directory: the same values, secrets excepted (the API never returns
    // them) and timeouts (configuration only).
    let imported = Workdir::new(&config.hcl(&provider));
    imported
        .tf(&[
            "import",
            "-no-color",
            "-input=false",
            "humanitec_container_runner.s3",
            "life-s3",
        ])
        .ok("terraform import");
    let mut want = work.resource_values("humanitec_container_runner.s3");
    let mut got = imported.resource_values("humanitec_container_runner.s3");
    for values in [&mut want, &mut got] {
        for path in [
            &["secret_files"][..],
            &["timeouts"],
            &["job", "secret_variables"],
            &["source", "password"],
            &["source", "ssh_key"],
        ] {
            strip(values, path);
        }
    }
    assert_eq!(got, want);

    // Destroy leaves nothing, not even the secrets in the primary store.
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
    let stored = sandbox.secrets().await.to_string();
    assert!(
        !stored.contains("--defs--life-s3--"),
        "secrets left behind: {stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_block_generates_config_that_plans_clean() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let source = Workdir::new(&format!(
        r#"{provider}
resource "humanitec_container_runner" "db" {{
  id             = "imported-runner"
  type           = "postgres"
  driver_account = "my-gcp-account"

  criteria {{
    env_type = "development"
  }}
  criteria {{
    app_id = "billing"
    class  = "ha"
  }}

  job {{
    image            = "ghcr.io/my-org/tofu-runner:1.0.0"
    command          = ["/opt/container"]
    shared_directory = "/home/runneruser/workspace"
    namespace        = "humanitec-runner"
    service_account  = "humanitec-runner-job"
    pod_template     = "spec:\n  nodeSelector:\n    pool: runners\n"
    variables        = {{ TF_LOG = "info" }}
  }}

  source {{
    url  = "https://github.com/my-org/infra.git"
    ref  = "refs/heads/main"
    path = "postgres"
  }}

  files = {{
    "main.auto.tfvars.json" = jsonencode({{ name = "$${{context.res.guresid}}" }})
  }}

  credentials_config {{
    file = "credentials.json"
  }}
}}
"#
    ));
    source.apply();
    let before = sandbox
        .definition("imported-runner")
        .await
        .expect("created");

    let target = Workdir::new(&format!(
        "{provider}\nimport {{\n  to = humanitec_container_runner.db\n  id = \"imported-runner\"\n}}\n"
    ));
    target
        .tf(&[
            "plan",
            "-no-color",
            "-input=false",
            "-generate-config-out=generated.tf",
        ])
        .ok("plan -generate-config-out");
    let generated = std::fs::read_to_string(target.path().join("generated.tf")).unwrap();
    for want in [
        "ghcr.io/my-org/tofu-runner:1.0.0",
        "pod_template",
        "postgres",
        "billing",
        "credentials.json",
    ] {
        assert!(generated.contains(want), "{want} missing:\n{generated}");
    }
    assert!(!generated.contains("secret_refs"), "{generated}");
    let apply = target.apply();
    assert!(apply.stdout.contains("1 imported"), "{}", apply.stdout);
    assert!(
        apply.stdout.contains("0 added, 0 changed, 0 destroyed"),
        "{}",
        apply.stdout
    );
    target.assert_plan_empty("after import with generated config");
    let after = sandbox.definition("imported-runner").await.unwrap();
    assert_eq!(after, before, "importing changed the definition");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_outside_terraform_is_planned_and_repaired() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!(
        r#"{provider}
resource "humanitec_container_runner" "drift" {{
  id   = "drift-runner"
  type = "s3"

  criteria {{
    env_type = "development"
  }}
  criteria {{
    app_id = "app-drift"
  }}

  job {{
    image     = "ghcr.io/my-org/my-image:1.1.0"
    variables = {{ TF_LOG = "info" }}
  }}

  files = {{ "main.auto.tfvars" = "a = 1\n" }}
}}
"#
    ));
    work.apply();
    work.assert_plan_empty("after create");
    let original = sandbox.definition("drift-runner").await.expect("created");
    assert_eq!(original["name"], "drift-runner", "name defaults to id");

    // Someone renames it and changes the image (PUT replaces the whole definition), and swaps
    // one criterion for another.
    let mut values = original["driver_inputs"]["values"].clone();
    values["job"]["image"] = json!("ghcr.io/someone/else:6.6.6");
    let body = json!({
        "name": "Changed by hand",
        "driver_type": original["driver_type"],
        "driver_inputs": {"values": values},
    });
    assert_eq!(
        sandbox.call(Method::PUT, "/drift-runner", Some(body)).await,
        200
    );
    let app_criterion = original["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["app_id"] == "app-drift")
        .expect("app criterion")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sandbox
            .call(
                Method::DELETE,
                &format!("/drift-runner/criteria/{app_criterion}"),
                None
            )
            .await,
        204
    );
    assert_eq!(
        sandbox
            .call(
                Method::POST,
                "/drift-runner/criteria",
                Some(json!({"app_id": "app-by-hand"}))
            )
            .await,
        200
    );

    let plan = work.plan();
    assert_eq!(
        plan.code, 2,
        "drift not planned:\n{}\n{}",
        plan.stdout, plan.stderr
    );
    for shown in [
        "Changed by hand",
        "ghcr.io/someone/else:6.6.6",
        "app-by-hand",
        "app-drift",
    ] {
        assert!(plan.stdout.contains(shown), "{shown}:\n{}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("0 to add, 1 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    work.apply();
    work.assert_plan_empty("after repairing drift");
    let repaired = sandbox.definition("drift-runner").await.unwrap();
    assert_eq!(repaired["name"], "drift-runner");
    assert_eq!(
        repaired["driver_inputs"]["values"],
        original["driver_inputs"]["values"]
    );
    assert_eq!(criteria(&repaired), criteria(&original));
    assert_eq!(repaired["created_at"], original["created_at"]);

    // Someone deletes it: the next plan creates it again.
    assert_eq!(
        sandbox.call(Method::DELETE, "/drift-runner", None).await,
        204
    );
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("will be created"), "{}", plan.stdout);
    work.apply();
    let recreated = sandbox.definition("drift-runner").await.expect("recreated");
    assert_eq!(criteria(&recreated), criteria(&original));
    work.assert_plan_empty("after recreating");
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_definition_in_use_needs_force_delete() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let runner = |force: bool| {
        format!(
            r#"{provider}
resource "humanitec_container_runner" "busy" {{
  id   = "busy-runner"
  type = "s3"
  criteria {{
    env_type = "development"
  }}
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  force_delete = {force}
  timeouts {{
    delete = "3s"
  }}
}}
"#
        )
    };
    let work = Workdir::new(&runner(false));
    work.apply();
    let status = sandbox
        .set_active_resources(
            "busy-runner",
            json!([
                {"app_id": "app-busy", "env_id": "dev-busy", "res_id": "modules.web.externals.bucket"},
                {"app_id": "app-other", "env_id": "dev-other", "res_id": "shared.bucket"}
            ]),
        )
        .await;
    assert_eq!(status, 200);

    // Without force_delete the API refuses; the provider waits out timeouts.delete, then names
    // what uses the definition.
    let started = Instant::now();
    let run = work.tf(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let took = started.elapsed();
    assert_eq!(
        run.code, 1,
        "destroy should fail\n{}\n{}",
        run.stdout, run.stderr
    );
    for id in [
        "app-busy",
        "dev-busy",
        "modules.web.externals.bucket",
        "app-other",
        "dev-other",
        "shared.bucket",
    ] {
        assert!(run.stderr.contains(id), "{id} not named:\n{}", run.stderr);
    }
    assert!(
        took < Duration::from_secs(60),
        "timeouts.delete = 3s not honoured: {took:?}"
    );
    assert!(sandbox.definition("busy-runner").await.is_some());
    work.assert_plan_empty("after the failed destroy");

    // With force_delete it goes.
    update_in_place(&work, &runner(true), "setting force_delete");
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
    assert!(sandbox.definition("busy-runner").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_the_attribute() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let runner = |id: &str, job: &str, source: &str| {
        format!(
            "{provider}\nresource \"humanitec_container_runner\" \"bad\" {{\n  id   = \"{id}\"\n  type = \"s3\"\n{job}{source}}}\n"
        )
    };
    let job = |pod_template: &str| {
        format!(
            "  job {{\n    image        = \"ghcr.io/my-org/my-image:1.1.0\"\n    pod_template = {}\n  }}\n",
            hcl_str(pod_template)
        )
    };
    let plain_job = "  job {\n    image = \"ghcr.io/my-org/my-image:1.1.0\"\n  }\n";
    let both_passwords = "  source {\n    url      = \"https://my-domain.com/my-org/my-repo.git\"\n    password = \"pw-conflict-9d8e\"\n    password_ref {\n      store = \"my-store\"\n      ref   = \"path/to/git/password\"\n    }\n  }\n";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "pod_template not a mapping",
            runner("bad-runner", &job("- a\n- b\n"), ""),
            vec!["job.pod_template"],
        ),
        (
            "pod_template not YAML",
            // The unclosed flow sequence starts on line 4 of the template; the parser notices at
            // the end of it.
            runner(
                "bad-runner",
                &job("metadata:\n  labels:\n    a: b\nspec: [unclosed\n"),
                "",
            ),
            vec!["job.pod_template"],
        ),
        (
            "password and password_ref",
            runner("bad-runner", plain_job, both_passwords),
            vec!["source.password", "password_ref"],
        ),
        (
            "job block missing",
            runner("bad-runner", "", ""),
            // Terraform's own error, from the schema.
            vec!["\"job\"", "required"],
        ),
        (
            "invalid id",
            runner("Bad_ID", plain_job, ""),
            vec!["Bad_ID"],
        ),
    ];
    for (what, main_tf, wants) in cases {
        let work = Workdir::new(&main_tf);
        let run = work.tf(&["plan", "-no-color", "-input=false"]);
        assert_eq!(
            run.code, 1,
            "{what}: plan should fail\n{}\n{}",
            run.stdout, run.stderr
        );
        // Terraform wraps diagnostics at word boundaries.
        let stderr = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        for want in wants {
            assert!(
                stderr.contains(want),
                "{what}: {want} not named:\n{}",
                run.stderr
            );
        }
        if what == "pod_template not YAML" {
            assert!(
                mentions_template_line(&stderr, &[4, 5]),
                "{what}: the YAML line is not named:\n{}",
                run.stderr
            );
        }
        assert_hidden(what, &run.stderr, &["pw-conflict-9d8e", TOKEN]);
    }
    assert!(sandbox.definitions().await.is_empty());
}

/// Whether `stderr` names one of `lines` ("line N" not followed by a digit), not counting
/// Terraform's own "main.tf line N" source references.
fn mentions_template_line(stderr: &str, lines: &[u32]) -> bool {
    let mut text = stderr.to_string();
    while let Some(start) = text.find("main.tf line ") {
        let digits = text[start + "main.tf line ".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        text.replace_range(start..start + "main.tf line ".len() + digits, "");
    }
    lines.iter().any(|n| {
        let needle = format!("line {n}");
        text.match_indices(&needle).any(|(at, _)| {
            !text[at + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_show_in_output_state_display_or_logs() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let runner = |password: &str, variable: &str, file: &str| {
        format!(
            r#"{provider}
resource "humanitec_container_runner" "secret" {{
  id   = "secret-runner"
  type = "s3"
  job {{
    image            = "ghcr.io/my-org/my-image:1.1.0"
    variables        = {{ TF_LOG = "info" }}
    secret_variables = {{ AWS_SECRET_ACCESS_KEY = "{variable}" }}
  }}
  source {{
    url      = "https://my-domain.com/my-org/my-repo.git"
    username = "my-git-handler"
    password = "{password}"
  }}
  secret_files = {{ "/home/runneruser/workspace/credentials.json" = "{file}" }}
}}
"#
        )
    };
    let first = ["pw-hidden-a1b2c3", "sv-hidden-d4e5f6", "sf-hidden-a7b8c9"];
    let second = ["pw-hidden-x1y2z3", "sv-hidden-u4v5w6", "sf-hidden-r7s8t9"];
    let mut all = first.to_vec();
    all.extend(second);
    all.push(TOKEN);
    let trace = [("TF_LOG", "trace")];
    let work = Workdir::new(&runner(first[0], first[1], first[2]));

    // Plan and apply with trace logging: neither the output nor the logs (which include the
    // provider's stderr) show a secret.
    let plan = work.tf_env(
        &["plan", "-detailed-exitcode", "-no-color", "-input=false"],
        &trace,
    );
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stderr.contains("terraform-provider-humanitec"),
        "no provider logs captured"
    );
    assert_hidden("plan output", &plan.stdout, &all);
    assert_hidden("plan trace log", &plan.stderr, &all);
    let apply = work
        .tf_env(
            &["apply", "-auto-approve", "-no-color", "-input=false"],
            &trace,
        )
        .ok("terraform apply");
    assert_hidden("apply output", &apply.stdout, &all);
    assert_hidden("apply trace log", &apply.stderr, &all);

    // The secrets did arrive.
    let definition = sandbox.definition("secret-runner").await.expect("created");
    assert_hidden("the definition", &definition.to_string(), &all);
    let refs = &definition["driver_inputs"]["secret_refs"];
    for (leaf, want) in [
        (&refs["source"]["password"], first[0]),
        (&refs["job"]["variables"]["AWS_SECRET_ACCESS_KEY"], first[1]),
        (
            &refs["files"]["/home/runneruser/workspace/credentials.json"],
            first[2],
        ),
    ] {
        assert_eq!(stored_secret(&sandbox, leaf).await.0, want);
    }

    // `terraform show` hides them; `terraform show -json` marks them sensitive.
    let show = work.tf(&["show", "-no-color"]).ok("terraform show");
    assert_hidden("terraform show", &show.stdout, &all);
    assert!(show.stdout.contains("sensitive"), "{}", show.stdout);
    let state = work.state();
    let resource = state
        .pointer("/values/root_module/resources/0")
        .expect("resource in state");
    let sensitive = &resource["sensitive_values"];
    for path in [
        &["source", "password"][..],
        &["job", "secret_variables"],
        &["secret_files"],
    ] {
        assert!(
            marked_sensitive(sensitive, path),
            "{path:?} not marked sensitive: {sensitive:#}"
        );
    }

    // Changing every secret: a saved plan, its display and the apply show none of them.
    work.write(&runner(second[0], second[1], second[2]));
    let plan = work.tf_env(
        &[
            "plan",
            "-detailed-exitcode",
            "-no-color",
            "-input=false",
            "-out=tfplan",
        ],
        &trace,
    );
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert_hidden("plan output", &plan.stdout, &all);
    assert_hidden("plan trace log", &plan.stderr, &all);
    let show = work.tf(&["show", "-no-color", "tfplan"]).ok("show plan");
    assert_hidden("terraform show tfplan", &show.stdout, &all);
    let apply = work
        .tf_env(&["apply", "-no-color", "-input=false", "tfplan"], &trace)
        .ok("apply plan");
    assert_hidden("apply output", &apply.stdout, &all);
    assert_hidden("apply trace log", &apply.stderr, &all);
    let definition = sandbox.definition("secret-runner").await.unwrap();
    let refs = &definition["driver_inputs"]["secret_refs"];
    assert_eq!(
        stored_secret(&sandbox, &refs["source"]["password"]).await.0,
        second[0]
    );
    work.assert_plan_empty("after changing secrets");

    let destroy = work
        .tf_env(
            &["destroy", "-auto-approve", "-no-color", "-input=false"],
            &trace,
        )
        .ok("terraform destroy");
    assert_hidden("destroy output", &destroy.stdout, &all);
    assert_hidden("destroy trace log", &destroy.stderr, &all);
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_do_not_duplicate_or_lose_definitions() {
    let sandbox = Sandbox::start_with_fault_rate(0.3);
    let provider = sandbox.provider_block();
    let count = 12;
    let main_tf = format!(
        r#"{provider}
resource "humanitec_container_runner" "many" {{
  count = {count}
  id    = "runner-${{count.index}}"
  type  = "s3"
  criteria {{
    app_id = "app-${{count.index}}"
  }}
  job {{
    image            = "ghcr.io/my-org/my-image:1.1.0"
    variables        = {{ INDEX = "${{count.index}}" }}
    secret_variables = {{ TOKEN = "token-${{count.index}}" }}
  }}
}}
"#
    );
    let work = Workdir::new(&main_tf);
    work.apply();
    let definitions = sandbox.definitions().await;
    assert_eq!(definitions.len(), count, "{definitions:#?}");
    for definition in &definitions {
        let id = definition["id"].as_str().unwrap();
        let index = id.trim_start_matches("runner-");
        assert_eq!(
            criteria(definition),
            [format!("app_id=app-{index},class=default")],
            "{definition:#}"
        );
        assert_eq!(
            definition["driver_inputs"]["values"]["job"]["variables"]["INDEX"],
            index
        );
        let leaf = &definition["driver_inputs"]["secret_refs"]["job"]["variables"]["TOKEN"];
        assert_eq!(
            stored_secret(&sandbox, leaf).await.0,
            format!("token-{index}")
        );
    }
    work.assert_plan_empty("after applying under faults");
    sandbox.set_faults(0.3).await;
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doc_page_example_applies_as_documented() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!(
        r#"{provider}
resource "humanitec_runner_config" "dev" {{
  id   = "config-container-runner"
  name = "Config For Container Driver Runner"

  criteria {{
    env_type = "development"
  }}

  cluster {{
    cluster_type = "gke"
    account      = "myOrg/myAccount"
    name         = "my-cluster"
    loadbalancer = "10.10.10.10"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }}

  agent_url = "$${{resources.agent.outputs.url}}"
}}

resource "humanitec_container_runner" "s3" {{
  id   = "my-s3-bucket"
  name = "S3 Bucket"
  type = "s3"

  criteria {{
    env_type = "development"
  }}

  job {{
    image            = "ghcr.io/my-org/my-image:1.1.0"
    command          = ["/opt/container"]
    shared_directory = "/home/runneruser/workspace"
    namespace        = "humanitec-runner"
    service_account  = "humanitec-runner-job"
    pod_template     = <<-EOT
      spec:
        imagePullSecrets:
          - name: ghcr-private-registry
    EOT
  }}

  source {{
    url      = "https://my-domain.com/my-org/my-repo.git"
    ref      = "refs/heads/main"
    username = "my-git-handler"
    password_ref {{
      store = "my-store"
      ref   = "path/to/git/password"
    }}
  }}

  files = {{
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({{ bucket = "$${{context.app.id}}-$${{context.env.id}}" }})
  }}

  runner_config = humanitec_runner_config.dev
}}
"#
    ));
    work.apply();

    let config = sandbox
        .definition("config-container-runner")
        .await
        .expect("runner config created");
    assert_eq!(config["type"], "config");
    assert_eq!(config["driver_type"], "humanitec/template");
    assert_eq!(
        criteria(&config),
        ["env_type=development,res_id=container-runner,class=default"]
    );
    let outputs = yaml(
        config["driver_inputs"]["values"]["templates"]["outputs"]
            .as_str()
            .expect("outputs"),
    );
    assert_eq!(
        outputs["cluster"]["cluster"]["project_id"],
        "my-gcp-project"
    );

    let runner = sandbox
        .definition("my-s3-bucket")
        .await
        .expect("container runner created");
    assert_eq!(runner["name"], "S3 Bucket");
    assert_eq!(runner["type"], "s3");
    assert_eq!(runner["driver_type"], "humanitec/container-runner");
    assert_eq!(criteria(&runner), ["env_type=development,class=default"]);
    let values = &runner["driver_inputs"]["values"];
    assert_eq!(
        values["job"],
        json!({
            "image": "ghcr.io/my-org/my-image:1.1.0",
            "command": ["/opt/container"],
            "shared_directory": "/home/runneruser/workspace",
            "namespace": "humanitec-runner",
            "service_account": "humanitec-runner-job",
            "pod_template": values["job"]["pod_template"].clone(),
        })
    );
    assert_eq!(
        yaml(values["job"]["pod_template"].as_str().unwrap()),
        yaml("spec:\n  imagePullSecrets:\n    - name: ghcr-private-registry\n")
    );
    assert_eq!(
        values["source"],
        json!({
            "url": "https://my-domain.com/my-org/my-repo.git",
            "ref": "refs/heads/main",
            "username": "my-git-handler"
        })
    );
    // The placeholders reach the API unescaped, for the Orchestrator to resolve.
    let tfvars = values["files"][TFVARS].as_str().expect("tfvars file");
    assert!(
        tfvars.contains("${context.app.id}-${context.env.id}"),
        "{tfvars}"
    );
    assert!(!tfvars.contains("$${"), "{tfvars}");
    assert_eq!(
        serde_json::from_str::<Json>(tfvars).unwrap(),
        json!({"bucket": "${context.app.id}-${context.env.id}"})
    );
    let password = &runner["driver_inputs"]["secret_refs"]["source"]["password"];
    assert_eq!(password["store"], "my-store", "{runner:#}");
    assert_eq!(password["ref"], "path/to/git/password");
    assert!(password["version"].is_string(), "{password}");
    // The runner config supplies the cluster: the container runner never sends one.
    let inputs = runner["driver_inputs"].to_string();
    assert!(!inputs.contains("cluster"), "{inputs}");

    work.assert_plan_empty("after applying the doc example");
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

/// Secrets cannot be read back, but a stored secret rewritten outside Terraform moves its version:
/// the next plan shows the secret as changed and apply writes the configured value again. Text
/// that only changed form (reformatted YAML and JSON) is no change at all.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_text_changed_outside_terraform() {
    const CONFIGURED: &str = "configured-7d41e0";
    const BY_HAND: &str = "by-hand-2c9b55";
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let work = Workdir::new(&format!(
        r#"{provider}
resource "humanitec_container_runner" "secret" {{
  id   = "secret-runner"
  type = "postgres"
  job {{
    image            = "ghcr.io/my-org/my-image:1.1.0"
    pod_template     = "spec:\n  nodeSelector:\n    pool: runners\n"
    secret_variables = {{ DB_PASSWORD = "{CONFIGURED}" }}
  }}
  files = {{ "inputs.json" = jsonencode({{ size = 10, tier = "small" }}) }}
}}
"#
    ));
    work.apply();
    let created = sandbox.definition("secret-runner").await.expect("created");
    let leaf = created["driver_inputs"]["secret_refs"]["job"]["variables"]["DB_PASSWORD"].clone();
    assert_eq!(stored_secret(&sandbox, &leaf).await.0, CONFIGURED);

    // Reformatted text and a secret written by hand, in one PUT of the whole definition.
    let mut values = created["driver_inputs"]["values"].clone();
    values["job"]["pod_template"] = json!("spec: {nodeSelector: {pool: runners}}");
    values["files"]["inputs.json"] = json!("{\n  \"tier\": \"small\",\n  \"size\": 10\n}\n");
    let body = json!({
        "name": created["name"],
        "driver_type": created["driver_type"],
        "driver_inputs": {"values": values, "secrets": {"job": {"variables": {"DB_PASSWORD": BY_HAND}}}},
    });
    assert_eq!(
        sandbox
            .call(Method::PUT, "/secret-runner", Some(body))
            .await,
        200
    );
    let changed = sandbox.definition("secret-runner").await.unwrap();
    let leaf = changed["driver_inputs"]["secret_refs"]["job"]["variables"]["DB_PASSWORD"].clone();
    assert_eq!(stored_secret(&sandbox, &leaf).await.0, BY_HAND);

    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    // Why words: Terraform aligns the `=` with the block's longest attribute name.
    assert!(
        words(&plan.stdout).contains("secret_variables = (sensitive value)"),
        "{}",
        plan.stdout
    );
    for unchanged in ["pod_template", "inputs.json"] {
        assert!(
            !plan.stdout.contains(unchanged),
            "{unchanged} is planned as a change although it only changed form:\n{}",
            plan.stdout
        );
    }
    assert_hidden("the plan", &plan.stdout, &[CONFIGURED, BY_HAND]);
    work.apply();
    work.assert_plan_empty("after writing the secret again");
    let repaired = sandbox.definition("secret-runner").await.unwrap();
    let leaf = repaired["driver_inputs"]["secret_refs"]["job"]["variables"]["DB_PASSWORD"].clone();
    assert_eq!(stored_secret(&sandbox, &leaf).await.0, CONFIGURED);
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

/// In direct mode what only the platform gives is refused at plan time, each with what to use
/// instead, and so is a container runner with no runner config to run on; nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn direct_mode_refuses_what_only_the_platform_gives_at_plan_time() {
    let sandbox = Sandbox::start();
    let provider = sandbox
        .provider_block()
        .replace("api_prefix =", "mode       = \"direct\"\n  api_prefix =");
    let work = Workdir::new(&format!(
        r#"{provider}
resource "humanitec_container_runner" "direct" {{
  id             = "direct-runner"
  type           = "s3"
  driver_account = "my-aws-account"
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  source {{
    url = "https://git.example.com/repo.git"
    password_ref {{
      store = "my-store"
      ref   = "path/to/git/password"
    }}
  }}
  credentials_config {{
    environment = {{ AWS_ACCESS_KEY_ID = "AccessKeyId" }}
  }}
}}
"#
    ));
    let plan = work.plan();
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    let text = words(&plan.stderr);
    for expected in [
        "driver_account has no meaning in direct mode",
        "job.secret_variables",
        "credentials_config has no meaning in direct mode",
        "source.password_ref has no meaning in direct mode",
        "Set source.password (sensitive) instead",
        "Direct mode needs runner_config",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // Placeholders only the platform resolves are a warning (Terraform shows warnings only
    // when a plan has no errors).
    work.write(&format!(
        r#"{provider}
resource "humanitec_container_runner" "direct" {{
  id            = "direct-runner"
  type          = "s3"
  runner_config = {{ id = "config", skip_permission_checks = true, kubernetes = null, helper_image = null, helper_resources = null }}
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  files = {{
    "terraform.tfvars.json" = jsonencode({{ bucket = "$${{context.app.id}}" }})
  }}
}}
"#
    ));
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    let text = words(&plan.stdout);
    assert!(
        text.contains("Warning: Humanitec placeholders are not resolved in direct mode"),
        "{text}"
    );
    assert!(text.contains("\"files\" hold placeholders"), "{text}");
    assert!(sandbox.definitions().await.is_empty());
}

/// A store reference whose version moves outside Terraform is no change when the configuration
/// leaves `version` out (the new version is recorded), and is drift when it pins one.
#[tokio::test(flavor = "multi_thread")]
async fn a_moved_reference_version_is_drift_only_when_pinned() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let config = |pin: &str| {
        format!(
            r#"{provider}
resource "humanitec_container_runner" "ref" {{
  id   = "ref-runner"
  type = "s3"
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  source {{
    url = "https://my-domain.com/my-org/my-repo.git"
    password_ref {{
      store = "my-store"
      ref   = "path/to/git/password"
      {pin}
    }}
  }}
}}
"#
        )
    };
    let move_version = |to: &'static str| {
        let sandbox = &sandbox;
        async move {
            let current = sandbox.definition("ref-runner").await.expect("exists");
            let body = json!({
                "name": current["name"],
                "driver_type": current["driver_type"],
                "driver_inputs": {
                    "values": current["driver_inputs"]["values"],
                    "secret_refs": {"source": {"password": {"store": "my-store", "ref": "path/to/git/password", "version": to}}},
                },
            });
            assert_eq!(
                sandbox.call(Method::PUT, "/ref-runner", Some(body)).await,
                200
            );
        }
    };

    let work = Workdir::new(&config(""));
    work.apply();
    move_version("5").await;
    work.assert_plan_empty("after the unpinned version moved");
    work.tf(&["apply", "-refresh-only", "-auto-approve", "-no-color"])
        .ok("refresh");
    let state = work.resource_values("humanitec_container_runner.ref");
    assert_eq!(state["source"]["password_ref"]["version"], "5", "{state:#}");
    assert_eq!(state["secret_refs"]["source.password"]["version"], "5");

    work.write(&config("version = \"5\""));
    work.assert_plan_empty("after pinning the version it has");
    move_version("6").await;
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(r#"version = "6" -> "5""#),
        "{}",
        plan.stdout
    );
    work.apply();
    work.assert_plan_empty("after restoring the pinned version");
    let restored = sandbox.definition("ref-runner").await.unwrap();
    assert_eq!(
        restored["driver_inputs"]["secret_refs"]["source"]["password"]["version"],
        "5"
    );
    work.destroy();
}

/// An update whose definition PUT succeeds but whose criteria change is refused keeps what was
/// written: the state has the new definition and the criteria as they are, so the next plan shows
/// only the criteria still to change.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_done_update_records_what_was_written() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let config = |image: &str, criterion: &str| {
        format!(
            r#"{provider}
resource "humanitec_container_runner" "first" {{
  id   = "first-bucket"
  type = "s3"
  criteria {{
    env_type = "development"
  }}
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
}}

resource "humanitec_container_runner" "second" {{
  id   = "second-bucket"
  type = "s3"
  criteria {{
    {criterion}
  }}
  job {{
    image = "{image}"
  }}
}}
"#
        )
    };
    let work = Workdir::new(&config(
        "ghcr.io/my-org/my-image:1.1.0",
        "app_id = \"shop\"",
    ));
    work.apply();

    // The new criterion is the one "first" already has: Humanitec refuses it (409).
    work.write(&config(
        "ghcr.io/my-org/my-image:2.0.0",
        "env_type = \"development\"",
    ));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color"]);
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("Could not update the criteria"),
        "{}",
        apply.stderr
    );
    let second = sandbox.definition("second-bucket").await.unwrap();
    assert_eq!(
        second["driver_inputs"]["values"]["job"]["image"],
        "ghcr.io/my-org/my-image:2.0.0"
    );
    assert_eq!(criteria(&second), sorted(&["app_id=shop,class=default"]));
    let state = work.resource_values("humanitec_container_runner.second");
    assert_eq!(state["job"]["image"], "ghcr.io/my-org/my-image:2.0.0");
    assert_eq!(state["criteria"][0]["app_id"], "shop", "{state:#}");

    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(!plan.stdout.contains("2.0.0"), "{}", plan.stdout);
    assert!(plan.stdout.contains("development"), "{}", plan.stdout);

    // Back to a criterion nobody else has: the update completes.
    work.write(&config(
        "ghcr.io/my-org/my-image:2.0.0",
        "env_type = \"staging\"",
    ));
    work.apply();
    work.assert_plan_empty("after the criteria update went through");
    work.destroy();
    assert!(sandbox.definitions().await.is_empty());
}

/// After an import, secrets cannot be read back: the generated configuration plans clean, and an
/// update that would drop a secret the definition holds warns, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_that_would_drop_an_imported_secret_warns() {
    let sandbox = Sandbox::start();
    let provider = sandbox.provider_block();
    let body = json!({
        "id": "imported-secret", "name": "imported-secret", "type": "s3",
        "driver_type": "humanitec/container-runner",
        "driver_inputs": {
            "values": {"job": {"image": "ghcr.io/my-org/my-image:1.1.0"}},
            "secrets": {"job": {"variables": {"API_KEY": "k-5e1f"}}}
        }
    });
    assert_eq!(sandbox.call(Method::POST, "", Some(body)).await, 200);
    let work = Workdir::new(&format!(
        "{provider}\nimport {{\n  to = humanitec_container_runner.imported\n  id = \"imported-secret\"\n}}\n"
    ));
    work.tf(&["plan", "-generate-config-out=generated.tf", "-no-color"])
        .ok("generate config");
    work.apply();
    work.assert_plan_empty("after import with generated config");

    let generated = std::fs::read_to_string(work.path().join("generated.tf")).unwrap();
    let changed = generated.replace("my-image:1.1.0", "my-image:2.0.0");
    std::fs::write(work.path().join("generated.tf"), changed).unwrap();
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    let shown = format!("{}{}", plan.stdout, plan.stderr);
    assert!(
        shown.contains("job.variables.API_KEY is not in the configuration"),
        "{shown}"
    );
}
