//! Installing the provider the way a user does, with no `dev_overrides`: `scripts/release.sh`
//! packages the binary cargo built for this test run into registry-format release files,
//! `scripts/install-mirror.sh` puts them into a filesystem or network mirror, and the real
//! `terraform init` installs the provider from there, checks its checksums and writes
//! `.terraform.lock.hcl`. Also the version the binary reports (`--version`, Terraform's log).
//!
//! Why `release.sh --binary`: it packages the binary the harness already has instead of making
//! a second, slow release build. The "newer version" for `init -upgrade` is the same binary
//! repacked as the next patch version; Terraform selects by the version in the mirror, not by
//! what the binary says.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use crate::support::{Run, Sandbox, Workdir, provider_bin, terraform_bin};

const NAME: &str = "terraform-provider-humanitec";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The next patch version after the crate's (0.1.0 → 0.1.1).
fn next_version() -> String {
    let mut parts: Vec<u64> = VERSION
        .split('.')
        .map(|p| p.parse().expect("numeric version"))
        .collect();
    *parts.last_mut().expect("patch") += 1;
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether the CLI under test is OpenTofu (its `version` says so).
fn opentofu() -> bool {
    static TOFU: OnceLock<bool> = OnceLock::new();
    *TOFU.get_or_init(|| {
        let out = Command::new(terraform_bin())
            .arg("version")
            .output()
            .expect("run terraform version");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line.starts_with("OpenTofu v"))
    })
}

/// The registry hostname the bare source address `container-runner/humanitec` means to the CLI
/// under test: OpenTofu's default registry differs from Terraform's.
fn registry_host() -> &'static str {
    if opentofu() {
        "registry.opentofu.org"
    } else {
        "registry.terraform.io"
    }
}

/// Runs one of the repository's scripts; panics with its output unless it succeeds.
fn script(name: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let run = script_run(name, args, env);
    assert_eq!(
        run.code, 0,
        "{name} {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn script_run(name: &str, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let output = Command::new(repo().join("scripts").join(name))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The release files of this build as the crate version and as the next patch version, made
/// once per test run (under cargo's per-target temporary directory, replaced each run).
fn releases() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-releases");
        let _ = std::fs::remove_dir_all(&dir);
        let bin = provider_bin();
        let (bin, dir_str) = (bin.to_str().unwrap(), dir.to_str().unwrap());
        script("release.sh", &["--binary", bin, "--out", dir_str], &[]);
        let next = next_version();
        script(
            "release.sh",
            &["--binary", bin, "--version", &next, "--out", dir_str],
            &[],
        );
        dir
    })
}

