//! The compiled form of one [`ProxyConfig`]: what a request loads once and uses to the end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use strait_mesh::{Direction, ProxyConfig};

use crate::cluster::ClusterRt;
use crate::error::ApplyError;
use crate::pool::PoolCache;
use crate::route::Table;
use crate::stats::FxBuildHasher;
use crate::tls::{self, ServerTls};

/// How a bound socket is identified across configs: by address, or by name for port-0 listeners
/// (whose real port is only known after binding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ListenerKey {
    /// A fixed address.
    Addr(SocketAddr),
    /// An ephemeral-port listener.
    Name(String),
}

impl ListenerKey {
    /// The key of a configured listener.
    pub(crate) fn of(l: &strait_mesh::Listener) -> Self {
        if l.address.port() == 0 {
            ListenerKey::Name(l.name.clone())
        } else {
            ListenerKey::Addr(l.address)
        }
    }
}

/// Per-listener settings looked up by each request.
#[derive(Debug)]
pub(crate) struct ListenerRt {
    pub(crate) direction: Direction,
    pub(crate) table: usize,
    /// Read once per accepted connection, never per request.
    pub(crate) tls: Option<Arc<ServerTls>>,
}

/// Everything a request needs, compiled.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) config: Arc<ProxyConfig>,
    /// Looked up on every request: the proxy's own keys, hashed with Fx rather than SipHash
    /// (~300 instructions a request).
    pub(crate) listeners: HashMap<ListenerKey, ListenerRt, FxBuildHasher>,
    pub(crate) tables: Vec<Table>,
    pub(crate) clusters: Vec<ClusterRt>,
}

impl Snapshot {
    /// Compiles a config; fails without side effects except warming `clients`.
    pub(crate) fn compile(cfg: ProxyConfig, clients: &mut PoolCache) -> Result<Self, ApplyError> {
        // Later duplicates of a cluster name are ignored: the first definition wins.
        let mut cluster_index: HashMap<&str, usize> = HashMap::new();
        let mut clusters = Vec::with_capacity(cfg.clusters.len());
        for c in &cfg.clusters {
            if !cluster_index.contains_key(c.name.as_str()) {
                cluster_index.insert(c.name.as_str(), clusters.len());
                clusters.push(ClusterRt::compile(c, clients)?);
            }
        }
        let mut table_index: HashMap<&str, usize> = HashMap::new();
        let mut tables = Vec::with_capacity(cfg.route_tables.len());
        for t in &cfg.route_tables {
            table_index.insert(t.name.as_str(), tables.len());
            tables.push(Table::compile(t, &cluster_index)?);
        }
        let mut listeners = HashMap::default();
        let mut names = std::collections::HashSet::new();
        for l in &cfg.listeners {
            let table =
                *table_index
                    .get(l.route_table.as_str())
                    .ok_or_else(|| ApplyError::UnknownRouteTable {
                        listener: l.name.clone(),
                        table: l.route_table.clone(),
                    })?;
            let tls = match &l.tls {
                Some(t) => Some(Arc::new(tls::server(&l.name, t)?)),
                None => None,
            };
            let rt = ListenerRt {
                direction: l.direction,
                table,
                tls,
            };
            if !names.insert(l.name.as_str()) || listeners.insert(ListenerKey::of(l), rt).is_some() {
                return Err(ApplyError::DuplicateListener {
                    listener: l.name.clone(),
                    address: l.address,
                });
            }
        }
        Ok(Snapshot {
            config: Arc::new(cfg),
            listeners,
            tables,
            clusters,
        })
    }
}
