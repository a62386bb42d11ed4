//! The config store: every Istio resource, keyed by (kind, namespace, name), versioned like the
//! Kubernetes API server versions objects, persisted in a state directory and watched by the push
//! server.
//!
//! Writes are all-or-nothing: an `apply` of forty documents with one invalid resource changes
//! nothing and reports every problem, because a half-applied routing change is worse than none.

mod disk;
pub mod identify;
pub mod names;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strait_api::{ApiError, Document, Kind, Resource, parse_documents};
use tokio::sync::watch;

use disk::Disk;

/// The identity of a stored resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceKey {
    /// Kind.
    pub kind: Kind,
    /// Namespace (never empty: `default` when the manifest has none).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ResourceKey {
    /// Builds a key.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a resource, with the default namespace applied.
    pub fn of(resource: &Resource) -> Self {
        ResourceKey::new(resource.kind, resource.namespace(), resource.name())
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What a write did to one resource, in kubectl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Did not exist before.
    Created,
    /// Existed and changed (spec, labels or annotations).
    Configured,
    /// Existed with the same spec, labels and annotations: no new revision.
    Unchanged,
    /// Removed.
    Deleted,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
        })
    }
}

/// The outcome for one resource of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Kind.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What happened.
    pub action: Action,
}

impl ActionResult {
    fn new(key: &ResourceKey, action: Action) -> Self {
        ActionResult {
            kind: key.kind,
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            action,
        }
    }
}

/// The outcome of an apply or a delete by documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOutcome {
    /// One entry per Istio resource in the input, in input order.
    pub results: Vec<ActionResult>,
    /// Informational lines, e.g. Kubernetes objects that were skipped.
    pub notes: Vec<String>,
    /// `istioctl analyze` findings about the written resources (e.g. IST0101 for a route to a
    /// subset no DestinationRule defines). Warnings never block a write, as in Istio.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input has parse or validation errors; nothing was changed.
    #[error("{} error(s) in the input; nothing was changed:\n{}", .0.len(), join_lines(.0))]
    Invalid(Vec<ApiError>),
    /// No such resource.
    #[error("{}.{} \"{}\" not found in namespace \"{}\"", .0.kind.plural(), .0.kind.group(), .0.name, .0.namespace)]
    NotFound(ResourceKey),
    /// Resources named in a delete do not exist; the others were deleted.
    #[error("{} resource(s) not found", .missing.len())]
    PartlyNotFound {
        /// What was deleted.
        deleted: WriteOutcome,
        /// What did not exist.
        missing: Vec<ResourceKey>,
    },
    /// The state directory could not be read or written.
    #[error("cannot {action} {}: {source}; check the state directory's permissions and free space", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn join_lines(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A consistent view of the store at one revision, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The store revision this view reflects.
    pub revision: u64,
    /// Every resource, sorted by (kind, namespace, name). Each is shared with the store and
    /// with older snapshots, so that a write makes a new snapshot without copying every
    /// resource (~15 ms at 1,000 services, on the path from apply to push).
    pub resources: Arc<Vec<Arc<Resource>>>,
}

#[derive(Debug, Default)]
struct State {
    resources: BTreeMap<ResourceKey, Arc<Resource>>,
    revision: u64,
    snapshot: Snapshot,
}

impl State {
    fn refresh_snapshot(&mut self) {
        self.snapshot = Snapshot {
            revision: self.revision,
            resources: Arc::new(self.resources.values().cloned().collect()),
        };
    }
}

/// The config store. Cheap to share behind an `Arc`; every method is synchronous and short
/// (file writes included), so async callers run writes in `spawn_blocking`.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    disk: Option<Disk>,
    changes: watch::Sender<u64>,
}

impl Store {
    /// A store that keeps nothing on disk (tests, `--dry-run` tooling).
    pub fn in_memory() -> Self {
        let mut state = State::default();
        state.refresh_snapshot();
        Store {
            state: Mutex::new(state),
            disk: None,
            changes: watch::Sender::new(0),
        }
    }

