//! Compiles the vendored tfplugin5 and go-plugin protos into tonic server stubs.
//!
//! protox is a pure-Rust protobuf compiler, so no `protoc` is needed on any machine.
//! Only servers are generated; with default stubs on, every RPC the provider does not
//! implement answers `UNIMPLEMENTED`, which Terraform accepts for the optional ones.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tfplugin5.proto",
        "proto/grpc_controller.proto",
        "proto/grpc_stdio.proto",
        "proto/grpc_broker.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
