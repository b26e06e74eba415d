//! Per-kind defaulting and validation, as the API server's registry strategies do it: names,
//! the 1 MiB limit and key syntax of Secrets and ConfigMaps, immutable Secrets/ConfigMaps, Job
//! defaults (selector, labels, backoffLimit, …) and the immutability of a Job's template and
//! selector, Pod defaults and the fields of a Pod that cannot change, Role and RoleBinding shapes.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::resources::{ResourceId, ResourceType, ids};
use crate::status::Cause;

/// The size limit of a Secret's or ConfigMap's data (`corev1.MaxSecretSize`).
pub(crate) const MAX_DATA_SIZE: usize = 1024 * 1024;

/// Whether `name` is a DNS-1123 subdomain (most object names).
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Whether `name` is a DNS-1123 label (namespace names, container names).
pub(crate) fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

/// Checks the object's name (the name is already known to be present).
pub(crate) fn validate_name(r: &ResourceType, name: &str) -> Vec<Cause> {
    let label = r.plural == "namespaces";
    let ok = if label {
        is_dns_label(name)
    } else if r.group == "rbac.authorization.k8s.io" {
        // Why: RBAC names are path segments only (`ValidateRBACName`), so `system:x` is fine.
        !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains('/')
            && !name.contains('%')
    } else {
        is_dns_subdomain(name)
    };
    if ok {
        return Vec::new();
    }
    let detail = if label {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    } else {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    };
    vec![Cause::invalid("metadata.name", &json!(name), detail)]
}

