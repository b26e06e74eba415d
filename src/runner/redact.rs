//! Removes secret values from text before it reaches a log line or a diagnostic: the one place
//! where text is redacted, on the provider's side and in the helper steps in the pod alike.
//!
//! The runner knows a run's secret inputs up front and its secret outputs at the end; every line
//! of a container's log, every Event message and every failure text passes through a
//! [`Redactor`] first. The helper's git messages pass through one too, which also hides the user
//! info of URLs. Whatever is hidden is replaced by the one mask, [`MASK`].

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
    /// Whether the user info of URLs (`scheme://user:password@host`) is hidden too.
    url_user_info: bool,
}

impl Redactor {
    /// A redactor for these values. A multi-line value (a key, a file) is also redacted line by
    /// line, since logs carry it one line at a time.
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Self::default();
        redactor.add(values);
        redactor
    }

    /// The redactor that also hides the user info of every URL (`scheme://user:password@host`):
    /// for git's messages, where a URL may carry a token that was never given as a secret.
    pub(crate) fn with_url_user_info(mut self) -> Self {
        self.url_user_info = true;
        self
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

    /// The text with every known value (and, if asked, every URL's user info) replaced by
    /// [`MASK`].
    pub(crate) fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        // Why the URLs first: a known value inside a URL's user info would otherwise leave the
        // rest of the user info (the user name) in view.
        let mut text = if self.url_user_info && text.contains("://") {
            Cow::Owned(without_url_user_info(text))
        } else {
            Cow::Borrowed(text)
        };
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = Cow::Owned(text.replace(value.as_str(), MASK));
            }
        }
        text
    }
}

/// `text` with the user info of every URL replaced by [`MASK`].
fn without_url_user_info(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c == '/' || c.is_whitespace() || "'\"<>".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(sign) => {
                out.push_str(MASK);
                out.push_str(&authority[sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
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

    #[test]
    fn url_user_info_is_redacted_when_asked() {
        let urls = Redactor::default().with_url_user_info();
        assert_eq!(
            urls.redact("fatal: unable to access 'https://me:t0ken@example.com/r.git/': 403"),
            "fatal: unable to access 'https://(sensitive value)@example.com/r.git/': 403"
        );
        assert_eq!(
            urls.redact("git remote add origin https://x:y@h:8443/r and ssh://git@h/r"),
            "git remote add origin https://(sensitive value)@h:8443/r and ssh://(sensitive value)@h/r"
        );
        let clean = "From https://example.com/r\n * branch main -> FETCH_HEAD\ngit@host:r.git";
        assert_eq!(urls.redact(clean), clean);
        assert_eq!(urls.redact("https://a:b@c"), "https://(sensitive value)@c");
        // Known values go too; without asking, URLs stay as they are.
        let both = Redactor::new(["t0ken-of-mine"]).with_url_user_info();
        assert_eq!(
            both.redact("https://me:t0ken-of-mine@h/r said t0ken-of-mine"),
            "https://(sensitive value)@h/r said (sensitive value)"
        );
        let values_only = Redactor::new(["t0ken-of-mine"]);
        assert_eq!(
            values_only.redact("https://me:other@h/r"),
            "https://me:other@h/r"
        );
    }
}
