//! One store snapshot prepared for pushing: indexed once, each shared part compiled and
//! serialized once, every proxy's body assembled from those pieces.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use strait_api::Resource;

use super::Compiler;
use super::body::{Body, SharedJson};
use crate::compile::{PieceCache, ProxyNode, ShareKey, SnapshotCompiler};
use crate::store::Snapshot;

/// The snapshot's resources, as the compiler wants them.
#[derive(Debug, Clone)]
struct Shared(Arc<Vec<Arc<Resource>>>);

impl AsRef<[Arc<Resource>]> for Shared {
    fn as_ref(&self) -> &[Arc<Resource>] {
        &self.0
    }
}

enum How {
    /// The real compiler, indexed for this snapshot.
    Indexed(Box<SnapshotCompiler<Shared>>),
    /// A caller's compiler (tests): called per proxy, nothing shared.
    Custom(Compiler, Arc<Vec<Arc<Resource>>>),
}

/// A snapshot ready to produce any proxy's body.
pub(crate) struct Prepared {
    /// The store revision it reflects.
    pub revision: u64,
    how: How,
    shared: Mutex<HashMap<ShareKey, Arc<SharedJson>>>,
    /// The per-service pieces the shared parts were made of, for the next snapshot to reuse.
    pieces: Mutex<PieceCache>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Indexes `snapshot` (or wraps the custom compiler).
    /// `previous`, an older prepared snapshot, lends its registry when the workloads and
    /// services did not change.
    pub fn new(snapshot: &Snapshot, custom: Option<&Compiler>, previous: Option<&Prepared>) -> Prepared {
        let how = match custom {
            Some(c) => How::Custom(c.clone(), snapshot.resources.clone()),
            None => {
                let older = previous.and_then(|p| match &p.how {
                    How::Indexed(c) => Some(&**c),
                    How::Custom(..) => None,
                });
                How::Indexed(Box::new(SnapshotCompiler::new_after(
                    Shared(snapshot.resources.clone()),
                    older,
                )))
            }
        };
        Prepared {
            revision: snapshot.revision,
            how,
            shared: Mutex::new(HashMap::new()),
            pieces: Mutex::new(PieceCache::default()),
        }
    }

    fn shared_map(&self) -> std::sync::MutexGuard<'_, HashMap<ShareKey, Arc<SharedJson>>> {
        // Only inserts happen under this lock; a poisoned map is still consistent.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compiles the shared part of every key among `nodes` that is not known yet. A part equal to `previous`'s is replaced by `previous`'s, so bodies
    /// that did not change compare equal by pointer.
    pub fn share(&self, nodes: &[ProxyNode], previous: Option<&Prepared>) {
        let How::Indexed(compiler) = &self.how else { return };
        let missing: Vec<ShareKey> = {
            let known = self.shared_map();
            let keys: BTreeSet<ShareKey> = nodes.iter().filter_map(|n| compiler.share_key(n)).collect();
            keys.into_iter().filter(|k| !known.contains_key(k)).collect()
        };
        if missing.is_empty() {
            return;
        }
        // One key after the other: after the first, most per-service pieces come from the
        // cache; and from the previous snapshot's pieces, whatever did not change.
        let mut pieces = self.pieces.lock().unwrap_or_else(|p| p.into_inner());
        let old = previous.map(|p| p.shared_map().clone()).unwrap_or_default();
        let old_pieces = previous.map(|p| p.pieces.lock().unwrap_or_else(|p| p.into_inner()));
        let older = match (previous.map(|p| &p.how), old_pieces.as_deref()) {
            (Some(How::Indexed(c)), Some(pieces)) => Some((&**c, pieces)),
            _ => None,
        };
        let computed: Vec<(ShareKey, Arc<SharedJson>)> = missing
            .into_iter()
            .map(|k| {
                let json = compiler.shared_sidecar_json_reusing(&k, &mut pieces, older);
                let json = SharedJson::from_json(json, old.get(&k).map(|p| &**p));
                (k, Arc::new(json))
            })
            .collect();
        drop(old_pieces);
        drop(pieces);
        let mut known = self.shared_map();
        for (key, json) in computed {
            let json = match old.get(&key) {
                Some(prev) if **prev == *json => prev.clone(),
                _ => json,
            };
            known.entry(key).or_insert(json);
        }
    }

