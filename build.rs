//! The product's build script: links the provider binary at a fixed address, with the code a
//! launch runs placed together.

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
    // Why an order of the functions: what a launch runs (the handshake, AutoMTLS, the schema)
    // is about 1 MB of the binary's 12 MB of code, spread among code it never runs; each page
    // fault maps its neighbours too, so a launch had 5.4 MB of code resident. Placed first and
    // together, in the order they first run, it is a few hundred pages. The list is the
    // functions a launch ran under callgrind (`scripts/order-startup-code.py`); a function not
    // in the binary is skipped, so a stale list costs memory, never a build. Only where LLD is
    // rustc's default linker (x86_64 Linux with glibc, since Rust 1.90): GNU ld has no
    // `--symbol-ordering-file`.
    if target("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && target("CARGO_CFG_TARGET_OS") == "linux"
        && target("CARGO_CFG_TARGET_ENV") == "gnu"
        && target("PROFILE") == "release"
    {
        let order =
            std::path::Path::new(&target("CARGO_MANIFEST_DIR")).join("link/startup-order.txt");
        println!("cargo:rerun-if-changed={}", order.display());
        if order.exists() {
            println!(
                "cargo:rustc-link-arg-bin=terraform-provider-humanitec=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            println!(
                "cargo:rustc-link-arg-bin=terraform-provider-humanitec=-Wl,--no-warn-symbol-ordering"
            );
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
