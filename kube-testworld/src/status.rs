//! API errors and their `Status` bodies, with the reasons, codes and message shapes of a real API
//! server (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// One field-level cause of an `Invalid` error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueTooLong`, …
    pub(crate) reason: &'static str,
    /// The field path, e.g. `spec.template`.
    pub(crate) field: String,
    /// The message after the field, e.g. `Required value`.
    pub(crate) message: String,
}

impl Cause {
    /// A cause with `reason`, `field` and `message`.
    pub(crate) fn new(
        reason: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Cause {
            reason,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `field: Required value`.
    pub(crate) fn required(field: impl Into<String>) -> Self {
        Cause::new("FieldValueRequired", field, "Required value")
    }

    /// `field: Invalid value: <value>: <detail>`.
    pub(crate) fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", render_value(value)),
        )
    }

    /// `field: Invalid value: …: field is immutable`.
    pub(crate) fn immutable(field: impl Into<String>, value: &Value) -> Self {
        Cause::invalid(field, value, "field is immutable")
    }
}

/// Renders a value as Go's field errors quote it: strings quoted, objects as compact JSON.
fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) | Value::Array(_) => {
            let text = value.to_string();
            if text.len() > 200 {
                format!(
                    "{}...",
                    &text[..text
                        .char_indices()
                        .nth(197)
                        .map(|(i, _)| i)
                        .unwrap_or(text.len())]
                )
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

/// An error answer of the API, rendered as a `Status` object.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 404 `NotFound`; `resource` is the qualified resource (`jobs.batch`).
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// `configmaps`, `jobs.batch`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// 404 for a path that names nothing served.
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    /// 409 `AlreadyExists`.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Qualified resource.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// 409 `Conflict` (stale resourceVersion, or a server-side apply conflict).
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        /// Qualified resource.
        resource: String,
        /// The object's name.
        name: String,
        /// What conflicted.
        detail: String,
    },
    /// 409 `Conflict` of a server-side apply with other field managers.
    #[error("{message}")]
    ApplyConflict {
        /// `Apply failed with N conflict(s): …`.
        message: String,
        /// One cause per conflicting field.
        causes: Vec<Cause>,
    },
    /// 422 `Invalid` with field causes.
    #[error("{kind} \"{name}\" is invalid: {}", render_causes(.causes))]
    Invalid {
        /// Qualified kind (`Job.batch`).
        kind: String,
        /// The object's name.
        name: String,
        /// What is wrong, field by field.
        causes: Vec<Cause>,
    },
    /// 403 `Forbidden`.
    #[error("{0}")]
    Forbidden(String),
    /// 401 `Unauthorized`.
    #[error("Unauthorized")]
    Unauthorized,
    /// 400 `BadRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// 405 `MethodNotAllowed`.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 410 `Expired` (a compacted resourceVersion).
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The version asked for.
        requested: u64,
        /// The oldest version still known.
        oldest: u64,
    },
    /// 415 `UnsupportedMediaType`.
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    /// 406 `NotAcceptable`.
    #[error("only the following media types are accepted: application/json, application/yaml")]
    NotAcceptable,
    /// 413 `RequestEntityTooLarge`.
    #[error("Request entity too large: limit is 3145728")]
    TooLarge,
    /// 500 `InternalError`.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

/// Joins causes as Go's `ToAggregate` does: one cause bare, several in brackets.
fn render_causes(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    /// `NotFound` for `name` of type `r`.
    pub(crate) fn not_found(r: &ResourceType, name: &str) -> Self {
        ApiError::NotFound {
            resource: r.qualified(),
            name: name.to_string(),
        }
    }

    /// `Invalid` for `name` of type `r`.
    pub(crate) fn invalid(r: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        ApiError::Invalid {
            kind: r.qualified_kind(),
            name: name.to_string(),
            causes,
        }
    }

    /// A stale-update `Conflict`.
    pub(crate) fn stale(r: &ResourceType, name: &str) -> Self {
        ApiError::Conflict {
            resource: r.qualified(),
            name: name.to_string(),
            detail: "the object has been modified; please apply your changes to the latest version and try again".into(),
        }
    }

    /// The HTTP status code.
    pub(crate) fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchPath => 404,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::Forbidden(_) => 403,
            ApiError::Unauthorized => 401,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::Expired { .. } => 410,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::NotAcceptable => 406,
            ApiError::TooLarge => 413,
            ApiError::Internal(_) => 500,
        }
    }

    /// The `Status.reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchPath => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Expired { .. } => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable => "NotAcceptable",
            ApiError::TooLarge => "RequestEntityTooLarge",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `Status` object.
    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name, .. } => Some(split_details(resource, name)),
            ApiError::ApplyConflict { causes, .. } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                Some(json!({"causes": causes}))
            }
            ApiError::Invalid { kind, name, causes } => {
                let (kind, group) = kind.split_once('.').unwrap_or((kind.as_str(), ""));
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                let mut d = json!({"name": name, "kind": kind, "causes": causes});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

/// `details` for a qualified resource: `{name, group?, kind: plural}`.
fn split_details(resource: &str, name: &str) -> Value {
    let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
    let mut d = json!({"name": name, "kind": plural});
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

/// The `Status` a successful immediate delete answers with.
pub(crate) fn delete_success(r: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": r.plural, "uid": uid});
    if !r.group.is_empty() {
        details["group"] = json!(r.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{RESOURCES, ids};

    #[test]
    fn messages_match_the_api_server() {
        let jobs = &RESOURCES[ids::JOBS];
        let e = ApiError::not_found(jobs, "x");
        assert_eq!(e.to_string(), "jobs.batch \"x\" not found");
        assert_eq!(
            e.status()["details"],
            json!({"name": "x", "group": "batch", "kind": "jobs"})
        );
        let e = ApiError::invalid(
            jobs,
            "x",
            vec![Cause::immutable("spec.template", &json!({"a": 1}))],
        );
        assert_eq!(
            e.to_string(),
            "Job.batch \"x\" is invalid: spec.template: Invalid value: {\"a\":1}: field is immutable"
        );
        assert_eq!(e.status()["code"], json!(422));
        assert_eq!(
            e.status()["details"]["causes"][0]["field"],
            json!("spec.template")
        );
        let e = ApiError::stale(&RESOURCES[ids::CONFIGMAPS], "c");
        assert_eq!(e.status()["reason"], json!("Conflict"));
        assert!(
            e.to_string()
                .starts_with("Operation cannot be fulfilled on configmaps \"c\"")
        );
    }
}
