//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`exists) and field selectors (`=`,
//! `==`, `!=` over the fields each type supports), parsed from query strings and matched against
//! objects.

use serde_json::Value;

use crate::resources::{ResourceId, ids};
use crate::status::ApiError;

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
    /// `key=v`, `key==v`, `key in (v, w)`.
    In(String, Vec<String>),
    /// `key!=v`, `key notin (v, w)` (also true when the label is missing).
    NotIn(String, Vec<String>),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| ApiError::BadRequest(format!("unable to parse requirement: {why}"));
        let mut reqs = Vec::new();
        let mut parts = Vec::new();
        // Why: commas separate requirements except inside the parentheses of `in`/`notin`.
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&text[start..]);
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(bad("found ',', expected: identifier"));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                LabelReq::NotExists(valid_key(key.trim())?)
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotIn(valid_key(k.trim())?, vec![valid_value(v.trim())?])
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                LabelReq::In(valid_key(k.trim())?, vec![valid_value(v.trim())?])
            } else if let Some((k, rest)) = split_word(part, "notin") {
                LabelReq::NotIn(valid_key(k)?, set_values(rest)?)
            } else if let Some((k, rest)) = split_word(part, "in") {
                LabelReq::In(valid_key(k)?, set_values(rest)?)
            } else if part.contains(['<', '>', '(', ')', ' ']) {
                return Err(bad(&format!("unsupported requirement {part:?}")));
            } else {
                LabelReq::Exists(valid_key(part)?)
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
        })
    }
}

/// Splits `key in (a,b)` at the operator word.
fn split_word<'a>(part: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let pattern = format!(" {word} ");
    let idx = part.find(&pattern).or_else(|| {
        // `key in(a)` without the space before the parenthesis.
        part.find(&format!(" {word}("))
    })?;
    Some((part[..idx].trim(), part[idx + word.len() + 1..].trim()))
}

/// Parses `(a, b)`.
fn set_values(text: &str) -> Result<Vec<String>, ApiError> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unable to parse requirement: found '{text}', expected: '('"
            ))
        })?;
    inner.split(',').map(|v| valid_value(v.trim())).collect()
}

/// Checks a label key: optional DNS prefix `/`, then a name of at most 63 characters.
fn valid_key(key: &str) -> Result<String, ApiError> {
    let name = key.rsplit_once('/').map(|(_, n)| n).unwrap_or(key);
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(key.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

/// Checks a label value: empty, or up to 63 characters of the label alphabet.
fn valid_value(value: &str) -> Result<String, ApiError> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(value.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "unable to parse requirement: invalid label value: \"{value}\": at key: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
        )))
    }
}

/// A parsed field selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

/// The field labels a type supports besides `metadata.name` and `metadata.namespace`.
fn supported_fields(resource: ResourceId) -> &'static [&'static str] {
    match resource {
        ids::EVENTS => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ids::PODS => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ids::SECRETS => &["type"],
        ids::NAMESPACES => &["status.phase"],
        ids::JOBS => &["status.successful"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for a type.
    pub(crate) fn parse(text: &str, resource: ResourceId) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !supported_fields(resource).contains(&field)
            {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {field}"
                )));
            }
            reqs.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether the object satisfies every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|(field, equal, value)| (field_value(object, field) == *value) == *equal)
    }
}

/// The value of a field label, as the registry's `ToSelectableFields` functions give it.
fn field_value(object: &Value, field: &str) -> String {
    let at = |path: &str| object.pointer(path);
    match field {
        "source" => at("/source/component")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        // Why: JobToSelectableFields sets `status.successful` to
        // `strconv.Itoa(int(job.Status.Succeeded))`, the count of `status.succeeded` ("0" when
        // unset), not a field of that name.
        "status.successful" => at("/status/succeeded")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        // Why: PodToSelectableFields formats `strconv.FormatBool(pod.Spec.HostNetwork)`, so a
        // pod without the field is `false`.
        "spec.hostNetwork" => at("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        f => match at(&format!("/{}", f.replace('.', "/"))) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "n", "labels": labels}})
    }

    #[test]
    fn label_selectors_follow_the_grammar() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).expect(s).matches(&o);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, db)"));
        assert!(!m("app notin (web,db)"));
        assert!(m("tier notin (back)"));
        assert!(m("!missing"));
        assert!(!m("missing"));
        assert!(m("missing!=x"));
        assert!(m("example.com/x notin (a)"));
        assert!(LabelSelector::parse("app=-bad").is_err());
        assert!(LabelSelector::parse("a>1").is_err());
    }

    #[test]
    fn field_selectors_accept_only_supported_fields() {
        let ev = json!({"metadata": {"name": "e", "namespace": "n"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}});
        let s = FieldSelector::parse(
            "involvedObject.kind=Pod,involvedObject.name==p",
            ids::EVENTS,
        )
        .expect("parse");
        assert!(s.matches(&ev));
        assert!(
            FieldSelector::parse("source=kubelet", ids::EVENTS)
                .expect("source")
                .matches(&ev)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=e", ids::EVENTS)
                .expect("ne")
                .matches(&ev)
        );
        let e = FieldSelector::parse("spec.foo=x", ids::CONFIGMAPS).expect_err("unsupported");
        assert_eq!(e.to_string(), "field label not supported: spec.foo");
        let pod = json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true}});
        assert!(
            FieldSelector::parse("spec.hostNetwork=true", ids::PODS)
                .expect("bool")
                .matches(&pod)
        );
        let plain_pod = json!({"metadata": {"name": "q"}, "spec": {}});
        assert!(
            FieldSelector::parse("spec.hostNetwork=false", ids::PODS)
                .expect("default bool")
                .matches(&plain_pod)
        );
    }

    #[test]
    fn jobs_select_on_the_succeeded_count() {
        let done = json!({"metadata": {"name": "done"}, "status": {"succeeded": 1}});
        let fresh = json!({"metadata": {"name": "fresh"}, "status": {}});
        let m = |s: &str, o: &Value| FieldSelector::parse(s, ids::JOBS).expect(s).matches(o);
        assert!(m("status.successful=1", &done));
        assert!(!m("status.successful=0", &done));
        assert!(m("status.successful=0", &fresh));
        assert!(m("metadata.name=fresh,status.successful!=1", &fresh));
    }
}
