//! The push server's compiler: one store snapshot indexed once, then cheap per-proxy configs.
//!
//! [`compile`](super::compile) rebuilds the registry and scans every resource for every lookup,
//! for every proxy. At 1,000 services and 1,000 proxies that is a minute per change. Most of a
//! sidecar's configuration (the outbound route table and the clusters, ~all of its bytes) does
//! not depend on which sidecar it is, only on its namespace and on the few labels that some
//! rule's `sourceLabels` mention: that is the [`ShareKey`]. [`SnapshotCompiler`] builds the
//! registry and hash indexes once, compiles the shared part once per key, and adds each
//! sidecar's own listeners and inbound side. The result equals `compile()`'s (tests prove it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use strait_api::networking::{DestinationRule, VirtualService};
use strait_api::{Resource, Spec};
use strait_mesh::{self as mesh, ProxyConfig};

use super::clusters::ROOT_NAMESPACE;
use super::{
    Lookup, ProxyNode, ProxyRole, SidecarOwn, allow_any_vhost, binds_mesh, clusters, gateway, node_ip,
    outbound_table, passthrough_cluster, registry_endpoints, service_vhosts, sidecar_clusters, sidecar_own,
    sorted_virtual_service_indices,
};
use crate::registry::{Registry, Service, ServiceEndpoint, host_matches, resolve_host};

/// What a sidecar's shared configuration depends on: its namespace (aliases, DestinationRule
/// lookup, `sourceNamespace`) and its labels restricted to the keys some `sourceLabels` mention.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    /// The sidecar's namespace.
    pub namespace: String,
    /// The sidecar's labels whose keys appear in a rule's `sourceLabels`.
    pub labels: BTreeMap<String, String>,
}

/// The part of a sidecar's configuration shared by every sidecar with the same [`ShareKey`].
#[derive(Debug, Clone, PartialEq)]
pub struct SharedSidecar {
    /// The `outbound` route table (first of the config's route tables).
    pub outbound: mesh::RouteTable,
    /// Outbound clusters and the PassthroughCluster (first of the config's clusters).
    pub clusters: Vec<mesh::Cluster>,
}

/// The shared part of sidecar configurations, serialized: what the push server sends, kept in
/// per-service groups of items. The whole lists are only put together when a whole
/// configuration is sent ([`SharedSidecarJson::outbound`], [`SharedSidecarJson::clusters`]):
/// after a change most proxies get a delta, and copying 2.3 MB per share key for nothing was a
/// fifth of a recompilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSidecarJson {
    /// What goes before the outbound table's virtual hosts (`{"name":"outbound","virtualHosts":[`)
    /// and after them (`]}`).
    pub outbound_around: (Arc<[u8]>, Arc<[u8]>),
    /// The outbound table's virtual hosts, per service (then the catch-all), in order.
    pub vhost_groups: Vec<JsonItems>,
    /// The clusters, per service (then the PassthroughCluster), in order (never empty).
    pub cluster_groups: Vec<JsonItems>,
}

impl SharedSidecarJson {
    /// The outbound route table, one JSON object.
    pub fn outbound(&self) -> Vec<u8> {
        let (before, after) = &self.outbound_around;
        [&before[..], &join(&self.vhost_groups), &after[..]].concat()
    }

    /// The clusters, comma-separated JSON objects without brackets.
    pub fn clusters(&self) -> Vec<u8> {
        join(&self.cluster_groups)
    }
}

/// The groups' items as one comma-separated list.
pub fn join(groups: &[JsonItems]) -> Vec<u8> {
    let mut out = Vec::with_capacity(joined_len(groups));
    for g in groups {
        push_item(&mut out, &g.json);
    }
    out
}

/// The length of [`join`]'s result, without making it.
pub fn joined_len(groups: &[JsonItems]) -> usize {
    let non_empty = groups.iter().filter(|g| !g.json.is_empty());
    let (count, bytes) = non_empty.fold((0usize, 0usize), |(n, b), g| (n + 1, b + g.json.len()));
    bytes + count.saturating_sub(1)
}