/// A release of the crate version whose binary is not this build (a stand-in for a tampered or
/// substituted package): a consistent zip + SHA256SUMS, so only a recorded checksum can catch it.
fn substituted_release(dir: &Path) -> PathBuf {
    let fake = dir.join("fake-provider");
    std::fs::write(&fake, "#!/bin/sh\necho not the provider >&2\nexit 1\n").unwrap();
    let mut perms = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).unwrap();
    let out = dir.join("substituted");
    script(
        "release.sh",
        &[
            "--binary",
            fake.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    out
}

/// `install-mirror.sh --from <releases> --version V [flags] MIRROR`.
fn install(version: &str, flags: &[&str], mirror: &Path) {
    let mut args = vec![
        "--from",
        releases().to_str().unwrap(),
        "--version",
        version,
        "--hostname",
        registry_host(),
    ];
    args.extend_from_slice(flags);
    args.push(mirror.to_str().unwrap());
    script("install-mirror.sh", &args, &[]);
}

/// The provider's directory inside a mirror.
fn provider_dir(mirror: &Path) -> PathBuf {
    mirror
        .join(registry_host())
        .join("container-runner")
        .join("humanitec")
}

/// A Terraform block requiring the provider with a version constraint.
fn required(constraint: &str) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    humanitec = {{\n      source  = \"container-runner/humanitec\"\n      version = \"{constraint}\"\n    }}\n  }}\n}}\n"
    )
}

/// Writes a CLI configuration that installs the provider only from `source` (a
/// `filesystem_mirror` or `network_mirror` block body) and returns its path.
fn cli_config(work: &Workdir, kind: &str, setting: &str) -> PathBuf {
    let address = format!("{}/container-runner/humanitec", registry_host());
    let path = work.path().join("mirror.tfrc");
    std::fs::write(
        &path,
        format!(
            "provider_installation {{\n  {kind} {{\n    {setting}\n    include = [\"{address}\"]\n  }}\n  direct {{\n    exclude = [\"{address}\"]\n  }}\n}}\n"
        ),
    )
    .unwrap();
    path
}

/// Runs terraform in `work` with the CLI configuration `config` instead of the harness's
/// dev_overrides one (and any extra environment).
fn tf(work: &Workdir, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec![("TF_CLI_CONFIG_FILE", config.to_str().unwrap())];
    all.extend_from_slice(env);
    work.tf_env(args, &all)
}

fn lock_file(work: &Workdir) -> String {
    std::fs::read_to_string(work.path().join(".terraform.lock.hcl")).expect("lock file written")
}

/// The `hashes` of the provider's entry in a lock file, sorted.
fn locked_hashes(lock: &str) -> Vec<String> {
    let mut hashes: Vec<String> = lock
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("\"h1:") || l.starts_with("\"zh:"))
        .map(|l| l.trim_end_matches(',').trim_matches('"').to_string())
        .collect();
    hashes.sort();
    hashes
}

fn assert_no_dev_overrides(run: &Run, what: &str) {
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("development overrides") && !text.contains("dev_overrides"),
            "{what} used dev_overrides:\n{text}"
        );
    }
}

/// The hashes `terraform providers lock` computes on its own, in an empty configuration that
/// requires the provider the same way.
fn providers_lock(constraint: &str, source_flag: &str, env: &[(&str, &str)]) -> Vec<String> {
    let work = Workdir::new(&required(constraint));
    // Why an empty CLI configuration: the -fs-mirror / -net-mirror flag is the only source.
    let config = work.path().join("empty.tfrc");
    std::fs::write(&config, "").unwrap();
    let platform = format!("-platform={}", host_platform());
    tf(
        &work,
        &config,
        &["providers", "lock", "-no-color", source_flag, &platform],
        env,
    )
    .ok("terraform providers lock");
    locked_hashes(&lock_file(&work))
}

fn host_platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux_amd64",
        ("linux", "aarch64") => "linux_arm64",
        ("macos", "x86_64") => "darwin_amd64",
        ("macos", "aarch64") => "darwin_arm64",
        other => panic!("no Terraform platform for {other:?}"),
    }
}

#[test]
fn version_flag_prints_the_crate_version_without_a_handshake() {
    let out = Command::new(provider_bin())
        .arg("--version")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .env_remove("PLUGIN_PROTOCOL_VERSIONS")
        .stdin(Stdio::null())
        .output()
        .expect("run provider");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{NAME} {VERSION}\n")
    );
}

/// tfplugin5 has no field for a provider's own version, so the binary logs it at start-up and
/// go-plugin passes the line into Terraform's log.
#[test]
fn version_reaches_terraforms_log() {
    let work = Workdir::new(&format!(
        "{}\nprovider \"humanitec\" {{}}\n",
        required(VERSION)
    ));
    let run = work
        .tf_env(&["validate", "-no-color"], &[("TF_LOG", "debug")])
        .ok("validate");
    assert!(
        run.stderr.contains(&format!("{NAME} {VERSION} starting")),
        "no version line in the log:\n{}",
        run.stderr
    );
}

