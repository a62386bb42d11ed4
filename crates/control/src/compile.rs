//! The compiler: Istio resources + workloads -> one proxy's configuration.
//!
//! A pure function, so it can be tested with literal inputs and benchmarked without a network.

mod clusters;
mod routes;
pub(crate) mod snapshot;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use strait_api::networking::{DestinationRule, Gateway, VirtualService};
use strait_api::{Resource, Spec};
use strait_mesh::{self as mesh, ProxyConfig};

use crate::registry::{CLUSTER_DOMAIN, Registry, Service, ServiceEndpoint, host_matches, resolve_host};
use routes::{RouteContext, gateway_ref_matches};
pub use snapshot::{
    JsonItems, PieceCache, ShareKey, SharedSidecar, SharedSidecarJson, SnapshotCompiler, assemble,
};

/// Envoy's name for the cluster that forwards to the request's own destination; the proxy
/// recognises it by name.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

/// What the control plane knows about a connected proxy (from its Hello).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyNode {
    /// `<workload>.<namespace>`.
    pub id: String,
    /// Sidecar or gateway.
    pub role: ProxyRole,
    /// Namespace of the workload.
    pub namespace: String,
    /// Workload (WorkloadEntry) name.
    pub workload: String,
    /// Workload labels (gateways: `istio: ingressgateway`).
    pub labels: BTreeMap<String, String>,
    /// Service account.
    pub service_account: String,
    /// The workload's own address; sidecar listeners bind here.
    pub address: String,
}

/// The role a proxy plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyRole {
    /// Sidecar next to one workload.
    #[default]
    Sidecar,
    /// Ingress gateway.
    Gateway,
}

/// Compiles the configuration of `node` from every stored resource. The `version` field is left
/// empty: the push server versions what it sends.
///
/// This is the reference implementation: it scans the resources for every lookup. The push
/// server uses [`SnapshotCompiler`], which indexes one snapshot once and shares the parts of a
/// sidecar's configuration that do not depend on the sidecar; tests prove both agree.
pub fn compile(resources: &[Arc<Resource>], node: &ProxyNode) -> ProxyConfig {
    let registry = Registry::build(resources);
    let virtual_services = sorted_virtual_services(resources);
    let lookup = Scan::new(resources, &virtual_services);
    match node.role {
        ProxyRole::Sidecar => {
            let own = sidecar_own(node, registry_endpoints(&registry, node));
            let mut config = ProxyConfig::default();
            own.assemble(
                &mut config,
                outbound_table(&registry, &lookup, &node.namespace, &node.labels),
                sidecar_clusters(&registry, &lookup, &node.namespace),
            );
            config
        }
        ProxyRole::Gateway => {
            let mut config = ProxyConfig {
                clusters: clusters::outbound_clusters(&registry, &lookup, &node.namespace),
                ..ProxyConfig::default()
            };
            gateway(&mut config, resources, &registry, &virtual_services, node);
            config
        }
    }
}

/// How the compiler finds the rules that apply to a service. [`compile`] scans; the
/// [`SnapshotCompiler`] answers from indexes built once per snapshot.
pub(crate) trait Lookup<'a> {
    /// The VirtualService that owns `service` for sidecars: the oldest bound to `mesh` with a
    /// host covering the service's.
    fn mesh_owner(&self, service: &Service) -> Option<(&'a Resource, &'a VirtualService)>;
    /// The DestinationRule for `host` as seen from namespace `node_ns`.
    fn destination_rule(&self, host: &str, node_ns: &str, service_ns: &str) -> Option<&'a DestinationRule>;
}

/// Lookups by scanning every resource (the reference behaviour).
struct Scan<'a, 'v> {
    virtual_services: &'v [(&'a Resource, &'a VirtualService)],
    rules: Vec<(&'a Resource, &'a DestinationRule)>,
}

