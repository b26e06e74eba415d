//! `terraform-provider-humanitec`: the Terraform/OpenTofu provider binary.
//!
//! Terraform starts it with its plugin handshake environment; a person may start it with
//! `--version` (print the provider version and exit) or `--debug` (reattach mode).

use std::process::ExitCode;

/// What `--version` prints: the crate version is the provider version, the one in the release
/// archive names and in `.terraform.lock.hcl`.
const VERSION_LINE: &str = concat!("terraform-provider-humanitec ", env!("CARGO_PKG_VERSION"));

fn main() -> ExitCode {
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