#[test]
fn release_files_follow_the_registry_protocol() {
    let dir = releases();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{NAME}_{VERSION}_")))
        .collect();
    names.sort();
    let platform = host_platform();
    assert_eq!(
        names,
        [
            format!("{NAME}_{VERSION}_SHA256SUMS"),
            format!("{NAME}_{VERSION}_{platform}.zip"),
            format!("{NAME}_{VERSION}_manifest.json"),
        ]
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{NAME}_{VERSION}_manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["5.0"]}})
    );
    let sums = std::fs::read_to_string(dir.join(format!("{NAME}_{VERSION}_SHA256SUMS"))).unwrap();
    let listed: Vec<&str> = sums
        .lines()
        .map(|l| {
            let (hex, file) = l.split_once("  ").expect("sha256sum format");
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            file
        })
        .collect();
    assert_eq!(
        listed,
        [
            format!("{NAME}_{VERSION}_{platform}.zip"),
            format!("{NAME}_{VERSION}_manifest.json"),
        ]
    );

    // install-mirror.sh checks the zips against SHA256SUMS before it installs anything.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("release");
    std::fs::create_dir(&copy).unwrap();
    for name in &names {
        std::fs::copy(dir.join(name), copy.join(name)).unwrap();
    }
    let zip = copy.join(format!("{NAME}_{VERSION}_{platform}.zip"));
    let mut bytes = std::fs::read(&zip).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&zip, bytes).unwrap();
    let mirror = tmp.path().join("mirror");
    let run = script_run(
        "install-mirror.sh",
        &["--from", copy.to_str().unwrap(), mirror.to_str().unwrap()],
        &[],
    );
    assert_ne!(run.code, 0, "a corrupted zip was installed");
    assert!(
        run.stderr.contains("does not match SHA256SUMS"),
        "{}",
        run.stderr
    );
    assert!(!provider_dir(&mirror).join(VERSION).exists());
}

