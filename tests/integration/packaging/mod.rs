//! The provider as a user gets it: the plugin handshake and AutoMTLS, installing from release
//! files through a mirror, and the docs generated from the schema.

mod docs;
mod install;
mod plugin;