    /// The shared JSON for `key`, compiled now if [`Prepared::share`] did not (a proxy
    /// connecting with a key nobody had). Its pieces go into this snapshot's cache, as
    /// [`Prepared::share`]'s do: the next snapshot reuses them. With a throwaway cache, the
    /// first change after proxies connected recompiled every service's pieces from scratch,
    /// and was the slowest round of every control-plane benchmark (61–128 ms against ~45).
    fn shared_for(&self, compiler: &SnapshotCompiler<Shared>, key: &ShareKey) -> Arc<SharedJson> {
        if let Some(json) = self.shared_map().get(key) {
            return json.clone();
        }
        let mut pieces = self.pieces.lock().unwrap_or_else(|p| p.into_inner());
        // Another connecting proxy may have compiled it while this one waited for the cache.
        if let Some(json) = self.shared_map().get(key) {
            return json.clone();
        }
        let json = Arc::new(SharedJson::from_json(
            compiler.shared_sidecar_json(key, &mut pieces),
            None,
        ));
        drop(pieces);
        self.shared_map().entry(key.clone()).or_insert(json).clone()
    }

    /// Whether [`Prepared::body_for`] is cheap for `node`: its shared part is ready (gateways
    /// and custom compilers compile per proxy, so they are not).
    pub fn ready_for(&self, node: &ProxyNode) -> bool {
        match &self.how {
            How::Custom(..) => false,
            How::Indexed(compiler) => compiler
                .share_key(node)
                .is_some_and(|key| self.shared_map().contains_key(&key)),
        }
    }

    /// `node`'s configuration body. `last`, the body the proxy was sent last, is reused (or its
    /// own bytes are) when the proxy's own parts did not change: most changes only touch the
    /// shared part, and cutting a body out of its serialized skeleton costs more than the rest
    /// of a proxy's share of a change.
    pub fn body_for(&self, node: &ProxyNode, last: Option<&Arc<Body>>) -> Arc<Body> {
        Arc::new(match &self.how {
            How::Custom(compile, resources) => Body::whole(compile(resources, node)),
            How::Indexed(compiler) => match compiler.share_key(node) {
                None => Body::whole(compiler.compile(node)),
                Some(key) => {
                    let shared = self.shared_for(compiler, &key);
                    let own = compiler.sidecar_own(node);
                    if let Some(last) = last
                        && let Some(parts) = &last.parts
                        && *parts.own == own
                    {
                        if Arc::ptr_eq(&parts.shared, &shared) {
                            return last.clone();
                        }
                        if let Some(body) = last.with_shared(&shared) {
                            return Arc::new(body);
                        }
                    }
                    Body::sidecar(&shared, own).unwrap_or_else(|| Body::whole(compiler.compile(node)))
                }
            },
        })
    }

    /// The shared JSON compiled so far for `node`'s key (tests).
    #[cfg(test)]
    pub fn shared_of(&self, node: &ProxyNode) -> Option<Arc<SharedJson>> {
        let How::Indexed(compiler) = &self.how else {
            return None;
        };
        let key = compiler.share_key(node)?;
        self.shared_map().get(&key).cloned()
    }

    /// Bytes of shared JSON held (for the log).
    pub fn shared_bytes(&self) -> usize {
        self.shared_map().values().map(|j| j.len()).sum()
    }

    /// Bytes of the shared pieces' gzip members (for the log).
    pub fn shared_gzip_bytes(&self) -> usize {
        self.shared_map().values().map(|j| j.gzip_len()).sum()
    }
}
