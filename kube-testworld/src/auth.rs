//! Authentication by bearer token (the admin identity of the kubeconfig, and service-account
//! tokens the world mints), and authorization: `system:masters` may do anything, everyone else
//! gets what the Roles bound to them in a namespace allow (RBAC, namespaced rules only).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::resources::{RESOURCES, ids};
use crate::world::{State, meta_str};

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct User {
    /// `kubernetes-admin`, `system:serviceaccount:<ns>:<name>`.
    pub(crate) name: String,
    /// Group memberships, `system:authenticated` included.
    pub(crate) groups: Vec<String>,
}

impl User {
    /// The admin identity of the kubeconfig.
    pub(crate) fn admin() -> Self {
        User {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// The identity of a service account.
    pub(crate) fn service_account(ns: &str, name: &str) -> Self {
        User {
            name: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// The token table.
#[derive(Debug, Default)]
pub(crate) struct Tokens(Mutex<HashMap<String, User>>);

impl Tokens {
    /// Registers `token` for `user`.
    pub(crate) fn add(&self, token: String, user: User) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, user);
    }

    /// The user a bearer token belongs to.
    pub(crate) fn user(&self, token: &str) -> Option<User> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// A fresh random token (hex, 256 bits).
pub(crate) fn new_token() -> String {
    (0..4)
        .map(|_| format!("{:016x}", crate::clock::random_u64()))
        .collect()
}

/// What a request wants to do, in RBAC terms.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub(crate) verb: String,
    /// API group (`""` for core).
    pub(crate) group: String,
    /// The resource (`pods`).
    pub(crate) resource: String,
    /// The subresource (`log`, `status`) or `""`.
    pub(crate) subresource: String,
    /// The namespace, `""` for cluster scope.
    pub(crate) namespace: String,
    /// The object's name, `""` for collections.
    pub(crate) name: String,
}

impl Attributes {
    /// The Forbidden message a real API server gives for these attributes.
    pub(crate) fn forbidden_message(&self, user: &User) -> String {
        let resource = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let what = if self.name.is_empty() {
            resource.clone()
        } else {
            format!("{resource} \"{}\"", self.name)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        format!(
            "{what} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            user.name, self.verb, self.group
        )
    }
}

/// Whether `user` may act as `attrs` says, given the stored Roles and RoleBindings.
pub(crate) fn allowed(state: &State, user: &User, attrs: &Attributes) -> bool {
    if user.groups.iter().any(|g| g == "system:masters") {
        return true;
    }
    // Why: every authenticated identity may create self-reviews (the `system:basic-user` role).
    if attrs.group == "authorization.k8s.io" && attrs.resource == "selfsubjectaccessreviews" {
        return attrs.verb == "create";
    }
    if attrs.namespace.is_empty() {
        return false;
    }
    let bindings = crate::resources::find_kind("rbac.authorization.k8s.io", "RoleBinding");
    let roles = crate::resources::find_kind("rbac.authorization.k8s.io", "Role");
    let (Some(bindings), Some(roles)) = (bindings, roles) else {
        return false;
    };
    for binding in state.iter_type(bindings, Some(&attrs.namespace)) {
        if !binds(binding, user, &attrs.namespace) {
            continue;
        }
        if binding["roleRef"]["kind"].as_str() != Some("Role") {
            continue;
        }
        let role_name = binding["roleRef"]["name"].as_str().unwrap_or("");
        let key = (roles, attrs.namespace.clone(), role_name.to_string());
        let Some(role) = state.get(&key) else {
            continue;
        };
        if role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| rule_allows(rule, attrs))
        {
            return true;
        }
    }
    false
}

/// Whether a RoleBinding names the user (directly, by group, or as a service account).
fn binds(binding: &Value, user: &User, ns: &str) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            let name = s["name"].as_str().unwrap_or("");
            match s["kind"].as_str().unwrap_or("") {
                "User" => user.name == name,
                "Group" => user.groups.iter().any(|g| g == name),
                "ServiceAccount" => {
                    let sa_ns = s["namespace"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(ns);
                    user.name == format!("system:serviceaccount:{sa_ns}:{name}")
                }
                _ => false,
            }
        })
}

/// Whether one PolicyRule covers the attributes.
fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let has = |field: &str, wanted: &str| {
        rule[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|v| v == "*" || v == wanted)
    };
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let names_ok = match rule["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => {
            !attrs.name.is_empty()
                && names
                    .iter()
                    .any(|n| n.as_str() == Some(attrs.name.as_str()))
        }
        _ => true,
    };
    has("verbs", &attrs.verb)
        && has("apiGroups", &attrs.group)
        && (has("resources", &resource)
            || (!attrs.subresource.is_empty()
                && has("resources", &format!("*/{}", attrs.subresource))))
        && names_ok
}

/// Answers a SelfSubjectAccessReview body for `user`.
pub(crate) fn review(state: &State, user: &User, body: &Value) -> Value {
    let spec = &body["spec"];
    let ra = &spec["resourceAttributes"];
    let allowed = if ra.is_object() {
        let attrs = Attributes {
            verb: ra["verb"].as_str().unwrap_or("").to_string(),
            group: ra["group"].as_str().unwrap_or("").to_string(),
            resource: ra["resource"].as_str().unwrap_or("").to_string(),
            subresource: ra["subresource"].as_str().unwrap_or("").to_string(),
            namespace: ra["namespace"].as_str().unwrap_or("").to_string(),
            name: ra["name"].as_str().unwrap_or("").to_string(),
        };
        allowed(state, user, &attrs)
    } else {
        user.groups.iter().any(|g| g == "system:masters")
    };
    let mut out = body.clone();
    out["status"] = serde_json::json!({"allowed": allowed});
    if let Some(m) = out["metadata"].as_object_mut() {
        m.insert("creationTimestamp".into(), Value::Null);
    } else {
        out["metadata"] = serde_json::json!({"creationTimestamp": null});
    }
    out
}

/// Whether a service account exists (tokens of deleted accounts stop working).
pub(crate) fn service_account_exists(state: &State, user: &User) -> bool {
    let Some(rest) = user.name.strip_prefix("system:serviceaccount:") else {
        return true;
    };
    let Some((ns, name)) = rest.split_once(':') else {
        return false;
    };
    state
        .get(&(ids::SERVICEACCOUNTS, ns.to_string(), name.to_string()))
        .is_some_and(|sa| {
            meta_str(sa, "name") == name && RESOURCES[ids::SERVICEACCOUNTS].namespaced
        })
}
