//! Generated protobuf and gRPC code for tfplugin5 and go-plugin, confined to this module.

#![allow(
    unreachable_pub,
    missing_docs,
    dead_code,
    clippy::all,
    clippy::pedantic
)]

/// Terraform's provider protocol, version 5.
pub(crate) mod tfplugin5 {
    tonic::include_proto!("tfplugin5");
}

/// go-plugin's controller, stdio and broker services.
pub(crate) mod plugin {
    tonic::include_proto!("plugin");
}
