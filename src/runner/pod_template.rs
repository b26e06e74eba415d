//! The merge of the user's `job.pod_template` into the pod the provider builds, and the check
//! that the result is a Pod template Kubernetes understands.
//!
//! Precedence, field by field:
//!
//! - The template is a mapping with `metadata` and/or `spec` only. A `null` anywhere counts as
//!   unset.
//! - `metadata.labels` and `metadata.annotations` are joined. The provider's keys win: a key the
//!   provider sets may appear only with the provider's value. `metadata` has nothing else.
//! - `spec` fields the provider does not set (`nodeSelector`, `affinity`, `priorityClassName`,
//!   `runtimeClassName`, `hostAliases`, `dnsConfig`, …) are taken from the template.
//! - `spec.securityContext`, `spec.terminationGracePeriodSeconds` and `spec.enableServiceLinks`
//!   are the provider's defaults: the template wins, field by field (e.g. `runAsUser: 1001`, a
//!   longer grace period). `spec.automountServiceAccountToken` stays `true`: the `collect`
//!   sidecar writes the results with the pod's token.
//! - The provider owns `spec.restartPolicy`, `spec.serviceAccountName` (set it with
//!   `job.service_account`), its volumes (`workspace`, `results`, `inputs`) and its init
//!   containers (`prepare`, `collect`): the template may repeat them only unchanged.
//! - `spec.containers`: an entry named `main` is merged into the runner's container, the
//!   template winning field by field (`resources`, `securityContext`, `imagePullPolicy`,
//!   `workingDir`, …); its `env` entries and `volumeMounts` are added to the provider's, but
//!   not with a variable name or a mount path the provider sets; `image` and `command` come
//!   from `job.image` and `job.command` only. Entries with other names are added as extra
//!   containers.
//! - `spec.initContainers` are run before the provider's `prepare`.
//! - `spec.volumes`, `spec.tolerations` and `spec.imagePullSecrets` are added to the provider's
//!   (`imagePullSecrets` once per name).
//!
//! The merged template must then read as a Kubernetes `PodTemplateSpec` with nothing left
//! over: a misspelt field is an error, not silently dropped.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

/// Kubernetes sets these labels on a Job's pods itself, and selects the pods by them.
const JOB_LABEL_PREFIX: &str = "batch.kubernetes.io/";

/// The older names of the labels under [`JOB_LABEL_PREFIX`], still set and selected on.
const LEGACY_JOB_LABELS: [&str; 2] = ["controller-uid", "job-name"];

/// What is wrong with a `job.pod_template`. Paths are in the template's own terms, with list
/// entries named by their `name` when they have one (`spec.containers[main].env`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum MergeError {
    /// A part of the template has the wrong kind of value.
    #[error("`{path}` must be {expected}, not {found}")]
    Shape {
        /// Where.
        path: String,
        /// What it must be, e.g. `a mapping`.
        expected: &'static str,
        /// What it is, e.g. `a list`.
        found: &'static str,
    },
    /// A field a template cannot have here.
    #[error("`{path}` cannot be set in a Pod template here: {why}")]
    NotAllowed {
        /// Where.
        path: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// Something the provider sets, set differently.
    #[error("`{path}` is set by the provider: {why}")]
    Owned {
        /// Where.
        path: String,
        /// What the provider sets, and how to get what was meant.
        why: String,
    },
    /// Fields Kubernetes does not know.
    #[error(
        "{} not {} of a Pod template; check the spelling and case against the \
         Kubernetes Pod spec",
        unknown_fields(.paths),
        if .paths.len() == 1 { "a field" } else { "fields" }
    )]
    UnknownField {
        /// Where, every one.
        paths: Vec<String>,
    },
    /// A value of the wrong type, or a missing required field.
    #[error("`{path}` is not valid in a Pod template: {message}")]
    Invalid {
        /// Where (`(the template)` when it cannot be narrowed down).
        path: String,
        /// What Kubernetes' types said.
        message: String,
    },
}

