//! `terraform-provider-humanitec`: the Terraform/OpenTofu provider binary. What a start runs
//! (the plugin, `--version`, a helper step in a run's pod, git's askpass) is chosen in
//! `humanitec_provider::main` (`src/command_line.rs`).

fn main() -> std::process::ExitCode {
    humanitec_provider::main()
}
