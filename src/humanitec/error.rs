//! The one error type of the Humanitec API client, and the helpers that turn an HTTP answer or a
//! transport failure into it.
//!
//! Every `Display` message is a sentence a Terraform user can act on. None of them can contain the
//! API token: the token only ever lives in a request header, and no header is ever formatted.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;

use super::models::DefinitionChange;

/// At most this many characters of an unexpected error body are quoted in a message.
const EXCERPT_CHARS: usize = 300;

/// At most this many affected resources are named in an [`Error::InUse`] message.
const LISTED_CHANGES: usize = 10;

/// Everything that can go wrong when talking to the Humanitec API.
///
/// `Display` describes one level only; the cause of [`Error::Transport`], [`Error::GaveUp`] and
/// [`Error::Decode`] is their [`source`](std::error::Error::source), so a full message is the
/// chain joined with ": ", e.g. "gave up on the Humanitec API after 9 attempt(s) in 120.3 s:
/// Humanitec API answered 503 Service Unavailable without an explanation".
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The API answered with an error status that has no more specific variant.
    ///
    /// `code` and `message` come from the `HumanitecErrorResponse` body (`error`, `message`).
    /// When the body has another shape, `code` is empty and `message` is a short excerpt of it.
    #[error("{}", api_sentence(*status, code, message))]
    Api {
        /// HTTP status code.
        status: u16,
        /// Humanitec's short error code, e.g. `API-400`; empty when the body had none.
        code: String,
        /// Humanitec's message, or an excerpt of an unexpected body.
        message: String,
        /// Humanitec's optional `details` object.
        details: Option<serde_json::Value>,
    },

    /// The object addressed does not exist (HTTP 404).
    #[error("{what} does not exist in Humanitec")]
    NotFound {
        /// What was looked for, e.g. `resource definition "my-def"`.
        what: String,
    },

    /// A definition answered 404, and so did the organization's list of definitions: the
    /// endpoint or the organization is wrong, so the 404 says nothing about the definition.
    #[error(
        "the Humanitec API at {base} answered 404 for {what}, and {list} for the list of the \
         organization's definitions, so the URL or the organization is wrong rather than the \
         definition gone; check api_prefix (the API's base URL, e.g. https://api.humanitec.io/) \
         and org_id"
    )]
    WrongEndpoint {
        /// The API base URL in use.
        base: String,
        /// What was looked for.
        what: String,
        /// What the list answered, e.g. `404 Not Found`.
        list: String,
    },

    /// A resource definition with this id already exists (HTTP 409 on create).
    #[error(
        "a Humanitec resource definition with id \"{id}\" already exists in this organization; \
         choose another id or import the existing definition"
    )]
    AlreadyExists {
        /// The id that is taken.
        id: String,
    },

    /// Deleting would affect active resources (HTTP 409 with a list of changes).
    #[error("{}", in_use_sentence(changes))]
    InUse {
        /// The active resources that still use the definition or criterion.
        changes: Vec<DefinitionChange>,
    },

    /// The request could not be sent or its answer not received.
    #[error(
        "could not reach the Humanitec API{}",
        if source.is_timeout() { " (the request timed out)" } else { "" }
    )]
    Transport {
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },

    /// The API could not be connected to at all, several times in a row.
    #[error(
        "could not connect to the Humanitec API at {url} ({reason}); check api_prefix (or \
         HUMANITEC_API_PREFIX) and that this machine can reach that address (proxy, firewall, \
         VPN)"
    )]
    Unreachable {
        /// The scheme, host and port tried.
        url: String,
        /// The operating system's reason, e.g. `Connection refused (os error 111)`.
        reason: String,
    },

    /// The retry budget ran out; `last` is the failure of the final attempt.
    #[error(
        "gave up on the Humanitec API after {attempts} attempt(s) in {:.1} s",
        elapsed.as_secs_f64()
    )]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Time spent, waits included.
        elapsed: Duration,
        /// The failure of the final attempt.
        #[source]
        last: Box<Error>,
    },

    /// A body could not be encoded, or an answer did not have the expected shape.
    #[error("could not understand the Humanitec API's answer ({what})")]
    Decode {
        /// Which body, e.g. `the resource definition returned by GET …`.
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The client configuration is unusable (bad `api_prefix`, empty token, …).
    #[error("invalid Humanitec API configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// Whether a write that failed this way may have been applied all the same: its answer never
    /// arrived, or came from a gateway or a failing server (500, 502, 503, 504), possibly after
    /// the API had processed it.
    pub(crate) fn outcome_unknown(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            // Why certain: no attempt reached the server.
            Self::Unreachable { .. } => false,
            Self::Api { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            Self::GaveUp { last, .. } => last.outcome_unknown(),
            _ => false,
        }
    }
}