/// The provider's Pod template `base` with the user's template merged in, by the rules of this
/// module.
pub(crate) fn merge(base: &Value, user: &Value) -> Result<Value, MergeError> {
    let mut merged = base.clone();
    let user = without_nulls(user);
    let user = match user {
        Value::Null => return Ok(merged),
        Value::Object(user) => user,
        other => return Err(shape("(the template)", "a mapping", &other)),
    };
    for (key, value) in user {
        match key.as_str() {
            "metadata" => merge_metadata(entry(&mut merged, "metadata"), &value)?,
            "spec" => merge_spec(entry(&mut merged, "spec"), &value)?,
            _ => {
                return Err(MergeError::NotAllowed {
                    path: key,
                    why: "a template has only `metadata` and `spec`".into(),
                });
            }
        }
    }
    Ok(merged)
}

/// The template as the typed `PodTemplateSpec`, or the first field Kubernetes would not read.
pub(crate) fn typed(template: &Value) -> Result<PodTemplateSpec, MergeError> {
    let parsed = serde_json::from_value::<PodTemplateSpec>(template.clone()).map_err(|e| {
        MergeError::Invalid {
            path: locate_invalid(template),
            message: e.to_string(),
        }
    })?;
    // Why serialize back: the Kubernetes types skip fields they do not know, so a misspelt
    // field would be dropped without a word. Whatever is gone after the round trip is unknown.
    // Serializing the typed value into JSON cannot fail (all map keys are strings); should it,
    // nothing is reported as dropped.
    let back = serde_json::to_value(&parsed).unwrap_or(Value::Null);
    let mut paths = Vec::new();
    dropped(template, &back, "", &mut paths);
    if !paths.is_empty() {
        return Err(MergeError::UnknownField { paths });
    }
    Ok(parsed)
}

/// "`a` is" or "`a`, `b` and `c` are".
fn unknown_fields(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => format!("{last} is"),
        Some((last, rest)) => format!("{} and {last} are", rest.join(", ")),
        None => "nothing is".into(),
    }
}

