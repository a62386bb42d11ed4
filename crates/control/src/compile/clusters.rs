//! Services + DestinationRules -> clusters.
//!
//! One cluster per service port (`outbound|9080||reviews...`) plus one per DestinationRule subset
//! (`outbound|9080|v1|reviews...`), with the subset's endpoints picked by labels. A DestinationRule
//! applies after routing: it never changes which cluster a route names, only what is behind it.

use strait_api::Resource;
use strait_api::networking::{
    ConnectionPoolSettings, DestinationRule, OutlierDetection, SimpleLb, TrafficPolicy,
};
use strait_mesh as mesh;

use super::Lookup;
use super::routes::cluster_name;
use crate::registry::{Registry, Service, ServicePort, host_matches, labels_match, resolve_host};

/// Istio's root namespace: DestinationRules there apply mesh-wide.
pub(crate) const ROOT_NAMESPACE: &str = "istio-system";
/// Istio's default connect timeout (meshConfig.connectTimeout).
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Builds every outbound cluster visible to a proxy in namespace `node_ns`.
pub(crate) fn outbound_clusters<'a>(
    registry: &Registry,
    lookup: &impl Lookup<'a>,
    node_ns: &str,
) -> Vec<mesh::Cluster> {
    let mut clusters = Vec::new();
    for service in registry.services.values() {
        let dr = lookup.destination_rule(&service.host, node_ns, &service.namespace);
        clusters.extend(service_clusters(service, dr));
    }
    clusters
}

/// The clusters of one service: one per port, then one per subset of `dr` per port.
pub(crate) fn service_clusters(service: &Service, dr: Option<&DestinationRule>) -> Vec<mesh::Cluster> {
    let mut clusters = Vec::new();
    for port in &service.ports {
        let top = dr.and_then(|d| d.traffic_policy.as_ref());
        clusters.push(cluster(service, port, "", top, None, None));
        for subset in dr.map(|d| d.subsets.as_slice()).unwrap_or_default() {
            clusters.push(cluster(
                service,
                port,
                &subset.name,
                top,
                subset.traffic_policy.as_ref(),
                Some(&subset.labels),
            ));
        }
    }
    clusters
}

/// Istio's lookup order: the client's namespace, then the service's, then the root namespace;
/// an exact host beats a wildcard, and among equals the oldest rule wins.
pub(crate) fn destination_rule_for<'a>(
    rules: &[(&'a Resource, &'a DestinationRule)],
    host: &str,
    node_ns: &str,
    service_ns: &str,
) -> Option<&'a DestinationRule> {
    for ns in [node_ns, service_ns, ROOT_NAMESPACE] {
        let mut candidates: Vec<(bool, &Resource, &DestinationRule)> = rules
            .iter()
            .filter(|(r, _)| r.namespace() == ns)
            .filter_map(|(r, dr)| {
                let pattern = resolve_host(&dr.host, r.namespace());
                host_matches(&pattern, host).then_some((pattern == host, *r, *dr))
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| {
                    a.1.metadata
                        .creation_timestamp
                        .cmp(&b.1.metadata.creation_timestamp)
                })
                .then_with(|| a.1.name().cmp(b.1.name()))
        });
        if let Some((_, _, dr)) = candidates.first() {
            return Some(dr);
        }
    }
    None
}