/// release → filesystem mirror → `init` with a constraint → `apply` against the sandbox → the
/// lock file agrees with `providers lock` → a fresh checkout with that lock file initialises
/// without warnings → `init -upgrade` moves to the newer version in the mirror.
#[tokio::test(flavor = "multi_thread")]
async fn filesystem_mirror_init_apply_lock_and_upgrade() {
    let sandbox = Sandbox::start();
    let mirror = tempfile::tempdir().unwrap();
    install(VERSION, &[], mirror.path());
    assert!(
        provider_dir(mirror.path())
            .join(VERSION)
            .join(host_platform())
            .join(format!("{NAME}_v{VERSION}"))
            .is_file(),
        "not in the unpacked layout"
    );

    let provider = sandbox.provider_block().replace(
        "humanitec = { source = \"container-runner/humanitec\" }",
        "humanitec = {\n      source  = \"container-runner/humanitec\"\n      version = \"~> 0.1\"\n    }",
    );
    assert!(provider.contains("~> 0.1"), "{provider}");
    let main_tf = format!(
        "{provider}\nresource \"humanitec_runner_config\" \"dev\" {{\n  id = \"installed-config\"\n  cluster {{\n    cluster_type = \"eks\"\n    name         = \"c\"\n    region       = \"eu-west-1\"\n  }}\n}}\n"
    );
    let work = Workdir::new(&main_tf);
    let mirror_arg = format!("path = \"{}\"", mirror.path().display());
    let config = cli_config(&work, "filesystem_mirror", &mirror_arg);

    let init = tf(&work, &config, &["init", "-input=false", "-no-color"], &[]).ok("init");
    assert_no_dev_overrides(&init, "init");
    assert!(
        init.stdout
            .contains(&format!("Installed container-runner/humanitec v{VERSION}")),
        "{}",
        init.stdout
    );
    let installed = work
        .path()
        .join(".terraform/providers")
        .join(registry_host())
        .join("container-runner/humanitec")
        .join(VERSION)
        .join(host_platform());
    assert!(installed.exists(), "not installed into .terraform");

    let apply = tf(
        &work,
        &config,
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        &[],
    )
    .ok("apply");
    assert_no_dev_overrides(&apply, "apply");
    assert!(sandbox.definition("installed-config").await.is_some());
    let plan = tf(
        &work,
        &config,
        &["plan", "-detailed-exitcode", "-no-color", "-input=false"],
        &[],
    );
    assert_eq!(
        plan.code, 0,
        "plan not empty\n{}\n{}",
        plan.stdout, plan.stderr
    );

    // The lock file: the selected version, the constraint, and the hashes `providers lock`
    // computes independently from the same mirror.
    let lock = lock_file(&work);
    assert!(
        lock.contains(&format!("version     = \"{VERSION}\"")),
        "{lock}"
    );
    assert!(lock.contains("constraints = \"~> 0.1\""), "{lock}");
    let hashes = locked_hashes(&lock);
    assert!(hashes.iter().any(|h| h.starts_with("h1:")), "{lock}");
    assert_eq!(
        hashes,
        providers_lock(
            "~> 0.1",
            &format!("-fs-mirror={}", mirror.path().display()),
            &[]
        )
    );

    // A fresh checkout with the committed lock file installs the same package, silently.
    let checkout = Workdir::new(&required("~> 0.1"));
    std::fs::write(checkout.path().join(".terraform.lock.hcl"), &lock).unwrap();
    let config2 = cli_config(&checkout, "filesystem_mirror", &mirror_arg);
    let again = tf(
        &checkout,
        &config2,
        &["init", "-input=false", "-no-color"],
        &[],
    )
    .ok("init");
    assert!(
        !again.stdout.contains("Warning") && !again.stderr.contains("Warning"),
        "init with a lock file warned:\n{}\n{}",
        again.stdout,
        again.stderr
    );
    assert_eq!(lock_file(&checkout), lock, "the lock file changed");

    // A newer version in the mirror: plain init keeps the locked one, -upgrade takes it.
    let next = next_version();
    install(&next, &[], mirror.path());
    let kept = tf(&work, &config, &["init", "-input=false", "-no-color"], &[]).ok("init");
    assert!(
        kept.stdout.contains("Reusing previous version"),
        "{}",
        kept.stdout
    );
    assert_eq!(lock_file(&work), lock);
    let upgraded = tf(
        &work,
        &config,
        &["init", "-upgrade", "-input=false", "-no-color"],
        &[],
    )
    .ok("init -upgrade");
    assert!(
        upgraded
            .stdout
            .contains(&format!("Installed container-runner/humanitec v{next}")),
        "{}",
        upgraded.stdout
    );
    let upgraded_lock = lock_file(&work);
    assert!(
        upgraded_lock.contains(&format!("version     = \"{next}\"")),
        "{upgraded_lock}"
    );
    assert_ne!(locked_hashes(&upgraded_lock), hashes);
    let plan = tf(
        &work,
        &config,
        &["plan", "-detailed-exitcode", "-no-color", "-input=false"],
        &[],
    );
    assert_eq!(
        plan.code, 0,
        "plan after upgrade\n{}\n{}",
        plan.stdout, plan.stderr
    );

    tf(
        &work,
        &config,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        &[],
    )
    .ok("destroy");
    assert!(sandbox.definitions().await.is_empty());
}

/// A packed mirror whose zip was swapped for another package of the same version: `init` with
/// the committed lock file refuses it with Terraform's checksum error.
#[test]
fn substituted_zip_is_refused_by_the_lock_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    install(VERSION, &["--packed"], &mirror);
    let zip_name = format!("{NAME}_{VERSION}_{}.zip", host_platform());
    assert!(
        provider_dir(&mirror).join(&zip_name).is_file(),
        "not packed"
    );

    let mirror_arg = format!("path = \"{}\"", mirror.display());
    let work = Workdir::new(&required(VERSION));
    let config = cli_config(&work, "filesystem_mirror", &mirror_arg);
    tf(&work, &config, &["init", "-input=false", "-no-color"], &[]).ok("init");
    let lock = lock_file(&work);

    let substituted = substituted_release(tmp.path());
    std::fs::copy(
        substituted.join(&zip_name),
        provider_dir(&mirror).join(&zip_name),
    )
    .unwrap();

    let checkout = Workdir::new(&required(VERSION));
    std::fs::write(checkout.path().join(".terraform.lock.hcl"), &lock).unwrap();
    let config = cli_config(&checkout, "filesystem_mirror", &mirror_arg);
    let run = tf(
        &checkout,
        &config,
        &["init", "-input=false", "-no-color"],
        &[],
    );
    assert_ne!(run.code, 0, "the substituted package was installed");
    let text = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains(
            "doesn't match any of the checksums previously recorded in the dependency lock file"
        ),
        "{}",
        run.stderr
    );
}

