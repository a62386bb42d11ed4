//! The push server: one gRPC stream per proxy, a new configuration version whenever (and only
//! when) that proxy's compiled configuration changes, and the ACK/NACK bookkeeping that
//! `strait proxy-status` shows.
//!
//! Compilation happens once per store change (in one background task), never per request: the
//! snapshot is indexed once, the part of a sidecar's configuration that only depends on its
//! namespace (and `sourceLabels`) is compiled and serialized once per such key and shared by
//! every proxy, and each proxy only adds its own listeners and inbound side. A proxy's push is
//! skipped when its configuration is byte-identical to what it was last sent, so unrelated
//! changes cause no churn in the data plane. A body is never rendered per proxy: the stream
//! writes the shared pieces themselves, so memory does not grow with the number of proxies
//! times the size of a configuration.
//!
//! A proxy that announces deltas gets, once it has acknowledged a version, each change as a
//! [`ConfigDelta`](strait_mesh::ConfigDelta) over that version (see [`delta`]): one changed
//! VirtualService is a few KB for each proxy instead of the whole configuration. A delta the
//! proxy refuses is followed by the whole configuration of the same version.

mod body;
mod delta;
mod grpc;
mod prepared;
mod writer;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use body::Body;
pub use grpc::PushService;
use prepared::Prepared;
use writer::InFlight;

use serde::{Deserialize, Serialize};
use strait_api::Resource;
use strait_mesh::ProxyConfig;
use strait_mesh::pb::{Ack, Hello, Nack, ProxyMessage, proxy_message};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use crate::compile::{ProxyNode, ProxyRole};
use crate::store::{Snapshot, Store};

/// What `GET /api/v1/proxies` and `strait proxy-status` show for one connected proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// Proxy id from its Hello (`<workload>.<namespace>`).
    pub id: String,
    /// `sidecar` or `gateway`.
    pub role: String,
    /// Namespace of the workload.
    pub namespace: String,
    /// When the current stream was opened, RFC 3339 UTC.
    pub connected_since: String,
    /// The last version pushed.
    pub sent_version: Option<String>,
    /// The last version the proxy acknowledged: what it runs.
    pub acked_version: Option<String>,
    /// The last version the proxy rejected (kept after later ACKs, for the record; the proxy
    /// is in trouble only while this equals `sent_version`).
    pub nack_version: Option<String>,
    /// Why it rejected it.
    pub nack_reason: Option<String>,
}

/// What a connection's writer is asked to send.
#[derive(Debug)]
enum Outgoing {
    /// A configuration version, rendered when written: as a delta over the given (version,
    /// body) the proxy runs, when there is one and the delta is worth it, else whole.
    Push(u64, Arc<Body>, Option<(u64, Arc<Body>)>),
    /// End the stream with this status.
    Fail(Status),
}

type PushSender = mpsc::UnboundedSender<Outgoing>;

/// The `ConfigPush.encoding` (and `Hello.accept_encodings` entry) of gzip bodies.
const GZIP: &str = "gzip";

/// Versions kept awaiting an answer per proxy; older ones are forgotten (an answer to them is
/// then ignored, and the newer version's answer settles the proxy's state anyway).
const MAX_PENDING: usize = 8;

/// Plain-JSON pushes in flight at once over all streams, unless `STRAIT_PUSH_CONCURRENCY` says
/// otherwise (a tuning knob for measurements). A gzip push costs a [`GZIP_PUSH_SHARE`] of a
/// plain one's permit (see [`writer`]).
const CONCURRENT_PUSHES: usize = 16;

/// Gzip pushes in flight per plain one: gzip bodies are ~30× smaller, and with the plain bound
/// (16) a round of 1,000 small pushes waited on ACK round trips (p99 856 ms at 1,000 proxies;
/// 304 ms with 128 in flight, 264 ms unbounded).
const GZIP_PUSH_SHARE: u32 = 16;