    /// Opens (creating if needed) a store persisted in `dir`, loading what it holds.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let disk = Disk::open(dir)?;
        let (loaded, mut revision) = disk.load()?;
        let mut state = State::default();
        for resource in loaded {
            let rv = resource
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            revision = revision.max(rv);
            state
                .resources
                .insert(ResourceKey::of(&resource), Arc::new(resource));
        }
        state.revision = revision;
        state.refresh_snapshot();
        Ok(Store {
            state: Mutex::new(state),
            disk: Some(disk),
            changes: watch::Sender::new(revision),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated (updates are plain
        // assignments after all fallible work), so a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parses `text` (YAML or JSON, many documents) and applies it; see [`Store::apply`].
    pub fn apply_text(&self, text: &str, source: &str, dry_run: bool) -> Result<WriteOutcome, StoreError> {
        let docs = parse_documents(text, source).map_err(StoreError::Invalid)?;
        self.apply(docs, source, dry_run)
    }

    /// Creates or updates every Istio resource in `docs`, all or nothing. Kubernetes objects are
    /// skipped with a note. With `dry_run` the outcome is computed and nothing is changed.
    pub fn apply(
        &self,
        docs: Vec<Document>,
        source: &str,
        dry_run: bool,
    ) -> Result<WriteOutcome, StoreError> {
        let errors = check_documents(&docs, source);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let mut state = self.lock();
        let mut outcome = WriteOutcome::default();
        let mut pending: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
        let mut revision = state.revision;
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        for doc in docs {
            let mut resource = match doc {
                Document::Istio(r) => r,
                Document::Kubernetes(obj) => {
                    outcome.notes.push(format!(
                        "{}/{} skipped: Kubernetes {} objects are not stored by the control plane",
                        obj.kind.to_ascii_lowercase(),
                        obj.metadata.name,
                        obj.kind
                    ));
                    continue;
                }
            };
            let key = ResourceKey::of(&resource);
            resource.metadata.namespace = Some(key.namespace.clone());
            let previous = pending
                .get(&key)
                .or_else(|| state.resources.get(&key).map(|r| &**r));
            let action = match previous {
                None => {
                    revision += 1;
                    let meta = &mut resource.metadata;
                    meta.resource_version = Some(revision.to_string());
                    meta.generation = Some(1);
                    meta.creation_timestamp = Some(now.clone());
                    meta.uid = Some(new_uid());
                    Action::Created
                }
                Some(old) if same_content(old, &resource) => Action::Unchanged,
                Some(old) => {
                    revision += 1;
                    let spec_changed = old.spec != resource.spec;
                    let old_meta = old.metadata.clone();
                    let meta = &mut resource.metadata;
                    meta.resource_version = Some(revision.to_string());
                    meta.generation = Some(old_meta.generation.unwrap_or(1) + i64::from(spec_changed));
                    meta.creation_timestamp = old_meta.creation_timestamp;
                    meta.uid = old_meta.uid;
                    Action::Configured
                }
            };
            outcome.results.push(ActionResult::new(&key, action));
            if action != Action::Unchanged {
                pending.insert(key, resource);
            }
        }
        if dry_run || pending.is_empty() {
            return Ok(outcome);
        }
        if let Some(disk) = &self.disk {
            persist(disk, &state, &pending, revision)?;
        }
        state
            .resources
            .extend(pending.into_iter().map(|(k, r)| (k, Arc::new(r))));
        state.revision = revision;
        state.refresh_snapshot();
        drop(state);
        self.changes.send_replace(revision);
        Ok(outcome)
    }

    /// Deletes one resource, returning it.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<Resource, StoreError> {
        let key = ResourceKey::new(kind, namespace, name);
        let mut state = self.lock();
        if !state.resources.contains_key(&key) {
            return Err(StoreError::NotFound(key));
        }
        let revision = state.revision + 1;
        if let Some(disk) = &self.disk {
            disk.remove(&key)?;
            disk.write_revision(revision)?;
        }
        let removed = state
            .resources
            .remove(&key)
            .ok_or_else(|| StoreError::NotFound(key.clone()))?;
        state.revision = revision;
        state.refresh_snapshot();
        drop(state);
        self.changes.send_replace(revision);
        Ok(Arc::unwrap_or_clone(removed))
    }

    /// Deletes every Istio resource named in `text` (like `kubectl delete -f`). Resources that do
    /// not exist are reported in [`StoreError::PartlyNotFound`]; the others are still deleted.
    pub fn delete_text(&self, text: &str, source: &str) -> Result<WriteOutcome, StoreError> {
        let (keys, notes) = identify::identify_documents(text, source).map_err(StoreError::Invalid)?;
        let mut outcome = WriteOutcome {
            notes,
            ..WriteOutcome::default()
        };
        let mut missing = Vec::new();
        for key in keys {
            match self.delete(key.kind, &key.namespace, &key.name) {
                Ok(_) => outcome.results.push(ActionResult::new(&key, Action::Deleted)),
                Err(StoreError::NotFound(key)) => missing.push(key),
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            Ok(outcome)
        } else {
            Err(StoreError::PartlyNotFound {
                deleted: outcome,
                missing,
            })
        }
    }

    /// One resource.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Resource> {
        self.lock()
            .resources
            .get(&ResourceKey::new(kind, namespace, name))
            .map(|r| Resource::clone(r))
    }

    /// Resources of one kind (or all), in one namespace (or all), sorted by kind, namespace, name.
    pub fn list(&self, kind: Option<Kind>, namespace: Option<&str>) -> Vec<Resource> {
        self.lock()
            .resources
            .iter()
            .filter(|(k, _)| kind.is_none_or(|kind| k.kind == kind))
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, r)| Resource::clone(r))
            .collect()
    }

