//! The resource types the test world serves, and the discovery documents (`/api`, `/apis`, the
//! group-version resource lists, a minimal `/openapi/v3`) that describe them to clients.

use serde_json::{Value, json};

/// One served resource type (one REST collection).
#[derive(Debug)]
pub(crate) struct ResourceType {
    /// API group; `""` for the core group.
    pub(crate) group: &'static str,
    /// API version within the group.
    pub(crate) version: &'static str,
    /// The collection's path segment, e.g. `configmaps`.
    pub(crate) plural: &'static str,
    /// The lower-case singular, e.g. `configmap`.
    pub(crate) singular: &'static str,
    /// The object kind, e.g. `ConfigMap`.
    pub(crate) kind: &'static str,
    /// Whether objects live in a namespace.
    pub(crate) namespaced: bool,
    /// Short names kubectl accepts (`cm`).
    pub(crate) short_names: &'static [&'static str],
    /// Subresources besides the object itself (`status`, `log`).
    pub(crate) subresources: &'static [&'static str],
    /// Only `create` is served (reviews, which are never stored).
    pub(crate) create_only: bool,
    /// `metadata.generation` is kept and bumped on spec changes.
    pub(crate) has_generation: bool,
}

/// Every verb of a stored resource, in the order discovery lists them.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as error messages name it: `configmaps`, `jobs.batch`.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind as `Invalid` messages name it: `ConfigMap`, `Job.batch`.
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The verbs served on the collection and its objects.
    pub(crate) fn verbs(&self) -> &'static [&'static str] {
        if self.create_only {
            &["create"]
        } else {
            ALL_VERBS
        }
    }

    /// Whether objects of this type carry a `status` that only the status subresource writes.
    pub(crate) fn has_status_subresource(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

/// The served resource types. Indexes into this table identify a type throughout the crate.
pub(crate) static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        subresources: &["status"],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        subresources: &["status", "log"],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        subresources: &["status"],
        create_only: false,
        has_generation: true,
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        create_only: false,
        has_generation: false,
    },
    ResourceType {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        subresources: &[],
        create_only: true,
        has_generation: false,
    },
];

/// Index of a resource type in [`RESOURCES`].
pub(crate) type ResourceId = usize;

/// The index of the type served at `group`/`version` under `plural`.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<ResourceId> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The index of the type with this kind in this group.
pub(crate) fn find_kind(group: &str, kind: &str) -> Option<ResourceId> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.kind == kind)
}

/// Index constants for the types the controllers and the store treat specially.
pub(crate) mod ids {
    use super::ResourceId;
    /// `namespaces`.
    pub(crate) const NAMESPACES: ResourceId = 0;
    /// `serviceaccounts`.
    pub(crate) const SERVICEACCOUNTS: ResourceId = 1;
    /// `secrets`.
    pub(crate) const SECRETS: ResourceId = 2;
    /// `configmaps`.
    pub(crate) const CONFIGMAPS: ResourceId = 3;
    /// `pods`.
    pub(crate) const PODS: ResourceId = 4;
    /// `events`.
    pub(crate) const EVENTS: ResourceId = 5;
    /// `jobs`.
    pub(crate) const JOBS: ResourceId = 6;
    /// `selfsubjectaccessreviews`.
    pub(crate) const SELFSUBJECTACCESSREVIEWS: ResourceId = 10;
}

/// The groups other than core, each with its one version, in discovery order.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.iter().any(|(g, _)| *g == r.group) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `GET /version`: the Kubernetes version whose schemas the world validates against.
pub(crate) fn version_doc() -> Value {
    json!({
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-testworld",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-08-13T00:00:00Z",
        "goVersion": "go1.22.5",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `GET /api`.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// One `APIGroup` entry.
fn group_doc(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis`.
pub(crate) fn group_list() -> Value {
    let groups: Vec<Value> = groups().iter().map(|(g, v)| group_doc(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, if the group is served.
pub(crate) fn group(group: &str) -> Option<Value> {
    let (g, v) = groups().into_iter().find(|(g, _)| *g == group)?;
    let mut doc = group_doc(g, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, if served.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
        }));
        for sub in r.subresources {
            let verbs: &[&str] = if *sub == "log" {
                &["get"]
            } else {
                &["get", "patch", "update"]
            };
            resources.push(json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources
    }))
}

/// `GET /openapi/v3`: the index of per-group-version documents.
pub(crate) fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=testworld"}),
    );
    for (g, v) in groups() {
        paths.insert(
            format!("apis/{g}/{v}"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}?hash=testworld")}),
        );
    }
    json!({ "paths": paths })
}

/// `GET /openapi/v3/{api/v1 | apis/g/v}`: the operations of one group version.
///
/// Why: kubectl reads these documents to learn whether the server accepts `fieldValidation`
/// (then it leaves validation to the server, as with a real one); the schemas themselves are not
/// served, so clients that need them for their own validation must be told not to.
pub(crate) fn openapi_group_version(group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}});
        let write_params = json!([
            param("dryRun"),
            param("fieldManager"),
            param("fieldValidation")
        ]);
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": write_params,
                "responses": {"200": {"description": "OK"}}
            })
        };
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        paths.insert(collection.clone(), json!({ "post": op("post") }));
        if !r.create_only {
            paths.insert(
                format!("{collection}/{{name}}"),
                json!({ "put": op("put"), "patch": op("patch") }),
            );
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": {}}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_point_at_their_types() {
        assert_eq!(RESOURCES[ids::NAMESPACES].plural, "namespaces");
        assert_eq!(RESOURCES[ids::SERVICEACCOUNTS].plural, "serviceaccounts");
        assert_eq!(RESOURCES[ids::SECRETS].plural, "secrets");
        assert_eq!(RESOURCES[ids::CONFIGMAPS].plural, "configmaps");
        assert_eq!(RESOURCES[ids::PODS].plural, "pods");
        assert_eq!(RESOURCES[ids::EVENTS].plural, "events");
        assert_eq!(RESOURCES[ids::JOBS].plural, "jobs");
        assert_eq!(
            RESOURCES[ids::SELFSUBJECTACCESSREVIEWS].plural,
            "selfsubjectaccessreviews"
        );
    }

    #[test]
    fn discovery_lists_subresources_and_groups() {
        let core = resource_list("", "v1").expect("core");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/log"));
        assert!(names.contains(&"pods/status"));
        let groups = group_list();
        assert_eq!(groups["groups"].as_array().map(Vec::len), Some(4));
        assert!(resource_list("batch", "v2").is_none());
    }
}
