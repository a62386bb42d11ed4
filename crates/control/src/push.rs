//! The push server: one gRPC stream per proxy, a new configuration version whenever (and only
//! when) that proxy's compiled configuration changes, and the ACK/NACK bookkeeping that
//! `strait proxy-status` shows.
//!
//! Compilation happens once per store change for every connected proxy (in one background
//! task), never per request; a proxy's push is skipped when its configuration is byte-identical
//! to what it was last sent, so unrelated changes cause no churn in the data plane.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strait_api::Resource;
use strait_mesh::ProxyConfig;
use strait_mesh::pb::config_discovery_server::{ConfigDiscovery, ConfigDiscoveryServer};
use strait_mesh::pb::{ConfigPush, Hello, ProxyMessage, proxy_message};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::compile::{ProxyNode, ProxyRole, compile};
use crate::store::Store;

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

type PushSender = mpsc::UnboundedSender<Result<ConfigPush, Status>>;

/// One open stream.
#[derive(Debug)]
struct Connection {
    node: ProxyNode,
    connected_since: SystemTime,
    tx: PushSender,
    /// Store revision of the newest compilation applied to this connection.
    compiled_revision: u64,
    /// The last pushed configuration serialized without its version, to detect changes.
    last_body: Vec<u8>,
    sent_version: Option<u64>,
    /// Pushed and not yet answered, oldest first.
    pending: Vec<(u64, ProxyConfig)>,
    acked: Option<(u64, ProxyConfig)>,
    nack: Option<(u64, String)>,
}

impl Connection {
    /// Pushes `config` (version empty) as version `revision`, if it differs from the last push.
    fn offer(&mut self, revision: u64, mut config: ProxyConfig) {
        if revision < self.compiled_revision {
            return;
        }
        self.compiled_revision = revision;
        config.version.clear();
        let body = config.to_json();
        if self.sent_version.is_some() && body == self.last_body {
            return;
        }
        config.version = revision.to_string();
        let push = ConfigPush {
            version: config.version.clone(),
            config_json: config.to_json(),
        };
        if self.tx.send(Ok(push)).is_err() {
            // The stream is closing; its reader task removes the connection.
            return;
        }
        self.last_body = body;
        self.sent_version = Some(revision);
        self.pending.push((revision, config));
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
pub type Compiler = Arc<dyn Fn(&[Resource], &ProxyNode) -> ProxyConfig + Send + Sync>;

/// The push server's state: connected proxies and what each was sent and runs.
pub struct PushServer {
    store: Arc<Store>,
    compiler: Compiler,
    connections: Mutex<Connections>,
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
        Self::with_compiler(store, Arc::new(compile))
    }

    /// A push server with another compiler: tests use one with a known outcome, and callers
    /// can wrap [`compile`] to add inputs (e.g. a registry snapshot).
    pub fn with_compiler(store: Arc<Store>, compiler: Compiler) -> Arc<Self> {
        Arc::new(PushServer {
            store,
            compiler,
            connections: Mutex::new(Connections::default()),
            shutdown: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        // Updates under this lock are plain field assignments; a poisoned lock is still usable.
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tonic service to mount on a gRPC server.
    pub fn service(self: &Arc<Self>) -> ConfigDiscoveryServer<PushService> {
        ConfigDiscoveryServer::new(PushService { server: self.clone() })
    }

    /// Starts the task that recompiles every connected proxy's configuration after each store
    /// change and pushes the ones that changed. It ends at [`PushServer::shutdown`].
    pub fn spawn_watcher(self: &Arc<Self>) -> JoinHandle<()> {
        let server = self.clone();
        let mut changes = self.store.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                let changed = tokio::select! {
                    changed = changes.changed() => changed.is_ok(),
                    _ = shutdown.wait_for(|stop| *stop) => false,
                };
                if !changed {
                    return;
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
        let (snapshot, nodes) = {
            let conns = self.lock();
            let snapshot = self.store.shared_snapshot();
            let nodes: Vec<(u64, ProxyNode)> =
                conns.open.iter().map(|(id, c)| (*id, c.node.clone())).collect();
            (snapshot, nodes)
        };
        let compiled: Vec<(u64, ProxyConfig)> = nodes
            .into_iter()
            .map(|(id, node)| (id, (self.compiler)(&snapshot.resources, &node)))
            .collect();
        let mut conns = self.lock();
        for (id, config) in compiled {
            if let Some(conn) = conns.open.get_mut(&id) {
                conn.offer(snapshot.revision, config);
            }
        }
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
        let conns = self.lock();
        let conn = conns
            .open
            .values()
            .filter(|c| c.node.id == id)
            .max_by_key(|c| c.connected_since)?;
        Some(conn.acked.as_ref().map(|(_, c)| c.clone()))
    }

    /// Ends every stream and the watcher, so a graceful server shutdown can complete.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.lock().open.clear();
    }

    /// Registers a proxy and sends its first configuration. Holding the lock while taking the
    /// snapshot orders this with [`PushServer::recompile_all`], so no change is missed.
    fn connect(&self, hello: Hello, tx: PushSender) -> u64 {
        let node = node_from_hello(hello);
        let mut conns = self.lock();
        let snapshot = self.store.shared_snapshot();
        let config = (self.compiler)(&snapshot.resources, &node);
        let id = conns.next_id;
        conns.next_id += 1;
        let mut conn = Connection {
            node,
            connected_since: SystemTime::now(),
            tx,
            compiled_revision: 0,
            last_body: Vec::new(),
            sent_version: None,
            pending: Vec::new(),
            acked: None,
            nack: None,
        };
        conn.offer(snapshot.revision, config);
        tracing::info!(proxy = %conn.node.id, version = snapshot.revision, "proxy connected");
        conns.open.insert(id, conn);
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
            .and_then(|v| conn.pending.iter().position(|(sent, _)| *sent == v))
        else {
            tracing::warn!(proxy = %conn.node.id, %version, "answer for a version that was never sent ignored");
            return;
        };
        let mut answered: Vec<(u64, ProxyConfig)> = conn.pending.drain(..=pos).collect();
        let Some((version, config)) = answered.pop() else {
            return;
        };
        match nack_reason {
            None => conn.acked = Some((version, config)),
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
    async fn serve_stream(self: Arc<Self>, mut inbound: Streaming<ProxyMessage>, tx: PushSender) {
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
                let _ = tx.send(Err(Status::invalid_argument(
                    "the first message on the stream must be a Hello with a proxy_id",
                )));
                return;
            }
            Ok(None) | Err(_) => return,
        };
        let server = self.clone();
        let Ok(conn_id) = tokio::task::spawn_blocking(move || server.connect(hello, tx)).await else {
            return;
        };
        loop {
            let message = tokio::select! {
                m = inbound.message() => m,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            match message {
                Ok(Some(ProxyMessage { kind: Some(kind) })) => self.on_message(conn_id, kind),
                Ok(Some(ProxyMessage { kind: None })) => {}
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(%status, "proxy stream ended with an error");
                    break;
                }
            }
        }
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

/// The tonic service; a thin adapter over [`PushServer`].
#[derive(Debug, Clone)]
pub struct PushService {
    server: Arc<PushServer>,
}

#[tonic::async_trait]
impl ConfigDiscovery for PushService {
    type StreamConfigStream = UnboundedReceiverStream<Result<ConfigPush, Status>>;

    async fn stream_config(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<Self::StreamConfigStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(self.server.clone().serve_stream(request.into_inner(), tx));
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests;
