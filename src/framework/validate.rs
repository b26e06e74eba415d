//! Configuration validation driven by the schema, and the validators resources share.
//!
//! Terraform itself checks types, required attributes and block counts. What is left for the
//! provider is meaning: the attribute validators declared in the schema, run on every known value
//! (unknown values are skipped, since they are only known at apply time).

use super::Diagnostics;
use super::schema::{Block, Nesting};
use crate::value::{AttributePath, Value};

/// Runs every attribute validator of `block` (recursively) on the known values of `config`.
pub(crate) fn validate_block(
    block: &Block,
    config: &Value,
    path: &AttributePath,
    diags: &mut Diagnostics,
) {
    if config.is_null() || config.is_unknown() {
        return;
    }
    for attribute in &block.attributes {
        let value = config.get(&attribute.name);
        if value.is_null() || value.is_unknown() {
            continue;
        }
        let attribute_path = path.attribute(attribute.name.clone());
        refuse_null_elements(value, &attribute_path, diags);
        for validator in &attribute.validators {
            validator(value, &attribute_path, diags);
        }
    }
    for nested in &block.blocks {
        let value = config.get(&nested.name);
        let nested_path = path.attribute(nested.name.clone());
        match (nested.nesting, value) {
            (Nesting::Single, v) => validate_block(&nested.block, v, &nested_path, diags),
            // Why the set's own path: Terraform cannot address an element of a set.
            (Nesting::Set, Value::Set(items)) => {
                for item in items {
                    validate_block(&nested.block, item, &nested_path, diags);
                }
            }
            _ => {}
        }
    }
}

/// Refuses null elements of a list or set and null values of a map: they mean nothing here, and
/// the models leave them out (`crate::framework::model::map_without_nulls`), so accepting them
/// would plan a value that never reaches state.
fn refuse_null_elements(value: &Value, path: &AttributePath, diags: &mut Diagnostics) {
    match value {
        Value::Map(entries) => {
            for (key, _) in entries.iter().filter(|(_, entry)| entry.is_null()) {
                let at = path.key(key.clone());
                diags.error_at(
                    at.clone(),
                    format!("Null value in {path}"),
                    format!("{at} is null; give it a value or remove the entry."),
                );
            }
        }
        Value::List(items) => {
            for (index, _) in items.iter().enumerate().filter(|(_, item)| item.is_null()) {
                let at = path.index(i64::try_from(index).unwrap_or(i64::MAX));
                diags.error_at(
                    at.clone(),
                    format!("Null element in {path}"),
                    format!("{at} is null; give it a value or remove the element."),
                );
            }
        }
        Value::Set(items) if items.iter().any(Value::is_null) => diags.error_at(
            path.clone(),
            format!("Null element in {path}"),
            format!("{path} holds a null element; remove it."),
        ),
        _ => {}
    }
}

/// A validator accepting only the listed strings.
pub(crate) fn one_of(
    allowed: &'static [&'static str],
) -> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    move |value, path, diags| {
        if let Some(s) = value.as_str()
            && !allowed.contains(&s)
        {
            diags.error_at(
                path.clone(),
                format!("Invalid value for {path}"),
                format!("Expected one of {}, got {s:?}.", quoted_list(allowed, "or")),
            );
        }
    }
}

/// A validator rejecting the empty string.
pub(crate) fn not_empty()
-> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    |value, path, diags| {
        if value.as_str().is_some_and(|s| s.trim().is_empty()) {
            diags.error_at(
                path.clone(),
                format!("Empty value for {path}"),
                format!("{path} must not be empty; set a value or remove the attribute."),
            );
        }
    }
}

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

/// A validator for maps whose keys are environment variable names (`[A-Za-z_][A-Za-z0-9_]*`).
pub(crate) fn env_names()
-> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    |value, path, diags| {
        let Some(map) = value.as_map() else {
            return;
        };
        for name in map.keys() {
            let mut chars = name.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                diags.error_at(
                    path.key(name.clone()),
                    format!("Invalid environment variable name in {path}"),
                    format!(
                        "{name:?} is not an environment variable name: use letters, digits and \
                         underscores, not starting with a digit (e.g. \"TF_LOG\")."
                    ),
                );
            }
        }
    }
}

/// `"a", "b" or "c"` (with `conjunction` "or"), `"a", "b" and "c"` (with "and").
pub(crate) fn quoted_list(items: &[&str], conjunction: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {conjunction} {last}", rest.join(", "))
        }
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// A validator for durations of the `timeouts` block and the like: valid and longer than zero.
pub(crate) fn positive_duration()
-> impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static {
    |value, path, diags| {
        let Some(text) = value.as_str() else {
            return;
        };
        let problem = match super::timeouts::parse_duration(text) {
            Ok(duration) if duration.is_zero() => "is zero, so the operation could never finish",
            Ok(_) => return,
            Err(reason) => reason,
        };
        diags.error_at(
            path.clone(),
            format!("Invalid duration in {path}"),
            format!("{text:?} {problem}; write a duration such as \"90s\", \"20m\" or \"1h30m\"."),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};

    #[test]
    fn validators_run_on_known_values_only_and_name_the_path() {
        let block = Block::new("t").block(NestedBlock::new(
            "cluster",
            Nesting::Single,
            Block::new("c").attribute(
                Attribute::string("cluster_type").validate(one_of(&["gke", "eks", "aks"])),
            ),
        ));
        let config = |v: Value| Value::object([("cluster", Value::object([("cluster_type", v)]))]);
        let mut diags = Diagnostics::new();
        validate_block(
            &block,
            &config(Value::Unknown),
            &AttributePath::root(),
            &mut diags,
        );
        validate_block(
            &block,
            &config(Value::string("gke")),
            &AttributePath::root(),
            &mut diags,
        );
        assert!(diags.is_empty());
        validate_block(
            &block,
            &config(Value::string("k3s")),
            &AttributePath::root(),
            &mut diags,
        );
        let diag = diags.iter().next().unwrap();
        assert_eq!(
            diag.attribute,
            Some(
                AttributePath::root()
                    .attribute("cluster")
                    .attribute("cluster_type")
            )
        );
        assert!(
            diag.detail.contains(r#""gke", "eks" or "aks""#),
            "{}",
            diag.detail
        );
    }

    #[test]
    fn null_elements_of_collections_name_their_place() {
        let block = Block::new("t")
            .attribute(Attribute::string_list("command"))
            .attribute(Attribute::string_map("variables"));
        let config = Value::object([
            (
                "command",
                Value::list([Value::string("run"), Value::Null, Value::Unknown]),
            ),
            (
                "variables",
                Value::map([("A", Value::Null), ("B", Value::string("b"))]),
            ),
        ]);
        let mut diags = Diagnostics::new();
        validate_block(&block, &config, &AttributePath::root(), &mut diags);
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.attribute.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, ["command[1]", "variables[\"A\"]"]);
    }

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
