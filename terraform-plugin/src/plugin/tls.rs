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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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
    Ok(PluginTls {
        config: Arc::new(config),
        server_cert_der: server_cert.to_vec(),
    })
}

/// Generates the plugin's self-signed certificate the way go-plugin does.
///
/// Terraform adds the announced certificate to its root pool and verifies the server name
/// `localhost`, so the certificate must carry `DNS:localhost`, be usable as its own CA and allow
/// server authentication. P-256 keeps key generation well under a millisecond.
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
    let key = KeyPair::generate().map_err(TlsError::Generate)?;
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
