//! The `timeouts` block: per-operation time limits written as Go-style durations ("30m", "1h30m").

use std::time::Duration;

use super::Diagnostics;
use super::schema::{Attribute, Block, NestedBlock, Nesting};
use crate::value::{AttributePath, Value};

/// The `timeouts` block in a resource's model.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Timeouts {
    /// How long create may take.
    pub create: Option<String>,
    /// How long read may take.
    pub read: Option<String>,
    /// How long update may take.
    pub update: Option<String>,
    /// How long delete may take.
    pub delete: Option<String>,
}

/// The operations a `timeouts` block can limit.
pub(crate) const OPERATIONS: [&str; 4] = ["create", "read", "update", "delete"];

/// The time limit of create, update and delete when the resource's `timeouts` sets none.
pub const DEFAULT_WRITE: Duration = Duration::from_secs(20 * 60);
/// The time limit of read (a refresh) when the resource's `timeouts` sets none.
pub(crate) const DEFAULT_READ: Duration = Duration::from_secs(5 * 60);

/// The default limit of an operation.
pub(crate) fn default_for(operation: &str) -> Duration {
    if operation == "read" {
        DEFAULT_READ
    } else {
        DEFAULT_WRITE
    }
}

/// A `timeouts { create = "30m" … }` block with one optional duration per operation.
pub fn block() -> NestedBlock {
    let mut inner = Block::new(
        "Time limits for each operation, as durations such as `\"30s\"`, `\"10m\"` or `\"1h30m\"`.",
    );
    for op in OPERATIONS {
        inner = inner.attribute(
            Attribute::string(op)
                .description(format!(
                    "How long {op} may take. Defaults to `{}`.",
                    format_duration(default_for(op))
                ))
                .validate(super::validate::positive_duration()),
        );
    }
    NestedBlock::new("timeouts", Nesting::Single, inner)
}

/// The limit for `operation` from a resource value's `timeouts` block, or `default`.
pub(crate) fn for_operation(state: &Value, operation: &str, default: Duration) -> Duration {
    state
        .get("timeouts")
        .get(operation)
        .as_str()
        .and_then(|s| parse_duration(s).ok())
        .unwrap_or(default)
}

/// Parses a Go duration string: a sequence of numbers with units `ms`, `s`, `m`, `h`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("is empty");
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("has a number without a unit")?;
        if digits == 0 {
            return Err("does not start with a number");
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| "has a malformed number")?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return Err("has an unknown unit (use ms, s, m or h)"),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(seconds).map_err(|_| "is out of range")?;
    }
    Ok(total)
}

/// Renders a duration the way users write it ("20m", "1h30m", "45s").
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Adds an error if the operation's deadline passed, naming the attribute to raise.
pub(crate) fn timed_out(diags: &mut Diagnostics, operation: &str, limit: Duration) {
    diags.error_at(
        AttributePath::root()
            .attribute("timeouts")
            .attribute(operation),
        format!("Timed out during {operation}"),
        format!(
            "The {operation} did not finish within {}. Raise timeouts.{operation} if the \
             operation needs longer.",
            format_duration(limit)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("30s", Some(30.0)),
            ("20m", Some(1200.0)),
            ("1h30m", Some(5400.0)),
            ("1.5h", Some(5400.0)),
            ("250ms", Some(0.25)),
            ("", None),
            ("10", None),
            ("m", None),
            ("10d", None),
            ("1h-2m", None),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).ok().map(|d| d.as_secs_f64());
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_secs(1200)), "20m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
    }

    #[test]
    fn reads_limit_from_state_or_default() {
        let state = Value::object([(
            "timeouts",
            Value::object([("create", Value::string("2m")), ("delete", Value::Null)]),
        )]);
        let default = Duration::from_secs(600);
        assert_eq!(
            for_operation(&state, "create", default),
            Duration::from_secs(120)
        );
        assert_eq!(for_operation(&state, "delete", default), default);
        assert_eq!(for_operation(&Value::Null, "read", default), default);
    }
}
