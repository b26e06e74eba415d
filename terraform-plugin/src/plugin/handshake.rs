//! The go-plugin handshake: the environment Terraform launches a plugin with, and the one line
//! the plugin answers on stdout.
//!
//! Terraform sets a magic cookie (so a plugin started by hand can say what it is), the plugin
//! protocol versions it speaks, and, with AutoMTLS, its client certificate. The plugin prints
//! `1|5|unix|<socket>|grpc|<base64 DER certificate>` and from then on talks gRPC only.

use std::path::Path;

use base64::Engine;

/// The environment variable holding go-plugin's magic cookie.
pub(crate) const COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The cookie value Terraform sets for providers.
pub(crate) const COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The only plugin protocol version this provider speaks.
pub(crate) const PROTOCOL_VERSION: u32 = 5;
/// go-plugin's core protocol version.
const CORE_PROTOCOL_VERSION: u32 = 1;

/// What Terraform asked for when it launched the plugin.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    /// Terraform's client certificate (PEM), present when AutoMTLS is on.
    pub(crate) client_cert: Option<String>,
}

/// Why the plugin cannot serve the process that launched it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// Started by hand rather than by Terraform.
    #[error(
        "This binary is a plugin. These are not meant to be executed directly.\n\
         Please execute the program that consumes these plugins, which will\n\
         load any plugins automatically. (To serve it for a debugger, run it with --debug.)"
    )]
    NotAPluginLaunch,
    /// Terraform offered no protocol version this provider speaks.
    #[error(
        "This provider speaks plugin protocol 5, but Terraform offered {offered:?}; \
         use Terraform 0.12 or later, or OpenTofu"
    )]
    NoCommonProtocol {
        /// The value of `PLUGIN_PROTOCOL_VERSIONS`.
        offered: String,
    },
}

/// Checks the launch environment; `env` looks a variable up.
pub(crate) fn check(env: impl Fn(&str) -> Option<String>) -> Result<Launch, HandshakeError> {
    if env(COOKIE_KEY).as_deref() != Some(COOKIE_VALUE) {
        return Err(HandshakeError::NotAPluginLaunch);
    }
    // Why accept a missing list: go-plugin clients older than protocol negotiation send none and
    // expect the plugin's default version.
    if let Some(offered) = env("PLUGIN_PROTOCOL_VERSIONS").filter(|s| !s.trim().is_empty()) {
        let speaks_5 = offered
            .split(',')
            .any(|v| v.trim().parse::<u32>() == Ok(PROTOCOL_VERSION));
        if !speaks_5 {
            return Err(HandshakeError::NoCommonProtocol { offered });
        }
    }
    let client_cert = env("PLUGIN_CLIENT_CERT").filter(|s| !s.trim().is_empty());
    Ok(Launch { client_cert })
}

/// The handshake line (with its newline) for a unix socket and an optional server certificate.
///
/// The certificate is standard base64 without padding, as go-plugin expects; without TLS the
/// field is empty.
pub(crate) fn line(socket: &Path, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!(
        "{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|unix|{}|grpc|{cert}\n",
        socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn cookie_is_required() {
        assert_eq!(check(env(&[])), Err(HandshakeError::NotAPluginLaunch));
        assert_eq!(
            check(env(&[(COOKIE_KEY, "wrong")])),
            Err(HandshakeError::NotAPluginLaunch)
        );
    }

    #[test]
    fn protocol_5_is_negotiated_in_any_order() {
        for offered in ["5", "6,5", "5,6", " 6 , 5 ", ""] {
            let launch = check(env(&[
                (COOKIE_KEY, COOKIE_VALUE),
                ("PLUGIN_PROTOCOL_VERSIONS", offered),
            ]));
            assert_eq!(launch, Ok(Launch { client_cert: None }), "{offered:?}");
        }
        let refused = check(env(&[
            (COOKIE_KEY, COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "6"),
        ]));
        assert!(matches!(
            refused,
            Err(HandshakeError::NoCommonProtocol { .. })
        ));
    }

    #[test]
    fn client_certificate_is_picked_up() {
        let launch = check(env(&[
            (COOKIE_KEY, COOKIE_VALUE),
            ("PLUGIN_CLIENT_CERT", "PEM"),
        ]));
        assert_eq!(launch.unwrap().client_cert.as_deref(), Some("PEM"));
    }

    #[test]
    fn line_has_six_fields_and_unpadded_base64() {
        let with_cert = line(Path::new("/tmp/p/plugin.sock"), Some(&[1, 2, 3, 4]));
        assert_eq!(with_cert, "1|5|unix|/tmp/p/plugin.sock|grpc|AQIDBA\n");
        let plain = line(Path::new("/tmp/p/plugin.sock"), None);
        assert_eq!(plain, "1|5|unix|/tmp/p/plugin.sock|grpc|\n");
    }
}
