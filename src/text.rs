//! Small text helpers every layer uses to word its messages. A leaf: it imports nothing of the
//! crate, so any module may use it without pointing up.

/// The text with its first letter in upper case, for an error message that starts a sentence.
pub(crate) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// An error's message followed by each of its sources, joined with ": ".
///
/// Errors in this crate display one level each and chain their causes with `#[source]`; this is
/// how they become one sentence for a diagnostic or a log line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
