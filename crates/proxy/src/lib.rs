//! The Strait data plane: one proxy for the sidecar (outbound explicit HTTP proxy + inbound) and
//! ingress gateway roles, executing a [`strait_mesh::ProxyConfig`] with Istio/Envoy semantics.
//!
//! A configuration is compiled once ([`Proxy::apply`]) into runtime tables held in an `ArcSwap`;
//! each request loads that snapshot once and keeps it to the end, so swaps never block or tear
//! requests. Failures answer with the status, body and response flag Envoy would produce.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access_log;
mod admin;
mod cluster;
mod error;
mod headers;
mod http1;
mod listener;
mod matcher;
mod normalize;
mod outlier;
mod pipeline;
mod policy;
mod pool;
mod reply;
mod route;
mod snapshot;
mod stats;
mod sweep;
mod tls;
mod upstream;
pub mod xds;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use strait_mesh::ProxyConfig;
use tokio::net::TcpListener;

pub use cluster::PASSTHROUGH_CLUSTER;
pub use error::{ApplyError, ProxyError};

use listener::RunningListener;
use pool::{PoolCache, PoolKey};
use snapshot::{ListenerKey, Snapshot};
use stats::Stats;

/// How a proxy is started.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Proxy identity (e.g. `sidecar~10.0.0.1~reviews-v1.default`), used as the metrics source.
    pub id: String,
    /// Where the admin endpoint listens; `None` disables it.
    pub admin_addr: Option<SocketAddr>,
    /// Print one Envoy-format access-log line per request to stdout.
    pub access_log: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            id: String::new(),
            admin_addr: None,
            access_log: true,
        }
    }
}

/// A running proxy. Cloning is cheap and every clone drives the same proxy.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

/// Shared state behind [`Proxy`].
#[derive(Debug)]
pub(crate) struct Inner {
    opts: ProxyOptions,
    id: Arc<str>,
    snapshot: ArcSwapOption<Snapshot>,
    stats: Stats,
    /// Held only while applying, never by requests.
    state: tokio::sync::Mutex<ApplyState>,
    /// Listener name → bound address (differs from the config for port 0).
    bound: ArcSwap<HashMap<String, SocketAddr>>,
}

#[derive(Debug, Default)]
struct ApplyState {
    listeners: HashMap<ListenerKey, RunningListener>,
    clients: PoolCache,
    /// The idle-connection sweep of `clients` runs (started by the first apply, in its runtime).
    sweeping: bool,
}

impl Proxy {
    /// Creates a proxy with no configuration: nothing is bound until [`Proxy::apply`].
    pub fn new(opts: ProxyOptions) -> Self {
        let id = Arc::from(if opts.id.is_empty() {
            "unknown"
        } else {
            opts.id.as_str()
        });
        Proxy {
            inner: Arc::new(Inner {
                opts,
                id,
                snapshot: ArcSwapOption::empty(),
                stats: Stats::default(),
                state: tokio::sync::Mutex::new(ApplyState::default()),
                bound: ArcSwap::from_pointee(HashMap::new()),
            }),
        }
    }

    /// Compiles `cfg`, binds new listeners, swaps the config in atomically and closes listeners
    /// that are gone. On any error nothing changes: the previous config keeps serving and the
    /// error is the NACK reason.
    pub async fn apply(&self, cfg: ProxyConfig) -> Result<(), ApplyError> {
        let mut state = self.inner.state.lock().await;
        if !state.sweeping {
            sweep::start(Arc::downgrade(&self.inner), sweep::EVERY);
            state.sweeping = true;
        }
        let snap = Snapshot::compile(cfg, &mut state.clients)?;
        let mut fresh = Vec::new();
        for l in &snap.config.listeners {
            let key = ListenerKey::of(l);
            if state.listeners.contains_key(&key) {
                continue;
            }
            // A failed bind drops `fresh`, closing what this call bound: all or nothing.
            let socket = TcpListener::bind(l.address)
                .await
                .map_err(|source| ApplyError::Bind {
                    listener: l.name.clone(),
                    address: l.address,
                    source,
                })?;
            fresh.push((key, socket));
        }
        let snap = Arc::new(snap);
        self.inner.snapshot.store(Some(snap.clone()));
        // Pools no cluster uses any more (settings changed, a certificate rotated) leave the
        // cache; requests still in flight on them keep them alive until they finish.
        let used: HashSet<PoolKey> = snap.clusters.iter().map(|c| c.pool_key).collect();
        state.clients.retain(|k, _| used.contains(k));
        state.listeners.retain(|k, _| snap.listeners.contains_key(k));
        for (key, socket) in fresh {
            let running = listener::spawn(Arc::downgrade(&self.inner), key.clone(), socket);
            state.listeners.insert(key, running);
        }
        let bound = snap
            .config
            .listeners
            .iter()
            .filter_map(|l| {
                state
                    .listeners
                    .get(&ListenerKey::of(l))
                    .map(|r| (l.name.clone(), r.bound))
            })
            .collect();
        self.inner.bound.store(Arc::new(bound));
        tracing::info!(version = %snap.config.version, listeners = snap.listeners.len(), "config applied");
        Ok(())
    }

