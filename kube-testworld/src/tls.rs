//! The world's certificate authority and the API server's serving certificate, generated per start
//! with `rcgen` (P-256), and the rustls configuration that serves them (HTTP/1.1 only).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why the TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// rcgen failed.
    #[error("could not generate a certificate")]
    Generate(#[source] rcgen::Error),
    /// rustls refused the configuration.
    #[error("could not build the TLS server configuration")]
    Config(#[source] rustls::Error),
}

/// A CA and a server configuration for a certificate it signed.
pub(crate) struct Pki {
    /// The CA certificate in PEM, for the kubeconfig and `kube-root-ca.crt`.
    pub(crate) ca_pem: String,
    /// The rustls server configuration.
    pub(crate) server: Arc<ServerConfig>,
}

/// Generates a CA and a serving certificate for `127.0.0.1` and `localhost`.
pub(crate) fn generate() -> Result<Pki, TlsError> {
    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-testworld-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::Generate)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .map_err(TlsError::Generate)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&server_key, &issuer)
        .map_err(TlsError::Generate)?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca_cert.der().clone()];
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(TlsError::Config)?;
    // Why: only HTTP/1.1 is served; without ALPN h2, Go and Rust clients stay on HTTP/1.1,
    // where watch and log streams are plain chunked bodies.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Pki {
        ca_pem,
        server: Arc::new(server),
    })
}
