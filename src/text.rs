//! Small text helpers every layer uses to word its messages, and the one mask of a secret. A
//! leaf: it imports nothing of the crate, so any module may use it without pointing up.

/// How a secret is shown wherever its value must not be: a `Debug` form, a log line, an Event
/// message, an error. The words Terraform's own plans use, so that a user meets one mask.
///
/// Why a second constant beside `terraform_plugin::framework::model::MASK` (the `Sensitive`
/// type's `Debug`): the framework crate cannot name this crate, and the runner, which has no
/// Terraform types, must not name the framework; a test keeps the two equal.
pub(crate) const MASK: &str = "(sensitive value)";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_the_frameworks_mask() {
        assert_eq!(MASK, terraform_plugin::framework::model::MASK);
        let sensitive = terraform_plugin::framework::model::Sensitive("hunter2".to_string());
        assert_eq!(format!("{sensitive:?}"), MASK);
    }
}
