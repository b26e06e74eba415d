//! Direct mode against what production namespaces and git servers demand: the helper
//! containers' resource requests and limits under a ResourceQuota and a LimitRange, git over
//! `https` with a private CA, over `ssh` with pinned host keys, through an HTTPS proxy, and a
//! log stream that drops mid-run.

use serde_json::Value as Json;

use crate::support::cluster::Cluster;
use crate::support::connect_proxy::ConnectProxy;
use crate::support::git_server::GitServer;
use crate::support::ssh_server::SshServer;
use crate::support::{Workdir, words};

/// The pod of Job `job` as the cluster stored it: from the test cluster's history (the pod
/// may be gone), else from the cluster now.
fn pod_of(cluster: &Cluster, job: &str) -> Json {
    if let Some(history) = cluster.history() {
        return history
            .into_iter()
            .rev()
            .find(|o| {
                o["kind"] == "Pod" && o["metadata"]["labels"]["batch.kubernetes.io/job-name"] == job
            })
            .unwrap_or_else(|| panic!("no pod of Job {job} in the cluster's history"));
    }
    let out = cluster.kubectl_ok(
        &[
            "get",
            "pods",
            "-n",
            &cluster.namespace,
            "-l",
            &format!("batch.kubernetes.io/job-name={job}"),
            "-o",
            "json",
        ],
        "",
    );
    let list: Json = serde_json::from_str(&out).expect("kubectl get pods -o json");
    list["items"][0].clone()
}

/// The `resources` of container `name` of `pod` (init containers included).
fn resources_of(pod: &Json, name: &str) -> Json {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][*list].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == name)
        .map(|c| c["resources"].clone())
        .unwrap_or_else(|| panic!("no container {name} in {pod}"))
}

/// A ResourceQuota that counts CPU and memory requests and limits, and a LimitRange with
/// bounds for each container, as production namespaces have them.
const QUOTA_AND_LIMITS: &str = r#"apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: NS}
spec:
  hard: {requests.cpu: "4", requests.memory: 4Gi, limits.cpu: "8", limits.memory: 8Gi, pods: "20"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: bounds, namespace: NS}
spec:
  limits:
  - type: Container
    min: {cpu: 5m, memory: 16Mi}
    max: {cpu: "2", memory: 2Gi}
    maxLimitRequestRatio: {cpu: "20"}
"#;