/// The network-mirror layout served over HTTPS from 127.0.0.1 installs, pinned to an exact
/// version; the lock file carries the h1: hash install-mirror.sh published; a zip swapped on
/// the server is refused because it does not match the mirror's hashes.
#[test]
fn network_mirror_over_https_installs_and_checks_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    install(VERSION, &["--network"], &root);
    install(&next_version(), &["--network"], &root);
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(provider_dir(&root).join("index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        index,
        serde_json::json!({"versions": {VERSION: {}, next_version(): {}}})
    );
    let listing: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(provider_dir(&root).join(format!("{VERSION}.json"))).unwrap(),
    )
    .unwrap();
    let archive = &listing["archives"][host_platform()];
    let zip_name = format!("{NAME}_{VERSION}_{}.zip", host_platform());
    assert_eq!(archive["url"], zip_name.as_str());

    let server = HttpsServer::start(root.clone(), tmp.path());
    let ca = server.ca_file.to_str().unwrap().to_string();
    let env = [("SSL_CERT_FILE", ca.as_str())];
    let url = format!("url = \"https://{}/\"", server.addr);

    let work = Workdir::new(&format!(
        "{}\nprovider \"humanitec\" {{}}\n",
        required(VERSION)
    ));
    let config = cli_config(&work, "network_mirror", &url);
    let init = tf(&work, &config, &["init", "-input=false", "-no-color"], &env).ok("init");
    assert_no_dev_overrides(&init, "init");
    assert!(
        init.stdout.contains(&format!(
            "Installed container-runner/humanitec v{VERSION} (verified checksum)"
        )),
        "{}",
        init.stdout
    );
    // validate starts the installed provider (GetProviderSchema).
    tf(&work, &config, &["validate", "-no-color"], &env).ok("validate");

    let hashes = locked_hashes(&lock_file(&work));
    let mut published: Vec<String> = archive["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    published.sort();
    // Terraform locks only the h1: hash it computed of the package it installed; OpenTofu also
    // locks the zh: hash the mirror published beside it. Either way both come from the mirror
    // document install-mirror.sh wrote.
    let expected: Vec<String> = published
        .into_iter()
        .filter(|h| opentofu() || h.starts_with("h1:"))
        .collect();
    assert_eq!(
        hashes, expected,
        "the lock file's hashes differ from the mirror's"
    );
    assert_eq!(
        hashes,
        providers_lock(
            VERSION,
            &format!("-net-mirror=https://{}/", server.addr),
            &env
        )
    );

    // Swap the zip on the server: a fresh init (no lock file) checks the mirror's hashes.
    let substituted = substituted_release(tmp.path());
    std::fs::copy(
        substituted.join(&zip_name),
        provider_dir(&root).join(&zip_name),
    )
    .unwrap();
    let fresh = Workdir::new(&required(VERSION));
    let config = cli_config(&fresh, "network_mirror", &url);
    let run = tf(
        &fresh,
        &config,
        &["init", "-input=false", "-no-color"],
        &env,
    );
    assert_ne!(run.code, 0, "the substituted package was installed");
    let text = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("doesn't match the any of the expected checksums")
            || text.contains("doesn't match any of the expected checksums"),
        "{}",
        run.stderr
    );
}

