//! Validators of the provider's own formats: Humanitec ids and YAML documents.
//!
//! The framework's validators (`terraform_plugin::framework::validate`) know Terraform's rules
//! only; these know what the Humanitec API and Kubernetes accept.

use terraform_plugin::framework::Diagnostics;
use terraform_plugin::value::{AttributePath, Value};

/// A validator for Humanitec definition ids: lowercase letters, digits and dashes, at least 3
/// characters, starting and ending with a letter or digit (the API's pattern
/// `^[a-z0-9][a-z0-9-]+[a-z0-9]$`; the spec sets no length limit for definition ids).
pub(crate) fn humanitec_id()
-> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    |value, path, diags| {
        if let Some(s) = value.as_str()
            && !is_humanitec_id(s)
        {
            diags.error_at(
                path.clone(),
                format!("{path} is not a valid Humanitec id"),
                format!(
                    "{s:?} is not a valid Humanitec id: use at least 3 lowercase letters, digits \
                     and dashes, starting and ending with a letter or digit."
                ),
            );
        }
    }
}

/// Whether `s` matches `^[a-z0-9][a-z0-9-]+[a-z0-9]$`.
pub(crate) fn is_humanitec_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.len() >= 3
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// A validator for YAML documents that must be a mapping (such as a partial Pod template). A
/// syntax error names its line.
pub(crate) fn yaml_mapping(
    example: &'static str,
) -> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    move |value, path, diags| {
        let Some(text) = value.as_str() else {
            return;
        };
        match crate::yaml::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(other) => {
                let kind = match other {
                    serde_json::Value::Null => "empty",
                    serde_json::Value::Array(_) => "a list",
                    _ => "a single value",
                };
                diags.error_at(
                    path.clone(),
                    format!("{path} is not a YAML mapping"),
                    format!(
                        "{path} must be a YAML mapping such as\n\n{example}\nbut it is {kind}."
                    ),
                );
            }
            Err(e) => {
                let line = e
                    .line()
                    .map(|line| format!(" on line {line}"))
                    .unwrap_or_default();
                // Why cut: the parser's message ends with its own "at line N column M".
                let message = e.to_string();
                let message = message.split(" at line ").next().unwrap_or_default();
                diags.error_at(
                    path.clone(),
                    format!("{path} is not valid YAML"),
                    format!("{path} is not valid YAML{line}: {message}. It must be a YAML mapping such as\n\n{example}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanitec_ids() {
        // The spec limits the pattern, not the length, of definition ids.
        let long = "a".repeat(51);
        for ok in [
            "abc",
            "config-container-runner",
            "a1-b2",
            "123",
            long.as_str(),
        ] {
            assert!(is_humanitec_id(ok), "{ok}");
        }
        for bad in ["", "ab", "-abc", "abc-", "Abc", "a_b_c", "a.bc"] {
            assert!(!is_humanitec_id(bad), "{bad}");
        }
    }
}