fn concurrent_pushes() -> usize {
    std::env::var("STRAIT_PUSH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CONCURRENT_PUSHES)
}

/// One open stream.
#[derive(Debug)]
struct Connection {
    node: ProxyNode,
    connected_since: SystemTime,
    tx: PushSender,
    /// The proxy's Hello said it applies deltas.
    accepts_delta: bool,
    /// Store revision of the newest compilation applied to this connection.
    compiled_revision: u64,
    /// The last pushed configuration, to detect changes.
    last: Option<Arc<Body>>,
    sent_version: Option<u64>,
    /// Pushed and not yet answered, oldest first (with whether it was offered as a delta).
    pending: Vec<(u64, Arc<Body>, bool)>,
    acked: Option<(u64, Arc<Body>)>,
    nack: Option<(u64, String)>,
}

impl Connection {
    /// Pushes `body` as version `revision`, if it differs from the last push.
    fn offer(&mut self, revision: u64, body: Arc<Body>) {
        if revision < self.compiled_revision {
            return;
        }
        self.compiled_revision = revision;
        if self.sent_version.is_some() && self.last.as_ref().is_some_and(|last| last.same_as(&body)) {
            return;
        }
        // A delta goes over what the proxy runs: its acknowledged version, when that is also
        // the last one sent and nothing is awaiting an answer (else the proxy may be running
        // something else by the time the delta arrives).
        let base = self
            .acked
            .clone()
            .filter(|(v, _)| self.accepts_delta && self.pending.is_empty() && self.sent_version == Some(*v));
        self.send(revision, body, base);
    }

    fn send(&mut self, revision: u64, body: Arc<Body>, base: Option<(u64, Arc<Body>)>) {
        let delta = base.is_some();
        if self
            .tx
            .send(Outgoing::Push(revision, body.clone(), base))
            .is_err()
        {
            // The stream is closing; its reader task removes the connection.
            return;
        }
        self.last = Some(body.clone());
        self.sent_version = Some(revision);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push((revision, body, delta));
    }

    fn status(&self) -> ProxyStatus {
        ProxyStatus {
            id: self.node.id.clone(),
            role: match self.node.role {
                ProxyRole::Gateway => "gateway".into(),
                ProxyRole::Sidecar => "sidecar".into(),
            },
            namespace: self.node.namespace.clone(),
            connected_since: humantime::format_rfc3339_seconds(self.connected_since).to_string(),
            sent_version: self.sent_version.map(|v| v.to_string()),
            acked_version: self.acked.as_ref().map(|(v, _)| v.to_string()),
            nack_version: self.nack.as_ref().map(|(v, _)| v.to_string()),
            nack_reason: self.nack.as_ref().map(|(_, r)| r.clone()),
        }
    }
}

#[derive(Debug, Default)]
struct Connections {
    next_id: u64,
    open: BTreeMap<u64, Connection>,
}

/// The function that turns a store snapshot into one proxy's configuration.
pub type Compiler = Arc<dyn Fn(&[Arc<Resource>], &ProxyNode) -> ProxyConfig + Send + Sync>;

/// The push server's state: connected proxies and what each was sent and runs.
pub struct PushServer {
    store: Arc<Store>,
    /// `None`: the real compiler, through [`SnapshotCompiler`](crate::compile::SnapshotCompiler).
    compiler: Option<Compiler>,
    connections: Mutex<Connections>,
    /// The newest prepared snapshot, shared by the watcher and connecting proxies.
    prepared: Mutex<Option<Arc<Prepared>>>,
    /// Permits for pushes in flight (see [`writer`]).
    writes: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for PushServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushServer")
            .field("connections", &self.lock().open.len())
            .finish_non_exhaustive()
    }
}

impl PushServer {
    /// A push server over `store`. Call [`PushServer::spawn_watcher`] to push on store changes.
    pub fn new(store: Arc<Store>) -> Arc<Self> {
        Self::build(store, None)
    }

    /// A push server with another compiler: tests use one with a known outcome, and callers
    /// can wrap [`compile`] to add inputs (e.g. a registry snapshot).
    /// It is called once per proxy and change (nothing is shared between proxies).
    pub fn with_compiler(store: Arc<Store>, compiler: Compiler) -> Arc<Self> {
        Self::build(store, Some(compiler))
    }