/// Joins the template's labels and annotations into the provider's.
fn merge_metadata(base: &mut Value, user: &Value) -> Result<(), MergeError> {
    let user = object(user, "metadata")?;
    for (key, value) in user {
        let path = format!("metadata.{key}");
        if key != "labels" && key != "annotations" {
            return Err(MergeError::NotAllowed {
                path,
                why: "the provider names the pod; a template's metadata has only `labels` and \
                      `annotations`"
                    .into(),
            });
        }
        let ours = as_object(entry(base, key));
        for (name, v) in object(value, &path)? {
            let job_label =
                name.starts_with(JOB_LABEL_PREFIX) || LEGACY_JOB_LABELS.contains(&name.as_str());
            if key == "labels" && job_label {
                return Err(MergeError::Owned {
                    path: format!("{path}.{name}"),
                    why: "Kubernetes sets this label on a Job's pods and selects them by it; \
                          remove it"
                        .into(),
                });
            }
            match ours.get(name) {
                Some(mine) if mine != v => {
                    return Err(MergeError::Owned {
                        path: format!("{path}.{name}"),
                        why: format!(
                            "the key is the provider's, with the value {mine}; remove it or \
                             choose another key"
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    ours.insert(name.clone(), v.clone());
                }
            }
        }
    }
    Ok(())
}

/// Merges the template's `spec` into the provider's.
fn merge_spec(base: &mut Value, user: &Value) -> Result<(), MergeError> {
    let user = object(user, "spec")?;
    // Why read the provider's containers before changing anything: an init container and a
    // container may not share a name, so each list is checked against the other's names.
    let names = |key: &str| -> Vec<String> { named_entries(base.get(key)) };
    let (containers, init_containers) = (names("containers"), names("initContainers"));
    for (key, value) in user {
        let path = format!("spec.{key}");
        match key.as_str() {
            "restartPolicy" => {
                let mine = base.get(key).unwrap_or(&Value::Null);
                if mine != value {
                    return Err(MergeError::Owned {
                        path,
                        why: format!("a run's pod is never restarted, it is {mine}; remove it"),
                    });
                }
            }
            "serviceAccountName" | "serviceAccount" => {
                let mine = base.get("serviceAccountName").unwrap_or(&Value::Null);
                if mine != value {
                    return Err(MergeError::Owned {
                        path,
                        why: "the pod's service account is job.service_account; set it there"
                            .into(),
                    });
                }
            }
            "automountServiceAccountToken" => {
                if value == &Value::Bool(false) {
                    return Err(MergeError::Owned {
                        path,
                        why: "it stays true: the collect sidecar writes the run's results with \
                              the pod's token; remove it"
                            .into(),
                    });
                }
                *entry(base, key) = value.clone();
            }
            "containers" => {
                let list = list(value, &path)?;
                merge_containers(entry(base, key), list, &path, &init_containers)?;
            }
            "initContainers" => {
                let list = list(value, &path)?;
                merge_init_containers(entry(base, key), list, &path, &containers)?;
            }
            "volumes" => {
                let list = list(value, &path)?;
                append_owned(entry(base, key), list, &path, "volume")?;
            }
            "imagePullSecrets" => {
                let list = list(value, &path)?;
                let ours = as_array(entry(base, key));
                for secret in list {
                    // Why by name: the same pull secret twice is harmless but noisy in the pod.
                    let name = secret.get("name");
                    if name.is_none() || !ours.iter().any(|s| s.get("name") == name) {
                        ours.push(secret.clone());
                    }
                }
            }
            "tolerations" => {
                let list = list(value, &path)?;
                as_array(entry(base, key)).extend(list.iter().cloned());
            }
            _ => deep_merge(entry(base, key), value),
        }
    }
    Ok(())
}

/// Merges the template's `spec.containers`: entries named like one of the provider's are merged
/// into it, the others are added.
fn merge_containers(
    base: &mut Value,
    user: &[Value],
    path: &str,
    init_containers: &[String],
) -> Result<(), MergeError> {
    let ours = as_array(base);
    for (index, container) in user.iter().enumerate() {
        let name = entry_name(container, path, index)?;
        let at = format!("{path}[{name}]");
        if init_containers.iter().any(|n| n == name) {
            return Err(taken_name(&at, "an init container"));
        }
        match ours
            .iter_mut()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(mine) => merge_own_container(mine, container, &at)?,
            None => ours.push(container.clone()),
        }
    }
    Ok(())
}

/// Merges a template container into the provider's container of the same name.
fn merge_own_container(mine: &mut Value, user: &Value, path: &str) -> Result<(), MergeError> {
    let user = object(user, path)?;
    for (key, value) in user {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "image" | "command" => {
                return Err(MergeError::NotAllowed {
                    path: at,
                    why: format!("set the runner's {key} with job.{key}"),
                });
            }
            "env" => {
                let ours = as_array(entry(mine, key));
                for (index, var) in list(value, &at)?.iter().enumerate() {
                    let name = entry_name(var, &at, index)?;
                    if ours
                        .iter()
                        .any(|v| v.get("name").and_then(Value::as_str) == Some(name))
                    {
                        return Err(MergeError::Owned {
                            path: format!("{at}[{name}]"),
                            why: "the runner contract or job.variables / job.secret_variables \
                                  already set this variable; set it in one place only"
                                .into(),
                        });
                    }
                    ours.push(var.clone());
                }
            }
            "volumeMounts" => {
                let ours = as_array(entry(mine, key));
                for (index, mount) in list(value, &at)?.iter().enumerate() {
                    let mount_path = mount.get("mountPath");
                    if mount_path.is_some() && ours.iter().any(|m| m.get("mountPath") == mount_path)
                    {
                        return Err(MergeError::Owned {
                            path: format!("{at}[{index}].mountPath"),
                            why: format!(
                                "the provider mounts one of its volumes at {}; mount this one \
                                 elsewhere",
                                mount_path.unwrap_or(&Value::Null)
                            ),
                        });
                    }
                    ours.push(mount.clone());
                }
            }
            "name" => {}
            _ => deep_merge(entry(mine, key), value),
        }
    }
    Ok(())
}

/// Puts the template's init containers before the provider's; one named like the provider's
/// may only repeat it unchanged.
fn merge_init_containers(
    base: &mut Value,
    user: &[Value],
    path: &str,
    containers: &[String],
) -> Result<(), MergeError> {
    let ours = as_array(base);
    let mut theirs = Vec::new();
    for (index, container) in user.iter().enumerate() {
        let name = entry_name(container, path, index)?;
        let at = format!("{path}[{name}]");
        if containers.iter().any(|n| n == name) {
            return Err(taken_name(&at, "a container"));
        }
        match ours
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(mine) if mine == container => {}
            Some(_) => {
                return Err(MergeError::Owned {
                    path: at,
                    why: "this init container is one of the provider's steps; choose another \
                          name for yours"
                        .into(),
                });
            }
            None => theirs.push(container.clone()),
        }
    }
    // Why before `prepare`: the provider's steps stay together and in their order, and
    // `collect` (a sidecar) starts last, right before the runner.
    theirs.append(ours);
    *ours = theirs;
    Ok(())
}

