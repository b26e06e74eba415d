//! Removes known secret values from text before it reaches a log line or a diagnostic.
//!
//! The runner knows a run's secret inputs up front and its secret outputs at the end; every line
//! of a container's log, every Event message and every failure text passes through a
//! [`Redactor`] first.

use std::borrow::Cow;

use crate::text::MASK;

/// Why a minimum length: replacing one- or two-character values would mangle every line while
/// hiding nothing worth hiding; such values are no secret to begin with.
const MIN_LEN: usize = 3;

/// Replaces known secret values in text.
///
/// ```ignore
/// let redactor = Redactor::new(["hunter2"]);
/// assert_eq!(redactor.redact("password=hunter2"), "password=(sensitive value)");
/// ```
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// The values, longest first, so that a value containing another is replaced whole.
    values: Vec<String>,
}

impl Redactor {
    /// A redactor for these values. A multi-line value (a key, a file) is also redacted line by
    /// line, since logs carry it one line at a time.
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Self::default();
        redactor.add(values);
        redactor
    }

    /// Adds more values (a run's secret outputs, once known).
    pub(crate) fn add<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        for value in values {
            let whole = value.trim();
            let lines = value.lines().map(str::trim);
            for part in std::iter::once(whole).chain(lines) {
                if part.len() >= MIN_LEN && !self.values.iter().any(|v| v == part) {
                    self.values.push(part.to_string());
                }
            }
        }
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    }

    /// The text with every known value replaced by [`MASK`].
    pub(crate) fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = Cow::Owned(text.replace(value.as_str(), MASK));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_whole_values_lines_of_multi_line_values_and_longest_first() {
        let key = "-----BEGIN KEY-----\nAAAAsecretline\n-----END KEY-----\n";
        let redactor = Redactor::new(["hunter2", "hunter2-longer", key, "ab", ""]);
        let cases = [
            ("password=hunter2", "password=(sensitive value)"),
            ("x hunter2-longer y", "x (sensitive value) y"),
            ("line: AAAAsecretline", "line: (sensitive value)"),
            (
                "ab stays, too short to be a secret",
                "ab stays, too short to be a secret",
            ),
            ("nothing here", "nothing here"),
        ];
        for (input, want) in cases {
            assert_eq!(redactor.redact(input), want, "{input}");
        }
    }

    #[test]
    fn values_added_later_are_redacted_too() {
        let mut redactor = Redactor::new(["first"]);
        redactor.add(["second-output"]);
        assert_eq!(
            redactor.redact("first and second-output"),
            "(sensitive value) and (sensitive value)"
        );
    }
}
