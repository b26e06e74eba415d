//! The go-plugin handshake, AutoMTLS, and exiting when the launching process is gone, checked
//! against the built binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Sandbox, Workdir, provider_bin};

const COOKIE: (&str, &str) = (
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
);

#[test]
fn started_by_hand_it_says_what_it_is_and_exits_1() {
    let output = Command::new(provider_bin())
        .env_remove(COOKIE.0)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "stdout must stay empty");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("This binary is a plugin"), "{stderr}");
}

#[test]
fn refuses_when_protocol_5_is_not_offered() {
    let output = Command::new(provider_bin())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("protocol 5"));
}

/// A self-signed certificate like the one Terraform generates, with its key.
fn client_identity() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (
        cert.pem(),
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// Accepts exactly the server certificate from the handshake line, as go-plugin's client does.
#[derive(Debug)]
struct PinnedServer(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

struct Launched {
    child: Child,
    socket: String,
    server_cert: Vec<u8>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn launch(client_pem: &str) -> Launched {
    let mut child = Command::new(provider_bin())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6,5")
        .env("PLUGIN_CLIENT_CERT", client_pem)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line {line:?}");
    assert_eq!(&fields[..3], &["1", "5", "unix"]);
    assert_eq!(fields[4], "grpc");
    assert!(
        !fields[5].ends_with('='),
        "certificate must be unpadded base64"
    );
    let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("base64 certificate");
    Launched {
        child,
        socket: fields[3].to_string(),
        server_cert,
    }
}

/// Connects with an optional client identity; returns the negotiated ALPN and whether the
/// server then talked HTTP/2 (sent its SETTINGS frame) rather than closing the connection.
async fn connect(
    launched: &Launched,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> (Option<Vec<u8>>, bool) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(
            launched.server_cert.clone(),
            provider,
        )));
    let mut config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let stream = tokio::net::UnixStream::connect(&launched.socket)
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = match connector.connect(name, stream).await {
        Ok(tls) => tls,
        Err(_) => return (None, false),
    };
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    if tls.write_all(preface).await.is_err() {
        return (alpn, false);
    }
    let mut header = [0u8; 9];
    let talked = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tls.read_exact(&mut header),
    )
    .await
    .is_ok_and(|r| r.is_ok())
        && header[3] == 0x04; // a SETTINGS frame
    (alpn, talked)
}

#[tokio::test]
async fn mutual_tls_accepts_only_terraforms_certificate() {
    let (pem, cert, key) = client_identity();
    let launched = launch(&pem);

    let (alpn, talked) = connect(&launched, Some((cert, key))).await;
    assert_eq!(
        alpn.as_deref(),
        Some(&b"h2"[..]),
        "ALPN h2 must be negotiated"
    );
    assert!(talked, "the announced client certificate must be accepted");

    let (_, other_cert, other_key) = client_identity();
    let (_, talked) = connect(&launched, Some((other_cert, other_key))).await;
    assert!(!talked, "another certificate must be refused");

    let (_, talked) = connect(&launched, None).await;
    assert!(!talked, "a client without a certificate must be refused");
}