    /// Every resource, sorted by (kind, namespace, name).
    pub fn snapshot(&self) -> Vec<Arc<Resource>> {
        self.shared_snapshot().resources.as_ref().clone()
    }

    /// Every resource with the revision it reflects, without copying (shared with other readers).
    pub fn shared_snapshot(&self) -> Snapshot {
        self.lock().snapshot.clone()
    }

    /// The current revision: the `resourceVersion` of the newest write (deletes count too).
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// A receiver that sees the revision after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Runs validation again on typed documents (they may not come from `parse_documents`) and
/// checks names, which end up in file names.
fn check_documents(docs: &[Document], source: &str) -> Vec<ApiError> {
    let mut errors = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let Document::Istio(r) = doc else { continue };
        let error = |path: &str, message: String| ApiError {
            source: source.to_string(),
            document: i + 1,
            resource: Some(r.display_name()),
            path: path.to_string(),
            message,
        };
        if let Some(m) = names::name_problem(r.name()) {
            errors.push(error("metadata.name", m));
        }
        if let Some(m) = names::namespace_problem(r.namespace()) {
            errors.push(error("metadata.namespace", m));
        }
        errors.extend(
            strait_api::validate(r)
                .into_iter()
                .map(|f| error(&f.path, f.message)),
        );
    }
    errors
}

/// Same spec, labels and annotations: applying it again is a no-op (kubectl's `unchanged`).
fn same_content(old: &Resource, new: &Resource) -> bool {
    old.spec == new.spec
        && old.metadata.labels == new.metadata.labels
        && old.metadata.annotations == new.metadata.annotations
}

/// Writes every pending resource; on failure restores the files already written, so the disk
/// matches the (unchanged) memory state.
fn persist(
    disk: &Disk,
    state: &State,
    pending: &BTreeMap<ResourceKey, Resource>,
    revision: u64,
) -> Result<(), StoreError> {
    let mut written: Vec<&ResourceKey> = Vec::new();
    let mut result = Ok(());
    for (key, resource) in pending {
        if let Err(e) = disk.write(resource) {
            result = Err(e);
            break;
        }
        written.push(key);
    }
    if result.is_ok() {
        result = disk.write_revision(revision);
    }
    if result.is_err() {
        for key in written {
            let _ = match state.resources.get(key) {
                Some(old) => disk.write(old),
                None => disk.remove(key),
            };
        }
    }
    result
}

/// A random RFC 4122 version-4 UUID, as Kubernetes gives every object.
fn new_uid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests;