/// Adds the template's entries to a list of the provider's named entries; one named like the
/// provider's may only repeat it unchanged.
fn append_owned(
    base: &mut Value,
    user: &[Value],
    path: &str,
    what: &str,
) -> Result<(), MergeError> {
    let ours = as_array(base);
    let provider = ours.len();
    for (index, entry) in user.iter().enumerate() {
        let name = entry_name(entry, path, index)?;
        match ours[..provider]
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(mine) if mine == entry => {}
            Some(_) => {
                return Err(MergeError::Owned {
                    path: format!("{path}[{name}]"),
                    why: format!("this {what} is the provider's; choose another name for yours"),
                });
            }
            None => ours.push(entry.clone()),
        }
    }
    Ok(())
}

/// The error for a container name the provider uses in the other list.
fn taken_name(path: &str, what: &str) -> MergeError {
    MergeError::Owned {
        path: path.into(),
        why: format!("the provider runs {what} with this name; choose another name"),
    }
}

/// Merges `user` into `base`, the user winning: mappings are merged key by key, anything else is
/// replaced.
fn deep_merge(base: &mut Value, user: &Value) {
    match (base, user) {
        (Value::Object(base), Value::Object(user)) => {
            for (key, value) in user {
                deep_merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, user) => *base = user.clone(),
    }
}

/// `value` with every `null` inside a mapping removed: YAML's empty value means unset.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The names of the named entries of a list (none when it is not a list).
fn named_entries(list: Option<&Value>) -> Vec<String> {
    let entries = list
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| e.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The `name` of a list entry that needs one.
fn entry_name<'a>(entry: &'a Value, path: &str, index: usize) -> Result<&'a str, MergeError> {
    let at = format!("{path}[{index}]");
    match object(entry, &at)?.get("name") {
        Some(Value::String(name)) => Ok(name),
        Some(other) => Err(shape(&format!("{at}.name"), "a string", other)),
        None => Err(MergeError::Invalid {
            path: at,
            message: "each entry needs a `name`".into(),
        }),
    }
}

/// `value` as a mapping, or a shape error at `path`.
fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, MergeError> {
    value
        .as_object()
        .ok_or_else(|| shape(path, "a mapping", value))
}

/// `value` as a list, or a shape error at `path`.
fn list<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], MergeError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| shape(path, "a list", value))
}

