//! git's askpass: `prepare` runs git with this binary as its `GIT_ASKPASS` (and
//! `HUMANITEC_HELPER_ASKPASS` set); git starts it with its prompt, and it answers on stdout
//! with the source's user name or password, read from the manifest and the inputs. Why
//! askpass: credentials on git's command line or in the URL would show in the process list and
//! in git's messages.

use std::io::{self, Write};
use std::process::ExitCode;

use super::{HelperError, Layout, read_input, read_manifest};

/// What git's askpass prompt asks for.
#[derive(Debug, PartialEq, Eq)]
enum Prompt {
    /// `Username for 'https://…': `
    Username,
    /// `Password for 'https://…': `
    Password,
}

/// Reads git's prompt.
fn prompt_kind(prompt: &str) -> Option<Prompt> {
    if prompt.starts_with("Username") {
        Some(Prompt::Username)
    } else if prompt.starts_with("Password") {
        Some(Prompt::Password)
    } else {
        None
    }
}

/// The answer to git's prompt, from the manifest's source and the inputs.
fn askpass_answer(layout: &Layout, prompt: &str) -> Result<Vec<u8>, HelperError> {
    let kind = prompt_kind(prompt).ok_or_else(|| HelperError::UnknownPrompt(prompt.to_string()))?;
    let manifest = read_manifest(&layout.inputs)?;
    let source = manifest.source.as_ref();
    match kind {
        Prompt::Username => source
            .and_then(|s| s.username.clone())
            .map(String::into_bytes)
            .ok_or(HelperError::NoCredential("user name")),
        Prompt::Password => {
            let key = source
                .and_then(|s| s.password_key.as_deref())
                .ok_or(HelperError::NoCredential("password"))?;
            read_input(&layout.inputs, key)
        }
    }
}

/// Answers git's credential prompt on stdout (git runs this binary as `GIT_ASKPASS`).
pub(super) fn answer(layout: &Layout, prompt: &str) -> ExitCode {
    let answer = match askpass_answer(layout, prompt) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("helper askpass: {}", crate::text::error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    // Why stdout: it is how askpass answers git, the one place this binary writes a secret
    // there. git reads up to the first line break.
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(&answer)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("helper askpass: cannot answer git: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::runner::contract::MANIFEST_KEY;

    #[test]
    fn askpass_prompts_are_told_apart() {
        assert_eq!(
            prompt_kind("Username for 'https://example.com': "),
            Some(Prompt::Username)
        );
        assert_eq!(
            prompt_kind("Password for 'https://me@example.com': "),
            Some(Prompt::Password)
        );
        assert_eq!(prompt_kind("Are you sure (yes/no)? "), None);
    }

    #[test]
    fn askpass_answers_from_the_manifest_and_the_inputs() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let layout = Layout {
            inputs: inputs.path().to_path_buf(),
            results: inputs.path().to_path_buf(),
        };
        fs::write(
            inputs.path().join(MANIFEST_KEY),
            r#"{"shared_directory": "/w", "scripts_directory": "/w",
                "source": {"url": "https://example.com/r.git", "username": "me",
                           "password_key": "source.password"}}"#,
        )
        .expect("manifest");
        fs::write(inputs.path().join("source.password"), "t0ken").expect("password");
        let answer = |p| askpass_answer(&layout, p).map(|a| String::from_utf8(a).expect("utf-8"));
        assert_eq!(
            answer("Username for 'https://example.com': ").expect("user"),
            "me"
        );
        assert_eq!(
            answer("Password for 'https://me@example.com': ").expect("pw"),
            "t0ken"
        );
        let unknown = answer("Passphrase? ").expect_err("unknown prompt");
        assert!(matches!(unknown, HelperError::UnknownPrompt(_)));

        fs::write(
            inputs.path().join(MANIFEST_KEY),
            r#"{"shared_directory": "/w", "scripts_directory": "/w",
                "source": {"url": "https://example.com/r.git"}}"#,
        )
        .expect("manifest");
        let missing = answer("Password for 'https://example.com': ").expect_err("no password");
        assert!(matches!(missing, HelperError::NoCredential("password")));
        let missing = answer("Username for 'https://example.com': ").expect_err("no user");
        assert!(matches!(missing, HelperError::NoCredential("user name")));
    }
}