/// Some consecutive items of a JSON list, serialized (comma-separated, no brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonItems {
    /// The items' JSON, shared between every key and proxy that has them.
    pub json: Arc<[u8]>,
    /// How many items `json` holds.
    pub count: u32,
}

impl JsonItems {
    /// The same items: the same shared bytes (the common case, pieces are reused) or equal ones.
    pub fn same_as(&self, other: &JsonItems) -> bool {
        Arc::ptr_eq(&self.json, &other.json) || (self.count == other.count && self.json == other.json)
    }

    fn of<T: serde::Serialize>(items: &[T]) -> JsonItems {
        JsonItems {
            json: json_items(items).into(),
            count: u32::try_from(items.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Serialized per-service pieces, reused between share keys of one snapshot: most services'
/// virtual hosts and clusters are the same for every namespace.
#[derive(Debug, Default)]
pub struct PieceCache {
    vhosts: HashMap<VhostKey, JsonItems>,
    /// (service position, chosen DestinationRule's address in the snapshot).
    clusters: HashMap<(usize, Option<usize>), JsonItems>,
    /// Per service position, found the same key after key: its position in the older snapshot
    /// if the service is equal there, and whether its routing inputs are too.
    older: HashMap<usize, Option<(usize, bool)>>,
    /// The older compiler `older` was found in (its address): another one clears it.
    older_id: usize,
}

/// What a service's virtual hosts depend on besides the service itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VhostKey {
    service: usize,
    /// The client is in the service's namespace (the short name is an alias).
    same_namespace: bool,
    /// The client namespace, when the owner's rules test `sourceNamespace`.
    namespace: Option<String>,
    /// The client's labels, when the owner's rules test `sourceLabels`.
    labels: Option<BTreeMap<String, String>>,
}

/// DestinationRules of one namespace, indexed by host.
#[derive(Debug, Default)]
struct NamespaceRules {
    /// By resolved host pattern (wildcard patterns too, for services with wildcard hosts).
    exact: HashMap<String, Vec<usize>>,
    /// Wildcard patterns, with the rule's index.
    wildcards: Vec<(String, usize)>,
}

/// One snapshot of the store, indexed for compiling many proxies. `R` owns or borrows the
/// resources (`Arc<Vec<Arc<Resource>>>` in the push server, `&[Arc<Resource>]` in tests).
#[derive(Debug)]
pub struct SnapshotCompiler<R: AsRef<[Arc<Resource>]>> {
    resources: R,
    registry: Arc<Registry>,
    /// Service hosts in registry order (position = index here).
    hosts: Vec<String>,
    /// VirtualService resource indices, oldest first.
    virtual_services: Vec<usize>,
    /// Service host -> resource index of the VirtualService that owns it for sidecars.
    mesh_owner: HashMap<String, usize>,
    /// DestinationRules by namespace.
    rules: HashMap<String, NamespaceRules>,
    /// Label keys mentioned by some `sourceLabels`.
    source_label_keys: BTreeSet<String>,
    /// (namespace, workload) -> (service position, endpoint index), registry order.
    by_workload: HashMap<(String, String), Vec<(usize, usize)>>,
    /// Address -> inline endpoints (no WorkloadEntry) at that address.
    by_address: HashMap<IpAddr, Vec<(usize, usize)>>,
    /// Digest of every service's host and ports: routes look destination ports up, so a
    /// routed virtual host can only be reused from a snapshot with the same digest.
    ports_digest: u64,
}

impl<R: AsRef<[Arc<Resource>]>> SnapshotCompiler<R> {
    /// Indexes `resources`: the registry, VirtualService owners per host, DestinationRules per
    /// namespace and host, endpoints per workload. Costs about one `compile()`.
    pub fn new(resources: R) -> Self {
        Self::new_after::<R>(resources, None)
    }

    /// [`SnapshotCompiler::new`], sharing `older`'s registry when every ServiceEntry and
    /// WorkloadEntry is the same in both snapshots (the registry is derived from nothing else):
    /// most changes are routing rules, and building the registry is half of indexing.
    pub fn new_after<O: AsRef<[Arc<Resource>]>>(resources: R, older: Option<&SnapshotCompiler<O>>) -> Self {
        let all = resources.as_ref();
        let registry = match older {
            Some(o) if same_registry_inputs(o.resources(), all) => o.registry.clone(),
            _ => Arc::new(Registry::build(all)),
        };
        let hosts: Vec<String> = registry.services.keys().cloned().collect();
        let virtual_services = sorted_virtual_service_indices(all);

        // Mesh owners: the oldest mesh-bound VirtualService with a host covering the service's.
        let mut exact: HashMap<String, usize> = HashMap::new();
        let mut wildcards: Vec<(String, usize)> = Vec::new();
        let mut source_label_keys = BTreeSet::new();
        for (pos, &i) in virtual_services.iter().enumerate() {
            let Some((r, vs)) = vs_at(all, i) else { continue };
            for m in vs.http.iter().flat_map(|rule| &rule.r#match) {
                source_label_keys.extend(m.source_labels.keys().cloned());
            }
            if !binds_mesh(r, vs) {
                continue;
            }
            for h in &vs.hosts {
                let pattern = resolve_host(h, r.namespace());
                if pattern.starts_with('*') {
                    wildcards.push((pattern, pos));
                } else {
                    exact.entry(pattern).or_insert(pos);
                }
            }
        }
        let mut mesh_owner = HashMap::new();
        for host in &hosts {
            let by_wildcard = wildcards
                .iter()
                .filter(|(p, _)| host_matches(p, host))
                .map(|(_, pos)| *pos)
                .min();
            let best = exact.get(host).copied().into_iter().chain(by_wildcard).min();
            if let Some(pos) = best {
                mesh_owner.insert(host.clone(), virtual_services[pos]);
            }
        }

        let mut rules: HashMap<String, NamespaceRules> = HashMap::new();
        for (i, r) in all.iter().enumerate() {
            let Spec::DestinationRule(dr) = &r.spec else {
                continue;
            };
            let pattern = resolve_host(&dr.host, r.namespace());
            let ns = rules.entry(r.namespace().to_string()).or_default();
            if pattern.starts_with('*') {
                ns.wildcards.push((pattern.clone(), i));
            }
            ns.exact.entry(pattern).or_default().push(i);
        }

        let mut by_workload: HashMap<(String, String), Vec<(usize, usize)>> = HashMap::new();
        let mut by_address: HashMap<IpAddr, Vec<(usize, usize)>> = HashMap::new();
        for (pos, service) in registry.services.values().enumerate() {
            for (e, endpoint) in service.endpoints.iter().enumerate() {
                if endpoint.workload.is_empty() {
                    by_address.entry(endpoint.address).or_default().push((pos, e));
                } else {
                    by_workload
                        .entry((endpoint.namespace.clone(), endpoint.workload.clone()))
                        .or_default()
                        .push((pos, e));
                }
            }
        }
        let ports_digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            for service in registry.services.values() {
                service.host.hash(&mut h);
                service.ports.hash(&mut h);
            }
            h.finish()
        };
        SnapshotCompiler {
            ports_digest,
            resources,
            registry,
            hosts,
            virtual_services,
            mesh_owner,
            rules,
            source_label_keys,
            by_workload,
            by_address,
        }
    }

    /// The resources this compiler was built from.
    pub fn resources(&self) -> &[Arc<Resource>] {
        self.resources.as_ref()
    }

    /// The key of the shared part of `node`'s configuration; `None` for gateways, which share
    /// nothing (there are few of them).
    pub fn share_key(&self, node: &ProxyNode) -> Option<ShareKey> {
        (node.role == ProxyRole::Sidecar).then(|| ShareKey {
            namespace: node.namespace.clone(),
            labels: node
                .labels
                .iter()
                .filter(|(k, _)| self.source_label_keys.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The outbound route table and clusters of every sidecar with this key.
    pub fn shared_sidecar(&self, key: &ShareKey) -> SharedSidecar {
        let lookup = self.lookup();
        SharedSidecar {
            outbound: outbound_table(&self.registry, &lookup, &key.namespace, &key.labels),
            clusters: sidecar_clusters(&self.registry, &lookup, &key.namespace),
        }
    }

    /// The shared part for `key`, serialized, assembled from per-service pieces that `cache`
    /// keeps between keys. Byte-identical to serializing [`SnapshotCompiler::shared_sidecar`].
    pub fn shared_sidecar_json(&self, key: &ShareKey, cache: &mut PieceCache) -> SharedSidecarJson {
        self.shared_sidecar_json_reusing::<R>(key, cache, None)
    }

    /// [`SnapshotCompiler::shared_sidecar_json`], taking a piece from an older snapshot's
    /// compiler and cache (`older`) when everything it was made from is equal in this one: the
    /// service, the VirtualService that routes it (and, when there is one, every service's
    /// ports, which routes look up), the DestinationRule that shapes its clusters. One changed
    /// VirtualService then serializes one service's virtual hosts instead of all of them.
    pub fn shared_sidecar_json_reusing<O: AsRef<[Arc<Resource>]>>(
        &self,
        key: &ShareKey,
        cache: &mut PieceCache,
        older: Option<(&SnapshotCompiler<O>, &PieceCache)>,
    ) -> SharedSidecarJson {
        let lookup = self.lookup();
        let older = older.map(|(compiler, pieces)| (compiler, compiler.lookup(), pieces));
        let older_id = older
            .as_ref()
            .map_or(0, |(c, ..)| *c as *const SnapshotCompiler<O> as usize);
        if cache.older_id != older_id {
            cache.older.clear();
            cache.older_id = older_id;
        }
        let mut vhost_groups = Vec::with_capacity(self.registry.services.len() + 1);
        let mut cluster_groups = Vec::with_capacity(self.registry.services.len() + 1);
        for (pos, service) in self.registry.services.values().enumerate() {
            let owner = lookup.mesh_owner(service);
            let (by_ns, by_labels) = owner.map_or((false, false), |(_, vs)| {
                let matches = || vs.http.iter().flat_map(|rule| &rule.r#match);
                (
                    matches().any(|m| !m.source_namespace.is_empty()),
                    matches().any(|m| !m.source_labels.is_empty()),
                )
            });
            let vkey = VhostKey {
                service: pos,
                same_namespace: service.namespace == key.namespace,
                namespace: by_ns.then(|| key.namespace.clone()),
                labels: by_labels.then(|| key.labels.clone()),
            };
            // The same service in the older snapshot, and whether its routes are made of the
            // same inputs (once per service, not per key).
            let same = older.as_ref().and_then(|(old, old_lookup, _)| {
                *cache.older.entry(pos).or_insert_with(|| {
                    let old_pos = old.hosts.binary_search(&service.host).ok()?;
                    let old_service = old.registry.services.get(&service.host)?;
                    (old_service == service).then_some(())?;
                    let same_owner = match (owner, old_lookup.mesh_owner(old_service)) {
                        (None, None) => true,
                        // Routes look up destination ports in the registry.
                        (Some((r, _)), Some((o, _))) => r == o && self.ports_digest == old.ports_digest,
                        _ => false,
                    };
                    Some((old_pos, same_owner))
                })
            });
            let piece = cache.vhosts.entry(vkey).or_insert_with_key(|vkey| {
                let reused = older.as_ref().and_then(|(_, _, pieces)| {
                    let (old_pos, same_owner) = same?;
                    same_owner.then_some(())?;
                    pieces
                        .vhosts
                        .get(&VhostKey {
                            service: old_pos,
                            ..vkey.clone()
                        })
                        .cloned()
                });
                reused.unwrap_or_else(|| {
                    let list = service_vhosts(&self.registry, owner, service, &key.namespace, &key.labels);
                    JsonItems::of(&list)
                })
            });
            vhost_groups.push(piece.clone());

            let dr = lookup.destination_rule(&service.host, &key.namespace, &service.namespace);
            // The rule's address identifies it within this snapshot.
            let dr_id = dr.map(|d| d as *const DestinationRule as usize);
            let piece = cache.clusters.entry((pos, dr_id)).or_insert_with(|| {
                let reused = older.as_ref().and_then(|(_, old_lookup, pieces)| {
                    let (old_pos, _) = same?;
                    let old_dr =
                        old_lookup.destination_rule(&service.host, &key.namespace, &service.namespace);
                    (old_dr == dr).then_some(())?;
                    let old_id = old_dr.map(|d| d as *const DestinationRule as usize);
                    pieces.clusters.get(&(old_pos, old_id)).cloned()
                });
                reused.unwrap_or_else(|| JsonItems::of(&clusters::service_clusters(service, dr)))
            });
            cluster_groups.push(piece.clone());
        }
        vhost_groups.push(JsonItems::of(&[allow_any_vhost()]));
        cluster_groups.push(JsonItems::of(&[passthrough_cluster()]));
        // `{"name":"outbound","virtualHosts":[` + vhosts + `]}`, cut from a serialized table
        // with one marker host, so the field names and order stay the mesh crate's.
        const MARK: &str = "\u{0}strait:vhosts\u{0}";
        let skeleton = to_json(&mesh::RouteTable {
            name: "outbound".into(),
            virtual_hosts: vec![mesh::VirtualHost {
                name: MARK.into(),
                ..allow_any_vhost()
            }],
        });
        let marker = to_json(&mesh::VirtualHost {
            name: MARK.into(),
            ..allow_any_vhost()
        });
        let outbound_around = match find(&skeleton, &marker) {
            Some(at) => (skeleton[..at].into(), skeleton[at + marker.len()..].into()),
            // The marker is always there.
            None => (
                br#"{"name":"outbound","virtualHosts":["#[..].into(),
                b"]}"[..].into(),
            ),
        };
        SharedSidecarJson {
            outbound_around,
            vhost_groups,
            cluster_groups,
        }
    }

    /// A sidecar's own parts, as a configuration holding only them: its listeners, its inbound
    /// route tables and its inbound clusters. [`assemble`] adds the shared part.
    pub fn sidecar_own(&self, node: &ProxyNode) -> ProxyConfig {
        let own = if node.workload.is_empty() {
            // Matching inline endpoints by namespace too: rare, so scanned.
            sidecar_own(node, registry_endpoints(&self.registry, node))
        } else {
            sidecar_own(node, self.endpoints_of(node).into_iter())
        };
        ProxyConfig {
            version: String::new(),
            listeners: own.listeners,
            route_tables: own.route_tables,
            clusters: own.clusters,
        }
    }

    /// `node`'s whole configuration, exactly as [`compile`](super::compile) makes it.
    pub fn compile(&self, node: &ProxyNode) -> ProxyConfig {
        match self.share_key(node) {
            Some(key) => assemble(&self.shared_sidecar(&key), self.sidecar_own(node)),
            None => {
                let all = self.resources.as_ref();
                let mut config = ProxyConfig {
                    clusters: clusters::outbound_clusters(&self.registry, &self.lookup(), &node.namespace),
                    ..ProxyConfig::default()
                };
                let virtual_services: Vec<(&Resource, &VirtualService)> = self
                    .virtual_services
                    .iter()
                    .filter_map(|&i| vs_at(all, i))
                    .collect();
                gateway(&mut config, all, &self.registry, &virtual_services, node);
                config
            }
        }
    }

    /// The (service, endpoint) pairs of `node`'s workload and of inline endpoints at its
    /// address, in registry order (as `compile()` visits them).
    fn endpoints_of(&self, node: &ProxyNode) -> Vec<(&Service, &ServiceEndpoint)> {
        let mut found: Vec<(usize, usize)> = self
            .by_workload
            .get(&(node.namespace.clone(), node.workload.clone()))
            .into_iter()
            .chain(self.by_address.get(&node_ip(node)))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .filter_map(|(pos, e)| {
                let service = self.registry.services.get(self.hosts.get(pos)?)?;
                Some((service, service.endpoints.get(e)?))
            })
            .collect()
    }

    fn lookup(&self) -> Indexed<'_, R> {
        Indexed { compiler: self }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain data structs with string keys always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The items of a JSON array, without the brackets (`[a,b]` -> `a,b`; `[]` -> nothing).
fn json_items<T: serde::Serialize>(items: &[T]) -> Vec<u8> {
    let json = to_json(&items);
    json.get(1..json.len().saturating_sub(1))
        .unwrap_or_default()
        .to_vec()
}

/// Appends `item` (comma-separated items) to a list being built.
fn push_item(list: &mut Vec<u8>, item: &[u8]) {
    if item.is_empty() {
        return;
    }
    if !list.is_empty() {
        list.push(b',');
    }
    list.extend_from_slice(item);
}

/// First position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len().max(1)).position(|w| w == needle)
}

/// A whole sidecar configuration from its shared part and its own parts (as returned by
/// [`SnapshotCompiler::sidecar_own`]).
pub fn assemble(shared: &SharedSidecar, own: ProxyConfig) -> ProxyConfig {
    let mut config = ProxyConfig::default();
    SidecarOwn {
        listeners: own.listeners,
        route_tables: own.route_tables,
        clusters: own.clusters,
    }
    .assemble(&mut config, shared.outbound.clone(), shared.clusters.clone());
    config
}

/// Whether both snapshots have the same ServiceEntries and WorkloadEntries (in store order).
fn same_registry_inputs(a: &[Arc<Resource>], b: &[Arc<Resource>]) -> bool {
    fn inputs(all: &[Arc<Resource>]) -> impl Iterator<Item = &Resource> {
        all.iter()
            .map(|r| &**r)
            .filter(|r| matches!(r.spec, Spec::ServiceEntry(_) | Spec::WorkloadEntry(_)))
    }
    inputs(a).eq(inputs(b))
}

/// The VirtualService at index `i` (indices are only ever taken from VirtualServices).
fn vs_at(all: &[Arc<Resource>], i: usize) -> Option<(&Resource, &VirtualService)> {
    let r: &Resource = all.get(i)?;
    match &r.spec {
        Spec::VirtualService(vs) => Some((r, vs)),
        _ => None,
    }
}

/// [`Lookup`] answered from the compiler's indexes.
struct Indexed<'s, R: AsRef<[Arc<Resource>]>> {
    compiler: &'s SnapshotCompiler<R>,
}

impl<'s, R: AsRef<[Arc<Resource>]>> Lookup<'s> for Indexed<'s, R> {
    fn mesh_owner(&self, service: &Service) -> Option<(&'s Resource, &'s VirtualService)> {
        let i = *self.compiler.mesh_owner.get(&service.host)?;
        vs_at(self.compiler.resources.as_ref(), i)
    }

    fn destination_rule(&self, host: &str, node_ns: &str, service_ns: &str) -> Option<&'s DestinationRule> {
        let all = self.compiler.resources.as_ref();
        let oldest = |candidates: &mut dyn Iterator<Item = usize>| {
            candidates.min_by(|&a, &b| {
                let (Some(a), Some(b)) = (all.get(a), all.get(b)) else {
                    return a.cmp(&b);
                };
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
                    .then_with(|| a.name().cmp(b.name()))
            })
        };
        for ns in [node_ns, service_ns, ROOT_NAMESPACE] {
            let Some(rules) = self.compiler.rules.get(ns) else {
                continue;
            };
            let found = match rules.exact.get(host) {
                Some(exact) if !exact.is_empty() => oldest(&mut exact.iter().copied()),
                _ => oldest(
                    &mut rules
                        .wildcards
                        .iter()
                        .filter(|(p, _)| host_matches(p, host))
                        .map(|(_, i)| *i),
                ),
            };
            if let Some(i) = found
                && let Some(Spec::DestinationRule(dr)) = all.get(i).map(|r| &r.spec)
            {
                return Some(dr);
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests;