/// Defaults and checks an object being created (`old` is `None`) or updated.
///
/// `object` has passed schema validation; its metadata is complete except for what the store sets.
pub(crate) fn prepare(resource: ResourceId, object: &mut Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    check_metadata(object, &mut causes);
    match resource {
        ids::SECRETS => prepare_secret(object, old, &mut causes),
        ids::CONFIGMAPS => prepare_configmap(object, old, &mut causes),
        ids::JOBS => prepare_job(object, old, &mut causes),
        ids::PODS => prepare_pod(object, old, &mut causes),
        ids::NAMESPACES => {
            if old.is_none() {
                object["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            let name = object["metadata"]["name"].clone();
            labels_mut(object).insert("kubernetes.io/metadata.name".into(), name);
        }
        ids::EVENTS if object.get("involvedObject").is_none() => {
            causes.push(Cause::required("involvedObject"));
        }
        _ => {}
    }
    if crate::resources::RESOURCES[resource].group == "rbac.authorization.k8s.io" {
        prepare_rbac(object, old, &mut causes);
    }
    causes
}

/// The object's label map, created if missing.
pub(crate) fn labels_mut(object: &mut Value) -> &mut Map<String, Value> {
    let meta = &mut object["metadata"];
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    match &mut meta["labels"] {
        Value::Object(m) => m,
        _ => unreachable!("labels were just made an object"),
    }
}

fn check_metadata(object: &Value, causes: &mut Vec<Cause>) {
    for (field, map) in [
        ("metadata.labels", &object["metadata"]["labels"]),
        ("metadata.annotations", &object["metadata"]["annotations"]),
    ] {
        let Some(map) = map.as_object() else { continue };
        for (k, v) in map {
            if !valid_qualified_name(k) {
                causes.push(Cause::invalid(
                    field,
                    &json!(k),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                ));
            }
            if field == "metadata.labels" {
                let value = v.as_str().unwrap_or("");
                let ok = value.is_empty()
                    || (value.len() <= 63
                        && value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
                if !ok {
                    causes.push(Cause::invalid(
                        "metadata.labels",
                        v,
                        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                    ));
                }
            }
        }
        if field == "metadata.annotations" {
            let total: usize = map
                .iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum();
            if total > 256 * 1024 {
                causes.push(Cause::new(
                    "FieldValueTooLong",
                    field,
                    "Too long: must have at most 262144 bytes",
                ));
            }
        }
    }
}

/// A label/annotation key: optional DNS subdomain prefix and `/`, then a name of ≤63 characters.
fn valid_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(is_dns_subdomain)
        && !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A Secret/ConfigMap data key (`[-._a-zA-Z0-9]+`, not `.` or `..`).
fn valid_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

fn check_keys(field: &str, map: Option<&Map<String, Value>>, causes: &mut Vec<Cause>) {
    for key in map.into_iter().flat_map(|m| m.keys()) {
        if !valid_data_key(key) {
            causes.push(Cause::invalid(
                format!("{field}[{key}]"),
                &json!(key),
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            ));
        }
    }
}

fn check_immutable_data(
    object: &Value,
    old: Option<&Value>,
    fields: &[&str],
    causes: &mut Vec<Cause>,
) {
    let Some(old) = old else { return };
    if old["immutable"] != json!(true) {
        return;
    }
    for field in fields {
        if object.get(*field) != old.get(*field) {
            causes.push(Cause::new(
                "FieldValueForbidden",
                *field,
                "Forbidden: field is immutable when `immutable` is set",
            ));
        }
    }
    if object["immutable"] != json!(true) {
        causes.push(Cause::new(
            "FieldValueForbidden",
            "immutable",
            "Forbidden: field is immutable when `immutable` is set",
        ));
    }
}

fn prepare_secret(object: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    // Why: `stringData` is write-only; the API server folds it into `data` before storing.
    if let Some(Value::Object(string_data)) =
        object.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        if !object["data"].is_object() {
            object["data"] = json!({});
        }
        for (k, v) in string_data {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(v.as_str().unwrap_or("").as_bytes());
            object["data"][k] = json!(encoded);
        }
    }
    if object["type"].as_str().unwrap_or("").is_empty() {
        object["type"] = json!("Opaque");
    }
    if let Some(old) = old
        && old["type"] != object["type"]
    {
        causes.push(Cause::immutable("type", &object["type"]));
    }
    check_keys("data", object["data"].as_object(), causes);
    let size: usize = object["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, v)| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or(""))
                .map_or(0, |b| b.len())
        })
        .sum();
    if size > MAX_DATA_SIZE {
        causes.push(Cause::new(
            "FieldValueTooLong",
            "data",
            format!("Too long: must have at most {MAX_DATA_SIZE} bytes"),
        ));
    }
    check_immutable_data(object, old, &["data"], causes);
}

fn prepare_configmap(object: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    check_keys("data", object["data"].as_object(), causes);
    check_keys("binaryData", object["binaryData"].as_object(), causes);
    let mut size = 0usize;
    for (k, v) in object["data"].as_object().into_iter().flatten() {
        size += k.len() + v.as_str().map_or(0, str::len);
        if object["binaryData"].get(k).is_some() {
            causes.push(Cause::invalid(
                format!("data[{k}]"),
                &json!(k),
                "duplicate of key present in binaryData",
            ));
        }
    }
    for (k, v) in object["binaryData"].as_object().into_iter().flatten() {
        size += k.len()
            + base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or(""))
                .map_or(0, |b| b.len());
    }
    if size > MAX_DATA_SIZE {
        causes.push(Cause::new(
            "FieldValueTooLong",
            "",
            format!("Too long: must have at most {MAX_DATA_SIZE} bytes"),
        ));
    }
    check_immutable_data(object, old, &["data", "binaryData"], causes);
}

