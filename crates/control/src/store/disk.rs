//! Persistence of the store: one JSON file per resource in `<state dir>/resources/`, plus the
//! revision counter in `<state dir>/revision`.
//!
//! Every write goes to a temporary file that is fsynced, renamed over the target and followed by
//! an fsync of the directory, so a crash leaves either the old or the new file, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use strait_api::{Document, Resource, parse_documents};

use super::{ResourceKey, StoreError};

/// Suffix of files being written; leftovers from a crash are removed at load.
const TMP_SUFFIX: &str = ".tmp";

/// The on-disk half of the store.
#[derive(Debug)]
pub(crate) struct Disk {
    root: PathBuf,
    resources: PathBuf,
}

impl Disk {
    /// Creates the directories if needed.
    pub(crate) fn open(root: &Path) -> Result<Self, StoreError> {
        let resources = root.join("resources");
        fs::create_dir_all(&resources).map_err(|source| StoreError::Io {
            path: resources.clone(),
            action: "create the state directory",
            source,
        })?;
        Ok(Disk {
            root: root.to_path_buf(),
            resources,
        })
    }

    /// Reads every stored resource and the revision counter. Unreadable resource files are
    /// skipped with a warning and left in place so that nothing is lost.
    pub(crate) fn load(&self) -> Result<(Vec<Resource>, u64), StoreError> {
        let read_err = |path: &Path, source| StoreError::Io {
            path: path.to_path_buf(),
            action: "read",
            source,
        };
        let mut resources = Vec::new();
        let entries = fs::read_dir(&self.resources).map_err(|e| read_err(&self.resources, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| read_err(&self.resources, e))?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(TMP_SUFFIX) {
                // A write that crashed before its rename: the previous file (if any) is intact.
                let _ = fs::remove_file(&path);
                continue;
            }
            if !file_name.ends_with(".json") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
            match parse_documents(&text, &path.display().to_string()) {
                Ok(docs) => match docs.into_iter().next() {
                    Some(Document::Istio(r)) => resources.push(r),
                    _ => {
                        tracing::warn!(path = %path.display(), "stored file holds no Istio resource; skipped")
                    }
                },
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(path = %path.display(), "stored resource no longer loads, skipped: {e}");
                    }
                }
            }
        }
        let revision_path = self.root.join("revision");
        let revision = match fs::read_to_string(&revision_path) {
            Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(read_err(&revision_path, e)),
        };
        Ok((resources, revision))
    }

    /// Writes one resource atomically.
    pub(crate) fn write(&self, resource: &Resource) -> Result<(), StoreError> {
        let key = ResourceKey::of(resource);
        let bytes = serde_json::to_vec_pretty(resource).map_err(|e| StoreError::Io {
            path: self.path_of(&key),
            action: "encode",
            source: io::Error::other(e),
        })?;
        write_atomic(&self.resources, &file_name(&key), &bytes)
    }

    /// Removes one resource's file; a missing file is not an error.
    pub(crate) fn remove(&self, key: &ResourceKey) -> Result<(), StoreError> {
        let path = self.path_of(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StoreError::Io {
                    path,
                    action: "remove",
                    source,
                });
            }
        }
        sync_dir(&self.resources)
    }

    /// Records the revision counter, so that versions never go backwards across restarts even
    /// when the newest change was a deletion.
    pub(crate) fn write_revision(&self, revision: u64) -> Result<(), StoreError> {
        write_atomic(&self.root, "revision", format!("{revision}\n").as_bytes())
    }

    fn path_of(&self, key: &ResourceKey) -> PathBuf {
        self.resources.join(file_name(key))
    }
}

/// `virtualservices.default.reviews.json`. Unique because plurals and namespaces have no dots
/// and names are checked against RFC 1123 before they get here.
fn file_name(key: &ResourceKey) -> String {
    format!("{}.{}.{}.json", key.kind.plural(), key.namespace, key.name)
}

/// Temp file, fsync, rename, fsync of the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}{TMP_SUFFIX}"));
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, action, source }
    };
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(io_err("replace", &target))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Makes a rename or removal durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            action: "sync",
            source,
        })
}