impl<'a, 'v> Scan<'a, 'v> {
    fn new(
        resources: &'a [Arc<Resource>],
        virtual_services: &'v [(&'a Resource, &'a VirtualService)],
    ) -> Self {
        Scan {
            virtual_services,
            rules: resources
                .iter()
                .map(|r| &**r)
                .filter_map(|r| match &r.spec {
                    Spec::DestinationRule(dr) => Some((r, dr)),
                    _ => None,
                })
                .collect(),
        }
    }
}

impl<'a> Lookup<'a> for Scan<'a, '_> {
    fn mesh_owner(&self, service: &Service) -> Option<(&'a Resource, &'a VirtualService)> {
        self.virtual_services
            .iter()
            .find(|(r, vs)| {
                binds_mesh(r, vs)
                    && vs
                        .hosts
                        .iter()
                        .any(|h| host_matches(&resolve_host(h, r.namespace()), &service.host))
            })
            .copied()
    }

    fn destination_rule(&self, host: &str, node_ns: &str, service_ns: &str) -> Option<&'a DestinationRule> {
        clusters::destination_rule_for(&self.rules, host, node_ns, service_ns)
    }
}

/// Whether a VirtualService applies to sidecars (its gateways include `mesh`).
pub(crate) fn binds_mesh(r: &Resource, vs: &VirtualService) -> bool {
    vs.effective_gateways()
        .iter()
        .any(|g| gateway_ref_matches(g, r.namespace(), "mesh"))
}

/// VirtualServices, oldest first: Istio resolves conflicts in favour of the oldest rule and
/// concatenates gateway rules in that order.
fn sorted_virtual_services(resources: &[Arc<Resource>]) -> Vec<(&Resource, &VirtualService)> {
    sorted_virtual_service_indices(resources)
        .into_iter()
        .filter_map(|i| match &resources[i].spec {
            Spec::VirtualService(vs) => Some((&*resources[i], vs)),
            _ => None,
        })
        .collect()
}

/// Indices of the VirtualServices in `resources`, oldest first.
fn sorted_virtual_service_indices(resources: &[Arc<Resource>]) -> Vec<usize> {
    let mut out: Vec<usize> = (0..resources.len())
        .filter(|&i| matches!(resources[i].spec, Spec::VirtualService(_)))
        .collect();
    out.sort_by(|&a, &b| {
        let (a, b) = (&resources[a], &resources[b]);
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
            .then_with(|| a.namespace().cmp(b.namespace()))
            .then_with(|| a.name().cmp(b.name()))
    });
    out
}

fn node_ip(node: &ProxyNode) -> IpAddr {
    node.address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The parts of a sidecar's configuration that belong to this sidecar alone: its outbound
/// listener (bound to its own address) and, for each port of the services its workload backs,
/// an inbound listener, route table and cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SidecarOwn {
    pub listeners: Vec<mesh::Listener>,
    pub route_tables: Vec<mesh::RouteTable>,
    pub clusters: Vec<mesh::Cluster>,
}

impl SidecarOwn {
    /// The whole configuration: own listeners; the shared outbound table, then own inbound
    /// tables; the shared clusters, then own inbound clusters.
    pub fn assemble(
        self,
        config: &mut ProxyConfig,
        outbound: mesh::RouteTable,
        clusters: Vec<mesh::Cluster>,
    ) {
        config.listeners = self.listeners;
        config.route_tables = std::iter::once(outbound).chain(self.route_tables).collect();
        config.clusters = clusters.into_iter().chain(self.clusters).collect();
    }
}

/// A sidecar's own parts: one outbound listener (an explicit HTTP proxy) and the inbound side
/// for `endpoints`, the (service, endpoint) pairs of its workload in registry order.
pub(crate) fn sidecar_own<'r>(
    node: &ProxyNode,
    endpoints: impl Iterator<Item = (&'r Service, &'r ServiceEndpoint)>,
) -> SidecarOwn {
    let ip = node_ip(node);
    let mut own = SidecarOwn::default();
    own.listeners.push(mesh::Listener {
        name: "virtualOutbound".into(),
        address: SocketAddr::new(ip, mesh::ports::OUTBOUND),
        direction: mesh::Direction::Outbound,
        route_table: "outbound".into(),
        tls: None,
    });
    inbound(&mut own, endpoints, ip);
    own
}

