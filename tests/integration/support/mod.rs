//! Test harnesses: the sandbox API in-process, Terraform working directories that
//! use the freshly built provider through `dev_overrides` (no `terraform init`), and a git
//! server with basic auth (`git_server`).

#![allow(dead_code)]

pub(crate) mod cluster;
pub(crate) mod connect_proxy;
pub(crate) mod fault_proxy;
pub(crate) mod git_server;
pub(crate) mod ssh_server;
pub(crate) mod test_cluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The organization every test uses.
pub(crate) const ORG: &str = "test-org";
/// The token the sandbox is started with.
pub(crate) const TOKEN: &str = "sandbox-token-do-not-log";

/// The provider binary cargo built for this test run.
pub(crate) fn provider_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-humanitec"))
}

/// The Terraform CLI to drive: `TF_ACC_TERRAFORM_PATH`, else `terraform` on PATH.
pub(crate) fn terraform_bin() -> String {
    std::env::var("TF_ACC_TERRAFORM_PATH").unwrap_or_else(|_| "terraform".to_string())
}

/// A running `humanitec-sandbox`, in-process on its own thread, stopped on drop. The helpers
/// below go through its HTTP API, as a change made outside Terraform would.
pub(crate) struct Sandbox {
    /// The sandbox itself, held so that dropping the wrapper stops it.
    server: humanitec_sandbox::Sandbox,
    /// Base URL, e.g. `http://127.0.0.1:41234/`.
    pub(crate) url: String,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts a sandbox without faults.
    pub(crate) fn start() -> Self {
        Self::start_with_fault_rate(0.0)
    }

    /// Starts a sandbox that answers a share `rate` of the API requests with an injected fault.
    pub(crate) fn start_with_fault_rate(rate: f64) -> Self {
        let server = humanitec_sandbox::Sandbox::start(humanitec_sandbox::Options {
            token: Some(TOKEN.to_string()),
            seed: Some(7),
            fault_rate: rate,
            log_requests: false,
            ..humanitec_sandbox::Options::default()
        })
        .expect("start humanitec-sandbox");
        let url = server.url().to_string();
        Self {
            server,
            url,
            http: reqwest::Client::new(),
        }
    }

    fn defs_url(&self, rest: &str) -> String {
        format!("{}orgs/{ORG}/resources/defs{rest}", self.url)
    }

    /// All (not deleted) definitions of the test organization.
    pub(crate) async fn definitions(&self) -> Vec<serde_json::Value> {
        self.set_faults(0.0).await;
        let response = self
            .http
            .get(self.defs_url(""))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("list definitions");
        assert_eq!(response.status(), 200);
        response.json().await.expect("definitions JSON")
    }