fn cluster(
    service: &Service,
    port: &ServicePort,
    subset: &str,
    top: Option<&TrafficPolicy>,
    subset_policy: Option<&TrafficPolicy>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> mesh::Cluster {
    let endpoints = service
        .endpoints
        .iter()
        .filter(|e| labels.is_none_or(|l| labels_match(l, &e.labels)))
        .map(|e| mesh::Endpoint {
            address: e.socket_for(port),
            labels: e.labels.clone(),
            weight: e.weight,
        })
        .collect();
    // Istio: a subset's policy overrides the top-level one field group by field group, and a
    // port-level setting replaces the policy for that port.
    let pick = |f: &dyn Fn(&TrafficPolicy) -> bool| -> Option<&TrafficPolicy> {
        [subset_policy, top].into_iter().flatten().find(|p| f(p))
    };
    let port_level = |p: &TrafficPolicy| {
        p.port_level_settings
            .iter()
            .find(|s| {
                s.port
                    .as_ref()
                    .is_some_and(|sel| sel.number == u32::from(port.number))
            })
            .cloned()
    };
    let lb = pick(&|p| p.load_balancer.is_some() || port_level(p).is_some_and(|s| s.load_balancer.is_some()))
        .and_then(|p| {
            port_level(p)
                .and_then(|s| s.load_balancer)
                .or(p.load_balancer.clone())
        })
        .and_then(|lb| lb.simple);
    let pool = pick(&|p| p.connection_pool.is_some()).and_then(|p| p.connection_pool.as_ref());
    let outlier = pick(&|p| p.outlier_detection.is_some()).and_then(|p| p.outlier_detection.as_ref());
    let protocol = match port.protocol.to_ascii_uppercase().as_str() {
        "HTTP2" | "GRPC" => mesh::UpstreamProtocol::Http2,
        _ => mesh::UpstreamProtocol::Http1,
    };
    mesh::Cluster {
        name: cluster_name(port.number, subset, &service.host),
        service: service.host.clone(),
        port: port.number,
        subset: subset.to_string(),
        lb_policy: lb_policy(lb),
        protocol,
        endpoints,
        connect_timeout_ms: pool
            .and_then(|p| p.tcp.as_ref())
            .and_then(|t| t.connect_timeout.as_ref())
            .map(|d| d.as_std().as_millis() as u64)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        connection_pool: pool.map(connection_pool),
        outlier_detection: outlier.map(outlier_detection),
        // DestinationRule `tls` and ISTIO_MUTUAL are not compiled yet (docs/configuration.md).
        tls: None,
    }
}

/// Istio: an unset algorithm is LEAST_REQUEST (not round robin, whatever old docs say).
fn lb_policy(simple: Option<SimpleLb>) -> mesh::LbPolicy {
    match simple {
        Some(SimpleLb::RoundRobin) => mesh::LbPolicy::RoundRobin,
        Some(SimpleLb::Random) => mesh::LbPolicy::Random,
        _ => mesh::LbPolicy::LeastRequest,
    }
}

/// Istio applies only the values that are set (> 0).
fn connection_pool(p: &ConnectionPoolSettings) -> mesh::ConnectionPool {
    let positive = |v: i32| u32::try_from(v).ok().filter(|v| *v > 0);
    let tcp = p.tcp.as_ref();
    let http = p.http.as_ref();
    mesh::ConnectionPool {
        max_connections: tcp.and_then(|t| positive(t.max_connections)),
        max_pending_requests: http.and_then(|h| positive(h.http1_max_pending_requests)),
        max_requests: http.and_then(|h| positive(h.http2_max_requests)),
        max_requests_per_connection: http.and_then(|h| positive(h.max_requests_per_connection)),
        max_retries: http.and_then(|h| positive(h.max_retries)),
        idle_timeout_ms: http
            .and_then(|h| h.idle_timeout.as_ref())
            .or(tcp.and_then(|t| t.idle_timeout.as_ref()))
            .map(|d| d.as_std().as_millis() as u64),
    }
}

/// Istio's defaults once outlierDetection is present: 5 consecutive 5xx, 10 s interval, 30 s
/// base ejection, 10 % max ejected.
fn outlier_detection(o: &OutlierDetection) -> mesh::OutlierDetection {
    let consecutive_5xx = o
        .consecutive_5xx_errors
        .or(o.consecutive_errors.and_then(|v| u32::try_from(v).ok()))
        .unwrap_or(5);
    mesh::OutlierDetection {
        consecutive_5xx,
        consecutive_gateway_errors: o.consecutive_gateway_errors.unwrap_or(0),
        interval_ms: o
            .interval
            .as_ref()
            .map(|d| d.as_std().as_millis() as u64)
            .unwrap_or(10_000),
        base_ejection_ms: o
            .base_ejection_time
            .as_ref()
            .map(|d| d.as_std().as_millis() as u64)
            .unwrap_or(30_000),
        max_ejection_percent: o
            .max_ejection_percent
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(10),
    }
}