/// The outbound route table of a sidecar in `node_ns` with `node_labels`: one virtual host per
/// HTTP port of every service, then the catch-all. It depends on the sidecar only through its
/// namespace and the labels that `sourceLabels` of some rule mention.
pub(crate) fn outbound_table<'a>(
    registry: &Registry,
    lookup: &impl Lookup<'a>,
    node_ns: &str,
    node_labels: &BTreeMap<String, String>,
) -> mesh::RouteTable {
    let mut outbound = mesh::RouteTable {
        name: "outbound".into(),
        virtual_hosts: Vec::new(),
    };
    for service in registry.services.values() {
        let owner = lookup.mesh_owner(service);
        outbound
            .virtual_hosts
            .extend(service_vhosts(registry, owner, service, node_ns, node_labels));
    }
    outbound.virtual_hosts.push(allow_any_vhost());
    outbound
}

/// The outbound virtual hosts of one service (one per HTTP port), routed by `owner` if any.
pub(crate) fn service_vhosts(
    registry: &Registry,
    owner: Option<(&Resource, &VirtualService)>,
    service: &Service,
    node_ns: &str,
    node_labels: &BTreeMap<String, String>,
) -> Vec<mesh::VirtualHost> {
    let mut out = Vec::new();
    for port in service.ports.iter().filter(|p| p.is_http()) {
        let ctx = RouteContext {
            vs_namespace: "",
            vs_name: String::new(),
            port: Some(port.number),
            gateway: "mesh",
            node_labels,
            node_namespace: node_ns,
            registry,
        };
        let routes = owner
            .and_then(|owner| mesh_routes(owner, &ctx))
            .unwrap_or_else(|| vec![default_route(service, port.number)]);
        out.push(mesh::VirtualHost {
            name: format!("{}:{}", service.host, port.number),
            domains: aliases(&service.host, node_ns),
            port: Some(port.number),
            routes,
        });
    }
    out
}

/// Istio's default outboundTrafficPolicy is ALLOW_ANY: a host the registry does not know is
/// forwarded to where the client asked (Envoy's PassthroughCluster). Always the last virtual
/// host of the outbound table.
pub(crate) fn allow_any_vhost() -> mesh::VirtualHost {
    mesh::VirtualHost {
        name: "allow_any".into(),
        domains: vec!["*".into()],
        port: None,
        routes: vec![mesh::Route::to_cluster("allow_any", PASSTHROUGH_CLUSTER)],
    }
}

/// Every outbound cluster a sidecar in `node_ns` sees, then the PassthroughCluster.
pub(crate) fn sidecar_clusters<'a>(
    registry: &Registry,
    lookup: &impl Lookup<'a>,
    node_ns: &str,
) -> Vec<mesh::Cluster> {
    let mut out = clusters::outbound_clusters(registry, lookup, node_ns);
    out.push(passthrough_cluster());
    out
}

/// The cluster that forwards to the request's own destination (last of the shared clusters).
pub(crate) fn passthrough_cluster() -> mesh::Cluster {
    mesh::Cluster {
        name: PASSTHROUGH_CLUSTER.into(),
        connect_timeout_ms: 10_000,
        ..mesh::Cluster::default()
    }
}