/// Pod-spec defaults the API server applies (a subset of `SetDefaults_PodSpec` and friends).
fn default_pod_spec(spec: &mut Value, path: &str, causes: &mut Vec<Cause>) {
    if !spec.is_object() {
        return;
    }
    let defaults = [
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
    ];
    for (k, v) in defaults {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    if spec.get("serviceAccountName").is_none() {
        spec["serviceAccountName"] = spec
            .get("serviceAccount")
            .cloned()
            .unwrap_or_else(|| json!("default"));
    }
    spec["serviceAccount"] = spec["serviceAccountName"].clone();
    if spec["containers"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause::required(format!("{path}.containers")));
    }
    let mut names = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (i, c) in containers.iter_mut().enumerate() {
            let field = format!("{path}.{list}[{i}]");
            let name = c["name"].as_str().unwrap_or("").to_string();
            if !is_dns_label(&name) {
                causes.push(Cause::invalid(format!("{field}.name"), &json!(name), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
            } else if names.contains(&name) {
                causes.push(Cause::new(
                    "FieldValueDuplicate",
                    format!("{field}.name"),
                    format!("Duplicate value: {name:?}"),
                ));
            }
            names.push(name);
            let image = c["image"].as_str().unwrap_or("").to_string();
            if image.is_empty() {
                causes.push(Cause::required(format!("{field}.image")));
            }
            if c.get("terminationMessagePath").is_none() {
                c["terminationMessagePath"] = json!("/dev/termination-log");
            }
            if c.get("terminationMessagePolicy").is_none() {
                c["terminationMessagePolicy"] = json!("File");
            }
            if c.get("imagePullPolicy").is_none() {
                let tag = image.rsplit('/').next().unwrap_or("");
                let latest = !tag.contains(':') && !image.contains('@') || tag.ends_with(":latest");
                c["imagePullPolicy"] = json!(if latest { "Always" } else { "IfNotPresent" });
            }
            if c.get("resources").is_none() {
                c["resources"] = json!({});
            }
        }
    }
}

fn prepare_pod(object: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &mut object["spec"];
    if spec.get("restartPolicy").is_none() {
        spec["restartPolicy"] = json!("Always");
    }
    default_pod_spec(spec, "spec", causes);
    let Some(old) = old else { return };
    // Why: most of a Pod is immutable once created; only images, activeDeadlineSeconds and
    // tolerations additions may change (ValidatePodUpdate).
    let mut a = object["spec"].clone();
    let mut b = old["spec"].clone();
    for s in [&mut a, &mut b] {
        for list in ["containers", "initContainers"] {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("image");
                    }
                }
            }
        }
        if let Some(m) = s.as_object_mut() {
            m.remove("activeDeadlineSeconds");
            m.remove("tolerations");
            m.remove("nodeName");
        }
    }
    if a != b {
        causes.push(Cause::new(
            "FieldValueForbidden",
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
    if old["spec"].get("nodeName").is_some()
        && object["spec"]["nodeName"] != old["spec"]["nodeName"]
    {
        causes.push(Cause::immutable(
            "spec.nodeName",
            &object["spec"]["nodeName"],
        ));
    }
}

fn prepare_job(object: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &mut object["spec"];
    if !spec.is_object() {
        causes.push(Cause::required("spec"));
        return;
    }
    for (k, v) in [
        ("parallelism", json!(1)),
        ("completions", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
        ("manualSelector", Value::Null),
    ] {
        if spec.get(k).is_none() && !v.is_null() {
            spec[k] = v;
        }
    }
    for (field, value) in [
        ("backoffLimit", &spec["backoffLimit"]),
        ("parallelism", &spec["parallelism"]),
        ("completions", &spec["completions"]),
        ("ttlSecondsAfterFinished", &spec["ttlSecondsAfterFinished"]),
    ] {
        if value.as_i64().is_some_and(|v| v < 0) {
            causes.push(Cause::invalid(
                format!("spec.{field}"),
                value,
                "must be greater than or equal to 0",
            ));
        }
    }
    if spec["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|v| v <= 0)
    {
        causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            &spec["activeDeadlineSeconds"],
            "must be greater than 0",
        ));
    }
    let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let spec = &mut object["spec"];
    let manual = spec["manualSelector"] == json!(true);
    if old.is_none() && !manual {
        if spec.get("selector").is_some() {
            causes.push(Cause::invalid(
                "spec.selector",
                &spec["selector"],
                "`selector` will be auto-generated",
            ));
        }
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        let template_meta = &mut spec["template"]["metadata"];
        if !template_meta["labels"].is_object() {
            template_meta["labels"] = json!({});
        }
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            template_meta["labels"][k] = json!(v);
        }
    }
    let template_spec = &mut spec["template"]["spec"];
    if !template_spec.is_object() {
        causes.push(Cause::required("spec.template.spec"));
    } else {
        match template_spec["restartPolicy"].as_str() {
            Some("Never") | Some("OnFailure") => {}
            Some(other) => causes.push(Cause::new(
                "FieldValueNotSupported",
                "spec.template.spec.restartPolicy",
                format!("Unsupported value: {other:?}: supported values: \"OnFailure\", \"Never\""),
            )),
            None => causes.push(Cause::new(
                "FieldValueRequired",
                "spec.template.spec.restartPolicy",
                "Required value: valid values: \"OnFailure\", \"Never\"",
            )),
        }
        default_pod_spec(template_spec, "spec.template.spec", causes);
    }
    if let Some(old) = old {
        for field in [
            "template",
            "selector",
            "completionMode",
            "podFailurePolicy",
            "manualSelector",
        ] {
            if object["spec"].get(field) != old["spec"].get(field) {
                causes.push(Cause::immutable(
                    format!("spec.{field}"),
                    object["spec"].get(field).unwrap_or(&Value::Null),
                ));
            }
        }
    }
}

fn prepare_rbac(object: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    if object["kind"] == json!("RoleBinding") {
        if object["roleRef"]["kind"]
            .as_str()
            .is_none_or(|k| k != "Role" && k != "ClusterRole")
        {
            causes.push(Cause::new(
                "FieldValueNotSupported",
                "roleRef.kind",
                "Unsupported value: supported values: \"Role\", \"ClusterRole\"",
            ));
        }
        if let Some(old) = old
            && old["roleRef"] != object["roleRef"]
        {
            causes.push(Cause::immutable("roleRef", &object["roleRef"]));
        }
    }
    if object["kind"] == json!("Role") {
        for (i, rule) in object["rules"].as_array().into_iter().flatten().enumerate() {
            if rule["verbs"].as_array().is_none_or(Vec::is_empty) {
                causes.push(Cause::required(format!("rules[{i}].verbs")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_rules() {
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("A"));
        assert!(!is_dns_label("a.b"));
        assert!(validate_name(&crate::resources::RESOURCES[ids::NAMESPACES], "a.b").len() == 1);
    }

    #[test]
    fn secrets_fold_string_data_and_are_limited() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        assert!(prepare(ids::SECRETS, &mut s, None).is_empty());
        assert_eq!(s["data"]["k"], json!("dg=="));
        assert_eq!(s["type"], json!("Opaque"));
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_DATA_SIZE + 1]);
        let mut s = json!({"metadata": {"name": "s"}, "data": {"k": big}});
        assert_eq!(
            prepare(ids::SECRETS, &mut s, None)[0].reason,
            "FieldValueTooLong"
        );
    }

    #[test]
    fn jobs_get_selector_and_labels_and_keep_their_template() {
        let mut j = json!({"metadata": {"name": "j", "uid": "u"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "i:1"}]}}}});
        assert!(prepare(ids::JOBS, &mut j, None).is_empty());
        assert_eq!(
            j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            json!("u")
        );
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"]["job-name"],
            json!("j")
        );
        assert_eq!(j["spec"]["backoffLimit"], json!(6));
        let old = j.clone();
        j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("i:2");
        let causes = prepare(ids::JOBS, &mut j, Some(&old));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template");
        let mut bad = json!({"metadata": {"name": "j", "uid": "u"}, "spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "i"}]}}}});
        assert_eq!(
            prepare(ids::JOBS, &mut bad, None)[0].field,
            "spec.template.spec.restartPolicy"
        );
    }
}
