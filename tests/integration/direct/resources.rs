//! Direct mode end to end: the real `terraform` applies container runners whose Jobs really run
//! on the test cluster (a real Kubernetes, `scripts/test-cluster.sh`) or the managed cluster of
//! `KUBECONFIG`, and reads their results back.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use crate::support::cluster::{Cluster, IAC_SA};
use crate::support::git_server::GitServer;
use crate::support::{Sandbox, Workdir, words};

/// How long a test waits for something in the cluster before it fails.
const WAIT: Duration = Duration::from_secs(90);

fn runner(cluster: &Cluster, name: &str, job: &str, rest: &str) -> String {
    cluster.container_runner(name, job, rest)
}

fn config(cluster: &Cluster, resources: &str) -> String {
    cluster.config(resources)
}

/// A run's outputs, secret outputs and last run come back as attributes; a plan afterwards is
/// empty; a change of `triggers` runs `create` again in place; destroy runs `destroy`; nothing
/// of the provider's is left in the cluster.
fn a_run_brings_its_outputs_back_and_triggers_run_it_again_in_place(cluster: &Cluster) {
    let job = r#"    variables        = { RUNNER_OUTPUTS = jsonencode({ bucket = "b-1", count = 3 }) }
    secret_variables = { RUNNER_SECRET_OUTPUTS = jsonencode({ key = "out-s3cr3t-5d1c" }) }"#;
    let resources = |version: &str| {
        runner(
            cluster,
            "plain",
            job,
            &format!("  triggers = {{ version = \"{version}\" }}"),
        )
    };
    let work = Workdir::new(&config(cluster, &resources("1")));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.plain");
    assert_eq!(values["outputs"]["bucket"], "b-1", "{values}");
    assert_eq!(values["outputs"]["count"], "3");
    assert_eq!(values["secret_outputs"]["key"], "out-s3cr3t-5d1c");
    let first = values["last_run"]["job_name"].as_str().unwrap().to_string();
    assert!(first.starts_with("plain-create-"), "{first}");
    assert_eq!(values["last_run"]["namespace"], cluster.namespace.as_str());
    assert!(
        values["last_run"]["started_at"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(values["last_run"]["commit"], Json::Null);
    // What describes a Humanitec definition means nothing in direct mode.
    for attribute in [
        "driver_type",
        "unmanaged_inputs",
        "secret_refs",
        "force_delete",
    ] {
        assert_eq!(values[attribute], Json::Null, "{attribute}");
    }
    let runner_config = work.resource_values("humanitec_runner_config.cluster");
    for attribute in ["driver_type", "unmanaged_inputs"] {
        assert_eq!(
            runner_config[attribute],
            Json::Null,
            "runner config {attribute}"
        );
    }
    // The run's results stay in the cluster until the state is known to hold them; its
    // inputs, which hold the secret values, are gone.
    let kept = cluster.leftovers();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept.contains(&format!("job.batch/{first}")), "{kept:?}");
    assert!(kept.contains(&format!("secret/{first}-result")), "{kept:?}");
    assert!(
        kept.iter().any(|o| o.starts_with(&format!("pod/{first}-"))),
        "{kept:?}"
    );
    work.assert_plan_empty("after the first run");
    // The plan's refresh found the run recorded in the state, and deleted it.
    cluster.eventually("the recorded run to be deleted", WAIT, || {
        cluster.leftovers().is_empty().then_some(())
    });
    // Why after the plan: its refresh (read) must run nothing.
    if let Some(uids) = cluster.job_uids(&first) {
        assert_eq!(uids.len(), 1);
    }

    work.write(&config(cluster, &resources("2")));
    let plan = work.plan();
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("1 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    work.apply();
    let values = work.resource_values("humanitec_container_runner.plain");
    let second = values["last_run"]["job_name"].as_str().unwrap().to_string();
    assert_ne!(first, second, "a trigger change is a new run");
    work.assert_plan_empty("after the re-run");

    work.destroy();
    if let Some(history) = cluster.history() {
        let destroyed = history.iter().any(|o| {
            o["kind"] == "Job"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("plain-destroy-"))
        });
        assert!(destroyed, "destroy ran a destroy Job");
    }
    if let Some(logs) = cluster.container_logs() {
        assert!(logs.contains("runner: ACTION=destroy"), "{logs}");
    }
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

const S3_MAIN_TF: &str = r#"terraform {
  backend "kubernetes" {
    secret_suffix     = "s3"
    in_cluster_config = true
    namespace         = "runs"
  }
}

variable "bucket" {
  type = string
}

resource "terraform_data" "bucket" {
  input = var.bucket
}

output "bucket" {
  value = terraform_data.bucket.output
}

output "region" {
  value = "local-1"
}

output "secret_key" {
  value     = "key-of-${var.bucket}"
  sensitive = true
}
"#;

/// What the Humanitec examples' run script does, in busybox sh: apply or destroy, then the
/// outputs as two flat maps.
const S3_RUN_SH: &str = r#"set -eu
export HOME=/tmp TF_IN_AUTOMATION=1
terraform init -input=false -no-color
if [ "$ACTION" = create ]; then
  terraform apply -auto-approve -input=false -no-color
  printf '{"bucket": "%s", "region": "%s"}\n' "$(terraform output -raw bucket)" "$(terraform output -raw region)" > "$OUTPUTS_FILE"
  printf '{"secret_key": "%s"}\n' "$(terraform output -raw secret_key)" > "$SECRET_OUTPUTS_FILE"
else
  terraform destroy -auto-approve -input=false -no-color
  echo '{}' > "$OUTPUTS_FILE"
fi
"#;

fn s3_runner(cluster: &Cluster, server: &GitServer, bucket: &str) -> String {
    let (image, namespace) = (&cluster.iac_image, &cluster.namespace);
    format!(
        r#"variable "git_password" {{
  type      = string
  sensitive = true
  default   = "{password}"
}}

resource "humanitec_container_runner" "s3" {{
  id            = "my-s3-bucket"
  name          = "S3 Bucket"
  type          = "s3"
  runner_config = humanitec_runner_config.cluster
  job {{
    image            = "{image}"
    shared_directory = "/home/runneruser/workspace"
    namespace        = "{namespace}"
    service_account  = "{IAC_SA}"
    variables        = {{ TF_LOG = "" }}
  }}
  source {{
    url      = "{url}"
    ref      = "refs/heads/main"
    path     = "s3"
    username = "my-git-handler"
    password = var.git_password
  }}
  files = {{
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({{ bucket = "{bucket}" }})
  }}
  timeouts {{
    create = "5m"
    update = "5m"
    delete = "5m"
  }}
}}

output "bucket" {{
  value = humanitec_container_runner.s3.outputs.bucket
}}

output "secret_key" {{
  value     = humanitec_container_runner.s3.secret_outputs.secret_key
  sensitive = true
}}
"#,
        password = GIT_PASSWORD,
        url = server.url("infra.git"),
    )
}