/// Routes of the VirtualService that owns a service for sidecars, if any of its rules applies
/// to this proxy. Istio: several VirtualServices for one host are not merged for sidecars; the
/// oldest wins. A VirtualService none of whose rules applies here is ignored.
fn mesh_routes(owner: (&Resource, &VirtualService), base: &RouteContext<'_>) -> Option<Vec<mesh::Route>> {
    let (r, vs) = owner;
    let ctx = RouteContext {
        vs_namespace: r.namespace(),
        vs_name: format!("{}.{}", r.name(), r.namespace()),
        ..*base
    };
    let routes: Vec<mesh::Route> = vs
        .http
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| routes::translate(&ctx, i, rule))
        .collect();
    (!routes.is_empty()).then_some(routes)
}

/// Default routing when no VirtualService applies: everything to the whole service, with Istio's
/// default retry policy.
fn default_route(service: &Service, port: u16) -> mesh::Route {
    mesh::Route {
        retries: Some(routes::default_retry_policy()),
        ..mesh::Route::to_cluster("default", routes::cluster_name(port, "", &service.host))
    }
}

/// The names a client in `client_ns` may use for a host: `reviews.default.svc.cluster.local`,
/// `reviews.default.svc`, `reviews.default`, and `reviews` from the same namespace.
fn aliases(host: &str, client_ns: &str) -> Vec<String> {
    let mut out = vec![host.to_string()];
    if let Some(rest) = host.strip_suffix(&format!(".{CLUSTER_DOMAIN}")) {
        out.push(format!("{rest}.svc"));
        out.push(rest.to_string());
        if let Some((name, ns)) = rest.split_once('.')
            && ns == client_ns
        {
            out.push(name.to_string());
        }
    }
    out
}

/// The endpoints of `node`'s workload, found by scanning the registry: those of its
/// WorkloadEntry, and inline endpoints at its address.
pub(crate) fn registry_endpoints<'r>(
    registry: &'r Registry,
    node: &ProxyNode,
) -> impl Iterator<Item = (&'r Service, &'r ServiceEndpoint)> {
    let ip = node_ip(node);
    let workload = node.workload.clone();
    let namespace = node.namespace.clone();
    registry.services.values().flat_map(move |service| {
        let (workload, namespace) = (workload.clone(), namespace.clone());
        service
            .endpoints
            .iter()
            .filter(move |e| {
                (e.workload == workload && e.namespace == namespace)
                    || (e.workload.is_empty() && e.address == ip)
            })
            .map(move |e| (service, e))
    })
}

/// Inbound listeners: one per port of the services this workload backs, forwarding to the app.
fn inbound<'r>(
    own: &mut SidecarOwn,
    endpoints: impl Iterator<Item = (&'r Service, &'r ServiceEndpoint)>,
    ip: IpAddr,
) {
    let mut seen = std::collections::BTreeSet::new();
    for (service, endpoint) in endpoints {
        for port in service.ports.iter().filter(|p| p.is_http()) {
            let target = endpoint.socket_for(port).port();
            if !seen.insert(target) {
                continue;
            }
            let name = format!("inbound|{target}||");
            let app = SocketAddr::new(
                endpoint.app_address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                target,
            );
            own.listeners.push(mesh::Listener {
                name: format!("{ip}_{target}"),
                address: SocketAddr::new(ip, target),
                direction: mesh::Direction::Inbound,
                route_table: format!("inbound|{target}"),
                tls: None,
            });
            own.route_tables.push(mesh::RouteTable {
                name: format!("inbound|{target}"),
                virtual_hosts: vec![mesh::VirtualHost {
                    name: format!("inbound|http|{target}"),
                    domains: vec!["*".into()],
                    port: None,
                    routes: vec![mesh::Route::to_cluster("default", name.clone())],
                }],
            });
            own.clusters.push(mesh::Cluster {
                name,
                service: service.host.clone(),
                port: target,
                // The workload's labels feed the destination_app/version metric labels.
                endpoints: vec![mesh::Endpoint {
                    address: app,
                    labels: endpoint.labels.clone(),
                    weight: 1,
                }],
                connect_timeout_ms: 10_000,
                ..mesh::Cluster::default()
            });
        }
    }
}