/// `--debug` prints a `TF_REATTACH_PROVIDERS` value under both CLIs' addresses for the bare
/// source address, and the CLI under test, given only that (an empty CLI configuration, no
/// `dev_overrides`, no `init`), applies and destroys through the provider it names.
#[tokio::test(flavor = "multi_thread")]
async fn debug_mode_reattaches_the_cli() {
    let mut child = Command::new(provider_bin())
        .arg("--debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let mut reattach = None;
    for _ in 0..5 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        text.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            reattach = Some(rest.trim_end_matches('\'').to_string());
            break;
        }
    }
    let reattach = reattach.unwrap_or_else(|| panic!("no TF_REATTACH_PROVIDERS line:\n{text}"));
    let json: serde_json::Value = serde_json::from_str(&reattach).expect("reattach JSON");
    for address in [
        "registry.terraform.io/container-runner/humanitec",
        "registry.opentofu.org/container-runner/humanitec",
    ] {
        assert_eq!(json[address]["Addr"]["Network"], "unix", "{reattach}");
        assert_eq!(json[address]["Pid"], child.id(), "{reattach}");
    }

    let sandbox = Sandbox::start();
    let work = Workdir::new(&format!(
        "{}\nresource \"humanitec_runner_config\" \"dev\" {{\n  id = \"reattached\"\n  cluster {{\n    cluster_type = \"eks\"\n    name         = \"c\"\n    region       = \"eu-west-1\"\n  }}\n}}\n",
        sandbox.provider_block()
    ));
    let config = work.path().join("empty.tfrc");
    std::fs::write(&config, "").unwrap();
    let env = [
        ("TF_CLI_CONFIG_FILE", config.to_str().unwrap()),
        ("TF_REATTACH_PROVIDERS", reattach.as_str()),
    ];
    let apply = work
        .tf_env(
            &["apply", "-auto-approve", "-no-color", "-input=false"],
            &env,
        )
        .ok("apply through the reattached provider");
    assert!(
        !apply.stdout.contains("development overrides"),
        "{}",
        apply.stdout
    );
    assert!(sandbox.definition("reattached").await.is_some());
    work.tf_env(
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        &env,
    )
    .ok("destroy through the reattached provider");
    assert!(sandbox.definitions().await.is_empty());
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether process `pid` still runs (a zombie, which only waits for its reaper, does not).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A provider process started through a `sh` that exits when told to, as a `terraform` killed
/// without a Shutdown would. Kills the provider on drop if it still runs.
struct Orphanable {
    /// The provider's pid.
    pid: u32,
    /// The `sh`, waiting in `read` until its stdin closes.
    sh: Child,
}

impl Orphanable {
    /// Starts `sh -c '<provider> <args> & echo pid=$!; read line || :'` with Terraform's launch
    /// environment and waits for the provider's first output (`marker` in a line).
    fn start(args: &str, marker: &str) -> Self {
        let (pem, _, _) = client_identity();
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(format!("\"$0\" {args} & echo \"pid=$!\"; read line || :"))
            .arg(provider_bin())
            .env(COOKIE.0, COOKIE.1)
            .env("PLUGIN_PROTOCOL_VERSIONS", "6,5")
            .env("PLUGIN_CLIENT_CERT", pem)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(sh.stdout.take().unwrap());
        let (mut pid, mut started) = (None, false);
        // Why bounded: the pid line and the provider's first lines, in either order.
        for _ in 0..10 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(number) = line.trim().strip_prefix("pid=") {
                pid = Some(number.parse::<u32>().expect("pid"));
            }
            started |= line.contains(marker);
            if pid.is_some() && started {
                break;
            }
        }
        assert!(started, "the provider did not start");
        Self {
            pid: pid.expect("sh printed the provider's pid"),
            sh,
        }
    }

    /// Lets the `sh` exit, which leaves the provider without its parent.
    fn orphan(&mut self) {
        drop(self.sh.stdin.take());
        assert!(self.sh.wait().unwrap().success());
        // Why a check: the test means nothing if the provider died with the `sh`.
        assert!(running(self.pid), "the provider must outlive the sh itself");
    }

    /// Waits up to `limit` for the provider to exit; answers whether it did.
    fn exits_within(&self, limit: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if !running(self.pid) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        !running(self.pid)
    }
}

impl Drop for Orphanable {
    fn drop(&mut self) {
        drop(self.sh.stdin.take());
        let _ = self.sh.wait();
        // Why the command line check: kill only our own provider, never a process that reused
        // its pid.
        let ours = std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("terraform-provider"));
        if ours && running(self.pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

#[test]
fn exits_when_its_parent_is_gone() {
    let mut provider = Orphanable::start("", "|grpc|");
    provider.orphan();
    assert!(
        provider.exits_within(std::time::Duration::from_secs(5)),
        "the provider {} still runs after its parent exited",
        provider.pid
    );
}

#[test]
fn in_debug_mode_outlives_its_parent() {
    let mut provider = Orphanable::start("--debug", "TF_REATTACH_PROVIDERS=");
    provider.orphan();
    // Why 2.5 s: more than two of the provider's checks of its parent (one a second).
    assert!(
        !provider.exits_within(std::time::Duration::from_millis(2500)),
        "a provider served for a debugger stays until it is stopped"
    );
}
