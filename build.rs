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
    // together, it is a few hundred pages. The list is the functions a launch ran under
    // callgrind (`scripts/order-startup-code.py`); a function not in the binary is skipped, so a
    // stale list costs memory, never a build. Only where LLD links: rustc's default linker on
    // x86_64 Linux with glibc since Rust 1.90, unless RUSTFLAGS choose another (GNU ld has no
    // `--symbol-ordering-file`; a linker chosen in a Cargo config file is not visible here, and
    // must then be LLD or mold, or RUSTFLAGS say `-Clinker-features=-lld`).
    let lld_is_the_linker = target("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && target("CARGO_CFG_TARGET_OS") == "linux"
        && target("CARGO_CFG_TARGET_ENV") == "gnu"
        && rustc_minor_version() >= Some(90)
        && !target("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    let order = std::path::Path::new(&target("CARGO_MANIFEST_DIR")).join("link/startup-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if lld_is_the_linker && target("PROFILE") == "release" && order.exists() {
        for arg in [
            format!("--symbol-ordering-file={}", order.display()),
            "--no-warn-symbol-ordering".to_string(),
        ] {
            println!("cargo:rustc-link-arg-bin=terraform-provider-humanitec=-Wl,{arg}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The minor version of the rustc building this crate (`rustc 1.95.0 (…)` → 95).
fn rustc_minor_version() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