    fn build(store: Arc<Store>, compiler: Option<Compiler>) -> Arc<Self> {
        Arc::new(PushServer {
            store,
            compiler,
            connections: Mutex::new(Connections::default()),
            prepared: Mutex::new(None),
            writes: Arc::new(Semaphore::new(concurrent_pushes() * GZIP_PUSH_SHARE as usize)),
            shutdown: watch::Sender::new(false),
        })
    }

    /// Whether `node`'s body can be made from the cached prepared snapshot without compiling
    /// anything shared (it is the store's current one and has `node`'s key).
    fn prepared_for(&self, node: &ProxyNode) -> bool {
        let revision = self.store.revision();
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|p| p.revision == revision && p.ready_for(node))
    }

    /// The prepared form of `snapshot`: the cached one when it is current, else a new one
    /// (which becomes the cache unless a newer one got there first). With `share`, the shared
    /// parts of these nodes are compiled up front, reusing the previous snapshot's identical
    /// pieces.
    fn prepare(&self, snapshot: &Snapshot, share: Option<&[ProxyNode]>) -> Arc<Prepared> {
        let cache = || self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let previous = cache().clone();
        let prepared = match previous.as_ref() {
            Some(p) if p.revision == snapshot.revision => p.clone(),
            _ => {
                // Indexing takes milliseconds: not under the lock, which connecting proxies take
                // on the async workers.
                let fresh = Arc::new(Prepared::new(
                    snapshot,
                    self.compiler.as_ref(),
                    previous.as_deref(),
                ));
                let mut cached = cache();
                match cached.as_ref() {
                    // Someone prepared the same snapshot meanwhile: share theirs.
                    Some(c) if c.revision == fresh.revision => c.clone(),
                    Some(c) if c.revision > fresh.revision => fresh,
                    _ => {
                        *cached = Some(fresh.clone());
                        fresh
                    }
                }
            }
        };
        // Compiling the shared parts takes a while: connecting proxies must not wait for it
        // behind the lock (they compile their own key if it is missing).
        if let Some(nodes) = share {
            let older = previous.filter(|p| !Arc::ptr_eq(p, &prepared));
            prepared.share(nodes, older.as_deref());
        }
        prepared
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        // Updates under this lock are plain field assignments; a poisoned lock is still usable.
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tonic service to mount on a gRPC server.
    pub fn service(self: &Arc<Self>) -> PushService {
        PushService { server: self.clone() }
    }

    /// Starts the task that recompiles every connected proxy's configuration after each store
    /// change and pushes the ones that changed. It ends at [`PushServer::shutdown`].
    ///
    /// The compiling runs on one dedicated thread rather than tokio's blocking pool: it is CPU
    /// work, and the allocator keeps per-thread arenas, so a changing set of pool threads each
    /// holding tens of MB of freed compile memory showed up as ~130 MB of RSS at 1,000 proxies.
    pub fn spawn_watcher(self: &Arc<Self>) -> JoinHandle<()> {
        let server = self.clone();
        let mut changes = self.store.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        let (jobs, job_rx) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>();
        let worker = self.clone();
        let compile_thread = std::thread::Builder::new()
            .name("strait-compile".into())
            .spawn(move || {
                for done in job_rx {
                    worker.recompile_all();
                    let _ = done.send(());
                }
            })
            .inspect_err(|e| tracing::warn!("no compile thread ({e}); compiling on the blocking pool"))
            .ok();
        tokio::spawn(async move {
            loop {
                let changed = tokio::select! {
                    changed = changes.changed() => changed.is_ok(),
                    _ = shutdown.wait_for(|stop| *stop) => false,
                };
                if !changed {
                    return;
                }
                let (done, finished) = tokio::sync::oneshot::channel();
                if compile_thread.is_some() && jobs.send(done).is_ok() {
                    if finished.await.is_err() {
                        tracing::error!("recompiling proxy configurations failed");
                    }
                    continue;
                }
                // Compiling every proxy is CPU work: keep it off the async workers.
                let s = server.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || s.recompile_all()).await {
                    tracing::error!("recompiling proxy configurations failed: {e}");
                }
            }
        })
    }

    /// Compiles once for every connected proxy from the current snapshot and pushes changes.
    pub fn recompile_all(&self) {
        let started = std::time::Instant::now();
        let (snapshot, nodes) = {
            let conns = self.lock();
            let snapshot = self.store.shared_snapshot();
            let nodes: Vec<(u64, ProxyNode, Option<Arc<Body>>)> = conns
                .open
                .iter()
                .map(|(id, c)| (*id, c.node.clone(), c.last.clone()))
                .collect();
            (snapshot, nodes)
        };
        let just_nodes: Vec<ProxyNode> = nodes.iter().map(|(_, n, _)| n.clone()).collect();
        // The snapshot this one replaces is freed after the pushes are on their way: freeing
        // its indexes and pieces (tens of MB in many small allocations) takes milliseconds.
        let displaced = self.prepared.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let prepared = self.prepare(&snapshot, Some(&just_nodes));
        let prepared_ms = started.elapsed().as_millis() as u64;
        let bodies: Vec<(u64, Arc<Body>)> = nodes
            .into_iter()
            .map(|(id, node, last)| (id, prepared.body_for(&node, last.as_ref())))
            .collect();
        let mut conns = self.lock();
        for (id, body) in bodies {
            if let Some(conn) = conns.open.get_mut(&id) {
                conn.offer(snapshot.revision, body);
            }
        }
        drop(conns);
        drop(displaced);
        crate::malloc::release_free_memory();
        tracing::debug!(
            revision = snapshot.revision,
            proxies = just_nodes.len(),
            shared_bytes = prepared.shared_bytes(),
            shared_gzip_bytes = prepared.shared_gzip_bytes(),
            prepared_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recompiled proxy configurations"
        );
    }

    /// Every connected proxy, sorted by id.
    pub fn status(&self) -> Vec<ProxyStatus> {
        let mut all: Vec<ProxyStatus> = self.lock().open.values().map(Connection::status).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id).then(a.connected_since.cmp(&b.connected_since)));
        all
    }

    /// The configuration proxy `id` last acknowledged (its newest stream if it has several).
    /// `None` when no such proxy is connected; `Some(None)` when it has acknowledged nothing yet.
    pub fn acked_config(&self, id: &str) -> Option<Option<ProxyConfig>> {
        let acked = {
            let conns = self.lock();
            let conn = conns
                .open
                .values()
                .filter(|c| c.node.id == id)
                .max_by_key(|c| c.connected_since)?;
            conn.acked.clone()
        };
        // Only the pieces are kept; decoding happens here, outside the lock.
        Some(acked.and_then(|(version, body)| {
            ProxyConfig::from_json(&body.render(version))
                .inspect_err(|e| tracing::error!(proxy = %id, "cannot decode a pushed configuration: {e}"))
                .ok()
        }))
    }

    /// Ends every stream and the watcher, so a graceful server shutdown can complete.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.lock().open.clear();
    }

    /// Registers a proxy and sends its first configuration. The connection is registered
    /// before the snapshot is taken, so a change after that is pushed by
    /// [`PushServer::recompile_all`]; an older compile never replaces a newer one.
    fn connect(&self, node: ProxyNode, tx: PushSender, accepts_delta: bool) -> u64 {
        let id = {
            let mut conns = self.lock();
            let id = conns.next_id;
            conns.next_id += 1;
            conns.open.insert(
                id,
                Connection {
                    node: node.clone(),
                    connected_since: SystemTime::now(),
                    tx,
                    accepts_delta,
                    compiled_revision: 0,
                    last: None,
                    sent_version: None,
                    pending: Vec::new(),
                    acked: None,
                    nack: None,
                },
            );
            id
        };
        let snapshot = self.store.shared_snapshot();
        let body = self.prepare(&snapshot, None).body_for(&node, None);
        if let Some(conn) = self.lock().open.get_mut(&id) {
            conn.offer(snapshot.revision, body);
        }
        tracing::info!(proxy = %node.id, version = snapshot.revision, "proxy connected");
        id
    }

    fn on_message(&self, conn_id: u64, message: proxy_message::Kind) {
        let mut conns = self.lock();
        let Some(conn) = conns.open.get_mut(&conn_id) else {
            return;
        };
        let (version, nack_reason) = match message {
            proxy_message::Kind::Ack(ack) => (ack.version, None),
            proxy_message::Kind::Nack(nack) => (nack.version, Some(nack.reason)),
            proxy_message::Kind::Hello(_) => {
                tracing::warn!(proxy = %conn.node.id, "second Hello on one stream ignored");
                return;
            }
        };
        let Some(pos) = version
            .parse::<u64>()
            .ok()
            .and_then(|v| conn.pending.iter().position(|(sent, ..)| *sent == v))
        else {
            tracing::warn!(proxy = %conn.node.id, %version, "answer for a version that was never sent ignored");
            return;
        };
        let Some((version, body, delta)) = conn.pending.drain(..=pos).next_back() else {
            return;
        };
        match nack_reason {
            None => conn.acked = Some((version, body)),
            Some(reason) if delta => {
                // The proxy could not apply the delta (it runs another version than the one
                // the delta is over): the same version goes again, whole.
                tracing::info!(proxy = %conn.node.id, version, %reason, "delta refused; pushing the whole configuration");
                conn.send(version, body, None);
            }
            Some(reason) => {
                // Istio: a rejected push leaves the proxy on its last good configuration.
                tracing::warn!(proxy = %conn.node.id, version, %reason, "proxy rejected configuration");
                conn.nack = Some((version, reason));
            }
        }
    }

    fn disconnect(&self, conn_id: u64) {
        if let Some(conn) = self.lock().open.remove(&conn_id) {
            tracing::info!(proxy = %conn.node.id, "proxy disconnected");
        }
    }

    /// Reads one proxy's stream until it ends.
    async fn serve_stream(
        self: Arc<Self>,
        mut inbound: Streaming<ProxyMessage>,
        tx: PushSender,
        flight: Arc<InFlight>,
    ) {
        let mut shutdown = self.shutdown.subscribe();
        let first = tokio::select! {
            m = inbound.message() => m,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let hello = match first {
            Ok(Some(ProxyMessage {
                kind: Some(proxy_message::Kind::Hello(h)),
            })) if !h.proxy_id.is_empty() => h,
            Ok(Some(_)) => {
                let _ = tx.send(Outgoing::Fail(Status::invalid_argument(
                    "the first message on the stream must be a Hello with a proxy_id",
                )));
                return;
            }
            Ok(None) | Err(_) => return,
        };
        // With the current snapshot prepared, connecting is a few microseconds of work; only
        // preparing a new snapshot (milliseconds) goes to the blocking pool.
        if hello
            .accept_encodings
            .iter()
            .any(|e| e.eq_ignore_ascii_case(GZIP))
        {
            flight.accept_gzip();
        }
        let accepts_delta = hello.accept_delta;
        let node = node_from_hello(hello);
        let conn_id = if self.prepared_for(&node) {
            self.connect(node, tx, accepts_delta)
        } else {
            let server = self.clone();
            let Ok(id) = tokio::task::spawn_blocking(move || server.connect(node, tx, accepts_delta)).await
            else {
                return;
            };
            id
        };
        loop {
            let message = tokio::select! {
                m = inbound.message() => m,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            match message {
                Ok(Some(ProxyMessage { kind: Some(kind) })) => {
                    if let proxy_message::Kind::Ack(Ack { version })
                    | proxy_message::Kind::Nack(Nack { version, .. }) = &kind
                    {
                        flight.answered(version);
                    }
                    self.on_message(conn_id, kind)
                }
                Ok(Some(ProxyMessage { kind: None })) => {}
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(%status, "proxy stream ended with an error");
                    break;
                }
            }
        }
        flight.clear();
        self.disconnect(conn_id);
    }
}

/// Istio-style identity of the proxy, from its Hello.
fn node_from_hello(hello: Hello) -> ProxyNode {
    ProxyNode {
        id: hello.proxy_id,
        role: if hello.role.eq_ignore_ascii_case("gateway") {
            ProxyRole::Gateway
        } else {
            ProxyRole::Sidecar
        },
        namespace: if hello.namespace.is_empty() {
            "default".into()
        } else {
            hello.namespace
        },
        workload: hello.workload,
        labels: hello.labels.into_iter().collect(),
        service_account: hello.service_account,
        address: hello.address,
    }
}

#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;
