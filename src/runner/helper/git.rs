//! git for `prepare`'s checkout: run in the checkout directory with the environment that
//! supplies the credentials (askpass for HTTPS, a private key file and known hosts for SSH, a
//! CA bundle), with every line it prints redacted (`crate::runner::redact`) of the source's
//! credentials and of URL user info, and its failures explained (a host key that is not the
//! known one names the `ssh-keyscan` that shows it).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::prepare::{create_dir_all, place_file};
use super::{HelperError, read_input};
use crate::runner::contract::{HELPER_ASKPASS_ENV, ManifestSource};
use crate::runner::redact::Redactor;

/// A private temporary directory (mode 0700, not in the shared directory) for the SSH key, the
/// known hosts and, when needed, `HOME`; removed on drop.
pub(super) struct Scratch(PathBuf);

impl Scratch {
    /// Creates it under the temporary directory (`TMPDIR`, else `/tmp`).
    pub(super) fn create() -> Result<Self, HelperError> {
        let base = std::env::temp_dir();
        let mut n = 0u64;
        loop {
            let path = base.join(format!("humanitec-helper-{}-{n}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(source) => return Err(HelperError::Write { path, source }),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// git in the checkout directory, with the environment that supplies the credentials.
pub(super) struct Git<'a> {
    /// The checkout directory.
    directory: &'a Path,
    /// Environment variables for every git command.
    env: Vec<(&'static str, OsString)>,
    /// The source's URL, to name its host when its key is refused.
    url: String,
    /// Whether `source.known_hosts` pins the host keys.
    pinned: bool,
    /// Hides the source's credentials and every URL's user info in what git prints.
    redactor: Redactor,
}

impl<'a> Git<'a> {
    /// Prepares the environment: no prompts, askpass for HTTPS credentials, the SSH command.
    pub(super) fn new(
        source: &ManifestSource,
        directory: &'a Path,
        inputs: &Path,
        scratch: &Scratch,
    ) -> Result<Self, HelperError> {
        let mut env: Vec<(&'static str, OsString)> = vec![("GIT_TERMINAL_PROMPT", "0".into())];
        let mut credentials = Vec::new();
        if !home_is_writable() {
            let home = scratch.0.join("home");
            create_dir_all(&home)?;
            env.push(("HOME", home.into()));
        }
        if source.username.is_some() || source.password_key.is_some() {
            // Why askpass: credentials on git's command line or in the URL would show in the
            // process list and in git's messages; git asks this binary for them instead.
            let exe = std::env::current_exe().map_err(HelperError::CurrentExe)?;
            env.push(("GIT_ASKPASS", exe.into()));
            env.push((HELPER_ASKPASS_ENV, "1".into()));
        }
        if let Some(key) = &source.password_key {
            credentials.push(String::from_utf8_lossy(&read_input(inputs, key)?).into_owned());
        }
        // Why accept-new without source.known_hosts: no known_hosts can be shipped for every
        // server, so the key is taken on first use (and every pod is a first use). With it, the
        // server must show one of its keys (`yes`). BatchMode: nothing can answer a prompt
        // here, so ssh must fail instead of waiting.
        let known_hosts = scratch.0.join("known_hosts");
        let checking = match &source.known_hosts {
            Some(lines) => {
                let mut content = lines.clone().into_bytes();
                if !content.ends_with(b"\n") {
                    content.push(b'\n');
                }
                place_file(&known_hosts, &content, 0o600)?;
                "yes"
            }
            None => "accept-new",
        };
        let mut ssh = format!(
            "ssh -o IdentitiesOnly=yes -o StrictHostKeyChecking={checking} -o BatchMode=yes -o UserKnownHostsFile={}",
            shell_quote(&known_hosts.to_string_lossy())
        );
        if let Some(pem) = &source.ca_certificates {
            // Why the image's bundle too: GIT_SSL_CAINFO replaces it, and the private CA comes
            // in addition to the public ones (a proxy or a mirror may use a public CA).
            let mut bundle = fs::read(SYSTEM_CA_BUNDLE).unwrap_or_default();
            if !bundle.is_empty() && !bundle.ends_with(b"\n") {
                bundle.push(b'\n');
            }
            bundle.extend_from_slice(pem.as_bytes());
            bundle.push(b'\n');
            let file = scratch.0.join("ca-certificates.pem");
            place_file(&file, &bundle, 0o600)?;
            env.push(("GIT_SSL_CAINFO", file.into()));
            eprintln!("helper prepare: trusting the CA certificates of source.ca_certificates");
        }
        if let Some(key) = &source.ssh_key_key {
            let mut content = read_input(inputs, key)?;
            // Why: OpenSSH refuses a key file without its final newline, which a key pasted
            // into HCL often lacks.
            if !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            // Why a copy: ssh refuses a key others can read, and the mounted Secret's files
            // are group-readable.
            let key_file = scratch.0.join("ssh-key");
            place_file(&key_file, &content, 0o600)?;
            credentials.push(String::from_utf8_lossy(&content).into_owned());
            ssh.push_str(&format!(" -i {}", shell_quote(&key_file.to_string_lossy())));
        }
        env.push(("GIT_SSH_COMMAND", ssh.into()));
        Ok(Git {
            directory,
            env,
            url: source.url.clone(),
            pinned: source.known_hosts.is_some(),
            redactor: Redactor::new(credentials.iter().map(String::as_str)).with_url_user_info(),
        })
    }

    /// The command for `args`, in the checkout directory.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        // Why safe.directory: the shared emptyDir belongs to root (with the pod's fsGroup), not
        // to the user git runs as, and git refuses such a repository otherwise.
        let safe = format!("safe.directory={}", self.directory.display());
        command
            .args(["-c", &safe, "-c", "init.defaultBranch=main"])
            .args(["-c", "advice.detachedHead=false"])
            .args(args)
            .current_dir(self.directory)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs git; its output goes to the container log, redacted.
    pub(super) fn run(&self, args: &[&str]) -> Result<(), HelperError> {
        self.output(args).map(drop)
    }

    /// Runs git and returns its stdout; stderr (and stdout) also go to the container log,
    /// redacted.
    pub(super) fn output(&self, args: &[&str]) -> Result<String, HelperError> {
        let output = self.command(args).output().map_err(HelperError::GitSpawn)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = self
            .redactor
            .redact(&String::from_utf8_lossy(&output.stderr))
            .into_owned();
        if !stderr.is_empty() {
            eprint!("{stderr}");
        }
        if output.status.success() {
            return Ok(stdout.into_owned());
        }
        if !stdout.is_empty() {
            eprint!("{}", self.redactor.redact(&stdout));
        }
        if stderr.contains("Host key verification failed") {
            let host =
                ssh_host(&self.url).unwrap_or_else(|| self.redactor.redact(&self.url).into_owned());
            // Why ssh's own line: it says whether the key is unknown or differs, and names
            // the key type.
            let said = stderr
                .lines()
                .map(str::trim)
                .find(|l| {
                    l.starts_with("No ") && l.contains("host key is known")
                        || l.starts_with("Host key for") && l.contains("has changed")
                })
                .unwrap_or("Host key verification failed.")
                .to_string();
            return Err(HelperError::HostKey {
                host,
                said,
                pinned: self.pinned,
            });
        }
        let detail = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        Err(HelperError::Git {
            command: self
                .redactor
                .redact(&format!("git {}", args.join(" ")))
                .into_owned(),
            status: output.status,
            detail,
        })
    }
}

/// The image's CA bundle (Debian's `ca-certificates`).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host of an ssh URL as known_hosts names it: `host`, or `[host]:port` for a port other
/// than 22 (`ssh://user@host:port/path`, or scp-like `user@host:path`); `None` for other URLs.
fn ssh_host(url: &str) -> Option<String> {
    let authority = if let Some(rest) = url.strip_prefix("ssh://") {
        rest.split('/').next()?
    } else if url.contains("://") {
        return None;
    } else {
        url.split_once(':')?.0
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, rest) = bracketed.split_once(']')?;
            (host, rest.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) if url.starts_with("ssh://") => (host, Some(port)),
            _ => (host_port, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    Some(match port {
        Some(port) if port != "22" && !port.is_empty() => format!("[{host}]:{port}"),
        _ => host.to_string(),
    })
}

/// `ssh-keyscan`'s arguments for a known_hosts host name, with a leading space.
pub(super) fn keyscan_arguments(host: &str) -> String {
    match host
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
    {
        Some((host, port)) => format!(" -p {port} {host}"),
        None => format!(" {host}"),
    }
}

/// Whether `HOME` is set and a directory can be created in it (git and ssh write there).
fn home_is_writable() -> bool {
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return false;
    };
    let probe = Path::new(&home).join(format!(".humanitec-helper-{}", std::process::id()));
    let writable = fs::create_dir(&probe).is_ok();
    let _ = fs::remove_dir(&probe);
    writable
}

/// Quotes `text` for `sh` (git runs `GIT_SSH_COMMAND` through the shell).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_hosts_are_named_as_known_hosts_names_them() {
        for (url, want) in [
            ("ssh://git@example.com/r.git", Some("example.com")),
            ("ssh://git@example.com:22/r.git", Some("example.com")),
            (
                "ssh://git@127.0.0.1:2222/srv/r.git",
                Some("[127.0.0.1]:2222"),
            ),
            ("ssh://example.com:2222/r.git", Some("[example.com]:2222")),
            ("ssh://git@[::1]:2222/r.git", Some("[::1]:2222")),
            ("git@github.com:acme/infra.git", Some("github.com")),
            ("https://example.com/r.git", None),
        ] {
            assert_eq!(ssh_host(url).as_deref(), want, "{url}");
        }
        assert_eq!(keyscan_arguments("[127.0.0.1]:2222"), " -p 2222 127.0.0.1");
        assert_eq!(keyscan_arguments("github.com"), " github.com");
        let error = HelperError::HostKey {
            host: "[127.0.0.1]:2222".into(),
            said: "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.".into(),
            pinned: true,
        };
        assert_eq!(
            error.to_string(),
            "the ssh server [127.0.0.1]:2222 showed a host key that source.known_hosts does not \
             hold (No ED25519 host key is known for [127.0.0.1]:2222 and you have requested \
             strict checking.); if it is the right server, add its key to source.known_hosts \
             (`ssh-keyscan -p 2222 127.0.0.1` prints it)"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
