//! Direct mode against what production namespaces and git servers demand: the helper
//! containers' resource requests and limits under a ResourceQuota and a LimitRange, git over
//! `https` with a private CA, over `ssh` with pinned host keys, through an HTTPS proxy, and a
//! log stream that drops mid-run.

use serde_json::Value as Json;

use crate::support::cluster::Cluster;
use crate::support::{Workdir, words};

/// The pod of Job `job` as the cluster stored it: from the test world's history (the pod may
/// be gone), else from the cluster now.
fn pod_of(cluster: &Cluster, job: &str) -> Json {
    if let Some(world) = cluster.world() {
        return world
            .audit()
            .iter()
            .rev()
            .find(|o| {
                o["kind"] == "Pod" && o["metadata"]["labels"]["batch.kubernetes.io/job-name"] == job
            })
            .cloned()
            .unwrap_or_else(|| panic!("no pod of Job {job} in the world's history"));
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
/// The test world knows neither ResourceQuotas nor LimitRanges, so there the test checks the
/// pod the provider made against what the quota's admission requires (CPU and memory requests
/// and limits in every container) and the limit range's bounds; on a real cluster
/// (`KUBECONFIG`) the API server's own admission decides.
fn helper_resources_fit_quotas_and_limit_ranges(cluster: &Cluster) {
    if cluster.world().is_none() {
        cluster.kubectl_ok(
            &["apply", "-f", "-"],
            &QUOTA_AND_LIMITS.replace("NS", &cluster.namespace),
        );
    }
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
    if cluster.world().is_some() {
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

crate::support::tiers! {
    both:
        helper_resources_fit_quotas_and_limit_ranges;
    test_world_only:
}