const GIT_PASSWORD: &str = "git-pat-7a1e0c";

/// The Container Runner page's S3 example, run for real: a runner image with `terraform`, the
/// source cloned with a username and password from a git server on 127.0.0.1, the tfvars file
/// placed, `terraform apply` in the Job with its state in the cluster (`kubernetes` backend),
/// its outputs (one sensitive) as attributes, an empty plan, an update that runs again, and a
/// destroy that runs `terraform destroy` and leaves nothing of the provider's behind.
fn the_s3_container_runner_runs_terraform_in_the_job(cluster: &Cluster) {
    // Why not on a real cluster: its pods cannot reach a git server on this machine, and the
    // checks read the container logs.
    let repo = tempfile::tempdir().unwrap();
    let server = cluster.git_server(repo.path(), "my-git-handler", GIT_PASSWORD);
    let main_tf = S3_MAIN_TF.replace(
        "namespace         = \"runs\"",
        &format!("namespace         = \"{}\"", cluster.namespace),
    );
    let files = BTreeMap::from([("s3/main.tf", main_tf.as_str()), ("s3/run.sh", S3_RUN_SH)]);
    let commit = server.create_repo("infra.git", &files);
    let resources = |bucket: &str| config(cluster, &s3_runner(cluster, &server, bucket));

    let work = Workdir::new(&resources("app-dev"));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.s3");
    assert_eq!(values["outputs"]["bucket"], "app-dev", "{values}");
    assert_eq!(values["outputs"]["region"], "local-1");
    assert_eq!(values["secret_outputs"]["secret_key"], "key-of-app-dev");
    assert_eq!(values["last_run"]["commit"], commit.as_str());
    let shown = work.tf(&["output", "-no-color"]).ok("terraform output");
    assert!(
        shown.stdout.contains("bucket = \"app-dev\""),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("secret_key = <sensitive>"),
        "{}",
        shown.stdout
    );
    let state: Json = serde_json::from_str(&cluster.kubectl_ok(
        &[
            "get",
            "secret",
            "tfstate-default-s3",
            "-n",
            &cluster.namespace,
            "-o",
            "json",
        ],
        "",
    ))
    .expect("the inner terraform's state Secret");
    assert_eq!(
        state["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "terraform"
    );
    assert!(server.refused() > 0, "git asked for credentials");
    work.assert_plan_empty("after the apply");

    work.write(&resources("app-prod"));
    let apply = work.apply();
    assert!(
        apply.stdout.contains("1 changed, 0 destroyed"),
        "{}",
        apply.stdout
    );
    let values = work.resource_values("humanitec_container_runner.s3");
    assert_eq!(values["outputs"]["bucket"], "app-prod");
    assert_eq!(values["secret_outputs"]["secret_key"], "key-of-app-prod");
    work.assert_plan_empty("after the update");

    work.destroy();
    let logs = cluster.container_logs().expect("the container logs");
    assert!(
        logs.contains("Destroy complete!"),
        "terraform destroy ran in the Job"
    );
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// What the Job of `kubectl_in_the_job_acts_as_its_service_account` runs: on create, kubectl
/// makes a Secret from a secret variable, reads it back, says who it is and is refused a list of
/// pods (the Role of `iac-job` allows Secrets and Leases only); on destroy it deletes the Secret.
const KUBECTL_RUN_SH: &str = r#"set -eu
export HOME=/tmp
if [ "$ACTION" = destroy ]; then
  kubectl delete secret made-by-kubectl
  echo '{}' > "$OUTPUTS_FILE"
  exit 0
fi
kubectl create secret generic made-by-kubectl --from-literal=token="$TOKEN"
read_back=$(kubectl get secret made-by-kubectl -o jsonpath='{.data.token}' | base64 -d)
user=$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')
client=$(kubectl version --client | sed -n 's/^Client Version: //p')
if kubectl get pods 2> /tmp/refused; then
  echo "kubectl could list pods" > "$ERROR_FILE"
  exit 1
fi
refused=$(head -n 1 /tmp/refused | sed 's/"/\\"/g')
printf '{"user": "%s", "client": "%s", "refused": "%s"}\n' "$user" "$client" "$refused" > "$OUTPUTS_FILE"
printf '{"read_back": "%s"}\n' "$read_back" > "$SECRET_OUTPUTS_FILE"
"#;

/// `kubectl` inside a Job works unchanged: it finds the cluster and its namespace from the pod
/// (in-cluster configuration, the service account's projected token), acts as the Job's service
/// account, is allowed what its Role allows and refused the rest by the API server's RBAC.
fn kubectl_in_the_job_acts_as_its_service_account(cluster: &Cluster) {
    const TOKEN: &str = "kubectl-s3cr3t-41c7";
    let (image, namespace) = (&cluster.iac_image, &cluster.namespace);
    // Why JSON: an HCL string literal is a JSON string once `${` and `%{` are escaped.
    let script = serde_json::to_string(KUBECTL_RUN_SH)
        .unwrap()
        .replace("${", "$${")
        .replace("%{", "%%{");
    let resources = format!(
        r#"resource "humanitec_container_runner" "kubectl" {{
  id            = "kubectl"
  type          = "config"
  runner_config = humanitec_runner_config.cluster
  job {{
    image            = "{image}"
    namespace        = "{namespace}"
    service_account  = "{IAC_SA}"
    command          = ["sh", "-c", {script}]
    secret_variables = {{ TOKEN = "{TOKEN}" }}
  }}
}}
"#
    );
    let work = Workdir::new(&config(cluster, &resources));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.kubectl");
    let outputs = &values["outputs"];
    assert_eq!(
        outputs["user"],
        format!("system:serviceaccount:{namespace}:{IAC_SA}").as_str(),
        "{values}"
    );
    assert!(
        outputs["client"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.")),
        "{values}"
    );
    let refused = outputs["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("Forbidden") && refused.contains("cannot list resource \"pods\""),
        "{values}"
    );
    assert_eq!(values["secret_outputs"]["read_back"], TOKEN);
    let stored = cluster.kubectl_ok(
        &[
            "get",
            "secret",
            "made-by-kubectl",
            "-n",
            namespace,
            "-o",
            "jsonpath={.data.token}",
        ],
        "",
    );
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(stored.trim())
            .unwrap(),
        TOKEN.as_bytes()
    );
    work.assert_plan_empty("after the apply");

    work.destroy();
    let gone = cluster.kubectl(&["get", "secret", "made-by-kubectl", "-n", namespace], "");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "the destroy run's kubectl deleted the Secret: {}",
        String::from_utf8_lossy(&gone.stderr)
    );
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A failed run: the diagnostic leads with what the runner wrote to ERROR_FILE, then the last
/// log lines, with a secret the runner printed redacted; the run goes into state, tainted, so
/// that destroy runs `ACTION=destroy` for whatever it made.
fn a_failure_shows_error_file_then_the_log_with_secrets_redacted(cluster: &Cluster) {
    let job = r#"    command          = ["sh", "-c", "[ \"$ACTION\" = destroy ] && exit 0; echo \"connecting with $API_KEY\"; echo \"bucket name taken (key $API_KEY)\" > \"$ERROR_FILE\"; exit 3"]
    secret_variables = { API_KEY = "leaky-key-88f1" }"#;
    let work = Workdir::new(&config(cluster, &runner(cluster, "failing", job, "")));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains("The run of ACTION=create of container runner \"failing\" failed"),
        "{text}"
    );
    let error_at = text
        .find("ERROR_FILE: bucket name taken (key (sensitive value))")
        .expect(&text);
    let log_at = text.find("The last lines of the log:").expect(&text);
    assert!(error_at < log_at, "ERROR_FILE comes first: {text}");
    assert!(
        text.contains("[main] connecting with (sensitive value)"),
        "{text}"
    );
    assert!(text.contains("container main exited with code 3"), "{text}");
    assert!(!apply.stderr.contains("leaky-key-88f1") && !apply.stdout.contains("leaky-key-88f1"));
    let state = work.state();
    let resources = state
        .pointer("/values/root_module/resources")
        .and_then(Json::as_array);
    let tainted = resources
        .into_iter()
        .flatten()
        .any(|r| r["type"] == "humanitec_container_runner" && r["tainted"] == true);
    assert!(tainted, "the failed run is in state, tainted: {state}");
    assert!(text.contains("terraform untaint"), "{text}");
    work.destroy();
    if let Some(lives) = cluster.job_lives() {
        let destroy = lives
            .iter()
            .find(|l| l.action == "destroy")
            .expect("a destroy run");
        let create = lives
            .iter()
            .find(|l| l.action == "create")
            .expect("the create run");
        assert!(
            create.ended.is_some_and(|end| end < destroy.born),
            "{lives:?}"
        );
    }
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// An image that cannot be pulled fails the apply within seconds, with the reason and the
/// Events, rather than at the timeout.
fn a_missing_image_fails_fast_with_the_reason_and_events(cluster: &Cluster) {
    let resource = runner(cluster, "no-image", "", "")
        .replace(&cluster.runner_image, "localhost/test-images/not-built:1");
    let work = Workdir::new(&config(cluster, &resource));
    let started = std::time::Instant::now();
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains("container main is ErrImagePull")
            || text.contains("container main is ImagePullBackOff")
            || text.contains(": Failed to pull image")
            || text.contains(": Error: ErrImagePull"),
        "{text}"
    );
    assert!(text.contains("Nothing ran"), "{text}");
    assert!(text.contains("Recent events:"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "failed long before the 20m timeout"
    );
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A container that cannot be configured (its environment names a key no Secret has) fails
/// within seconds with the reason.
fn a_container_that_cannot_be_configured_fails_fast(cluster: &Cluster) {
    let job = "    pod_template = \"spec:\\n  containers:\\n    - name: main\\n      env:\\n        - name: MISSING\\n          valueFrom:\\n            secretKeyRef: {name: no-such-secret, key: k}\\n\"";
    let work = Workdir::new(&config(cluster, &runner(cluster, "unconfigured", job, "")));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    // From the pod's status, or sooner from the kubelet's Event, whichever comes first.
    assert!(
        text.contains("container main is CreateContainerConfigError")
            || text.contains(": Error: secret \"no-such-secret\" not found"),
        "{text}"
    );
    assert!(text.contains("no-such-secret"), "{text}");
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A pod that cannot be scheduled fails with the scheduler's reason.
fn an_unschedulable_pod_fails_with_its_reason(cluster: &Cluster) {
    let job = "    pod_template = \"spec:\\n  nodeSelector:\\n    disktype: ssd\\n\"";
    let work = Workdir::new(&config(cluster, &runner(cluster, "pinned", job, "")));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(text.contains("stayed unschedulable for 10 s"), "{text}");
    assert!(text.contains("FailedScheduling"), "{text}");
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// The provider's identity lacks permissions in the Job's namespace: one diagnostic names every
/// missing verb, resource and namespace, with the Role that grants them, and nothing is created.
fn a_missing_permission_is_named_before_anything_is_created(cluster: &Cluster) {
    // Why not on a real cluster: the scenario makes a namespace and Roles outside its own
    // namespace, and checks the history for what was created.
    let runs = &cluster.namespace;
    cluster.kubectl_ok(
        &["apply", "-f", "-"],
        &r#"apiVersion: v1
kind: Namespace
metadata: {name: humanitec-runner}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: runs}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: everything, namespace: humanitec-runner}
rules:
- {apiGroups: ["", batch], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: humanitec-runner}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: everything}
subjects: [{kind: ServiceAccount, name: deployer, namespace: runs}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: partial, namespace: runs}
rules:
- {apiGroups: [batch], resources: [jobs], verbs: [create, get, list, watch]}
- {apiGroups: [""], resources: [secrets], verbs: [create, get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: runs}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: partial}
subjects: [{kind: ServiceAccount, name: deployer, namespace: runs}]
"#
        .replace("namespace: runs", &format!("namespace: {runs}")),
    );
    let token = cluster.service_account_token("deployer");
    let (url, ca) = cluster.api_server();
    let runner_config = format!(
        r#"resource "humanitec_runner_config" "cluster" {{
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
    token                  = "{token}"
  }}
  helper_image = "{}"
}}
"#,
        cluster.helper_image
    );
    let work = Workdir::new(&format!(
        "{}\n{runner_config}\n{}",
        Cluster::provider_block(),
        runner(cluster, "limited", "", "")
    ));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains(&format!("Missing permissions in namespace \"{runs}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("may not patch jobs.batch, delete jobs.batch, list pods, watch pods, get pods/log, list events, watch events, list secrets, patch secrets, delete secrets in namespace \"{runs}\"")),
        "{text}"
    );
    assert!(
        text.contains("kind: Role"),
        "the Role to grant is shown: {text}"
    );
    assert!(!apply.stderr.contains(&token), "the token is never shown");
    let history = cluster.history().expect("the cluster's history");
    let created = history.into_iter().any(|o| {
        o["metadata"]["namespace"] == runs.as_str()
            && (o["kind"] == "Job"
                || o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("limited-")))
    });
    assert!(!created, "nothing was created before the check");
}