/// The value under `key` of a mapping, inserted as `null` when missing; a value that is not a
/// mapping becomes an empty one first (the provider's base is always a mapping there).
fn entry<'a>(value: &'a mut Value, key: &str) -> &'a mut Value {
    as_object(value).entry(key).or_insert(Value::Null)
}

/// `value` as a mapping, made an empty one when it is not.
fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    match value {
        Value::Object(map) => map,
        // Why recurse: the value is a mapping now, and this keeps the function free of a panic.
        other => {
            *other = Value::Object(Map::new());
            as_object(other)
        }
    }
}

/// `value` as a list, made an empty one when it is not.
fn as_array(value: &mut Value) -> &mut Vec<Value> {
    match value {
        Value::Array(list) => list,
        other => {
            *other = Value::Array(Vec::new());
            as_array(other)
        }
    }
}

/// A shape error.
fn shape(path: &str, expected: &'static str, found: &Value) -> MergeError {
    let found = match found {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    MergeError::Shape {
        path: path.into(),
        expected,
        found,
    }
}

/// The path of the first field of `original` that is not in `back`.
fn dropped(original: &Value, back: &Value, path: &str, found: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(original), Value::Object(back)) => {
            for (k, v) in original {
                let at = join(path, k);
                match back.get(k) {
                    // Why a `null` is not dropped: it reads as unset, and comes back absent.
                    None if v.is_null() => {}
                    None => found.push(at),
                    Some(b) => dropped(v, b, &at, found),
                }
            }
        }
        (Value::Array(original), Value::Array(back)) => {
            for (i, (v, b)) in original.iter().zip(back).enumerate() {
                dropped(v, b, &element(path, i, v), found);
            }
        }
        // Why nothing else counts: Kubernetes' types may rewrite a value (a quantity `1` reads
        // back as `"1"`); only a missing field is a dropped one.
        _ => {}
    }
}

/// The path of the part of `template` that keeps it from reading as a `PodTemplateSpec`: the
/// deepest part whose removal alone makes it read.
fn locate_invalid(template: &Value) -> String {
    // Why removal: serde's errors from a `Value` carry no position. Removing one child at a
    // time and descending into the one whose removal helps narrows it down; with two faults
    // it stops at the part that holds both.
    let mut at: Vec<Step> = Vec::new();
    let mut path = String::new();
    while let Some((steps, child)) = child_at_fault(template, &at, &path) {
        at = steps;
        path = child;
    }
    if path.is_empty() {
        "(the template)".into()
    } else {
        path
    }
}

/// The child of the part at `at` (whose path is `path`) whose removal alone makes `template`
/// read as a `PodTemplateSpec`: its steps and its path.
fn child_at_fault(template: &Value, at: &[Step], path: &str) -> Option<(Vec<Step>, String)> {
    let children: Vec<(Step, String)> = match get(template, at)? {
        Value::Object(map) => map
            .keys()
            .map(|k| (Step::Key(k.clone()), join(path, k)))
            .collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (Step::Index(i), element(path, i, v)))
            .collect(),
        _ => return None,
    };
    children.into_iter().find_map(|(step, child)| {
        let mut steps = at.to_vec();
        steps.push(step);
        let mut trial = template.clone();
        remove(&mut trial, &steps);
        serde_json::from_value::<PodTemplateSpec>(trial)
            .is_ok()
            .then_some((steps, child))
    })
}

/// One step into a JSON value.
#[derive(Clone)]
enum Step {
    /// A mapping's key.
    Key(String),
    /// A list's index.
    Index(usize),
}

/// The value at `steps` in `value`.
fn get<'a>(value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

