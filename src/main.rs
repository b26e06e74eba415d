//! `terraform-provider-humanitec`: the Terraform/OpenTofu provider binary.

fn main() -> std::process::ExitCode {
    humanitec_provider::main()
}
