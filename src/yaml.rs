//! YAML in and out, through one library: reading the documents users and the API hand the
//! provider (partial Pod templates, the humctl configuration, a runner config's outputs template
//! read back) and writing the documents the provider makes (that outputs template, the RBAC Role
//! it suggests).
//!
//! Why `serde-saphyr`: it is maintained (`serde_yaml` is archived), pure Rust, and already in the
//! build through `kube`. Its writer quotes every string that a YAML 1.1 reader (Go's yaml.v2,
//! PyYAML) would read as something else (`yes`, `on`, `~`, `0777`, `0x1F`, `1_000`, `1:20`,
//! `.inf`, `2001-12-14`, …), so such a value reaches every reader as the string it is.
//! `serde_yaml_ng` and `serde_norway` leave `yes`, `on`, `1:20` and `2001-12-14` plain.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A document that is not valid YAML, or not of the shape asked for.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct YamlError {
    /// The parser's message, ending with "at line L, column C" when it knows where.
    message: String,
    /// The line (from 1) the problem is on, when known.
    line: Option<u64>,
}

impl YamlError {
    /// The line (from 1) the problem is on, when known.
    pub(crate) fn line(&self) -> Option<u64> {
        self.line
    }
}

/// Reads a YAML document into `T`, typing plain scalars as YAML 1.2's core schema does: `yes`,
/// `on`, `0777` and `1_000` stay strings.
///
/// Why those options: the library's defaults read `yes` as `true` and `0777` as a number, as
/// YAML 1.1 did; the provider has always read YAML 1.2's way (as `serde_yaml` did), and a
/// change would alter what a pod template or a read-back outputs template means.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        // Why without the snippet: the library's rendering quotes the document's lines, and a
        // humctl configuration holds a token; the plain message names only the place.
        let message = error.without_snippet().to_string();
        // Why: the library's advice names its own option, which a user cannot set.
        let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        YamlError {
            message,
            line: error.location().map(|at| at.line()),
        }
    })
}

/// Writes `value` as a YAML document, each string quoted when a YAML 1.1 or 1.2 reader would
/// otherwise read it as something else.
///
/// Why no error: the documents written here are mappings of strings, booleans and lists, which
/// always serialize. Should one not, its JSON text is answered: JSON is YAML, and its strings are
/// all double-quoted.
pub(crate) fn to_string<T: Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value)
        .or_else(|_| serde_json::to_string(value))
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use serde_json::Value;

    use super::*;

    /// Strings a YAML 1.1 reader would take for a bool, null, number, date or merge key when
    /// written plain, and strings a YAML reader would take for structure.
    pub(crate) const RETYPED_BY_YAML_1_1: &[&str] = &[
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Y",
        "N",
        "Yes",
        "NO",
        "On",
        "OFF",
        "true",
        "False",
        "~",
        "null",
        "Null",
        "NULL",
        "",
        "0777",
        "0o17",
        "0x1F",
        "0b1010",
        "1_000",
        "+12",
        "-3",
        "1:20",
        "190:20:30",
        "-1:20",
        "1e3",
        "1.5",
        ".5",
        ".inf",
        "-.Inf",
        ".NaN",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "=",
        "<<",
        " lead",
        "trail ",
        "a: b",
        "- x",
        "#x",
        "@x",
        "%x",
        "!x",
        "&x",
        "*x",
        "[x]",
        "{x}",
        "\"quoted\"",
        "'single'",
        "multi\nline",
        "tab\there",
    ];

    /// The document as PyYAML (a YAML 1.1 reader, like Go's yaml.v2) reads it, as JSON.
    pub(crate) fn read_by_pyyaml(document: &str) -> Value {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read()), default=repr))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 (the tests need it, with PyYAML: .ci/run installs both)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(document.as_bytes())
            .expect("write to python3");
        let output = child.wait_with_output().expect("python3 runs");
        assert!(
            output.status.success(),
            "PyYAML could not read (is PyYAML installed? `pip install pyyaml`):\n{document}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON from python3")
    }

    #[test]
    fn strings_a_yaml_1_1_reader_would_retype_are_written_quoted() {
        let document: BTreeMap<String, &str> = RETYPED_BY_YAML_1_1
            .iter()
            .enumerate()
            .map(|(index, text)| (format!("k{index:02}"), *text))
            .collect();
        let yaml = to_string(&document);
        let read = read_by_pyyaml(&yaml);
        for (key, text) in &document {
            assert_eq!(read[key], Value::String((*text).into()), "{key} in\n{yaml}");
        }
        // The library reads its own output back the same way (YAML 1.2).
        let again: BTreeMap<String, String> = from_str(&yaml).expect("reads back");
        for (key, text) in &document {
            assert_eq!(again[key], *text, "{key} in\n{yaml}");
        }
        // A plain string stays plain: quoting is not blanket.
        assert_eq!(to_string(&BTreeMap::from([("a", "gke")])), "a: gke\n");
    }

    #[test]
    fn errors_name_the_line_and_never_quote_the_document() {
        let error = from_str::<Value>("token: hum-SECRET\nbad: [1, 2\n").expect_err("unclosed");
        assert_eq!(error.line(), Some(2), "{error}");
        let text = error.to_string();
        assert!(!text.contains("hum-SECRET"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        let duplicate = from_str::<Value>("a: 1\na: 2\n").expect_err("duplicate key");
        assert!(
            !duplicate.to_string().contains("DuplicateKeyPolicy"),
            "{duplicate}"
        );
    }

    #[test]
    fn yaml_1_2_reading_keeps_yes_a_string_and_empty_a_null() {
        let read: Value =
            from_str("a: yes\nb: 0777\nc: ~\nd: on\ne: 1_000\nf: true\ng: 12\n").expect("valid");
        assert_eq!(read["a"], "yes");
        assert_eq!(read["b"], "0777");
        assert_eq!(read["c"], Value::Null);
        assert_eq!(read["d"], "on");
        assert_eq!(read["e"], "1_000");
        assert_eq!(read["f"], true);
        assert_eq!(read["g"], 12);
        assert_eq!(from_str::<Value>("").expect("empty"), Value::Null);
    }
}