/// Removes the value at `steps` from `value`.
fn remove(value: &mut Value, steps: &[Step]) {
    let Some((last, parent)) = steps.split_last() else {
        return;
    };
    let parent = parent.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    });
    match (parent, last) {
        (Some(Value::Object(map)), Step::Key(k)) => {
            map.remove(k);
        }
        (Some(Value::Array(list)), Step::Index(i)) if *i < list.len() => {
            list.remove(*i);
        }
        _ => {}
    }
}

/// `path.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.into()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of a list entry: by its `name` when it has one, else by its index.
fn element(path: &str, index: usize, entry: &Value) -> String {
    match entry.get("name").and_then(Value::as_str) {
        Some(name) => format!("{path}[{name}]"),
        None => format!("{path}[{index}]"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A provider template shaped like the one `job` builds.
    fn base() -> Value {
        json!({
            "metadata": {
                "labels": {"app.kubernetes.io/managed-by": "terraform-provider-humanitec"},
                "annotations": {"terraform-provider-humanitec/inputs-hash": "abc"},
            },
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "runner",
                "automountServiceAccountToken": true,
                "enableServiceLinks": false,
                "terminationGracePeriodSeconds": 120,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 1000},
                "volumes": [
                    {"name": "workspace", "emptyDir": {}},
                    {"name": "results", "emptyDir": {}},
                ],
                "initContainers": [
                    {"name": "prepare", "image": "helper"},
                    {"name": "collect", "image": "helper", "restartPolicy": "Always"},
                ],
                "containers": [{
                    "name": "main",
                    "image": "runner",
                    "env": [{"name": "ACTION", "value": "create"}],
                    "volumeMounts": [{"name": "workspace", "mountPath": "/work"}],
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true},
                }],
            },
        })
    }

    fn yaml(text: &str) -> Value {
        crate::yaml::from_str(text).expect("test YAML")
    }

    fn merged(text: &str) -> Value {
        let merged = merge(&base(), &yaml(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
        typed(&merged).unwrap_or_else(|e| panic!("{text}: {e}"));
        merged
    }

    #[test]
    fn merges() {
        let cases: Vec<(&str, &str, Value)> = vec![
            ("", "", base()),
            ("spec:", "", base()),
            (
                "metadata:\n  labels:\n    team: db\n",
                "/metadata/labels/team",
                json!("db"),
            ),
            (
                "metadata: {labels: {app.kubernetes.io/managed-by: terraform-provider-humanitec}}",
                "/metadata/labels/app.kubernetes.io~1managed-by",
                json!("terraform-provider-humanitec"),
            ),
            (
                "metadata:\n  annotations:\n    a: b\n",
                "/metadata/annotations/a",
                json!("b"),
            ),
            (
                "spec:\n  nodeSelector:\n    pool: x\n",
                "/spec/nodeSelector",
                json!({"pool": "x"}),
            ),
            (
                "spec:\n  priorityClassName: high\n",
                "/spec/priorityClassName",
                json!("high"),
            ),
            (
                "spec:\n  securityContext:\n    runAsUser: 1001\n",
                "/spec/securityContext",
                json!({"runAsNonRoot": true, "runAsUser": 1001, "fsGroup": 1000}),
            ),
            (
                "spec:\n  terminationGracePeriodSeconds: 600\n",
                "/spec/terminationGracePeriodSeconds",
                json!(600),
            ),
            (
                "spec:\n  enableServiceLinks: true\n",
                "/spec/enableServiceLinks",
                json!(true),
            ),
            (
                "spec:\n  automountServiceAccountToken: true\n",
                "/spec/automountServiceAccountToken",
                json!(true),
            ),
            (
                "spec:\n  restartPolicy: Never\n",
                "/spec/restartPolicy",
                json!("Never"),
            ),
            (
                "spec:\n  serviceAccountName: runner\n",
                "/spec/serviceAccountName",
                json!("runner"),
            ),
            (
                "spec:\n  imagePullSecrets:\n  - name: a\n  - name: b\n  - name: a\n",
                "/spec/imagePullSecrets",
                json!([{"name": "a"}, {"name": "b"}]),
            ),
            (
                "spec:\n  tolerations:\n  - key: spot\n    operator: Exists\n",
                "/spec/tolerations",
                json!([{"key": "spot", "operator": "Exists"}]),
            ),
            (
                "spec: {volumes: [{name: workspace, emptyDir: {}}, {name: cache, emptyDir: {}}]}",
                "/spec/volumes",
                json!([
                    {"name": "workspace", "emptyDir": {}},
                    {"name": "results", "emptyDir": {}},
                    {"name": "cache", "emptyDir": {}},
                ]),
            ),
            (
                "spec:\n  initContainers:\n  - name: wait\n    image: busybox\n",
                "/spec/initContainers",
                json!([
                    {"name": "wait", "image": "busybox"},
                    {"name": "prepare", "image": "helper"},
                    {"name": "collect", "image": "helper", "restartPolicy": "Always"},
                ]),
            ),
            (
                "spec:\n  containers:\n  - name: proxy\n    image: proxy:1\n",
                "/spec/containers/1",
                json!({"name": "proxy", "image": "proxy:1"}),
            ),
            (
                "spec: {containers: [{name: main, resources: {limits: {cpu: 1, memory: 1Gi}}}]}",
                "/spec/containers/0/resources",
                json!({"limits": {"cpu": 1, "memory": "1Gi"}}),
            ),
            (
                "spec: {containers: [{name: main, securityContext: {runAsNonRoot: false}}]}",
                "/spec/containers/0/securityContext",
                json!({"allowPrivilegeEscalation": false, "runAsNonRoot": false}),
            ),
            (
                "spec: {containers: [{name: main, imagePullPolicy: Always, workingDir: /w}]}",
                "/spec/containers/0/workingDir",
                json!("/w"),
            ),
            (
                "spec: {containers: [{name: main, env: [{name: TF_LOG, value: debug}]}]}",
                "/spec/containers/0/env",
                json!([
                    {"name": "ACTION", "value": "create"},
                    {"name": "TF_LOG", "value": "debug"},
                ]),
            ),
            (
                "spec: {containers: [{name: main, volumeMounts: [{name: c, mountPath: /c}]}]}",
                "/spec/containers/0/volumeMounts/1",
                json!({"name": "c", "mountPath": "/c"}),
            ),
        ];
        for (text, pointer, want) in cases {
            let merged = merged(text);
            assert_eq!(merged.pointer(pointer).unwrap_or(&merged), &want, "{text}");
        }
        // The provider's parts stay as they were.
        let merged = merged("spec:\n  containers:\n  - name: main\n    imagePullPolicy: Always\n");
        assert_eq!(merged["spec"]["containers"][0]["image"], "runner");
        assert_eq!(merged["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            merged["spec"]["containers"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn refuses() {
        let cases: Vec<(&str, &str)> = vec![
            ("- a\n", "`(the template)` must be a mapping, not a list"),
            ("kind: Pod\n", "`kind` cannot be set"),
            ("metadata:\n  name: x\n", "`metadata.name` cannot be set"),
            ("metadata: []\n", "`metadata` must be a mapping, not a list"),
            (
                "metadata:\n  labels: x\n",
                "`metadata.labels` must be a mapping, not a string",
            ),
            (
                "metadata:\n  labels:\n    app.kubernetes.io/managed-by: me\n",
                "the key is the provider's",
            ),
            (
                "metadata:\n  labels:\n    batch.kubernetes.io/job-name: x\n",
                "Kubernetes sets this label",
            ),
            (
                "metadata:\n  labels:\n    job-name: x\n",
                "Kubernetes sets this label",
            ),
            ("spec: 1\n", "`spec` must be a mapping, not a number"),
            (
                "spec:\n  restartPolicy: OnFailure\n",
                "`spec.restartPolicy` is set by the provider",
            ),
            (
                "spec:\n  serviceAccountName: other\n",
                "job.service_account",
            ),
            ("spec:\n  serviceAccount: other\n", "job.service_account"),
            (
                "spec:\n  automountServiceAccountToken: false\n",
                "it stays true",
            ),
            (
                "spec:\n  volumes:\n  - name: results\n    hostPath:\n      path: /tmp\n",
                "`spec.volumes[results]` is set by the provider",
            ),
            (
                "spec:\n  initContainers:\n  - name: prepare\n    image: mine\n",
                "`spec.initContainers[prepare]` is set by the provider",
            ),
            (
                "spec:\n  initContainers:\n  - name: main\n    image: mine\n",
                "`spec.initContainers[main]` is set by the provider",
            ),
            (
                "spec:\n  containers:\n  - name: collect\n    image: mine\n",
                "`spec.containers[collect]` is set by the provider",
            ),
            (
                "spec:\n  containers: {}\n",
                "`spec.containers` must be a list",
            ),
            (
                "spec:\n  volumes:\n  - emptyDir: {}\n",
                "`spec.volumes[0]` is not valid in a Pod template: each entry needs a `name`",
            ),
            (
                "spec:\n  containers:\n  - image: x\n",
                "`spec.containers[0]`",
            ),
            (
                "spec:\n  containers:\n  - name: 1\n",
                "`spec.containers[0].name` must be a string",
            ),
            (
                "spec:\n  containers:\n  - name: main\n    image: x\n",
                "job.image",
            ),
            (
                "spec:\n  containers:\n  - name: main\n    command: [x]\n",
                "job.command",
            ),
            (
                "spec: {containers: [{name: main, env: [{name: ACTION, value: x}]}]}",
                "`spec.containers[main].env[ACTION]` is set by the provider",
            ),
            (
                "spec: {containers: [{name: main, volumeMounts: [{name: c, mountPath: /work}]}]}",
                "`spec.containers[main].volumeMounts[0].mountPath` is set by the provider",
            ),
        ];
        for (text, want) in cases {
            let error = merge(&base(), &yaml(text)).expect_err(text).to_string();
            assert!(error.contains(want), "{text}: {error}");
        }
    }

    #[test]
    fn names_fields_kubernetes_does_not_know() {
        let cases: Vec<(&str, &str)> = vec![
            (
                "spec:\n  nodeSelectr:\n    a: b\n",
                "`spec.nodeSelectr` is not a field of a Pod template",
            ),
            (
                "spec:\n  nodeSelectr:\n    a: b\n  tolerashuns: []\n  containers:\n  - name: main\n    resourcs: {}\n",
                "`spec.containers[main].resourcs`, `spec.nodeSelectr` and `spec.tolerashuns` are not fields",
            ),
            (
                "spec:\n  containers:\n  - name: main\n    resourcs: {}\n",
                "`spec.containers[main].resourcs` is not a field",
            ),
            (
                "spec:\n  tolerations:\n  - key: a\n    efect: NoSchedule\n",
                "`spec.tolerations[0].efect` is not a field",
            ),
            (
                "spec:\n  terminationGracePeriodSeconds: soon\n",
                "`spec.terminationGracePeriodSeconds` is not valid in a Pod template: invalid type",
            ),
            (
                "spec: {containers: [{name: main, resources: {limits: {cpu: [1]}}}]}",
                "`spec.containers[main].resources.limits.cpu` is not valid",
            ),
            (
                "metadata:\n  labels:\n    tier: [a]\n",
                "`metadata.labels.tier` is not valid",
            ),
            (
                "spec:\n  hostNetwork: \"yes\"\n",
                "`spec.hostNetwork` is not valid in a Pod template: invalid type: string",
            ),
        ];
        for (text, want) in cases {
            let merged = merge(&base(), &yaml(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
            let error = typed(&merged).expect_err(text).to_string();
            assert!(error.contains(want), "{text}: {error}");
        }
    }
}