/// With no mirror named, install-mirror.sh uses the implied local mirror `~/.terraform.d/plugins`,
/// which `terraform init` and `tofu init` search with no provider_installation block at all; a release signed
/// with a team key verifies, and one that does not verify is not installed.
#[test]
fn signed_release_into_the_implied_local_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let gnupg = tmp.path().join("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let _agent = GpgAgent(gnupg.clone());
    let key = "release-test@example.invalid";
    let keygen = Command::new("gpg")
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .arg("--quick-gen-key")
        .args([key, "ed25519", "sign", "1d"])
        .env("GNUPGHOME", &gnupg)
        .stdin(Stdio::null())
        .output()
        .expect("run gpg (install gnupg)");
    assert!(keygen.status.success(), "{keygen:?}");

    let release = tmp.path().join("release");
    let bin = provider_bin();
    script(
        "release.sh",
        &[
            "--binary",
            bin.to_str().unwrap(),
            "--out",
            release.to_str().unwrap(),
            "--sign",
            key,
        ],
        &[("GNUPGHOME", &gnupg)],
    );
    let sums = release.join(format!("{NAME}_{VERSION}_SHA256SUMS"));
    let sig = release.join(format!("{NAME}_{VERSION}_SHA256SUMS.sig"));
    let verify = Command::new("gpg")
        .arg("--verify")
        .args([&sig, &sums])
        .env("GNUPGHOME", &gnupg)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    let work = Workdir::new(&required(VERSION));
    let home = work.path();
    let from = release.to_str().unwrap();
    // Without the team's public key the signature cannot be verified: nothing is installed.
    let empty = tmp.path().join("no-keys");
    std::fs::create_dir(&empty).unwrap();
    let refused = script_run(
        "install-mirror.sh",
        &["--from", from],
        &[("HOME", home), ("GNUPGHOME", &empty)],
    );
    assert_ne!(refused.code, 0, "installed without verifying the signature");
    assert!(
        refused.stderr.contains("does not verify"),
        "{}",
        refused.stderr
    );
    assert!(!home.join(".terraform.d").exists());

    // No --hostname: the default installs for both CLIs, so this works under either.
    script(
        "install-mirror.sh",
        &["--from", from],
        &[("HOME", home), ("GNUPGHOME", &gnupg)],
    );
    for host in ["registry.terraform.io", "registry.opentofu.org"] {
        assert!(
            home.join(".terraform.d/plugins")
                .join(host)
                .join("container-runner/humanitec")
                .join(VERSION)
                .join(host_platform())
                .join(format!("{NAME}_v{VERSION}"))
                .is_file(),
            "not installed for {host}"
        );
    }

    // An empty CLI configuration: only the implied sources (local mirrors, then the registry).
    let config = home.join("empty.tfrc");
    std::fs::write(&config, "").unwrap();
    let init = tf(&work, &config, &["init", "-input=false", "-no-color"], &[]).ok("init");
    assert!(
        init.stdout
            .contains(&format!("Installed container-runner/humanitec v{VERSION}")),
        "{}",
        init.stdout
    );
}

/// A CLI configuration, as the README documents it, that installs the provider from the
/// filesystem mirror `mirror` for Terraform and OpenTofu alike.
fn both_clis_config(mirror: &Path) -> String {
    let addresses = "\"registry.terraform.io/container-runner/humanitec\", \"registry.opentofu.org/container-runner/humanitec\"";
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [{addresses}]\n  }}\n  direct {{\n    exclude = [{addresses}]\n  }}\n}}\n",
        mirror.display()
    )
}

