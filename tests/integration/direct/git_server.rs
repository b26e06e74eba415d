//! The test git server itself: a real `git` clones with the credentials (from a `GIT_ASKPASS`
//! script) and is refused without them, raw requests see the 401 challenge, and a commit can be
//! fetched by its SHA, also when it is no longer the tip of any ref.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;

use crate::support::git_server::{GitServer, git, isolated_git_env};

const USER: &str = "runner-user";
const PASSWORD: &str = "pw-5e81c0d2";

/// The files of the test repository.
fn files() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("README.md", "hello from the test repository\n"),
        (
            "modules/s3/main.tf",
            "output \"bucket\" { value = \"b\" }\n",
        ),
    ])
}

/// A git client command in `dir`: isolated from the machine's configuration, never prompting.
fn client(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .envs(isolated_git_env())
        .env("HOME", dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::null());
    command
}

/// Writes an askpass script answering `user` and `password` to git's two questions.
fn askpass(dir: &Path, user: &str, password: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("askpass.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncase \"$1\" in\n  Username*) echo '{user}' ;;\n  *) echo '{password}' ;;\nesac\n"),
    )
    .expect("write askpass");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn run(mut command: Command) -> Output {
    command.output().expect("run git")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A raw `GET` on the server (HTTP/1.1, connection closed): the whole answer as text.
fn raw_get(server: &GitServer, path: &str, credentials: Option<(&str, &str)>) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let auth = credentials
        .map(|(u, p)| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            format!("Authorization: Basic {token}\r\n")
        })
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn clone_with_askpass_credentials_gets_the_files_the_tag_and_the_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repos = dir.path().join("repos");
    let server = GitServer::start(&repos, USER, PASSWORD);
    let sha = server.create_repo("app", &files());
    assert_eq!(sha.len(), 40, "{sha}");

    let script = askpass(dir.path(), USER, PASSWORD);
    let mut clone = client(dir.path(), &["clone", "-q", &server.url("app"), "checkout"]);
    clone.env("GIT_ASKPASS", &script);
    let out = run(clone);
    assert!(out.status.success(), "clone failed: {}", stderr(&out));

    let checkout = dir.path().join("checkout");
    for (path, content) in files() {
        assert_eq!(
            std::fs::read_to_string(checkout.join(path)).expect("a cloned file"),
            content
        );
    }
    assert_eq!(git(&checkout, &["rev-parse", "HEAD"]).trim(), sha);
    assert_eq!(git(&checkout, &["rev-parse", "v1^{commit}"]).trim(), sha);
    assert_eq!(
        git(&checkout, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    assert!(
        server.served() >= 2,
        "info/refs and upload-pack were served"
    );
    assert!(
        server.refused() >= 1,
        "git first asked without credentials and was challenged"
    );
}

#[test]
fn without_or_with_wrong_credentials_the_server_answers_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repos = dir.path().join("repos");
    let server = GitServer::start(&repos, USER, PASSWORD);
    server.create_repo("app", &files());
    let refs = "/app/info/refs?service=git-upload-pack";

    let none = raw_get(&server, refs, None);
    assert!(none.starts_with("HTTP/1.1 401 "), "{none}");
    assert!(
        none.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"git\""),
        "{none}"
    );
    let wrong = raw_get(&server, refs, Some((USER, "not-the-password")));
    assert!(wrong.starts_with("HTTP/1.1 401 "), "{wrong}");
    assert_eq!(server.served(), 0);
    assert_eq!(server.refused(), 2);

    let right = raw_get(&server, refs, Some((USER, PASSWORD)));
    assert!(right.starts_with("HTTP/1.1 200 "), "{right}");
    assert!(
        right.contains("application/x-git-upload-pack-advertisement"),
        "{right}"
    );
    let missing = raw_get(
        &server,
        "/absent/info/refs?service=git-upload-pack",
        Some((USER, PASSWORD)),
    );
    assert!(
        missing.starts_with("HTTP/1.1 404 "),
        "http-backend's Status header is passed on: {missing}"
    );
    assert_eq!(server.served(), 2);

    let out = run(client(
        dir.path(),
        &["clone", "-q", &server.url("app"), "anonymous"],
    ));
    assert!(
        !out.status.success(),
        "a clone without credentials succeeded"
    );
    assert_eq!(server.refused(), 3, "{}", stderr(&out));
    assert!(!dir.path().join("anonymous").exists());

    let script = askpass(dir.path(), USER, "not-the-password");
    let mut wrong_clone = client(dir.path(), &["clone", "-q", &server.url("app"), "wrong"]);
    wrong_clone.env("GIT_ASKPASS", &script);
    let out = run(wrong_clone);
    assert!(
        !out.status.success(),
        "a clone with a wrong password succeeded"
    );
    assert!(
        stderr(&out).contains("Authentication failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server.served(),
        2,
        "nothing was served to the wrong password"
    );
}

#[test]
fn a_commit_is_fetched_by_its_sha_even_when_no_ref_points_at_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repos = dir.path().join("repos");
    let server = GitServer::start(&repos, USER, PASSWORD);
    let first = server.create_repo("app", &files());
    // Why: once `main` has moved on and the tag is gone, the first commit is only reachable,
    // so protocol v0 needs the server's allowReachableSHA1InWant to hand it out.
    let served_repo = repos.join("app");
    std::fs::write(served_repo.join("README.md"), "changed\n").expect("write");
    git(&served_repo, &["commit", "-q", "-am", "Second commit"]);
    git(&served_repo, &["tag", "-d", "v1"]);

    let script = askpass(dir.path(), USER, PASSWORD);
    for protocol in ["0", "2"] {
        let work = dir.path().join(format!("fetch-v{protocol}"));
        std::fs::create_dir_all(&work).expect("mkdir");
        assert!(run(client(&work, &["init", "-q"])).status.success());
        assert!(
            run(client(
                &work,
                &["remote", "add", "origin", &server.url("app")]
            ))
            .status
            .success()
        );
        let mut fetch = client(
            &work,
            &[
                "-c",
                &format!("protocol.version={protocol}"),
                "fetch",
                "-q",
                "--depth",
                "1",
                "origin",
                &first,
            ],
        );
        fetch.env("GIT_ASKPASS", &script);
        let out = run(fetch);
        assert!(
            out.status.success(),
            "fetch by SHA (protocol v{protocol}): {}",
            stderr(&out)
        );
        assert_eq!(git(&work, &["rev-parse", "FETCH_HEAD"]).trim(), first);
        assert_eq!(
            git(&work, &["show", "FETCH_HEAD:README.md"]),
            "hello from the test repository\n"
        );
        assert_eq!(
            git(&work, &["rev-parse", "--is-shallow-repository"]).trim(),
            "true"
        );
    }
}