/// Secret inputs (a secret variable, a secret file, the git password) and secret outputs appear
/// in no log line, Event, pod status, ConfigMap, Job or other non-Secret object the test
/// cluster ever held (its audit log), in no container log except where the runner itself
/// prints them (it does not here), and nowhere in Terraform's output with `TF_LOG=trace`.
fn secrets_reach_no_log_event_status_or_plain_object(cluster: &Cluster) {
    // Why not on a real cluster: its pods cannot reach a git server on this machine, and the
    // checks read the cluster's whole history.
    let repo = tempfile::tempdir().unwrap();
    const PASSWORD: &str = "git-secret-3e9d71";
    let server = cluster.git_server(repo.path(), "bot", PASSWORD);
    server.create_repo("app.git", &BTreeMap::from([("app/README.md", "# app\n")]));
    const VARIABLE: &str = "variable-secret-b04c2a";
    const FILE: &str = "file-secret-6f20de";
    const OUTPUT: &str = "output-secret-9a7b13";
    let job = format!(
        r#"    variables        = {{ RUNNER_OUTPUTS = jsonencode({{ plain = "visible" }}) }}
    secret_variables = {{ API_KEY = "{VARIABLE}", RUNNER_SECRET_OUTPUTS = jsonencode({{ token = "{OUTPUT}" }}) }}"#
    );
    let rest = format!(
        r#"  source {{
    url      = "{}"
    path     = "app"
    username = "bot"
    password = "{PASSWORD}"
  }}
  secret_files = {{ "credentials.txt" = "{FILE}" }}"#,
        server.url("app.git")
    );
    let work = Workdir::new(&config(cluster, &runner(cluster, "secretive", &job, &rest)));
    let trace = [("TF_LOG", "trace")];
    let apply = work.tf_env(
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        &trace,
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let plan = work.tf_env(&["plan", "-no-color", "-input=false"], &trace);
    let destroy = work.tf_env(
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        &trace,
    );
    assert_eq!(destroy.code, 0, "{}", destroy.stderr);

    let secrets = [PASSWORD, VARIABLE, FILE, OUTPUT];
    let mut places = vec![
        ("apply output", format!("{}{}", apply.stdout, apply.stderr)),
        ("plan output", format!("{}{}", plan.stdout, plan.stderr)),
        (
            "destroy output",
            format!("{}{}", destroy.stdout, destroy.stderr),
        ),
        (
            "container logs",
            cluster.container_logs().expect("the container logs"),
        ),
    ];
    let mut jobs = 0;
    for object in cluster.history().expect("the cluster's history") {
        if object["kind"] == "Job" {
            jobs += 1;
        }
        if object["kind"] != "Secret" {
            let kind = object["kind"].as_str().unwrap_or("object").to_string();
            places.push(("a non-Secret object", format!("{kind}: {object}")));
        }
    }
    assert!(jobs > 0, "the audit holds the Jobs");
    assert!(
        apply.stderr.contains("[secretive-create-"),
        "the trace has the containers' log lines"
    );
    for (place, text) in &places {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} appears in {place}");
        }
    }
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Starts `terraform apply` of a slow run, waits until its Job runs, and stops terraform with
/// `signal`; returns the output and the Job's name.
fn interrupted_apply(
    cluster: &Cluster,
    work: &Workdir,
    signal: &str,
) -> (crate::support::Run, String) {
    crate::direct::runs::interrupted(cluster, work, "apply", "create", signal)
}