/// The CLI configuration in the home directory, as the README documents it: one block whose
/// `include` names both CLIs' addresses, in `~/.terraformrc`, which Terraform reads, and which
/// OpenTofu reads too unless there is a `~/.tofurc`; with both files OpenTofu reads only
/// `~/.tofurc` (here the other file names a mirror that does not exist, so reading the wrong
/// one fails the init).
#[test]
fn cli_configuration_in_the_home_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    install(VERSION, &[], &mirror);
    let good = both_clis_config(&mirror);
    let bad = both_clis_config(&tmp.path().join("no-such-mirror"));
    // Workdir sets HOME to its own directory.
    let init = |work: &Workdir| {
        let output = work
            .command(&["init", "-input=false", "-no-color"])
            .env_remove("TF_CLI_CONFIG_FILE")
            .output()
            .expect("run init");
        Run::from(output)
    };
    let installed = |run: &Run| {
        run.stdout
            .contains(&format!("Installed container-runner/humanitec v{VERSION}"))
    };

    // Only ~/.terraformrc: both CLIs read it.
    let work = Workdir::new(&required(VERSION));
    std::fs::write(work.path().join(".terraformrc"), &good).unwrap();
    let run = init(&work).ok("init with ~/.terraformrc");
    assert!(installed(&run), "{}", run.stdout);

    // Both files: OpenTofu reads ~/.tofurc, Terraform ~/.terraformrc.
    let work = Workdir::new(&required(VERSION));
    let (tofurc, terraformrc) = if opentofu() {
        (&good, &bad)
    } else {
        (&bad, &good)
    };
    std::fs::write(work.path().join(".tofurc"), tofurc).unwrap();
    std::fs::write(work.path().join(".terraformrc"), terraformrc).unwrap();
    let run = init(&work).ok("init with ~/.tofurc and ~/.terraformrc");
    assert!(installed(&run), "{}", run.stdout);
}

/// One working directory, one mirror and one CLI configuration, driven by Terraform and OpenTofu
/// in turn (the CLI under test and `HUMANITEC_TEST_OTHER_CLI`, which scripts/test.sh sets to the
/// other one): each `init` installs the provider under its own address and rewrites the lock
/// file with only that entry; the state either CLI wrote plans no change under the other.
#[tokio::test(flavor = "multi_thread")]
async fn state_moves_between_terraform_and_opentofu() {
    let Ok(other) = std::env::var("HUMANITEC_TEST_OTHER_CLI") else {
        eprintln!(
            "state_moves_between_terraform_and_opentofu: HUMANITEC_TEST_OTHER_CLI is not set \
             (scripts/test.sh sets it to the other CLI); nothing to compare with"
        );
        return;
    };
    let this = terraform_bin();
    let sandbox = Sandbox::start();
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let releases = releases().to_str().unwrap();
    let mirror_arg = mirror.to_str().unwrap();
    script(
        "install-mirror.sh",
        &["--from", releases, "--version", VERSION, mirror_arg],
        &[],
    );
    let resource = |name: &str| {
        format!(
            "{}\nresource \"humanitec_runner_config\" \"dev\" {{\n  id   = \"moved-config\"\n  name = \"{name}\"\n  cluster {{\n    cluster_type = \"eks\"\n    name         = \"c\"\n    region       = \"eu-west-1\"\n  }}\n}}\n",
            sandbox.provider_block()
        )
    };
    let work = Workdir::new(&resource("turn-0"));
    let config = work.path().join("both.tfrc");
    std::fs::write(&config, both_clis_config(&mirror)).unwrap();
    let run = |cli: &str, args: &[&str]| {
        let output = work
            .command_of(cli, args)
            .env("TF_CLI_CONFIG_FILE", &config)
            .output()
            .expect("run the CLI");
        Run::from(output)
    };
    // The address a CLI gives the bare source address, from its own `providers` listing.
    let address = |cli: &str| {
        let listing = run(cli, &["providers", "-no-color"]).ok("providers");
        ["registry.terraform.io", "registry.opentofu.org"]
            .into_iter()
            .map(|host| format!("{host}/container-runner/humanitec"))
            .find(|address| listing.stdout.contains(address.as_str()))
            .unwrap_or_else(|| panic!("no provider address in:\n{}", listing.stdout))
    };
    let locked = || {
        lock_file(&work)
            .lines()
            .filter_map(|l| {
                l.strip_prefix("provider \"")?
                    .split('"')
                    .next()
                    .map(String::from)
            })
            .collect::<Vec<_>>()
    };
    // The provider address the resource has in the state file.
    let state_address = || {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(work.path().join("terraform.tfstate")).expect("state"),
        )
        .expect("state JSON");
        let provider = state["resources"][0]["provider"]
            .as_str()
            .expect("provider");
        // provider["registry.terraform.io/container-runner/humanitec"]
        provider
            .trim_start_matches("provider[\"")
            .trim_end_matches("\"]")
            .to_string()
    };
    let tofu_address = "registry.opentofu.org/container-runner/humanitec".to_string();
    let terraform_address = "registry.terraform.io/container-runner/humanitec".to_string();

    // Asked before there is any state, which `providers` lists too.
    let this_address = address(&this);
    let other_address = address(&other);
    assert_ne!(
        this_address, other_address,
        "{this} and {other} are the same kind of CLI"
    );

    let mut state_by: Option<String> = None;
    for (turn, cli) in [&this, &other, &this].into_iter().enumerate() {
        run(cli, &["init", "-input=false", "-no-color"]).ok("init");
        let own = if *cli == this {
            &this_address
        } else {
            &other_address
        }
        .clone();
        // OpenTofu reads Terraform's addresses in the state as its own and locks only its own
        // address; Terraform keeps OpenTofu's address when the state names it (it is another
        // provider to Terraform), so it locks, and needs the mirror to hold, both.
        let mut expected = vec![own.clone()];
        if own == terraform_address && state_by.as_ref() == Some(&tofu_address) {
            expected.insert(0, tofu_address.clone());
        }
        assert_eq!(locked(), expected, "the lock file after {cli} init");
        if state_by.is_some() {
            let plan = run(
                cli,
                &["plan", "-detailed-exitcode", "-no-color", "-input=false"],
            );
            assert_eq!(
                plan.code, 0,
                "{cli} plans changes for the state {state_by:?} wrote\n{}\n{}",
                plan.stdout, plan.stderr
            );
        }
        let name = format!("turn-{turn}");
        work.write(&resource(&name));
        run(
            cli,
            &["apply", "-auto-approve", "-no-color", "-input=false"],
        )
        .ok("apply");
        assert_eq!(
            sandbox
                .definition("moved-config")
                .await
                .expect("definition")["name"],
            name.as_str()
        );
        assert_eq!(
            state_address(),
            own,
            "the state's address after {cli} apply"
        );
        state_by = Some(own);
    }
    run(
        &this,
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
    )
    .ok("destroy");
    assert!(sandbox.definitions().await.is_empty());
}

