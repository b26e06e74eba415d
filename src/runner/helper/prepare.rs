//! `helper prepare`, the init container of a run's pod: checks out the git source into the
//! shared directory, writes the commit it checked out into the results, places the files and
//! secret files from the inputs, and makes sure the scripts directory exists. A failure ends
//! the pod before `main` starts, with the reason as the container's termination message.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::git::{Git, Scratch};
use super::{HelperError, Layout, read_input, read_manifest};
use crate::runner::contract::{COMMIT_FILE_NAME as COMMIT_KEY, ManifestFile, ManifestSource};
use crate::runner::redact::Redactor;

/// `helper prepare`: checks out the source, places the files, and makes sure the scripts
/// directory exists.
pub(super) fn run(layout: &Layout) -> Result<(), HelperError> {
    let manifest = read_manifest(&layout.inputs)?;
    match &manifest.source {
        Some(source) => {
            eprintln!(
                "helper prepare: checking out {} ({}) into {}",
                Redactor::default().with_url_user_info().redact(&source.url),
                source.reference.as_deref().unwrap_or("the remote's HEAD"),
                manifest.shared_directory
            );
            let commit = checkout(
                source,
                Path::new(&manifest.shared_directory),
                &layout.inputs,
            )?;
            let commit_file = layout.results.join(COMMIT_KEY);
            fs::write(&commit_file, format!("{commit}\n")).map_err(|source| {
                HelperError::Write {
                    path: commit_file,
                    source,
                }
            })?;
            eprintln!("helper prepare: checked out {commit}");
            // Why before placing the files: placing one under a missing scripts directory
            // would create it and hide a wrong `source.path`.
            if !Path::new(&manifest.scripts_directory).is_dir() {
                let path = source
                    .path
                    .clone()
                    .unwrap_or_else(|| manifest.scripts_directory.clone());
                return Err(HelperError::ScriptsDirectoryMissing { path, commit });
            }
        }
        None => create_dir_all(Path::new(&manifest.scripts_directory))?,
    }
    place_files(&manifest.files, &layout.inputs)?;
    eprintln!(
        "helper prepare: placed {} file(s); SCRIPTS_DIRECTORY is {}",
        manifest.files.len(),
        manifest.scripts_directory
    );
    Ok(())
}

