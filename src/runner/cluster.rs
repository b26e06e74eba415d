//! Reaching a cluster: the `kube` client from a runner config's [`Connection`], the check that
//! the cluster answers, and the check that the provider's identity may do what a run does.
//!
//! The connection resolves the way the Terraform Kubernetes provider and kubectl do: explicit
//! `host` (with a CA, a token or an exec plugin) first, then a kubeconfig file and context, and
//! with nothing set, `KUBECONFIG`, `~/.kube/config` and finally the in-cluster service account.
//! Exec plugins are run by `kube`, which caches their token and runs them again when it expires,
//! so long waits keep working.

use std::path::PathBuf;

use futures_util::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

use super::{Connection, MANAGER};

/// Why a cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// The connection settings do not make a client configuration.
    #[error("the kubernetes settings do not work: {0}")]
    Settings(String),
    /// A kubeconfig could not be loaded.
    #[error("could not load the kubeconfig {place}")]
    Kubeconfig {
        /// Which file or search, in words.
        place: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "no cluster configured: set the runner config's kubernetes block, or KUBECONFIG, or \
         create ~/.kube/config"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built.
    #[error("could not build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// The API server did not answer.
    #[error("the cluster at {url} does not answer")]
    Unreachable {
        /// The API server URL.
        url: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Asking about a permission failed.
    #[error("could not check the permissions (SelfSubjectAccessReview)")]
    Review(#[source] kube::Error),
    /// Permissions a run needs are missing.
    #[error("{}", missing_text(.namespace, .missing))]
    Missing {
        /// The namespace checked.
        namespace: String,
        /// What is missing.
        missing: Vec<Permission>,
    },
}

/// One permission in a namespace: verbs on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Permission {
    /// The API group (`""` for the core group).
    pub(crate) group: &'static str,
    /// The resource, with a subresource after a `/` (`pods/log`).
    pub(crate) resource: &'static str,
    /// The verb.
    pub(crate) verb: &'static str,
}

impl Permission {
    /// `verb resource.group`, as `kubectl auth can-i` takes it.
    fn words(&self) -> String {
        match self.group {
            "" => format!("{} {}", self.verb, self.resource),
            group => format!("{} {}.{group}", self.verb, self.resource),
        }
    }
}

/// What the provider's identity needs in a run's namespace: create the inputs Secret and the
/// Job, make the Job own the Secret, watch the Job and its pods, read their logs and Events,
/// read the result Secret, and delete all of it afterwards.
pub(crate) const RUN_PERMISSIONS: &[Permission] = &[
    Permission {
        group: "batch",
        resource: "jobs",
        verb: "create",
    },
    Permission {
        group: "batch",
        resource: "jobs",
        verb: "get",
    },
    Permission {
        group: "batch",
        resource: "jobs",
        verb: "list",
    },
    Permission {
        group: "batch",
        resource: "jobs",
        verb: "watch",
    },
    Permission {
        group: "batch",
        resource: "jobs",
        verb: "patch",
    },
    Permission {
        group: "batch",
        resource: "jobs",
        verb: "delete",
    },
    Permission {
        group: "",
        resource: "pods",
        verb: "list",
    },
    Permission {
        group: "",
        resource: "pods",
        verb: "watch",
    },
    Permission {
        group: "",
        resource: "pods/log",
        verb: "get",
    },
    Permission {
        group: "",
        resource: "events",
        verb: "list",
    },
    Permission {
        group: "",
        resource: "events",
        verb: "watch",
    },
    Permission {
        group: "",
        resource: "secrets",
        verb: "create",
    },
    Permission {
        group: "",
        resource: "secrets",
        verb: "get",
    },
    Permission {
        group: "",
        resource: "secrets",
        verb: "list",
    },
    Permission {
        group: "",
        resource: "secrets",
        verb: "patch",
    },
    Permission {
        group: "",
        resource: "secrets",
        verb: "delete",
    },
];

fn missing_text(namespace: &str, missing: &[Permission]) -> String {
    let list: Vec<String> = missing.iter().map(Permission::words).collect();
    format!(
        "the provider's identity may not {} in namespace {namespace:?}",
        list.join(", ")
    )
}

/// A client of one cluster: the Kubernetes client and the API server's URL, for messages.
#[derive(Clone)]
pub(crate) struct ClusterClient {
    /// The client.
    pub(crate) client: Client,
    /// The API server URL.
    pub(crate) url: String,
}

/// The client of a connection's cluster. Nothing is sent yet.
pub(crate) async fn connect(connection: &Connection) -> Result<ClusterClient, ClusterError> {
    let mut config = config(connection).await?;
    let url = config.cluster_url.to_string();
    // Why: kube sends no User-Agent of its own, and audit logs should say who made the Jobs.
    let agent = concat!("terraform-provider-humanitec/", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(agent),
    ));
    let client = Client::try_from(config).map_err(ClusterError::Client)?;
    Ok(ClusterClient { client, url })
}