/// An ingress gateway: one listener per server port of every Gateway whose selector matches this
/// proxy's labels, routing with the VirtualServices bound to those Gateways.
fn gateway(
    config: &mut ProxyConfig,
    resources: &[Arc<Resource>],
    registry: &Registry,
    virtual_services: &[(&Resource, &VirtualService)],
    node: &ProxyNode,
) {
    let ip = node_ip(node);
    let gateways: Vec<(&Resource, &Gateway)> = resources
        .iter()
        .map(|r| &**r)
        .filter_map(|r| match &r.spec {
            Spec::Gateway(g) if crate::registry::labels_match(&g.selector, &node.labels) => Some((r, g)),
            _ => None,
        })
        .collect();
    // port -> (domain -> routes), in a stable order.
    let mut tables: BTreeMap<u16, BTreeMap<String, Vec<mesh::Route>>> = BTreeMap::new();
    for (gr, gw) in &gateways {
        let gw_ref = format!("{}/{}", gr.namespace(), gr.name());
        for server in &gw.servers {
            let Ok(port) = u16::try_from(server.port.number) else {
                continue;
            };
            // Only plaintext HTTP servers are served so far; TLS servers need certificates.
            if !matches!(
                server.port.protocol.to_ascii_uppercase().as_str(),
                "HTTP" | "HTTP2" | "GRPC"
            ) {
                continue;
            }
            let table = tables.entry(port).or_default();
            for (vr, vs) in virtual_services {
                if !vs
                    .gateways
                    .iter()
                    .any(|g| gateway_ref_matches(g, vr.namespace(), &gw_ref))
                {
                    continue;
                }
                let ctx = RouteContext {
                    vs_namespace: vr.namespace(),
                    vs_name: format!("{}.{}", vr.name(), vr.namespace()),
                    port: Some(port),
                    gateway: &gw_ref,
                    node_labels: &node.labels,
                    node_namespace: &node.namespace,
                    registry,
                };
                for host in &vs.hosts {
                    let Some(domain) = bind_host(&server.hosts, gr.namespace(), vr.namespace(), host) else {
                        continue;
                    };
                    let routes = vs
                        .http
                        .iter()
                        .enumerate()
                        .filter_map(|(i, rule)| routes::translate(&ctx, i, rule));
                    table.entry(domain).or_default().extend(routes);
                }
            }
        }
    }
    for (port, vhosts) in tables {
        let table_name = format!("http.{port}");
        config.listeners.push(mesh::Listener {
            name: format!("0.0.0.0_{port}"),
            address: SocketAddr::new(ip, port),
            direction: mesh::Direction::Gateway,
            route_table: table_name.clone(),
            tls: None,
        });
        config.route_tables.push(mesh::RouteTable {
            name: table_name,
            virtual_hosts: vhosts
                .into_iter()
                .map(|(domain, routes)| mesh::VirtualHost {
                    name: format!("{domain}:{port}"),
                    domains: vec![domain],
                    port: None,
                    routes,
                })
                .collect(),
        });
    }
}

/// Istio: a VirtualService host binds to a server when it equals or falls under one of the
/// server's hosts (`[ns/]host`, ns `*` or `.` or a name). The narrower of the two is served.
fn bind_host(server_hosts: &[String], gw_ns: &str, vs_ns: &str, vs_host: &str) -> Option<String> {
    let vs_host = vs_host.to_ascii_lowercase();
    server_hosts.iter().find_map(|entry| {
        let (ns, host) = entry.split_once('/').unwrap_or(("*", entry.as_str()));
        if !(ns == "*" || ns == vs_ns || (ns == "." && vs_ns == gw_ns)) {
            return None;
        }
        let host = host.to_ascii_lowercase();
        if host_matches(&host, &vs_host) {
            Some(vs_host.clone())
        } else if host_matches(&vs_host, &host) {
            Some(host)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests;