/// Ctrl-C (SIGINT) detaches, leaving the Job running and saying how to follow it; the create
/// is recorded, tainted. After `terraform untaint`, the next apply re-attaches to the same run
/// instead of starting another, and takes its outputs.
fn an_interrupted_apply_re_attaches_to_the_same_run_once_untainted(cluster: &Cluster) {
    let job = "    variables = { RUNNER_SLEEP = \"6\" }";
    let work = Workdir::new(&config(cluster, &runner(cluster, "slow", job, "")));
    let (stopped, name) = interrupted_apply(cluster, &work, "-INT");
    assert_ne!(stopped.code, 0);
    let text = words(&stopped.stderr);
    assert!(text.contains("Stopped waiting for the run"), "{text}");
    assert!(
        text.contains(&format!(
            "kubectl -n {} logs -f job/{name} --all-containers",
            cluster.namespace
        )),
        "{text}"
    );
    assert!(text.contains("terraform untaint"), "{text}");
    assert!(cluster.jobs().contains(&name), "the Job keeps running");

    work.tf(&["untaint", "humanitec_container_runner.slow"])
        .ok("terraform untaint");
    work.apply();
    let values = work.resource_values("humanitec_container_runner.slow");
    assert_eq!(values["last_run"]["job_name"], name.as_str());
    assert_eq!(values["outputs"]["action"], "create");
    if let Some(uids) = cluster.job_uids(&name) {
        assert_eq!(uids.len(), 1, "one run, re-attached to");
    }
    work.assert_plan_empty("after re-attaching");
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Terraform killed outright (SIGKILL): the provider goes with it, the Job runs on, and the next
/// apply re-attaches to it.
fn a_killed_apply_re_attaches_to_the_same_run(cluster: &Cluster) {
    let job = "    variables = { RUNNER_SLEEP = \"4\" }";
    let work = Workdir::new(&config(cluster, &runner(cluster, "killed", job, "")));
    let (_, name) = interrupted_apply(cluster, &work, "-KILL");
    work.apply();
    let values = work.resource_values("humanitec_container_runner.killed");
    assert_eq!(values["last_run"]["job_name"], name.as_str());
    if let Some(uids) = cluster.job_uids(&name) {
        assert_eq!(uids.len(), 1, "one run, re-attached to");
    }
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A timeout bounds the wait: the apply fails saying so and the Job is left to its deadline.
fn a_timeout_bounds_the_wait(cluster: &Cluster) {
    let job = "    variables = { RUNNER_SLEEP = \"30\" }";
    let work = Workdir::new(&config(
        cluster,
        &runner(cluster, "late", job, "  timeouts { create = \"3s\" }"),
    ));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(text.contains("because the timeout passed"), "{text}");
    assert!(text.contains("activeDeadlineSeconds = 6"), "{text}");
    let jobs = cluster.jobs();
    assert_eq!(jobs.len(), 1, "the Job is left running: {jobs:?}");
}

/// Two container runners run at the same time.
fn two_container_runners_run_in_parallel(cluster: &Cluster) {
    let job = "    variables = { RUNNER_SLEEP = \"3\" }";
    let work = Workdir::new(&config(
        cluster,
        &format!(
            "{}\n{}",
            runner(cluster, "left", job, ""),
            runner(cluster, "right", job, "")
        ),
    ));
    work.apply();
    let left = work.resource_values("humanitec_container_runner.left")["last_run"].clone();
    let right = work.resource_values("humanitec_container_runner.right")["last_run"].clone();
    let (ls, lf) = (
        left["started_at"].as_str().unwrap(),
        left["finished_at"].as_str().unwrap(),
    );
    let (rs, rf) = (
        right["started_at"].as_str().unwrap(),
        right["finished_at"].as_str().unwrap(),
    );
    assert!(ls < rf && rs < lf, "the runs overlap: {left} {right}");
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// One configuration with both modes through provider aliases: definitions in the sandbox for
/// the api-mode provider, a run in the cluster for the direct-mode one.
fn api_mode_and_direct_mode_in_one_configuration(cluster: &Cluster) {
    let sandbox = Sandbox::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let platform = sandbox.provider_block().replace(
        "provider \"humanitec\" {",
        "provider \"humanitec\" {\n  alias      = \"platform\"",
    );
    let direct_config = cluster.runner_config().replace(
        "\"cluster\" {\n  id",
        "\"cluster\" {\n  provider = humanitec.direct\n  id",
    );
    let direct_runner = runner(cluster, "direct-one", "", "").replace(
        "  id            = \"direct-one\"",
        "  provider      = humanitec.direct\n  id            = \"direct-one\"",
    );
    let main_tf = format!(
        r#"{platform}
provider "humanitec" {{
  alias = "direct"
  mode  = "direct"
}}

{direct_config}
resource "humanitec_runner_config" "platform" {{
  provider = humanitec.platform
  id       = "platform-config"
  cluster {{
    cluster_type = "gke"
    name         = "prod"
    project_id   = "p"
    zone         = "z"
  }}
}}

resource "humanitec_container_runner" "platform" {{
  provider      = humanitec.platform
  id            = "platform-runner"
  type          = "s3"
  runner_config = humanitec_runner_config.platform
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
}}

{direct_runner}
"#
    );
    let work = Workdir::new(&main_tf);
    work.apply();
    let ids: Vec<String> = runtime
        .block_on(sandbox.definitions())
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.contains(&"platform-runner".to_string())
            && ids.contains(&"platform-config".to_string())
    );
    let direct = work.resource_values("humanitec_container_runner.direct-one");
    assert_eq!(direct["outputs"]["action"], "create");
    let platform = work.resource_values("humanitec_container_runner.platform");
    assert_eq!(platform["outputs"], Json::Null);
    work.assert_plan_empty("after applying both modes");
    work.destroy();
    assert!(runtime.block_on(sandbox.definitions()).is_empty());
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A Job deleted while the provider waits for it is an error, never a success, and nothing is
/// recorded.
fn a_vanished_job_is_an_error(cluster: &Cluster) {
    let job = "    variables = { RUNNER_SLEEP = \"20\" }";
    let work = Workdir::new(&config(cluster, &runner(cluster, "vanishing", job, "")));
    let child = work.spawn("apply");
    let name = cluster.eventually("the Job", WAIT, || cluster.jobs().into_iter().next());
    cluster.kubectl_ok(
        &[
            "delete",
            "job",
            &name,
            "-n",
            &cluster.namespace,
            "--cascade=background",
        ],
        "",
    );
    let apply = crate::support::Run::from(child.wait_with_output().expect("terraform output"));
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains(&format!(
            "The provider was waiting for Job {}/{name} when it was deleted",
            cluster.namespace
        )),
        "{text}"
    );
    let state = work.state();
    let resources = state
        .pointer("/values/root_module/resources")
        .and_then(Json::as_array);
    let tainted = resources
        .into_iter()
        .flatten()
        .any(|r| r["type"] == "humanitec_container_runner" && r["tainted"] == true);
    assert!(tainted, "the run is recorded, its outcome unknown: {state}");
    assert!(text.contains("the next apply runs it again"), "{text}");
}

/// A checkout that fails (a ref the repository lacks) fails the run at once, with the helper's
/// reason, before the main container starts.
fn a_failed_checkout_fails_fast_with_its_reason(cluster: &Cluster) {
    let repo = tempfile::tempdir().unwrap();
    let server = cluster.git_server(repo.path(), "bot", "pw-for-checkout");
    server.create_repo("app.git", &BTreeMap::from([("README.md", "# app\n")]));
    let rest = format!(
        "  source {{\n    url      = \"{}\"\n    ref      = \"no-such-branch\"\n    username = \"bot\"\n    password = \"pw-for-checkout\"\n  }}",
        server.url("app.git")
    );
    let work = Workdir::new(&config(cluster, &runner(cluster, "checkout", "", &rest)));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(
        text.contains(
            "preparing the workspace (checking out the source, placing the files) failed"
        ),
        "{text}"
    );
    assert!(text.contains("no-such-branch"), "{text}");
    assert!(!apply.stderr.contains("pw-for-checkout"));
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A runner config whose `kubernetes` block gives `host`, the CA and an exec plugin: the
/// plugin's token reaches the cluster.
fn an_exec_plugin_gives_the_token(cluster: &Cluster) {
    let work = Workdir::new("");
    let plugin = work.path().join("token-plugin.sh");
    let token = cluster.admin_token().expect("an admin token");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho '{{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", \"status\": {{\"token\": \"{token}\"}}}}'\n"
        ),
    )
    .unwrap();
    let (url, ca) = cluster.api_server();
    let runner_config = format!(
        r#"resource "humanitec_runner_config" "cluster" {{
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
    exec {{
      api_version = "client.authentication.k8s.io/v1"
      command     = "sh"
      args        = ["{}"]
    }}
  }}
  helper_image = "{}"
}}
"#,
        plugin.display(),
        cluster.helper_image
    );
    work.write(&format!(
        "{}\n{runner_config}\n{}",
        Cluster::provider_block(),
        runner(cluster, "exec-auth", "", "")
    ));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.exec-auth");
    assert_eq!(values["outputs"]["action"], "create");
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A runner config without a `kubernetes` block finds the cluster as kubectl does: with no
/// `KUBECONFIG` and no `~/.kube/config` its create says so, naming what to set; with
/// `KUBECONFIG` it runs.
fn a_runner_config_without_kubernetes_finds_the_cluster_like_kubectl(cluster: &Cluster) {
    let main_tf = config(cluster, &runner(cluster, "inferred", "", "")).replace(
        &format!(
            "  kubernetes {{\n    config_path = \"{}\"\n  }}\n",
            cluster.kubeconfig().display()
        ),
        "",
    );
    assert!(!main_tf.contains("kubernetes {"), "{main_tf}");
    let work = Workdir::new(&main_tf);
    let apply = |kubeconfig: Option<&std::path::Path>| {
        let mut command = work.command(&["apply", "-auto-approve", "-no-color", "-input=false"]);
        command.env_remove("KUBECONFIG");
        if let Some(path) = kubeconfig {
            command.env("KUBECONFIG", path);
        }
        crate::support::Run::from(command.output().expect("run terraform"))
    };
    let nowhere = apply(None);
    assert_eq!(nowhere.code, 1, "{}", nowhere.stdout);
    let text = words(&nowhere.stderr);
    assert!(text.contains("The cluster cannot be used"), "{text}");
    assert!(text.contains("No cluster configured"), "{text}");
    let found = apply(Some(cluster.kubeconfig()));
    assert_eq!(found.code, 0, "{}", found.stderr);
    let values = work.resource_values("humanitec_container_runner.inferred");
    assert_eq!(values["outputs"]["action"], "create");
    let mut destroy = work.command(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    destroy.env("KUBECONFIG", cluster.kubeconfig());
    assert!(destroy.status().expect("destroy").success());
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

crate::support::tiers! {
    both:
        a_run_brings_its_outputs_back_and_triggers_run_it_again_in_place,
        a_failure_shows_error_file_then_the_log_with_secrets_redacted,
        a_missing_image_fails_fast_with_the_reason_and_events,
        a_container_that_cannot_be_configured_fails_fast,
        an_unschedulable_pod_fails_with_its_reason,
        an_interrupted_apply_re_attaches_to_the_same_run_once_untainted,
        a_killed_apply_re_attaches_to_the_same_run,
        a_timeout_bounds_the_wait,
        a_vanished_job_is_an_error,
        two_container_runners_run_in_parallel,
        api_mode_and_direct_mode_in_one_configuration,
        kubectl_in_the_job_acts_as_its_service_account;
    local_only:
        the_s3_container_runner_runs_terraform_in_the_job,
        a_runner_config_without_kubernetes_finds_the_cluster_like_kubectl,
        a_failed_checkout_fails_fast_with_its_reason,
        an_exec_plugin_gives_the_token,
        a_missing_permission_is_named_before_anything_is_created,
        secrets_reach_no_log_event_status_or_plain_object
}