async fn config(connection: &Connection) -> Result<Config, ClusterError> {
    if let Some(host) = &connection.host {
        let kubeconfig = explicit_kubeconfig(host, connection)?;
        return Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                place: "built from the kubernetes block".into(),
                source,
            });
    }
    let options = KubeConfigOptions {
        context: connection.config_context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = if let Some(path) = &connection.config_path {
        let path = expand_home(path);
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|source| ClusterError::Kubeconfig {
                place: format!("{}", path.display()),
                source,
            })?;
        Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                place: format!("{}", path.display()),
                source,
            })?
    } else if connection.config_context.is_some() {
        Config::from_kubeconfig(&options)
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                place: "from KUBECONFIG or ~/.kube/config".into(),
                source,
            })?
    } else {
        Config::infer().await.map_err(ClusterError::Infer)?
    };
    if connection.insecure {
        config.accept_invalid_certs = true;
    }
    Ok(config)
}

/// A kubeconfig holding exactly the block's host, CA, token or exec plugin.
fn explicit_kubeconfig(host: &str, connection: &Connection) -> Result<Kubeconfig, ClusterError> {
    use base64::Engine as _;
    let mut cluster = json!({ "server": host });
    if let Some(ca) = &connection.cluster_ca_certificate {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    if connection.insecure {
        cluster["insecure-skip-tls-verify"] = json!(true);
    }
    let mut user = json!({});
    if let Some(token) = &connection.token {
        user["token"] = json!(token.0);
    }
    if let Some(exec) = &connection.exec {
        let env: Vec<_> = exec
            .env
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect();
        // Why Never: the provider runs under Terraform, with no terminal to prompt on.
        user["exec"] = json!({
            "apiVersion": exec.api_version,
            "command": exec.command,
            "args": exec.args,
            "env": env,
            "interactiveMode": "Never",
        });
    }
    let kubeconfig = json!({
        "clusters": [{ "name": "runner-config", "cluster": cluster }],
        "users": [{ "name": "runner-config", "user": user }],
        "contexts": [{ "name": "runner-config",
                       "context": { "cluster": "runner-config", "user": "runner-config" } }],
        "current-context": "runner-config",
    });
    serde_json::from_value(kubeconfig).map_err(|e| ClusterError::Settings(e.to_string()))
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Checks that the cluster answers and, unless `skip_permissions`, that the provider's identity
/// holds every permission of [`RUN_PERMISSIONS`] in `namespace`. All missing permissions are
/// named in one error.
pub(crate) async fn check(
    cluster: &ClusterClient,
    namespace: &str,
    skip_permissions: bool,
) -> Result<(), ClusterError> {
    cluster
        .client
        .apiserver_version()
        .await
        .map_err(|source| ClusterError::Unreachable {
            url: cluster.url.clone(),
            source,
        })?;
    if skip_permissions {
        return Ok(());
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
    let asks = RUN_PERMISSIONS.iter().map(|permission| {
        let reviews = reviews.clone();
        async move {
            let (resource, subresource) = match permission.resource.split_once('/') {
                Some((resource, sub)) => (resource, Some(sub.to_string())),
                None => (permission.resource, None),
            };
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(namespace.to_string()),
                        group: Some(permission.group.to_string()),
                        resource: Some(resource.to_string()),
                        subresource,
                        verb: Some(permission.verb.to_string()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = reviews.create(&PostParams::default(), &review).await?;
            Ok::<_, kube::Error>((*permission, answer.status.is_some_and(|s| s.allowed)))
        }
    });
    let mut missing = Vec::new();
    for answer in join_all(asks).await {
        let (permission, allowed) = answer.map_err(ClusterError::Review)?;
        if !allowed {
            missing.push(permission);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Missing {
            namespace: namespace.to_string(),
            missing,
        })
    }
}

/// The RBAC Role, as YAML, that grants [`RUN_PERMISSIONS`]; the docs and the permission
/// diagnostic show it.
pub(crate) fn role_yaml(namespace: &str) -> String {
    let mut rules: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for p in RUN_PERMISSIONS {
        match rules
            .iter_mut()
            .find(|(g, r, _)| *g == p.group && *r == p.resource)
        {
            Some((_, _, verbs)) => verbs.push(p.verb),
            None => rules.push((p.group, p.resource, vec![p.verb])),
        }
    }
    let rules: Vec<serde_json::Value> = rules
        .into_iter()
        .map(|(group, resource, verbs)| {
            json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
        })
        .collect();
    // Why through `crate::yaml`: a namespace may be named `yes`, `no`, `null` or `0777`.
    crate::yaml::to_string(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": MANAGER, "namespace": namespace},
        "rules": rules,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{ExecPlugin, SecretValue};

    #[test]
    fn an_explicit_connection_becomes_one_context() {
        let connection = Connection {
            host: Some("https://127.0.0.1:6443".into()),
            cluster_ca_certificate: Some("-----BEGIN CERTIFICATE-----\n".into()),
            token: Some(SecretValue("t0ken".into())),
            exec: Some(ExecPlugin {
                api_version: "client.authentication.k8s.io/v1".into(),
                command: "aws".into(),
                args: vec!["eks".into(), "get-token".into()],
                env: [("AWS_PROFILE".to_string(), "dev".to_string())].into(),
            }),
            ..Connection::default()
        };
        let kubeconfig = explicit_kubeconfig("https://127.0.0.1:6443", &connection).unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some("runner-config"));
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert!(cluster.certificate_authority_data.is_some());
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        let exec = user.exec.as_ref().unwrap();
        assert_eq!(exec.command.as_deref(), Some("aws"));
        assert_eq!(
            exec.interactive_mode,
            Some(kube::config::ExecInteractiveMode::Never)
        );
        assert!(user.token.is_some());
    }

    #[test]
    fn missing_permissions_are_named_in_one_sentence_and_the_role_grants_them_all() {
        let error = ClusterError::Missing {
            namespace: "runs".into(),
            missing: vec![RUN_PERMISSIONS[0], RUN_PERMISSIONS[8]],
        };
        assert_eq!(
            error.to_string(),
            "the provider's identity may not create jobs.batch, get pods/log in namespace \"runs\""
        );
        let role = role_yaml("runs");
        let parsed: serde_json::Value = crate::yaml::from_str(&role).unwrap();
        let rules = parsed["rules"].as_array().unwrap();
        // Every permission is granted by a rule naming its group, resource and verb.
        let has = |list: &serde_json::Value, item: &str| {
            list.as_array()
                .is_some_and(|items| items.iter().any(|i| i == item))
        };
        for p in RUN_PERMISSIONS {
            assert!(
                rules.iter().any(|rule| has(&rule["apiGroups"], p.group)
                    && has(&rule["resources"], p.resource)
                    && has(&rule["verbs"], p.verb)),
                "{role}"
            );
        }
        assert_eq!(rules.len(), 5);
    }

    #[test]
    fn the_role_names_its_namespace_as_a_string_for_yaml_1_1_readers() {
        // Namespace names (DNS labels) that a YAML 1.1 reader would retype when written plain.
        for namespace in [
            "yes", "no", "on", "off", "y", "n", "null", "true", "0777", "1e3", "123",
        ] {
            let role = role_yaml(namespace);
            let read = crate::yaml::tests::read_by_pyyaml(&role);
            assert_eq!(read["metadata"]["namespace"], namespace, "{role}");
            assert_eq!(read["kind"], "Role", "{role}");
        }
    }
}