    /// The configuration being served, if any (for the config dump and ACK bookkeeping).
    pub fn running(&self) -> Option<Arc<ProxyConfig>> {
        self.inner.snapshot.load().as_ref().map(|s| s.config.clone())
    }

    /// The address a listener is bound to; differs from the config when it asked for port 0.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.inner.bound.load().get(name).copied()
    }

    /// Serves the admin endpoint on `admin_addr` until an accept error: `GET /config_dump`,
    /// `GET /ready` (503 until a config is applied) and `GET /stats/prometheus`.
    pub async fn serve_admin(&self) -> Result<(), ProxyError> {
        let address = self.inner.opts.admin_addr.ok_or(ProxyError::NoAdminAddress)?;
        let socket = TcpListener::bind(address)
            .await
            .map_err(|source| ProxyError::AdminBind { address, source })?;
        self.serve_admin_on(socket).await
    }

    /// Same as [`Proxy::serve_admin`] on an already bound socket (lets tests use port 0).
    pub async fn serve_admin_on(&self, socket: TcpListener) -> Result<(), ProxyError> {
        admin::serve(self.inner.clone(), socket).await
    }
}

/// Reads a static [`ProxyConfig`] from a JSON or YAML file (JSON when the name ends in `.json`
/// or the content starts with `{`).
///
/// The file is read on the calling thread: this runs once at start-up, and `tokio::fs` would
/// start a blocking-pool thread (its stack and a malloc arena stay resident in the proxy).
pub async fn load_static(path: &Path) -> Result<ProxyConfig, ProxyError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProxyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(path, &text)
}

fn parse_config(path: &Path, text: &str) -> Result<ProxyConfig, ProxyError> {
    let json = path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    if json {
        serde_json::from_str(text).map_err(|e| ProxyError::Parse {
            path: path.to_path_buf(),
            format: "JSON",
            reason: e.to_string(),
        })
    } else {
        serde_saphyr::from_str(text).map_err(|e| ProxyError::Parse {
            path: path.to_path_buf(),
            format: "YAML",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_and_json() {
        let yaml = "version: v1\nlisteners:\n- name: out\n  address: 127.0.0.1:15001\n  routeTable: outbound\n\
                    routeTables:\n- name: outbound\n  virtualHosts:\n  - name: r\n    domains: ['*']\n    routes:\n\
                    \x20   - name: all\n      action:\n        forward:\n        - cluster: c\n          weight: 1\n";
        let cfg = parse_config(Path::new("x.yaml"), yaml).unwrap();
        assert_eq!(cfg.version, "v1");
        assert_eq!(cfg.route_tables[0].virtual_hosts[0].routes[0].name, "all");
        let json = String::from_utf8(cfg.to_json()).unwrap();
        assert_eq!(parse_config(Path::new("x"), &json).unwrap(), cfg);
        let err = parse_config(Path::new("x.yaml"), "listeners: 3").unwrap_err();
        assert!(err.to_string().contains("YAML"), "{err}");
    }

    #[tokio::test]
    async fn pools_no_cluster_uses_leave_the_cache_when_a_certificate_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let config = |version: String| ProxyConfig {
            version,
            clusters: vec![strait_mesh::Cluster {
                name: "c".into(),
                tls: Some(strait_mesh::ClusterTls {
                    mode: strait_mesh::ClientTlsMode::Simple,
                    ca_certificates: ca.display().to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let proxy = Proxy::new(ProxyOptions {
            id: "t".into(),
            admin_addr: None,
            access_log: false,
        });
        for round in 0..3 {
            // A new CA in the same file: a new fingerprint, so a new pool.
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
            proxy.apply(config(format!("v{round}"))).await.unwrap();
            assert_eq!(proxy.inner.state.lock().await.clients.len(), 1, "round {round}");
        }
        proxy.apply(ProxyConfig::default()).await.unwrap();
        assert!(proxy.inner.state.lock().await.clients.is_empty());
    }
}
