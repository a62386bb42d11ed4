//! The service registry: which services exist and which workloads back them.
//!
//! Locally a workload is a WorkloadEntry selected by a ServiceEntry (`workloadSelector`), exactly
//! how Istio models workloads outside Kubernetes; inline `endpoints` work too. The registry is
//! derived from the stored resources (once per snapshot in the push server), so it can never
//! disagree with them.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use strait_api::networking::{ServiceEntry, WorkloadEntry};
use strait_api::{Resource, Spec};

/// Annotation on a WorkloadEntry giving the address the application itself listens on, behind its
/// sidecar. `strait run` sets it; the inbound side of the sidecar forwards there.
pub const APP_ADDRESS_ANNOTATION: &str = "strait.io/app-address";

pub use strait_api::analyze::{CLUSTER_DOMAIN, resolve_host};

/// A service: one host of a ServiceEntry.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Fully qualified host, e.g. `reviews.default.svc.cluster.local`.
    pub host: String,
    /// Namespace of the ServiceEntry.
    pub namespace: String,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Backing workloads.
    pub endpoints: Vec<ServiceEndpoint>,
}

/// A port of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// Port number clients use.
    pub number: u16,
    /// Port name (`http`, `http-web`).
    pub name: String,
    /// Protocol (`HTTP`, `TCP`, ...); Istio derives it from the name when unset.
    pub protocol: String,
    /// Port on the endpoints, when it differs.
    pub target_port: Option<u16>,
}

impl ServicePort {
    /// Whether HTTP routing applies to this port (HTTP, HTTP2, gRPC, or a name with that prefix).
    pub fn is_http(&self) -> bool {
        let proto = if self.protocol.is_empty() {
            self.name.split('-').next().unwrap_or_default()
        } else {
            self.protocol.as_str()
        };
        matches!(
            proto.to_ascii_uppercase().as_str(),
            "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB"
        )
    }
}

/// A workload behind a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEndpoint {
    /// WorkloadEntry name (empty for inline endpoints).
    pub workload: String,
    /// Namespace.
    pub namespace: String,
    /// Address other proxies connect to.
    pub address: IpAddr,
    /// Labels (subsets select on these).
    pub labels: BTreeMap<String, String>,
    /// Service account.
    pub service_account: String,
    /// Port overrides by service port name (WorkloadEntry `ports`).
    pub ports: BTreeMap<String, u16>,
    /// Load-balancing weight.
    pub weight: u32,
    /// Where the application listens, from [`APP_ADDRESS_ANNOTATION`].
    pub app_address: Option<IpAddr>,
}

impl ServiceEndpoint {
    /// The socket address serving `port` of a service on this endpoint.
    pub fn socket_for(&self, port: &ServicePort) -> SocketAddr {
        let number = self
            .ports
            .get(&port.name)
            .copied()
            .or(port.target_port)
            .unwrap_or(port.number);
        SocketAddr::new(self.address, number)
    }
}

/// All services, by host.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Services keyed by FQDN.
    pub services: BTreeMap<String, Service>,
}

impl Registry {
    /// Derives the registry from the stored resources.
    pub fn build(resources: &[Arc<Resource>]) -> Registry {
        let resources = resources.iter().map(|r| &**r);
        // WorkloadEntries by namespace: a ServiceEntry only selects in its own namespace.
        let mut entries: HashMap<&str, Vec<(&Resource, &WorkloadEntry)>> = HashMap::new();
        for r in resources.clone() {
            if let Spec::WorkloadEntry(we) = &r.spec {
                entries.entry(r.namespace()).or_default().push((r, we));
            }
        }
        let mut services = BTreeMap::new();
        for r in resources {
            let Spec::ServiceEntry(se) = &r.spec else { continue };
            let in_namespace = entries.get(r.namespace()).map(Vec::as_slice).unwrap_or_default();
            let endpoints = endpoints_of(r, se, in_namespace);
            let ports: Vec<ServicePort> = se
                .ports
                .iter()
                .filter_map(|p| {
                    Some(ServicePort {
                        number: u16::try_from(p.number).ok()?,
                        name: p.name.clone(),
                        protocol: p.protocol.clone(),
                        target_port: u16::try_from(p.target_port).ok().filter(|n| *n != 0),
                    })
                })
                .collect();
            for host in &se.hosts {
                let host = resolve_host(host, r.namespace());
                services.entry(host.clone()).or_insert_with(|| Service {
                    host,
                    namespace: r.namespace().to_string(),
                    ports: ports.clone(),
                    endpoints: endpoints.clone(),
                });
            }
        }
        Registry { services }
    }

    /// Looks a service up by a host as written in a rule of namespace `ns`.
    pub fn lookup(&self, host: &str, ns: &str) -> Option<&Service> {
        self.services.get(&resolve_host(host, ns))
    }
}

/// Endpoints of a ServiceEntry: inline ones, or the WorkloadEntries its selector picks in its
/// own namespace (`entries` holds that namespace's).
fn endpoints_of(
    r: &Resource,
    se: &ServiceEntry,
    entries: &[(&Resource, &WorkloadEntry)],
) -> Vec<ServiceEndpoint> {
    let ns = r.namespace();
    if let Some(selector) = &se.workload_selector {
        entries
            .iter()
            .filter(|(wr, we)| wr.namespace() == ns && labels_match(&selector.labels, &we.labels))
            .filter_map(|(wr, we)| endpoint(we, wr.name(), ns, app_address(wr)))
            .collect()
    } else {
        se.endpoints
            .iter()
            .filter_map(|we| endpoint(we, "", ns, None))
            .collect()
    }
}

fn app_address(r: &Resource) -> Option<IpAddr> {
    r.metadata
        .annotations
        .get(APP_ADDRESS_ANNOTATION)
        .and_then(|a| a.parse().ok())
}

fn endpoint(
    we: &WorkloadEntry,
    name: &str,
    ns: &str,
    app_address: Option<IpAddr>,
) -> Option<ServiceEndpoint> {
    // Only IP addresses are served locally; DNS names and unix sockets need a resolver we do not run.
    let address: IpAddr = we.address.parse().ok()?;
    Some(ServiceEndpoint {
        workload: name.to_string(),
        namespace: ns.to_string(),
        address,
        labels: we.labels.clone(),
        service_account: if we.service_account.is_empty() {
            "default".into()
        } else {
            we.service_account.clone()
        },
        ports: we
            .ports
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), u16::try_from(*v).ok()?)))
            .collect(),
        weight: if we.weight == 0 { 1 } else { we.weight },
        app_address,
    })
}

/// True when every selector label is present with the same value (an empty selector matches all).
pub fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Istio host matching: `*.example.com` covers `a.example.com`; `*` covers everything.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_resolve_against_the_rule_namespace() {
        assert_eq!(
            resolve_host("reviews", "default"),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(
            resolve_host("reviews.prod.svc.cluster.local", "default"),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(resolve_host("*.example.com", "default"), "*.example.com");
    }

    #[test]
    fn wildcard_hosts() {
        assert!(host_matches("*.example.com", "dev.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("*", "anything"));
        assert!(host_matches("a.b", "a.b"));
    }

    #[test]
    fn port_protocols() {
        let p = |name: &str, protocol: &str| ServicePort {
            number: 1,
            name: name.into(),
            protocol: protocol.into(),
            target_port: None,
        };
        assert!(p("http", "").is_http());
        assert!(p("http-web", "").is_http());
        assert!(p("x", "HTTP").is_http());
        assert!(!p("tcp", "").is_http());
        assert!(!p("x", "TCP").is_http());
    }
}
