//! AutoMTLS: the plugin side of go-plugin's mutual TLS.
//!
//! Terraform generates a self-signed client certificate per plugin launch and passes it in
//! `PLUGIN_CLIENT_CERT`. The plugin answers with its own self-signed certificate in the handshake
//! line; each side then trusts exactly the other's certificate. go-plugin's certificates are
//! `CA:TRUE` and used as end entities, which webpki refuses (`CaUsedAsEndEntity`), so instead of a
//! CA-based verifier the server pins the client certificate: a peer is accepted only if it presents
//! the very certificate Terraform announced and proves it holds its key (the handshake signature is
//! checked with aws-lc-rs, which, unlike ring, verifies Terraform's P-521 keys).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// `PLUGIN_CLIENT_CERT` did not hold a PEM certificate.
    #[error("PLUGIN_CLIENT_CERT does not hold a PEM certificate")]
    ClientCert(#[source] rustls::pki_types::pem::Error),
    /// The server certificate could not be generated.
    #[error("could not generate the plugin's TLS certificate")]
    Generate(#[source] rcgen::Error),
    /// rustls refused the configuration.
    #[error("could not build the TLS server configuration")]
    Config(#[source] rustls::Error),
}

/// A TLS server configuration together with the certificate to announce in the handshake.
pub(crate) struct PluginTls {
    /// The rustls configuration: ALPN `h2`, client certificate required and pinned.
    pub(crate) config: Arc<ServerConfig>,
    /// DER of the server certificate, which goes base64-encoded into the handshake line.
    pub(crate) server_cert_der: Vec<u8>,
}

/// Builds the server side of AutoMTLS for the client certificate Terraform sent (PEM).
pub(crate) fn server_config(client_cert_pem: &str) -> Result<PluginTls, TlsError> {
    let client_cert =
        CertificateDer::from_pem_slice(client_cert_pem.as_bytes()).map_err(TlsError::ClientCert)?;
    let (server_cert, server_key) = generate_server_certificate()?;
    let provider = Arc::new(chacha20_first(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = PinnedClientCert {
        expected: client_cert.into_owned(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![server_cert.clone()], server_key)
        .map_err(TlsError::Config)?;
    // Why: grpc-go ≥ 1.67 (Terraform ≥ 1.12) refuses a TLS server that does not negotiate h2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Why the server's order: see `chacha20_first`.
    config.ignore_client_order = true;
    Ok(PluginTls {
        config: Arc::new(config),
        server_cert_der: server_cert.to_vec(),
    })
}

/// The provider's cipher suites with ChaCha20-Poly1305 first, the others in their order after it.
///
/// Why: Terraform (Go) offers AES-GCM first on hardware with AES instructions, and aws-lc's
/// AES-GCM for such hardware is two 330 KB unrolled AVX-512 functions; encrypting the first
/// record maps about 400 KiB of them into the provider's memory. ChaCha20-Poly1305 is a TLS 1.3
/// and TLS 1.2 suite of the same strength that every Go client offers, and its code is 25 KB. On
/// a unix socket with messages of a few KB its lower throughput does not show. The AES suites
/// stay, for a client that offers nothing else.
fn chacha20_first(mut provider: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        TLS13_CHACHA20_POLY1305_SHA256,
    };
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            TLS13_CHACHA20_POLY1305_SHA256
                | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        )
    });
    provider
}

/// Generates the plugin's self-signed certificate the way go-plugin does.
///
/// Terraform adds the announced certificate to its root pool and verifies the server name
/// `localhost`, so the certificate must carry `DNS:localhost`, be usable as its own CA and allow
/// server authentication.
///
/// Why Ed25519: key generation and signing take well under a millisecond, and its code shares
/// aws-lc's curve25519 arithmetic with the X25519 key exchange Terraform chooses, so no P-256
/// code or precomputed tables are mapped in: about 0.4 MiB less resident per launch than with
/// P-256 (measured over `terraform providers schema` with AutoMTLS). Every Go client since 1.13
/// verifies Ed25519 certificates in TLS 1.3 and 1.2.
fn generate_server_certificate()
-> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).map_err(TlsError::Generate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "HashiCorp");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(TlsError::Generate)?;
    let cert = params.self_signed(&key).map_err(TlsError::Generate)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// A client-certificate verifier that accepts exactly one certificate.
#[derive(Debug)]
struct PinnedClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, ServerConnection};

    /// A client that trusts any server: the tests check the server's choices, not the client's.
    #[derive(Debug)]
    struct AnyServer(WebPkiSupportedAlgorithms);

    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }

    /// Runs a mutual TLS handshake in memory between the plugin's server configuration and a
    /// client offering `suites` (in its order) with its own certificate, and returns the suite
    /// the server chose.
    fn negotiate(
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: Vec<rustls::SupportedCipherSuite>,
    ) -> rustls::CipherSuite {
        let key = rcgen::KeyPair::generate().unwrap();
        let client_cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let plugin = server_config(&client_cert.pem()).unwrap();
        let mut server = ServerConnection::new(plugin.config).unwrap();
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: suites,
            ..rustls::crypto::aws_lc_rs::default_provider()
        };
        let algorithms = provider.signature_verification_algorithms;
        let client_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(algorithms)))
            .with_client_auth_cert(vec![client_cert.der().clone()], client_key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(Arc::new(config), name).unwrap();
        while client.is_handshaking() || server.is_handshaking() {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut bytes.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        server.negotiated_cipher_suite().unwrap().suite()
    }

    fn suites(names: &[rustls::CipherSuite]) -> Vec<rustls::SupportedCipherSuite> {
        let all = rustls::crypto::aws_lc_rs::default_provider().cipher_suites;
        names
            .iter()
            .map(|name| *all.iter().find(|s| s.suite() == *name).unwrap())
            .collect()
    }

    #[test]
    fn chacha20_is_chosen_over_a_client_that_prefers_aes() {
        use rustls::CipherSuite::*;
        // Go's order on hardware with AES instructions.
        let tls13 = suites(&[
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
        ]);
        assert_eq!(
            negotiate(&[&rustls::version::TLS13], tls13),
            TLS13_CHACHA20_POLY1305_SHA256
        );
        let tls12 = suites(&[
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ]);
        assert_eq!(
            negotiate(&[&rustls::version::TLS12], tls12),
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        );
    }

    #[test]
    fn a_client_without_chacha20_still_gets_aes() {
        use rustls::CipherSuite::*;
        let aes_only = suites(&[TLS13_AES_256_GCM_SHA384, TLS13_AES_128_GCM_SHA256]);
        assert_eq!(
            negotiate(&[&rustls::version::TLS13], aes_only),
            TLS13_AES_256_GCM_SHA384
        );
    }
}
