//! What one start of the binary runs, chosen in one place from its arguments and one
//! environment variable, read once: the provider plugin (Terraform starts it with its handshake
//! environment; a person may add `--debug` for reattach mode), the version line (`--version`),
//! a helper step in a direct-mode run's pod (`helper prepare|collect`, from the Job's
//! containers), or git's askpass (git starts the binary with its prompt while `prepare` checks
//! out a source).
//!
//! Why here and this small: the helper steps must not go through the plugin's start, and the
//! plugin's start must not pay for them; stdout belongs to the plugin's handshake, so nothing
//! here writes there except the version line a person asked for.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;
use std::sync::Arc;

use crate::runner::contract::{HELPER_ARGUMENT, HELPER_ASKPASS_ENV, HelperStep};

/// What `--version` prints: the crate version is the provider version, the one in the release
/// archive names and in `.terraform.lock.hcl`.
const VERSION_LINE: &str = concat!("terraform-provider-humanitec ", env!("CARGO_PKG_VERSION"));

/// What `helper` with a step it does not know prints on stderr.
const HELPER_USAGE: &str = "usage: terraform-provider-humanitec helper prepare|collect";

/// The programs one binary holds.
#[derive(Debug, PartialEq, Eq)]
enum Program {
    /// The provider plugin; with `debug`, in reattach mode.
    Plugin {
        /// `--debug` was given.
        debug: bool,
    },
    /// Print [`VERSION_LINE`] and exit.
    Version,
    /// A helper step in a run's pod.
    Helper(HelperStep),
    /// `helper` with no step, or one it does not know: print [`HELPER_USAGE`] and exit 2.
    HelperUsage,
    /// Answer git's credential prompt.
    Askpass {
        /// git's prompt, its only argument.
        prompt: OsString,
    },
}

impl Program {
    /// The program for the arguments after the binary's name, and whether
    /// [`HELPER_ASKPASS_ENV`] is set.
    fn chosen(args: &[OsString], askpass_env: bool) -> Self {
        let first = args.first().map(OsString::as_os_str);
        if first == Some(OsStr::new(HELPER_ARGUMENT)) {
            let step = args.get(1).map(OsString::as_os_str).unwrap_or_default();
            return match HelperStep::named(step) {
                Some(step) => Program::Helper(step),
                // Why only with the variable: a person running `helper askpass` by hand inside
                // a pod gets nothing printed; only git, started by `prepare`, has it set.
                None if step == "askpass" && askpass_env => Program::Askpass {
                    prompt: args.get(2).cloned().unwrap_or_default(),
                },
                None => Program::HelperUsage,
            };
        }
        if askpass_env {
            // git runs its askpass program with the prompt as the only argument.
            return Program::Askpass {
                prompt: first.map(OsStr::to_os_string).unwrap_or_default(),
            };
        }
        let given = |long: &str, short: &str| args.iter().any(|a| a == long || a == short);
        // Why before the plugin: `--version` must work without Terraform's handshake
        // environment, e.g. to check which build a mirror holds.
        if given("--version", "-version") {
            return Program::Version;
        }
        Program::Plugin {
            debug: given("--debug", "-debug"),
        }
    }
}

/// The whole of the `terraform-provider-humanitec` binary: reads its arguments and
/// [`HELPER_ASKPASS_ENV`] once and runs the program they choose.
///
/// Terraform launches the binary with its handshake environment and gets the plugin. Started
/// by hand with `--debug`, the plugin serves in reattach mode and prints the
/// `TF_REATTACH_PROVIDERS` value to use.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let askpass_env = std::env::var_os(HELPER_ASKPASS_ENV).is_some();
    match Program::chosen(&args, askpass_env) {
        Program::Plugin { debug } => terraform_plugin::plugin::run(
            &crate::provider::IDENTITY,
            || Arc::new(crate::provider::HumanitecProvider::new()),
            debug,
        ),
        Program::Version => {
            #[allow(clippy::print_stdout)] // a person asked for it on the terminal
            {
                println!("{VERSION_LINE}");
            }
            ExitCode::SUCCESS
        }
        Program::Helper(step) => crate::runner::helper::run(step),
        Program::HelperUsage => {
            eprintln!("{HELPER_USAGE}");
            ExitCode::from(2)
        }
        Program::Askpass { prompt } => crate::runner::helper::askpass(&prompt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(args: &[&str], askpass_env: bool) -> Program {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Program::chosen(&args, askpass_env)
    }

    #[test]
    fn terraform_gets_the_plugin_and_a_person_the_version_or_reattach_mode() {
        assert_eq!(chosen(&[], false), Program::Plugin { debug: false });
        assert_eq!(chosen(&["--debug"], false), Program::Plugin { debug: true });
        assert_eq!(chosen(&["-debug"], false), Program::Plugin { debug: true });
        assert_eq!(chosen(&["--version"], false), Program::Version);
        assert_eq!(chosen(&["--debug", "-version"], false), Program::Version);
    }

    #[test]
    fn the_jobs_helper_containers_get_their_steps() {
        for step in [HelperStep::Prepare, HelperStep::Collect] {
            let command = step.command();
            assert_eq!(chosen(&command[1..], false), Program::Helper(step));
            assert_eq!(chosen(&command[1..], true), Program::Helper(step));
        }
        assert_eq!(chosen(&["helper"], false), Program::HelperUsage);
        assert_eq!(chosen(&["helper", "nope"], false), Program::HelperUsage);
        assert_eq!(
            chosen(&["helper", "--version"], false),
            Program::HelperUsage
        );
    }

    #[test]
    fn git_gets_askpass_only_with_the_variable() {
        let prompt = "Password for 'https://me@example.com': ";
        let askpass = Program::Askpass {
            prompt: prompt.into(),
        };
        assert_eq!(chosen(&[prompt], true), askpass);
        assert_eq!(chosen(&["helper", "askpass", prompt], true), askpass);
        assert_eq!(
            chosen(&[], true),
            Program::Askpass {
                prompt: OsString::new()
            }
        );
        // A prompt that looks like a flag is still git's prompt.
        assert_eq!(
            chosen(&["--version"], true),
            Program::Askpass {
                prompt: "--version".into()
            }
        );
        assert_eq!(
            chosen(&["helper", "askpass", prompt], false),
            Program::HelperUsage
        );
        assert_eq!(chosen(&[prompt], false), Program::Plugin { debug: false });
    }
}