/// Creates a directory and its parents.
pub(super) fn create_dir_all(path: &Path) -> Result<(), HelperError> {
    fs::create_dir_all(path).map_err(|source| HelperError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes every file of the manifest from its inputs key.
fn place_files(files: &[ManifestFile], inputs: &Path) -> Result<(), HelperError> {
    for file in files {
        if !Path::new(&file.path).is_absolute() {
            return Err(HelperError::InvalidManifest(format!(
                "the file path {} is not absolute",
                file.path
            )));
        }
        let content = read_input(inputs, &file.key)?;
        let mode = if file.secret { 0o600 } else { 0o644 };
        place_file(Path::new(&file.path), &content, mode)?;
        eprintln!(
            "helper prepare: placed {}{}",
            file.path,
            if file.secret { " (secret)" } else { "" }
        );
    }
    Ok(())
}

/// Writes one file with `mode`, creating its parent directories.
pub(super) fn place_file(path: &Path, content: &[u8], mode: u32) -> Result<(), HelperError> {
    if path.is_dir() {
        return Err(HelperError::PathIsDirectory(path.to_path_buf()));
    }
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    let write_error = |source| HelperError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(write_error)?;
    // Why set the mode again, before writing: a file the checkout already has keeps its own
    // mode, and the umask narrows a new one; a secret must never sit in a readable file.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(write_error)?;
    file.write_all(content).map_err(write_error)
}

/// What a source's `ref` asks git to fetch.
#[derive(Debug, PartialEq, Eq)]
enum RefKind<'a> {
    /// No ref: the remote's HEAD.
    Head,
    /// A branch, a tag or a full ref, fetched by name.
    Named(&'a str),
    /// Looks like a commit (7–40 hex digits): fetched by name first, since it may also be a
    /// branch or the server may allow it, else from the whole repository.
    Commit(&'a str),
}

/// Classifies a source's `ref`.
fn classify_ref(reference: Option<&str>) -> RefKind<'_> {
    match reference {
        None | Some("") => RefKind::Head,
        Some(r) if (7..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit()) => {
            RefKind::Commit(r)
        }
        Some(r) => RefKind::Named(r),
    }
}

/// Checks the source out into `directory` (the repository's root) and returns the commit.
fn checkout(
    source: &ManifestSource,
    directory: &Path,
    inputs: &Path,
) -> Result<String, HelperError> {
    // Why: these become git arguments; a leading `-` would be read as an option.
    if source.url.starts_with('-') {
        return Err(HelperError::InvalidManifest(
            "the source URL starts with '-'".to_string(),
        ));
    }
    if source
        .reference
        .as_deref()
        .is_some_and(|r| r.starts_with('-'))
    {
        return Err(HelperError::InvalidManifest(
            "the source ref starts with '-'".to_string(),
        ));
    }
    let scratch = Scratch::create()?;
    let git = Git::new(source, directory, inputs, &scratch)?;
    git.run(&["init", "-q"])?;
    git.run(&["remote", "add", "origin", &source.url])?;
    let fetched = |name: &str| -> Result<(), HelperError> {
        git.run(&["fetch", "--depth", "1", "origin", name])?;
        git.run(&["checkout", "-q", "--detach", "FETCH_HEAD"])
    };
    match classify_ref(source.reference.as_deref()) {
        RefKind::Head => fetched("HEAD")?,
        RefKind::Named(name) => fetched(name)?,
        RefKind::Commit(sha) => {
            if fetched(sha).is_err() {
                // Why: many servers refuse a shallow fetch of a commit by its id, and an
                // abbreviated id cannot be fetched at all; the whole repository has it.
                eprintln!(
                    "helper prepare: fetching {sha} alone failed; fetching every branch and tag"
                );
                git.run(&["fetch", "--tags", "origin"])?;
                git.run(&["checkout", "-q", "--detach", sha])?;
            }
        }
    }
    let commit = git.output(&["rev-parse", "HEAD"])?;
    Ok(commit.trim().to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::runner::contract::MANIFEST_KEY;

    #[test]
    fn refs_are_classified() {
        assert_eq!(classify_ref(None), RefKind::Head);
        assert_eq!(classify_ref(Some("")), RefKind::Head);
        for named in [
            "main",
            "v1.2",
            "refs/heads/main",
            "refs/tags/v1",
            "refs/pull/1/head",
        ] {
            assert_eq!(classify_ref(Some(named)), RefKind::Named(named));
        }
        let full = "0123456789abcdef0123456789ABCDEF01234567";
        for commit in ["abc1234", full] {
            assert_eq!(classify_ref(Some(commit)), RefKind::Commit(commit));
        }
        // Too short, too long, not hex: names.
        for named in [
            "abc123",
            "0123456789abcdef0123456789abcdef012345678",
            "deadbeefx",
        ] {
            assert_eq!(classify_ref(Some(named)), RefKind::Named(named));
        }
    }
    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn files_are_placed_with_their_modes() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        fs::write(inputs.path().join("file.0"), "plain").expect("input");
        fs::write(inputs.path().join("secret-file.0"), "hidden").expect("input");
        let plain = shared.path().join("scripts/deep/a.tf");
        let secret = shared.path().join("s.json");
        // An existing readable file keeps neither its content nor its mode.
        fs::write(&secret, "old content that is longer").expect("existing");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o666)).expect("chmod");
        let files = vec![
            ManifestFile {
                key: "file.0".into(),
                path: plain.display().to_string(),
                secret: false,
            },
            ManifestFile {
                key: "secret-file.0".into(),
                path: secret.display().to_string(),
                secret: true,
            },
        ];
        place_files(&files, inputs.path()).expect("placed");
        assert_eq!(fs::read_to_string(&plain).expect("plain"), "plain");
        assert_eq!(fs::read_to_string(&secret).expect("secret"), "hidden");
        assert_eq!(mode(&plain), 0o644);
        assert_eq!(mode(&secret), 0o600);
    }

    #[test]
    fn placing_refuses_directories_relative_paths_and_odd_keys() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        fs::write(inputs.path().join("file.0"), "x").expect("input");
        let file = |key: &str, path: PathBuf| ManifestFile {
            key: key.into(),
            path: path.display().to_string(),
            secret: false,
        };
        let dir = shared.path().join("dir");
        fs::create_dir(&dir).expect("dir");
        let error = place_files(&[file("file.0", dir.clone())], inputs.path()).expect_err("dir");
        assert_eq!(
            error.to_string(),
            format!(
                "cannot place a file at {}: it is a directory",
                dir.display()
            )
        );
        let error = place_files(&[file("file.0", "rel/a".into())], inputs.path()).expect_err("rel");
        assert!(matches!(error, HelperError::InvalidManifest(_)), "{error}");
        let error = place_files(&[file("../file.0", shared.path().join("a"))], inputs.path())
            .expect_err("key");
        assert!(matches!(error, HelperError::InvalidManifest(_)), "{error}");
    }

    #[test]
    fn prepare_without_a_source_creates_the_scripts_directory() {
        let inputs = tempfile::tempdir().expect("temp dir");
        let results = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        let scripts = shared.path().join("scripts");
        let manifest = serde_json::json!({
            "shared_directory": shared.path(), "scripts_directory": scripts, "source": null,
            "files": [{"key": "file.0", "path": shared.path().join("other/f"), "secret": false}]
        });
        fs::write(inputs.path().join(MANIFEST_KEY), manifest.to_string()).expect("manifest");
        fs::write(inputs.path().join("file.0"), "f").expect("input");
        let layout = Layout {
            inputs: inputs.path().to_path_buf(),
            results: results.path().to_path_buf(),
        };
        run(&layout).expect("prepared");
        assert!(scripts.is_dir());
        assert_eq!(
            fs::read_to_string(shared.path().join("other/f")).expect("f"),
            "f"
        );
        assert!(!results.path().join(COMMIT_KEY).exists());
    }

    /// Runs git in `dir` for the test fixtures.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .expect("git is on PATH");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repository with two commits on `main` (the second tagged `v2`, the first reachable only
    /// through history) and an `infra` directory; returns its file:// URL and both commits.
    fn repository(dir: &Path) -> (String, String, String) {
        let work = dir.join("work");
        fs::create_dir_all(work.join("infra")).expect("dirs");
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["config", "user.email", "t@example.com"]);
        git(&work, &["config", "user.name", "t"]);
        fs::write(work.join("infra/run.sh"), "one").expect("file");
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        let first = git(&work, &["rev-parse", "HEAD"]);
        fs::write(work.join("infra/run.sh"), "two").expect("file");
        git(&work, &["commit", "-q", "-am", "two"]);
        git(&work, &["tag", "-a", "v2", "-m", "v2"]);
        let second = git(&work, &["rev-parse", "HEAD"]);
        git(dir, &["clone", "-q", "--bare", "work", "repo.git"]);
        (
            format!("file://{}", dir.join("repo.git").display()),
            first,
            second,
        )
    }

    /// Runs `prepare` for `reference`; returns the commit file's content and run.sh's.
    fn prepare_ref(
        url: &str,
        reference: Option<&str>,
        path: &str,
    ) -> Result<(String, String), HelperError> {
        let inputs = tempfile::tempdir().expect("temp dir");
        let results = tempfile::tempdir().expect("temp dir");
        let shared = tempfile::tempdir().expect("temp dir");
        let manifest = serde_json::json!({
            "shared_directory": shared.path(), "scripts_directory": shared.path().join(path),
            "source": {"url": url, "ref": reference, "path": path}, "files": []
        });
        fs::write(inputs.path().join(MANIFEST_KEY), manifest.to_string()).expect("manifest");
        let layout = Layout {
            inputs: inputs.path().to_path_buf(),
            results: results.path().to_path_buf(),
        };
        run(&layout)?;
        let commit = fs::read_to_string(results.path().join(COMMIT_KEY)).expect("commit");
        let script = fs::read_to_string(shared.path().join("infra/run.sh")).expect("run.sh");
        Ok((commit.trim().to_string(), script))
    }

    #[test]
    fn every_kind_of_ref_is_checked_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, first, second) = repository(dir.path());
        let two = (second.clone(), "two".to_string());
        let one = (first.clone(), "one".to_string());
        for reference in [
            None,
            Some("main"),
            Some("v2"),
            Some("refs/heads/main"),
            Some("refs/tags/v2"),
        ] {
            assert_eq!(
                prepare_ref(&url, reference, "infra").expect("checked out"),
                two,
                "{reference:?}"
            );
        }
        // A commit behind the tip, full and abbreviated (the latter only from a full fetch).
        assert_eq!(
            prepare_ref(&url, Some(&first), "infra").expect("full id"),
            one
        );
        assert_eq!(
            prepare_ref(&url, Some(&first[..9]), "infra").expect("short id"),
            one
        );

        let error = prepare_ref(&url, Some("nope"), "infra").expect_err("no such ref");
        let text = crate::text::error_chain(&error);
        assert!(
            text.starts_with("`git fetch --depth 1 origin nope` failed"),
            "{text}"
        );
        let error = prepare_ref(&url, None, "missing").expect_err("no such path");
        assert_eq!(
            error.to_string(),
            format!("source.path missing is not in the repository at {second}")
        );
    }
}