/// The helper containers get requests and limits (the defaults, or the runner config's), so a
/// namespace with a ResourceQuota over CPU and memory and a LimitRange accepts the pod; `main`
/// keeps the resources of `job.pod_template`. A change of `helper_resources` runs nothing; a
/// request above its limit and a quantity Kubernetes would refuse are plan errors naming the
/// attribute.
///
/// The API server's own ResourceQuota and LimitRanger admission decides; the test also checks
/// the pod the provider made against what the quota requires (CPU and memory requests and
/// limits in every container) and the limit range's bounds, so that a pod the admission would
/// change (a default filled in) is noticed too.
fn helper_resources_fit_quotas_and_limit_ranges(cluster: &Cluster) {
    cluster.kubectl_ok(
        &["apply", "-f", "-"],
        &QUOTA_AND_LIMITS.replace("NS", &cluster.namespace),
    );
    let main = "    pod_template = \"spec:\\n  containers:\\n    - name: main\\n      resources:\\n        requests: {cpu: 50m, memory: 64Mi}\\n        limits: {cpu: 500m, memory: 256Mi}\\n\"";
    let resource = cluster.container_runner("quota", main, "");
    let helper_resources = |prepare_limits: &str| {
        format!(
            "  helper_resources {{\n    prepare {{\n      limits = {prepare_limits}\n    }}\n  }}\n  helper_image"
        )
    };
    let config = |prepare_limits: &str| {
        cluster
            .config(&resource)
            .replacen("  helper_image", &helper_resources(prepare_limits), 1)
    };
    let work = Workdir::new(&config("{ cpu = \"750m\", memory = \"384Mi\" }"));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.quota");
    assert_eq!(values["outputs"]["action"], "create", "{values}");
    let job = values["last_run"]["job_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pod = pod_of(cluster, &job);
    let resources = |name| resources_of(&pod, name);
    assert_eq!(
        resources("prepare"),
        serde_json::json!({"requests": {"cpu": "100m", "memory": "128Mi"},
                           "limits": {"cpu": "750m", "memory": "384Mi"}}),
        "prepare: the default requests, the runner config's limits"
    );
    assert_eq!(
        resources("collect"),
        serde_json::json!({"requests": {"cpu": "10m", "memory": "32Mi"},
                           "limits": {"cpu": "100m", "memory": "64Mi"}}),
        "collect: the defaults"
    );
    assert_eq!(
        resources("main"),
        serde_json::json!({"requests": {"cpu": "50m", "memory": "64Mi"},
                           "limits": {"cpu": "500m", "memory": "256Mi"}}),
        "main: the user's, from job.pod_template"
    );
    {
        // What the quota's admission requires of every container, and the limit range's
        // bounds (min 5m / 16Mi, max 2 / 2Gi, limit at most 20 times the CPU request).
        let quantity = |q: &Json| {
            let text = q.as_str().unwrap_or_default();
            let (number, factor) = match text {
                t if t.ends_with('m') => (&t[..t.len() - 1], 0.001),
                t if t.ends_with("Mi") => (&t[..t.len() - 2], 1024.0 * 1024.0),
                t if t.ends_with("Gi") => (&t[..t.len() - 2], 1024.0 * 1024.0 * 1024.0),
                t => (t, 1.0),
            };
            number.parse::<f64>().expect("a quantity") * factor
        };
        for name in ["prepare", "collect", "main"] {
            let r = resources(name);
            for kind in ["requests", "limits"] {
                for (resource, (min, max)) in [
                    ("cpu", (0.005, 2.0)),
                    ("memory", (16.0 * 1048576.0, 2048.0 * 1048576.0)),
                ] {
                    let q = quantity(&r[kind][resource]);
                    assert!(
                        (min..=max).contains(&q),
                        "{name} {kind}.{resource} within the range: {r}"
                    );
                }
            }
            let ratio = quantity(&r["limits"]["cpu"]) / quantity(&r["requests"]["cpu"]);
            assert!(ratio <= 20.0, "{name}: {r}");
        }
    }
    work.assert_plan_empty("after the run");

    // New helper resources are recorded without a run.
    work.write(&config("{ cpu = \"1\", memory = \"512Mi\" }"));
    work.apply();
    let now = work.resource_values("humanitec_container_runner.quota");
    assert_eq!(now["last_run"], values["last_run"], "no new run");
    work.assert_plan_empty("after changing helper_resources");

    // A request above the default limit, and quantities Kubernetes would refuse.
    let bad = cluster.config(&resource).replacen(
        "  helper_image",
        "  helper_resources {\n    prepare {\n      requests = { memory = \"1Gi\" }\n    }\n    collect {\n      limits = { memory = \"64 MB\", \"cpu cores\" = \"1\" }\n    }\n  }\n  helper_image",
        1,
    );
    work.write(&bad);
    let plan = work.tf(&["plan", "-no-color", "-input=false"]);
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    let text = words(&plan.stderr);
    assert!(
        text.contains("helper_resources.prepare.requests: memory = \"1Gi\" is more than its limit \"512Mi\" (the default)"),
        "{text}"
    );
    assert!(
        text.contains("memory = \"64 MB\" is not a Kubernetes quantity"),
        "{text}"
    );
    assert!(
        text.contains("\"cpu cores\" is not a resource name"),
        "{text}"
    );

    work.write(&config("{ cpu = \"1\", memory = \"512Mi\" }"));
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A git source with credentials, as HCL lines of the `source` block plus `extra`.
fn source_block(url: &str, auth: &str, extra: &str) -> String {
    format!("  source {{\n    url = \"{url}\"\n    ref = \"main\"\n{auth}{extra}  }}\n")
}

/// HCL for a string (JSON's quoting is valid HCL for text without `${`).
fn hcl_string(text: &str) -> String {
    assert!(!text.contains("${"));
    serde_json::to_string(text).expect("JSON string")
}

/// The checkout from an `https` server whose certificate a private CA signed: without
/// `source.ca_certificates` the run cannot start (the certificate is not trusted) and leaves
/// nothing behind, with it the run checks out the commit. Proxy variables set in `job.variables` reach the checkout:
/// `HTTPS_PROXY` sends it through the proxy, `NO_PROXY` past it.
fn git_over_https_with_a_private_ca_and_a_proxy(cluster: &Cluster) {
    let host = cluster.host_for_pods().expect("the test cluster");
    let repo = tempfile::tempdir().expect("temp dir");
    let server = GitServer::start_tls_on(&host, repo.path(), "git-bot", GIT_PASSWORD);
    let commit = server.create_repo(
        "infra.git",
        &std::collections::BTreeMap::from([("README", "private CA\n")]),
    );
    let proxy = ConnectProxy::start_on(&host);
    let auth = format!("    username = \"git-bot\"\n    password = \"{GIT_PASSWORD}\"\n");
    let resource = |ca: bool, variables: &str| {
        let extra = if ca {
            format!("    ca_certificates = {}\n", hcl_string(server.ca_pem()))
        } else {
            String::new()
        };
        cluster.container_runner(
            "private-ca",
            &format!("    variables = {{ {variables} }}"),
            &source_block(&server.url("infra.git"), &auth, &extra),
        )
    };
    let work = Workdir::new(&cluster.config(&resource(false, "")));
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(text.contains("could not start"), "{text}");
    assert!(text.contains("preparing the workspace"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(!text.contains(GIT_PASSWORD), "{text}");
    // Why before the next apply too: it makes a Job and an inputs Secret of the same names (the
    // CA and known_hosts say how a run is carried out, not what it runs), and while the failed
    // run's pod is still stopping the real kubelet can mount the re-created Secret with its old
    // content (tools/kubernetes/README.md).
    assert_eq!(cluster.leftovers(), Vec::<String>::new());

    work.write(&cluster.config(&resource(true, "")));
    work.apply();
    let values = work.resource_values("humanitec_container_runner.private-ca");
    assert_eq!(values["last_run"]["commit"], commit.as_str(), "{values}");
    assert!(proxy.targets().is_empty());

    let through = format!("HTTPS_PROXY = \"{}\"", proxy.url());
    work.write(&cluster.config(&resource(true, &through)));
    work.apply();
    let git = format!("{host}:{}", server.port());
    assert_eq!(
        proxy.targets(),
        std::slice::from_ref(&git),
        "the checkout went through the proxy"
    );

    let past = format!("{through}, NO_PROXY = \"{host}\"");
    work.write(&cluster.config(&resource(true, &past)));
    work.apply();
    assert_eq!(
        proxy.targets(),
        [git],
        "NO_PROXY sent the checkout past the proxy"
    );
    let values = work.resource_values("humanitec_container_runner.private-ca");
    assert_eq!(values["last_run"]["commit"], commit.as_str(), "{values}");
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

const GIT_PASSWORD: &str = "git-pat-51c0e2";

/// The checkout over `ssh` from a real sshd with key authentication: with `source.known_hosts`
/// pinning another key the run cannot start, and the diagnostic names the host; with the
/// server's key it checks out the commit; without known_hosts the key is taken on first use.
/// The private key reaches no log line, no diagnostic and no object but Secrets.
fn git_over_ssh_with_pinned_host_keys(cluster: &Cluster) {
    let sshd = SshServer::start_on(&cluster.host_for_pods().expect("the test cluster"));
    let repos = tempfile::tempdir().expect("temp dir");
    let server = cluster.git_server(repos.path(), "unused", "unused");
    let commit = server.create_repo(
        "infra.git",
        &std::collections::BTreeMap::from([("README", "over ssh\n")]),
    );
    let url = sshd.url(&repos.path().join("infra.git"));
    let key = sshd.client_key();
    let auth = format!("    ssh_key = {}\n", hcl_string(&key));
    let resource = |known_hosts: Option<&str>, trigger: &str| {
        let extra = known_hosts
            .map(|k| format!("    known_hosts = {}\n", hcl_string(k)))
            .unwrap_or_default();
        cluster.container_runner(
            "pinned",
            "",
            &format!(
                "{}  triggers = {{ run = \"{trigger}\" }}\n",
                source_block(&url, &auth, &extra)
            ),
        )
    };
    let log = |work: &Workdir| work.path().join("provider.log");
    let apply = |work: &Workdir| {
        let log = log(work);
        work.tf_env(
            &["apply", "-auto-approve", "-no-color", "-input=false"],
            &[
                ("TF_LOG_PROVIDER", "DEBUG"),
                ("TF_LOG_PATH", log.to_str().unwrap_or_default()),
            ],
        )
    };

    let work = Workdir::new(&cluster.config(&resource(Some(&sshd.wrong_known_hosts()), "1")));
    let failed = apply(&work);
    assert_eq!(failed.code, 1, "{}", failed.stdout);
    let text = words(&failed.stderr);
    assert!(text.contains("could not start"), "{text}");
    assert!(
        text.contains(&format!(
            "the ssh server {} showed a host key that source.known_hosts does not hold",
            sshd.host()
        )),
        "{text}"
    );
    assert_eq!(sshd.logins(), 0, "no login to a server with another key");
    // Why before the next apply: as in git_over_https_with_a_private_ca_and_a_proxy.
    assert_eq!(cluster.leftovers(), Vec::<String>::new());

    work.write(&cluster.config(&resource(Some(&sshd.known_hosts()), "1")));
    let applied = apply(&work);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let values = work.resource_values("humanitec_container_runner.pinned");
    assert_eq!(values["last_run"]["commit"], commit.as_str(), "{values}");
    assert!(sshd.logins() >= 1, "{}", sshd.log());

    // Without known_hosts the server's key is taken on first use.
    work.write(&cluster.config(&resource(None, "2")));
    let applied = apply(&work);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    work.destroy();

    // The key's body (any of its base64 lines) is nowhere but in Secrets (and the state).
    let secret_line = key
        .lines()
        .find(|l| l.len() > 40 && !l.starts_with("-----"))
        .expect("a line of the key");
    let provider_log = std::fs::read_to_string(log(&work)).unwrap_or_default();
    assert!(
        provider_log.contains("helper prepare"),
        "the log was captured"
    );
    for (what, text) in [
        ("the provider log", provider_log),
        (
            "the container logs",
            cluster.container_logs().expect("the container logs"),
        ),
        ("the output", format!("{}{}", failed.stdout, failed.stderr)),
    ] {
        assert!(!text.contains(secret_line), "the SSH key is in {what}");
    }
    for object in cluster.history().expect("the cluster's history") {
        if object["kind"] != "Secret" {
            assert!(
                !object.to_string().contains(secret_line),
                "the SSH key is in a {}",
                object["kind"]
            );
        }
    }
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

crate::support::tiers! {
    both:
        helper_resources_fit_quotas_and_limit_ranges;
    // Why the test cluster only: the git servers and the proxy listen on this machine, which a
    // managed cluster's pods do not reach; the released image is copied onto the test
    // cluster's node; the missing image relies on a node that pulls from no registry.
    local_only:
        git_over_https_with_a_private_ca_and_a_proxy,
        git_over_ssh_with_pinned_host_keys,
        the_released_helper_image_runs_a_container_runner,
        an_unpullable_helper_image_says_how_to_mirror_it,
}

/// Runs a command to success; returns its stdout.
fn run_ok(command: &mut std::process::Command) -> String {
    let out = command.output().expect("start the command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The release writes the helper image as an OCI image archive, listed in SHA256SUMS, and the
/// same inputs give the same archive; loaded with `podman load` and copied onto the test
/// cluster's node, it runs a container runner's `prepare` (a git checkout) and `collect`.
fn the_released_helper_image_runs_a_container_runner(cluster: &Cluster) {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dist = tempfile::tempdir().expect("temp dir");
    let binary = crate::support::provider_bin();
    run_ok(
        std::process::Command::new("bash")
            .arg(repo.join("scripts/release.sh"))
            .arg("--binary")
            .arg(&binary)
            .args(["--helper-image", "--out"])
            .arg(dist.path()),
    );
    let version = env!("CARGO_PKG_VERSION");
    let platform = "linux_amd64";
    let archive_name = format!("terraform-provider-humanitec-helper_{version}_{platform}.oci.tar");
    let archive = dist.path().join(&archive_name);
    assert!(archive.is_file(), "the release wrote {archive_name}");
    let sums = std::fs::read_to_string(
        dist.path()
            .join(format!("terraform-provider-humanitec_{version}_SHA256SUMS")),
    )
    .expect("SHA256SUMS");
    let sha = |path: &std::path::Path| {
        run_ok(std::process::Command::new("sha256sum").arg(path))
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        sums.contains(&format!("{}  {archive_name}\n", sha(&archive))),
        "{sums}"
    );

    // The same binary and packages give the same archive, byte for byte.
    let again = dist.path().join("again.oci.tar");
    let digest = run_ok(
        std::process::Command::new("bash")
            .arg(repo.join("scripts/helper-image.sh"))
            .arg("--binary")
            .arg(&binary)
            .args(["--version", version, "--out"])
            .arg(&again),
    );
    assert_eq!(sha(&again), sha(&archive), "a reproducible archive");
    let digest = digest.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let conf = repo.join("scripts/podman/containers.conf");
    let loaded = run_ok(
        std::process::Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args(["load", "-i"])
            .arg(&archive),
    );
    let name = format!("ghcr.io/container-runner/terraform-provider-humanitec-helper:{version}");
    assert!(
        loaded.contains(&name),
        "loaded as the default helper_image: {loaded}"
    );
    // Why a tag of its own: another checkout may load its own build under the release name.
    let tagged = format!(
        "localhost/test-images/released-helper:in-{}",
        &digest[7..23]
    );
    let id = run_ok(
        std::process::Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args(["image", "inspect", "--format", "{{.Id}}", &name]),
    );
    run_ok(
        std::process::Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args(["tag", id.trim(), &tagged]),
    );
    cluster.load_image(&tagged);

    let repos = tempfile::tempdir().expect("temp dir");
    let server = cluster.git_server(repos.path(), "git-bot", GIT_PASSWORD);
    let commit = server.create_repo(
        "infra.git",
        &std::collections::BTreeMap::from([("README", "released\n")]),
    );
    let auth = format!("    username = \"git-bot\"\n    password = \"{GIT_PASSWORD}\"\n");
    let resource = cluster.container_runner(
        "released",
        "",
        &source_block(&server.url("infra.git"), &auth, ""),
    );
    let config = cluster
        .config(&resource)
        .replace(&cluster.helper_image, &tagged);
    assert!(config.contains(&tagged));
    let work = Workdir::new(&config);
    work.apply();
    let values = work.resource_values("humanitec_container_runner.released");
    assert_eq!(values["last_run"]["commit"], commit.as_str(), "{values}");
    assert_eq!(values["outputs"]["action"], "create", "{values}");
    let job = values["last_run"]["job_name"].as_str().unwrap_or_default();
    let pod = pod_of(cluster, job);
    let images: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect();
    assert_eq!(
        images,
        [tagged.as_str(), tagged.as_str()],
        "prepare and collect"
    );
    work.destroy();
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// A helper image the node cannot pull fails the apply in seconds, and the diagnostic says that
/// it is the provider's helper image, that releases carry it, and how to mirror it.
fn an_unpullable_helper_image_says_how_to_mirror_it(cluster: &Cluster) {
    let resource = cluster.container_runner("no-helper", "", "");
    let config = cluster.config(&resource).replace(
        &cluster.helper_image,
        "localhost/test-images/no-such-helper:1",
    );
    let work = Workdir::new(&config);
    let started = std::time::Instant::now();
    let apply = work.tf(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let text = words(&apply.stderr);
    assert!(text.contains("could not start"), "{text}");
    // Why the Event's words too: the real kubelet's Event comes about ten seconds before the
    // waiting reason reaches the pod status, and the provider reports whichever it sees first.
    assert!(
        text.contains("container prepare is ErrImagePull")
            || text.contains("container prepare is ImagePullBackOff")
            || text.contains("container prepare: Failed to pull image"),
        "{text}"
    );
    assert!(text.contains("the provider's helper image"), "{text}");
    assert!(
        text.contains("mirror it to a registry your cluster can pull from"),
        "{text}"
    );
    assert!(
        text.contains("skopeo copy oci-archive:terraform-provider-humanitec-helper_"),
        "{text}"
    );
    assert!(text.contains("set helper_image"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// `source.ca_certificates` and `source.known_hosts` are checked at plan: text that is not a
/// certificate bundle (or holds a private key) or not known_hosts lines is named with what
/// would be right; in api mode, where the Container Driver has no such inputs, both are refused.
#[tokio::test(flavor = "multi_thread")]
async fn git_trust_settings_are_checked_at_plan() {
    let sandbox = crate::support::Sandbox::start();
    let provider = format!(
        "terraform {{\n  required_providers {{\n    humanitec = {{ source = \"container-runner/humanitec\" }}\n  }}\n}}\n\nprovider \"humanitec\" {{\n  org_id = \"{}\"\n  token = \"{}\"\n  api_prefix = \"{}\"\n}}\n",
        crate::support::ORG,
        crate::support::TOKEN,
        sandbox.url
    );
    let config = |source: &str| {
        format!(
            r#"{provider}
resource "humanitec_container_runner" "s3" {{
  id   = "bucket"
  type = "s3"
  job {{
    image = "ghcr.io/my-org/my-image:1.1.0"
  }}
  source {{
    url = "git@git.example.internal:platform/infra.git"
{source}
  }}
}}
"#
        )
    };
    let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    let cases = [
        (
            "    ca_certificates = \"corp-ca.pem\"".to_string(),
            "source.ca_certificates has no PEM block",
        ),
        (
            format!("    ca_certificates = {}", hcl_string(key)),
            "source.ca_certificates holds a PRIVATE KEY block, which is not a certificate",
        ),
        (
            "    known_hosts = \"git.example.internal\"".to_string(),
            "Line 1 of source.known_hosts is not a known_hosts entry",
        ),
        (
            "    known_hosts = \"git.example.internal ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0\""
                .to_string(),
            "source.known_hosts applies to direct mode only",
        ),
    ];
    for (source, want) in cases {
        let work = Workdir::new(&config(&source));
        let plan = work.plan();
        let text = words(&plan.stderr);
        assert_eq!(plan.code, 1, "{want}: {}", plan.stdout);
        assert!(text.contains(want), "{want}: {text}");
        // Why after the message: Terraform quotes the configuration's line before it.
        let detail = &text[text.find(want).unwrap_or(0)..];
        assert!(
            !detail.contains("MC4CAQAwBQYDK2VwBCIEIA"),
            "the provider does not echo the key: {detail}"
        );
    }
}