/// The shape of Humanitec's error body (`HumanitecErrorResponse`).
#[derive(Deserialize)]
struct HumanitecErrorResponse {
    /// Short error code, e.g. `API-000`.
    error: String,
    /// Human-readable message.
    message: String,
    /// Optional free-form details.
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// Builds [`Error::Api`] from an error status and its body.
pub(crate) fn api_error(status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<HumanitecErrorResponse>(body) {
        Ok(parsed) => Error::Api {
            status,
            code: parsed.error,
            message: parsed.message,
            details: parsed.details.filter(|d| !d.is_null()),
        },
        Err(_) => Error::Api {
            status,
            code: String::new(),
            message: excerpt(body),
            details: None,
        },
    }
}

/// A short, single-line excerpt of a body, for messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for (count, word) in text.split_whitespace().enumerate() {
        if count > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > EXCERPT_CHARS {
            break;
        }
    }
    if out.chars().count() > EXCERPT_CHARS {
        out = out.chars().take(EXCERPT_CHARS).collect();
        out.push('…');
    }
    out
}

/// The message of [`Error::Api`].
fn api_sentence(status: u16, code: &str, message: &str) -> String {
    let mut out = format!("Humanitec API answered {status}");
    if let Some(reason) = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        let _ = write!(out, " {reason}");
    }
    if !code.is_empty() {
        let _ = write!(out, " ({code})");
    }
    if message.is_empty() {
        out.push_str(" without an explanation");
    } else {
        let _ = write!(out, ": {message}");
    }
    match status {
        401 => out.push_str(" (check that the API token is valid and has not expired)"),
        403 => out.push_str(" (check that the API token grants access to this organization)"),
        _ => {}
    }
    out
}

/// The message of [`Error::InUse`], naming the affected `app/env/res` ids.
fn in_use_sentence(changes: &[DefinitionChange]) -> String {
    let mut out = format!(
        "Humanitec refused the deletion because {} active resource(s) still use it: ",
        changes.len()
    );
    for (index, change) in changes.iter().take(LISTED_CHANGES).enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{change}");
    }
    if changes.len() > LISTED_CHANGES {
        let _ = write!(out, " and {} more", changes.len() - LISTED_CHANGES);
    }
    out.push_str(
        "; deploy those environments so they no longer use it, or force the deletion \
         (the resources are re-matched or removed at their next deployment)",
    );
    out
}

