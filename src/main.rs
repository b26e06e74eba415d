//! `terraform-provider-humanitec`: the Terraform/OpenTofu provider binary.
//!
//! Terraform starts it with its plugin handshake environment; a person may start it with
//! `--version` (print the provider version and exit) or `--debug` (reattach mode). In a
//! direct-mode run's pod, the helper image starts it as `helper prepare` or `helper collect`,
//! and git starts it as its askpass program.

use std::process::ExitCode;

/// What `--version` prints: the crate version is the provider version, the one in the release
/// archive names and in `.terraform.lock.hcl`.
const VERSION_LINE: &str = concat!("terraform-provider-humanitec ", env!("CARGO_PKG_VERSION"));

fn main() -> ExitCode {
    // Why first, and only a look at the arguments and one variable: the helper steps must not
    // go through the plugin's start, and the plugin's start must not pay for them.
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    if first.as_deref() == Some(std::ffi::OsStr::new("helper")) {
        return humanitec_provider::helper(args.collect());
    }
    if std::env::var_os(humanitec_provider::HELPER_ASKPASS_ENV).is_some() {
        // git runs its askpass program with the prompt as the only argument.
        return humanitec_provider::helper(["askpass".into()].into_iter().chain(first).collect());
    }
    // Why before anything else: `--version` must work without Terraform's handshake
    // environment, e.g. to check which build a mirror holds.
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-version")
    {
        #[allow(clippy::print_stdout)] // a person asked for it on the terminal
        {
            println!("{VERSION_LINE}");
        }
        return ExitCode::SUCCESS;
    }
    humanitec_provider::main()
}
