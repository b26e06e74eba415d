//! The `--data` file: loading it on start and saving it atomically (temp file + rename) as pretty JSON
//! after every change and on shutdown, and removing on start the temp files that a sandbox killed
//! during a save left behind.
//!
//! Why every save rewrites and syncs the whole file: a change the sandbox has answered is on disk
//! even if the sandbox is killed with SIGKILL right after (as test harnesses do), with no journal to
//! replay. The cost grows with the file (see `--help`); the sandbox holds test data, not much.
//!
//! The file holds every org's definitions, the simulated Active Resources and the primary store's
//! secret values in plain text (it is a sandbox), plus the id counter so ids stay unique across
//! restarts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::model::Orgs;

/// The format version written into the file.
const FORMAT: u32 = 1;

/// Why loading or saving failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading, writing or renaming failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a sandbox data file.
    #[error("{path} is not a humanitec-sandbox data file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The file has a format this build doesn't know.
    #[error("{path} has data format {found}; this build reads format {FORMAT}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The format found.
        found: u32,
    },
}

/// The file's content, as read.
#[derive(Debug, Deserialize)]
pub(crate) struct DataFile {
    /// Format version.
    format: u32,
    /// Ids generated so far.
    #[serde(default)]
    pub(crate) counter: u64,
    /// The orgs.
    #[serde(default)]
    pub(crate) orgs: Orgs,
}

/// The file's content, as written (borrowing the live store).
#[derive(Serialize)]
struct DataFileRef<'a> {
    /// Format version.
    format: u32,
    /// Ids generated so far.
    counter: u64,
    /// The orgs.
    orgs: &'a Orgs,
}

/// Loads `path`; `Ok(None)` when it doesn't exist yet.
pub(crate) async fn load(path: &Path) -> Result<Option<DataFile>, PersistError> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Io {
                action: "cannot read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let data: DataFile = serde_json::from_slice(&bytes).map_err(|source| PersistError::Parse {
        path: path.to_owned(),
        source,
    })?;
    if data.format != FORMAT {
        return Err(PersistError::Format {
            path: path.to_owned(),
            found: data.format,
        });
    }
    Ok(Some(data))
}

/// The name of the temp file a save by process `pid` writes next to `path`.
fn temp_path(path: &Path, pid: u32) -> PathBuf {
    let mut temp_name = path.file_name().unwrap_or_default().to_owned();
    temp_name.push(format!(".tmp-{pid}"));
    path.with_file_name(temp_name)
}

/// Removes the temp files that earlier sandboxes left next to `path` when they were killed during a
/// save (`<name>.tmp-<pid>`, nothing else); answers the files removed.
///
/// Why a file whose process still runs is kept (where `/proc` tells): it may be another sandbox's
/// save in progress, on the same file. Ours (the same pid, from an earlier process) is stale: this
/// one has not saved yet.
pub(crate) async fn remove_stale_temps(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{name}.tmp-");
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return Vec::new();
    };
    let own = std::process::id();
    let proc_known = Path::new("/proc/self").exists();
    let mut removed = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid != own && proc_known && Path::new(&format!("/proc/{pid}")).exists();
        if alive {
            continue;
        }
        let temp = temp_path(path, pid);
        match tokio::fs::remove_file(&temp).await {
            Ok(()) => removed.push(temp),
            Err(err) => eprintln!(
                "humanitec-sandbox: cannot remove stale temp file {}: {err}",
                temp.display()
            ),
        }
    }
    removed
}

/// Saves atomically: a temp file next to `path` is written and synced, then renamed over it.
pub(crate) async fn save(path: &Path, counter: u64, orgs: &Orgs) -> Result<(), PersistError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| PersistError::Io {
            action,
            path: p,
            source,
        }
    };
    let bytes = serde_json::to_vec_pretty(&DataFileRef {
        format: FORMAT,
        counter,
        orgs,
    })
    .map_err(|source| PersistError::Parse {
        path: path.to_owned(),
        source,
    })?;
    // Why: the temp file must sit in the same directory so the rename is atomic (same file system).
    let temp = temp_path(path, std::process::id());
    let mut file = tokio::fs::File::create(&temp)
        .await
        .map_err(io("cannot create", &temp))?;
    file.write_all(&bytes)
        .await
        .map_err(io("cannot write", &temp))?;
    file.write_all(b"\n")
        .await
        .map_err(io("cannot write", &temp))?;
    file.sync_all().await.map_err(io("cannot sync", &temp))?;
    drop(file);
    tokio::fs::rename(&temp, path)
        .await
        .map_err(io("cannot rename temp file onto", path))
}
