//! The product's build script: links the provider binary at a fixed address.

fn main() {
    // Why a non-PIE provider binary: a position-independent executable is relocated by the
    // dynamic loader at every start, ~33k relative relocations (a 790 KB table read, and every
    // page of the 560 KB of vtables and string tables written, so private) before `main`; that
    // was about a sixth of the start's CPU and 1.3 MiB of its resident memory, and Terraform
    // starts the provider about four times per apply. Linked at a fixed address the pointers are
    // final in the file. The cost is that the executable's own image is not randomised (shared
    // libraries, stack and heap still are); it parses no untrusted input before Terraform's
    // pinned mutual TLS. Only on Linux with glibc (musl targets link static-pie themselves), only
    // for the provider binary.
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bin=terraform-provider-humanitec=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