/// A transport failure and its causes on one line, for messages that cannot carry a source.
///
/// Why not just `reqwest::Error`'s `Display`: it only says what failed at the top level; the
/// useful part ("connection refused", "no CA certificates") sits in its source chain.
pub(crate) fn describe_transport(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    if error.is_timeout() {
        parts.push("the request timed out".to_owned());
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_from_humanitec_body() {
        let body = br#"{"error":"API-400","message":"Invalid driver_type.","details":{"field":"driver_type"}}"#;
        let err = api_error(400, body);
        assert_eq!(
            err.to_string(),
            "Humanitec API answered 400 Bad Request (API-400): Invalid driver_type."
        );
        match err {
            Error::Api { code, details, .. } => {
                assert_eq!(code, "API-400");
                assert_eq!(details, Some(serde_json::json!({"field": "driver_type"})));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn api_error_from_other_bodies() {
        let cases: &[(u16, &[u8], &str)] = &[
            (
                502,
                b"<html>\n  <body>Bad   gateway</body>\n</html>",
                "Humanitec API answered 502 Bad Gateway: <html> <body>Bad gateway</body> </html>",
            ),
            (
                503,
                b"",
                "Humanitec API answered 503 Service Unavailable without an explanation",
            ),
            (
                500,
                br#"{"message":"no code"}"#,
                r#"Humanitec API answered 500 Internal Server Error: {"message":"no code"}"#,
            ),
            (
                401,
                br#"{"error":"API-000","message":"Could not validate token."}"#,
                "Humanitec API answered 401 Unauthorized (API-000): Could not validate token. \
                 (check that the API token is valid and has not expired)",
            ),
            (599, b"x", "Humanitec API answered 599: x"),
        ];
        for (status, body, want) in cases {
            assert_eq!(api_error(*status, body).to_string(), *want);
        }
    }

    #[test]
    fn excerpt_is_short_and_safe_on_any_bytes() {
        let long = "é".repeat(1000);
        let got = excerpt(long.as_bytes());
        assert_eq!(got.chars().count(), EXCERPT_CHARS + 1);
        assert!(got.ends_with('…'));
        let invalid = [0xff, 0xfe, b'a', 0xc3];
        assert!(!excerpt(&invalid).is_empty());
    }

    #[test]
    fn in_use_names_the_resources() {
        let changes: Vec<DefinitionChange> = serde_json::from_str(
            r#"[{"app_id":"app1","env_id":"dev","res_id":"modules.w.externals.s3","from_def":"my-s3","to_def":"default-s3"},
                {"app_id":"app2","env_id":"prod","res_id":"shared.db","from_def":"my-s3","to_def":""}]"#,
        )
        .expect("valid changes");
        let text = Error::InUse { changes }.to_string();
        assert!(text.contains("2 active resource(s)"), "{text}");
        assert!(text.contains("app1/dev/modules.w.externals.s3"), "{text}");
        assert!(text.contains("app2/prod/shared.db"), "{text}");
    }

    #[test]
    fn in_use_list_is_bounded() {
        let changes: Vec<DefinitionChange> = (0..25)
            .map(|i| DefinitionChange {
                app_id: format!("a{i}"),
                env_id: "e".into(),
                res_id: "r".into(),
                from_def: "d".into(),
                to_def: String::new(),
            })
            .collect();
        let text = Error::InUse { changes }.to_string();
        assert!(text.contains("a9/e/r"), "{text}");
        assert!(!text.contains("a10/e/r"), "{text}");
        assert!(text.contains("and 15 more"), "{text}");
    }

    #[test]
    fn decode_names_the_body_and_chains_the_cause() {
        let source = serde_json::from_str::<Vec<u8>>("{").expect_err("not a list");
        let err = Error::Decode {
            what: "the test body".into(),
            source,
        };
        assert_eq!(
            err.to_string(),
            "could not understand the Humanitec API's answer (the test body)"
        );
        assert!(
            crate::text::error_chain(&err).contains("expected a sequence"),
            "{}",
            crate::text::error_chain(&err)
        );
    }

    #[test]
    fn gave_up_chains_the_last_error_once() {
        let err = Error::GaveUp {
            attempts: 3,
            elapsed: Duration::from_millis(1500),
            last: Box::new(api_error(503, b"")),
        };
        assert_eq!(
            crate::text::error_chain(&err),
            "gave up on the Humanitec API after 3 attempt(s) in 1.5 s: \
             Humanitec API answered 503 Service Unavailable without an explanation"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