    /// One definition, or None when it does not exist.
    pub(crate) async fn definition(&self, id: &str) -> Option<serde_json::Value> {
        let response = self
            .http
            .get(self.defs_url(&format!("/{id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get definition");
        match response.status().as_u16() {
            200 => Some(response.json().await.expect("definition JSON")),
            404 => None,
            other => panic!("GET definition answered {other}"),
        }
    }

    /// Sends a raw API request, as a change made outside Terraform.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        rest: &str,
        body: Option<serde_json::Value>,
    ) -> u16 {
        let mut request = self
            .http
            .request(method, self.defs_url(rest))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("API call").status().as_u16()
    }

    /// Changes the fault injection rate at runtime.
    pub(crate) async fn set_faults(&self, rate: f64) {
        let response = self
            .http
            .put(format!("{}_sandbox/faults", self.url))
            .json(&serde_json::json!({"rate": rate, "latency_ms": 0}))
            .send()
            .await
            .expect("set faults");
        assert!(response.status().is_success());
    }

    /// Sets the faults that act after a request is processed: with chance `rate`, a request whose
    /// method is in `methods` (e.g. `["POST"]`; empty for all) is applied, its answer held
    /// `delay_ms`, then answered by one of `kinds` (`"delay"`: the real answer, `"502"`, `"504"`:
    /// a gateway page, `"drop"`: the connection closed without an answer). `set_faults` and
    /// `definitions` leave these alone: `set_after_faults(0.0, &["drop"], &[], 0)` stops them.
    pub(crate) async fn set_after_faults(
        &self,
        rate: f64,
        kinds: &[&str],
        methods: &[&str],
        delay_ms: u64,
    ) {
        let methods: &[&str] = if methods.is_empty() {
            &["GET", "POST", "PUT", "PATCH", "DELETE"]
        } else {
            methods
        };
        let response = self
            .http
            .put(format!("{}_sandbox/faults", self.url))
            .json(&serde_json::json!({
                "after_rate": rate,
                "after_kinds": kinds,
                "after_methods": methods,
                "after_delay_ms": delay_ms,
            }))
            .send()
            .await
            .expect("set after-processing faults");
        assert!(
            response.status().is_success(),
            "after-processing faults refused: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// The secrets the sandbox stored, for checking that a secret really arrived.
    pub(crate) async fn secrets(&self) -> serde_json::Value {
        self.http
            .get(format!("{}_sandbox/orgs/{ORG}/secrets", self.url))
            .send()
            .await
            .expect("secrets")
            .json()
            .await
            .expect("secrets JSON")
    }

    /// Marks a definition as used by Active Resources (`[{app_id, env_id, res_id}, …]`; an empty
    /// array clears them), through the sandbox's admin endpoint. Answers the HTTP status.
    pub(crate) async fn set_active_resources(&self, id: &str, resources: serde_json::Value) -> u16 {
        self.http
            .put(format!(
                "{}_sandbox/orgs/{ORG}/resources/defs/{id}/active-resources",
                self.url
            ))
            .json(&resources)
            .send()
            .await
            .expect("set active resources")
            .status()
            .as_u16()
    }

    /// The provider block pointing at this sandbox.
    pub(crate) fn provider_block(&self) -> String {
        format!(
            "terraform {{\n  required_providers {{\n    humanitec = {{ source = \"container-runner/humanitec\" }}\n  }}\n}}\n\n\
             provider \"humanitec\" {{\n  org_id     = \"{ORG}\"\n  token      = \"{TOKEN}\"\n  api_prefix = \"{}\"\n}}\n",
            self.url
        )
    }
}

/// A Terraform working directory using the built provider through `dev_overrides`.
pub(crate) struct Workdir {
    dir: tempfile::TempDir,
}

/// The result of one Terraform command.
pub(crate) struct Run {
    /// Exit code (-1 when killed).
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the output unless the command succeeded.
    pub(crate) fn ok(self, what: &str) -> Self {
        assert_eq!(
            self.code, 0,
            "{what} failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Workdir {
    /// A new directory with `main.tf` and a CLI config that overrides the provider.
    pub(crate) fn new(main_tf: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin_dir = provider_bin().parent().expect("bin dir").to_path_buf();
        std::fs::write(
            dir.path().join("dev.tfrc"),
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"container-runner/humanitec\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                bin_dir.display()
            ),
        )
        .expect("write dev.tfrc");
        let workdir = Self { dir };
        workdir.write(main_tf);
        workdir
    }

    /// Replaces `main.tf`.
    pub(crate) fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.path().join("main.tf"), main_tf).expect("write main.tf");
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `terraform <args>` here.
    pub(crate) fn tf(&self, args: &[&str]) -> Run {
        self.tf_env(args, &[])
    }

    /// `terraform <args>` to run here, for a test that needs the process itself (to interrupt
    /// it, say).
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_of(&terraform_bin(), args)
    }

    /// `<cli> <args>` to run here, for a test that drives another CLI binary than the one under
    /// test (the same directory under Terraform and OpenTofu, say).
    pub(crate) fn command_of(&self, cli: &str, args: &[&str]) -> Command {
        let mut command = Command::new(cli);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("dev.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env_remove("HUMANITEC_TOKEN")
            .env_remove("HUMANITEC_ORG")
            .env_remove("HUMANITEC_API_PREFIX")
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs `terraform <args>` here with extra environment variables (e.g. `TF_LOG`).
    /// Starts `terraform <command> -auto-approve` in the background, its output captured.
    pub(crate) fn spawn(&self, command: &str) -> Child {
        self.command(&[command, "-auto-approve", "-no-color", "-input=false"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform")
    }

    pub(crate) fn tf_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .expect("run terraform");
        Run::from(output)
    }

    /// `terraform apply -auto-approve`, which must succeed.
    pub(crate) fn apply(&self) -> Run {
        self.tf(&["apply", "-auto-approve", "-no-color", "-input=false"])
            .ok("terraform apply")
    }

    /// `terraform destroy -auto-approve`, which must succeed.
    pub(crate) fn destroy(&self) -> Run {
        self.tf(&["destroy", "-auto-approve", "-no-color", "-input=false"])
            .ok("terraform destroy")
    }

    /// `terraform plan -detailed-exitcode`: 0 = no changes, 2 = changes, 1 = error.
    pub(crate) fn plan(&self) -> Run {
        self.tf(&["plan", "-detailed-exitcode", "-no-color", "-input=false"])
    }

    /// Asserts that a plan shows no changes.
    pub(crate) fn assert_plan_empty(&self, when: &str) {
        let run = self.plan();
        assert_eq!(
            run.code, 0,
            "plan {when} was not empty\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
    }

    /// `terraform show -json` of the state.
    pub(crate) fn state(&self) -> serde_json::Value {
        let run = self
            .tf(&["show", "-json", "-no-color"])
            .ok("terraform show");
        serde_json::from_str(&run.stdout).expect("show JSON")
    }

    /// The attribute values of one resource in the state.
    pub(crate) fn resource_values(&self, address: &str) -> serde_json::Value {
        let state = self.state();
        let resources = state
            .pointer("/values/root_module/resources")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        resources
            .into_iter()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
            .unwrap_or_else(|| panic!("{address} not in state"))
    }
}

/// The words of a command's output joined by single spaces, since Terraform wraps diagnostics
/// at the terminal width.
pub(crate) fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each direct-mode scenario as a test of a tier: `test_cluster` (the real Kubernetes of
/// `scripts/test-cluster.sh`, started by the first test that needs it) always; `real_cluster`
/// (the managed cluster of `KUBECONFIG`) only when asked for, as its tests are `#[ignore]`d:
/// `KUBECONFIG=... cargo test --test integration real_cluster -- --ignored` (they fail without
/// `KUBECONFIG`). The `local_only` scenarios need what only the test cluster gives: servers on
/// this machine that its pods reach (git, ssh, a proxy), its audit log and its node's
/// container logs.
macro_rules! tiers {
    (
        both: $($both:ident),* $(,)? ;
        local_only: $($local:ident),* $(,)?
    ) => {
        mod test_cluster {
            $(#[test]
            fn $both() {
                super::$both(&$crate::support::cluster::Cluster::local());
            })*
            $(#[test]
            fn $local() {
                super::$local(&$crate::support::cluster::Cluster::local());
            })*
        }
        mod real_cluster {
            $(#[test]
            #[ignore = "needs KUBECONFIG pointing at a managed cluster and the test images; see tests/integration/README.md"]
            fn $both() {
                super::$both(&$crate::support::cluster::Cluster::real());
            })*
        }
    };
}
pub(crate) use tiers;