/// Stops the gpg-agent that gpg started for a throwaway GNUPGHOME, when the test ends.
struct GpgAgent(PathBuf);

impl Drop for GpgAgent {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", &self.0)
            .status();
    }
}

/// A static HTTPS file server on 127.0.0.1 with a throwaway CA, as any web server would serve a
/// network mirror directory. It lives until the test process exits.
struct HttpsServer {
    addr: SocketAddr,
    /// The CA certificate (PEM) for `SSL_CERT_FILE`.
    ca_file: PathBuf,
}

impl HttpsServer {
    fn start(root: PathBuf, scratch: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "install test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let ca_file = scratch.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), ca.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        // Why its own thread and runtime: the tests block on terraform while it downloads.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let tcp = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                    let root = root.clone();
                    async move { static_file(&root, uri.path()) }
                });
                axum::serve(TlsListener { tcp, acceptor }, app)
                    .await
                    .unwrap();
            });
        });
        Self { addr, ca_file }
    }
}

fn static_file(root: &Path, path: &str) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match std::fs::read(root.join(relative)) {
        Ok(body) => {
            let kind = if relative.ends_with(".json") {
                "application/json"
            } else {
                "application/zip"
            };
            ([(header::CONTENT_TYPE, kind)], body).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// TCP connections on 127.0.0.1, each through a TLS handshake before axum sees it.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.tcp.accept().await
                && let Ok(tls) = self.acceptor.accept(stream).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
