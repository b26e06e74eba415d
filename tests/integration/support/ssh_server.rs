//! A real OpenSSH server for tests (Debian's `openssh-server`): `sshd` on an address of this
//! machine (where a cluster's pods reach it) with a host key of its own, accepting one client
//! key for the user the tests run as, so that git fetches over `ssh://` run `git-upload-pack` on
//! this machine. It also has a second host key that is not its own, for the tests of pinned
//! host keys.
//!
//! Dropping the handle stops the server (the process it started, by its id).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's openssh-server puts the server.
const SSHD: &str = "/usr/sbin/sshd";

/// A running `sshd`.
pub(crate) struct SshServer {
    child: Child,
    /// The address it listens on.
    host: String,
    port: u16,
    user: String,
    dir: tempfile::TempDir,
}

impl SshServer {
    /// Starts `sshd` on a free port of `host`, an address of this machine (where a cluster's
    /// pods reach it); fails (never skips) without openssh-server.
    pub(crate) fn start_on(host: &str) -> Self {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} is missing: apt-get install -y openssh-server openssh-client \
             (scripts/build-test-images.sh installs them)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["host_key", "client_key", "other_host_key"] {
            keygen(&dir.path().join(name));
        }
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let user = whoami();
        let port = free_port(host);
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress {host}\nPort {port}\nHostKey {dir}/host_key\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nPidFile {dir}/sshd.pid\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nAllowUsers {user}\n\
                 LogLevel VERBOSE\n",
                dir = dir.path().display()
            ),
        )
        .expect("sshd_config");
        // Why: sshd started by root separates privileges into this directory, which the
        // package's service would create at boot.
        if whoami() == "root" {
            std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        }
        let log = std::fs::File::create(dir.path().join("sshd.log")).expect("sshd.log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let server = SshServer {
            child,
            host: host.to_string(),
            port,
            user,
            dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The clone URL of the repository at `path` (absolute).
    pub(crate) fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@{}:{}{}",
            self.user,
            self.host,
            self.port,
            path.display()
        )
    }

    /// The known_hosts name of the server: `[<host>]:<port>`.
    pub(crate) fn host(&self) -> String {
        format!("[{}]:{}", self.host, self.port)
    }

    /// A known_hosts line with the server's own host key.
    pub(crate) fn known_hosts(&self) -> String {
        self.known_hosts_with("host_key.pub")
    }

    /// A known_hosts line that pins another key for the server.
    pub(crate) fn wrong_known_hosts(&self) -> String {
        self.known_hosts_with("other_host_key.pub")
    }

    fn known_hosts_with(&self, file: &str) -> String {
        let key = std::fs::read_to_string(self.dir.path().join(file)).expect("a public key");
        let mut fields = key.split_whitespace();
        let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        format!("{} {kind} {key}\n", self.host())
    }

    /// The private key the server accepts (OpenSSH format).
    pub(crate) fn client_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("client_key")).expect("the client key")
    }

    /// What sshd logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many clients authenticated with the key.
    pub(crate) fn logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generates an ed25519 key pair without a passphrase at `path` and `path.pub`.
fn keygen(path: &PathBuf) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen (apt-get install -y openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The name of the user the tests run as.
fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A port of `host` that was free a moment ago.
fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
