//! Cross-resource analysis in the manner of `istioctl analyze`: references that point nowhere
//! (IST0101) and mesh VirtualServices that claim the same host (IST0109).
//!
//! Validation looks at one resource; analysis looks at how resources refer to each other, which
//! is where most "my route does nothing" and "503 NC" surprises come from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::networking::{Destination, VirtualService};
use crate::{Document, Resource, Spec};

/// Severity, as istioctl prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Configuration that cannot work as written.
    Error,
    /// Configuration that probably does not do what was meant.
    Warning,
    /// For information.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "Error",
            Level::Warning => "Warning",
            Level::Info => "Info",
        })
    }
}

/// One finding. Displays as istioctl does:
/// `Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v4"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Severity.
    pub level: Level,
    /// Istio's message code (`IST0101`).
    pub code: &'static str,
    /// `VirtualService default/reviews`.
    pub resource: String,
    /// The message.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] ({}) {}",
            self.level, self.code, self.resource, self.message
        )
    }
}

/// A service the analysis may find references to: a Kubernetes Service or a ServiceEntry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// FQDN (`reviews.default.svc.cluster.local`) or ServiceEntry host (may be `*.example.com`).
    pub hostname: String,
    /// Namespace the service is defined in.
    pub namespace: String,
    /// Service port numbers; empty when unknown.
    pub ports: Vec<u32>,
    /// Visibility, as `exportTo` (empty = everywhere).
    pub export_to: Vec<String>,
}

/// Istio's cluster domain: short names resolve to `<name>.<ns>.svc.cluster.local`.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// Istio: a short name (`reviews`) resolves against the namespace of the rule that uses it,
/// `reviews` in `default` being `reviews.default.svc.cluster.local`. Names with a dot and
/// wildcards are taken as written. Hosts are case-insensitive, so the result is lowercase.
/// The analyzer and the control plane's compiler share this one rule.
pub fn resolve_host(host: &str, ns: &str) -> String {
    if host.contains('.') || host.contains('*') {
        host.to_ascii_lowercase()
    } else {
        format!("{}.{ns}.{CLUSTER_DOMAIN}", host.to_ascii_lowercase())
    }
}

/// Whether two hosts (wildcards allowed on either side) can name the same thing.
fn hosts_overlap(a: &str, b: &str) -> bool {
    if a == b || a == "*" || b == "*" {
        return true;
    }
    let covers = |wild: &str, other: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| other.ends_with(suffix))
    };
    covers(a, b) || covers(b, a)
}

/// Whether a resource in `owner_ns` with `export_to` is visible from namespace `ns`.
fn visible(export_to: &[String], owner_ns: &str, ns: &str) -> bool {
    export_to.is_empty()
        || export_to
            .iter()
            .any(|e| e == "*" || (e == "." && owner_ns == ns) || e == ns)
}

/// Analyzes Istio resources alone: services are known from ServiceEntries in the list.
pub fn analyze(resources: &[Resource]) -> Vec<Diagnostic> {
    analyze_with_services(resources, &[])
}

/// Analyzes parsed documents: Kubernetes `Service` objects among them count as services.
pub fn analyze_documents(docs: &[Document]) -> Vec<Diagnostic> {
    let resources: Vec<Resource> = docs
        .iter()
        .filter_map(|d| match d {
            Document::Istio(r) => Some(r.clone()),
            Document::Kubernetes(_) => None,
        })
        .collect();
    analyze_with_services(&resources, &kubernetes_services(docs))
}

/// The Kubernetes Services among `docs`, as `<name>.<ns>.svc.cluster.local` with their ports.
pub fn kubernetes_services(docs: &[Document]) -> Vec<ServiceInfo> {
    docs.iter()
        .filter_map(|d| match d {
            Document::Kubernetes(k) if k.kind == "Service" && k.api_version == "v1" => {
                let ns = k.metadata.namespace_or_default().to_string();
                let ports = k
                    .body
                    .pointer("/spec/ports")
                    .and_then(|p| p.as_array())
                    .map(|ports| {
                        ports
                            .iter()
                            .filter_map(|p| p.get("port").and_then(|n| n.as_u64()))
                            .filter_map(|n| u32::try_from(n).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                // Istio: the `networking.istio.io/exportTo` annotation limits a Service's visibility.
                let export_to = k
                    .metadata
                    .annotations
                    .get("networking.istio.io/exportTo")
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                Some(ServiceInfo {
                    hostname: format!("{}.{ns}.{CLUSTER_DOMAIN}", k.metadata.name),
                    namespace: ns,
                    ports,
                    export_to,
                })
            }
            _ => None,
        })
        .collect()
}

/// Analyzes `resources` knowing `services` (e.g. Kubernetes Services) besides ServiceEntries.
pub fn analyze_with_services(resources: &[Resource], services: &[ServiceInfo]) -> Vec<Diagnostic> {
    let all: Vec<&Resource> = resources.iter().collect();
    analyze_inner(&all, services, &|_| true)
}

/// The findings about the resources `report_on` accepts, with all of `resources` as context:
/// what [`analyze`] reports on them, without checking every other VirtualService of a large
/// store (an apply of one resource into 1,000 services checks that one). `resources` are
/// anything that lends a [`Resource`]: the resources themselves, or the control plane's shared
/// ones (`Arc<Resource>`).
pub fn analyze_only<R: std::borrow::Borrow<Resource>>(
    resources: &[R],
    report_on: &dyn Fn(&Resource) -> bool,
) -> Vec<Diagnostic> {
    let resources: Vec<&Resource> = resources.iter().map(std::borrow::Borrow::borrow).collect();
    let mut out = analyze_inner(&resources, &[], report_on);
    let names: BTreeSet<String> = resources
        .iter()
        .filter(|r| report_on(r))
        .map(|r| r.display_name())
        .collect();
    out.retain(|d| names.contains(&d.resource));
    out
}

fn analyze_inner(
    resources: &[&Resource],
    services: &[ServiceInfo],
    report_on: &dyn Fn(&Resource) -> bool,
) -> Vec<Diagnostic> {
    let mut known: Vec<ServiceInfo> = services.to_vec();
    let mut gateways = BTreeSet::new();
    // (resolved DR host, DR namespace, exportTo, subset names)
    let mut rules: Vec<(String, &str, &[String], BTreeSet<&str>)> = Vec::new();
    for r in resources {
        match &r.spec {
            Spec::ServiceEntry(se) => {
                for h in &se.hosts {
                    known.push(ServiceInfo {
                        hostname: resolve_host(h, r.namespace()),
                        namespace: r.namespace().to_string(),
                        ports: se.ports.iter().map(|p| p.number).collect(),
                        export_to: se.export_to.clone(),
                    });
                }
            }
            Spec::Gateway(_) => {
                gateways.insert((r.namespace().to_string(), r.name().to_string()));
            }
            Spec::DestinationRule(dr) => rules.push((
                resolve_host(&dr.host, r.namespace()),
                r.namespace(),
                &dr.export_to,
                dr.subsets.iter().map(|s| s.name.as_str()).collect(),
            )),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for r in resources {
        let Spec::VirtualService(vs) = &r.spec else {
            continue;
        };
        if !report_on(r) {
            continue;
        }
        let ns = r.namespace();
        let mut report = |code: &'static str, message: String| {
            out.push(Diagnostic {
                level: Level::Error,
                code,
                resource: r.display_name(),
                message,
            });
        };
        // Istio: a VirtualService exported to other namespaces needs its destinations visible there.
        let consumers: Vec<&str> = if vs.export_to.is_empty() || vs.export_to.iter().any(|e| e == "*") {
            vec![ns]
        } else {
            vs.export_to
                .iter()
                .map(|e| if e == "." { ns } else { e.as_str() })
                .collect()
        };
        for d in destinations(vs) {
            let fqdn = resolve_host(&d.host, ns);
            let matching: Vec<&ServiceInfo> = known
                .iter()
                .filter(|s| {
                    host_serves(&s.hostname, &fqdn)
                        && consumers.iter().all(|c| visible(&s.export_to, &s.namespace, c))
                })
                .collect();
            if matching.is_empty() {
                report("IST0101", format!("Referenced host not found: {:?}", d.host));
            } else if let Some(port) = &d.port
                && matching
                    .iter()
                    .all(|s| !s.ports.is_empty() && !s.ports.contains(&port.number))
            {
                report(
                    "IST0101",
                    format!("Referenced host:port not found: \"{}:{}\"", d.host, port.number),
                );
            } else if d.port.is_none()
                && let [only] = matching.as_slice()
                && only.ports.len() > 1
            {
                // Istio's IST0112: the port cannot be guessed when the service has several.
                let ports: Vec<String> = only.ports.iter().map(u32::to_string).collect();
                report(
                    "IST0112",
                    format!(
                        "This VirtualService routes to a service {:?} that exposes multiple ports [{}]. \
                         Specifying a port in the destination is required to disambiguate.",
                        d.host,
                        ports.join(" ")
                    ),
                );
            }
            if !d.subset.is_empty() {
                let found = rules.iter().any(|(host, dr_ns, export_to, subsets)| {
                    visible(export_to, dr_ns, ns)
                        && host_serves(host, &fqdn)
                        && subsets.contains(d.subset.as_str())
                });
                if !found {
                    report(
                        "IST0101",
                        format!(
                            "Referenced host+subset in destinationrule not found: \"{}+{}\"",
                            d.host, d.subset
                        ),
                    );
                }
            }
        }
        let match_gateways = vs
            .http
            .iter()
            .flat_map(|h| h.r#match.iter().flat_map(|m| m.gateways.iter()));
        let tls_gateways = vs
            .tls
            .iter()
            .flat_map(|t| t.r#match.iter().flat_map(|m| m.gateways.iter()));
        let tcp_gateways = vs
            .tcp
            .iter()
            .flat_map(|t| t.r#match.iter().flat_map(|m| m.gateways.iter()));
        let mut seen = BTreeSet::new();
        for g in vs
            .gateways
            .iter()
            .chain(match_gateways)
            .chain(tls_gateways)
            .chain(tcp_gateways)
        {
            // Names with `~` are generated from Gateway API resources, not user references.
            if g == "mesh" || g.contains('~') || !seen.insert(g) {
                continue;
            }
            if !gateways.contains(&gateway_ref(g, ns)) {
                report("IST0101", format!("Referenced gateway not found: {g:?}"));
            }
        }
    }
    out.extend(conflicting_mesh_hosts(resources));
    out.sort();
    out
}

/// Whether a service host (possibly a wildcard ServiceEntry host) serves `fqdn`.
fn host_serves(service_host: &str, fqdn: &str) -> bool {
    service_host == fqdn
        || service_host
            .strip_prefix('*')
            .is_some_and(|suffix| fqdn.ends_with(suffix))
}

/// `(namespace, name)` of a gateway reference: `ns/name`, `name` (the VS namespace) or the
/// legacy `name.ns.svc.cluster.local`.
fn gateway_ref(g: &str, ns: &str) -> (String, String) {
    if let Some((gns, name)) = g.split_once('/') {
        return (gns.to_string(), name.to_string());
    }
    let mut parts = g.split('.');
    match (parts.next(), parts.next()) {
        (Some(name), Some(gns)) => (gns.to_string(), name.to_string()),
        _ => (ns.to_string(), g.to_string()),
    }
}

/// Every destination a VirtualService sends traffic (or mirrored traffic) to.
fn destinations(vs: &VirtualService) -> Vec<&Destination> {
    let mut out = Vec::new();
    for h in &vs.http {
        out.extend(h.route.iter().map(|d| &d.destination));
        out.extend(h.mirror.iter());
        out.extend(h.mirrors.iter().map(|m| &m.destination));
    }
    for t in &vs.tls {
        out.extend(t.route.iter().map(|d| &d.destination));
    }
    for t in &vs.tcp {
        out.extend(t.route.iter().map(|d| &d.destination));
    }
    out
}

/// IST0109: mesh-bound VirtualServices that claim overlapping hosts in the same visibility scope
/// are not merged by sidecars; one wins arbitrarily. Each VirtualService is reported once.
fn conflicting_mesh_hosts(resources: &[&Resource]) -> Vec<Diagnostic> {
    // (resource, resolved hosts, scope: None = every namespace, Some(ns) = its own namespace)
    let mesh: Vec<(&Resource, Vec<String>, Option<&str>)> = resources
        .iter()
        .copied()
        .filter_map(|r| match &r.spec {
            Spec::VirtualService(vs) if vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh") => {
                let all = vs.export_to.is_empty() || vs.export_to.iter().any(|e| e == "*");
                let hosts = vs.hosts.iter().map(|h| resolve_host(h, r.namespace())).collect();
                Some((r, hosts, if all { None } else { Some(r.namespace()) }))
            }
            _ => None,
        })
        .collect();
    let scopes_meet = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let mut reported = BTreeMap::new();
    for (i, (r, hosts, scope)) in mesh.iter().enumerate() {
        for host in hosts {
            let others: Vec<&Resource> = mesh
                .iter()
                .enumerate()
                .filter(|(j, (_, oh, os))| {
                    *j != i && scopes_meet(*scope, *os) && oh.iter().any(|h| hosts_overlap(h, host))
                })
                .map(|(_, (o, _, _))| *o)
                .collect();
            if others.is_empty() {
                continue;
            }
            let names: Vec<String> = std::iter::once(*r)
                .chain(others)
                .map(|o| format!("{}/{}", o.namespace(), o.name()))
                .collect();
            reported.entry(r.display_name()).or_insert_with(|| Diagnostic {
                level: Level::Error,
                code: "IST0109",
                resource: r.display_name(),
                message: format!(
                    "The VirtualServices {} associated with mesh gateway define the same host {host} which can lead to \
                     undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single \
                     resource.",
                    names.join(",")
                ),
            });
        }
    }
    reported.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_documents;

    fn docs(yaml: &str) -> Vec<Document> {
        match parse_documents(yaml, "test") {
            Ok(d) => d,
            Err(e) => panic!("{e:?}"),
        }
    }

    const BOOKINFO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {ports: [{port: 9080, name: http}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
"#;

    #[test]
    fn missing_subset_is_reported_like_istioctl() {
        let text = format!(
            "{BOOKINFO}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews, namespace: default}}\n\
             spec: {{hosts: [reviews], http: [{{route: [{{destination: {{host: reviews, subset: v4}}}}]}}]}}\n"
        );
        let found: Vec<String> = analyze_documents(&docs(&text))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            vec![
                "Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: \"reviews+v4\""
            ]
        );
    }

    #[test]
    fn references_resolve_or_are_reported() {
        let cases: &[(&str, &[&str])] = &[
            (
                "{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}",
                &[],
            ),
            (
                "{hosts: [reviews], http: [{route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]}]}",
                &[],
            ),
            (
                "{hosts: [reviews], http: [{route: [{destination: {host: ratings}}]}]}",
                &["Referenced host not found: \"ratings\""],
            ),
            (
                "{hosts: [reviews], http: [{route: [{destination: {host: reviews, port: {number: 7777}}}]}]}",
                &["Referenced host:port not found: \"reviews:7777\""],
            ),
            (
                "{hosts: [reviews], gateways: [bookinfo-gateway], http: [{route: [{destination: {host: reviews}}]}]}",
                &["Referenced gateway not found: \"bookinfo-gateway\""],
            ),
            (
                "{hosts: [reviews], http: [{route: [{destination: {host: reviews}}], mirror: {host: reviews, subset: v9}}]}",
                &["Referenced host+subset in destinationrule not found: \"reviews+v9\""],
            ),
        ];
        for (spec, want) in cases {
            let text = format!(
                "{BOOKINFO}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: default}}\nspec: {spec}\n"
            );
            let got: Vec<String> = analyze_documents(&docs(&text))
                .into_iter()
                .map(|d| d.message)
                .collect();
            assert_eq!(&got, want, "{spec}");
        }
    }

    #[test]
    fn service_entry_hosts_count_as_services() {
        let text = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: ["*.example.com"], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: other}
spec: {hosts: [a.example.com], tls: [{match: [{sniHosts: [a.example.com]}], route: [{destination: {host: a.example.com}}]}]}
"#;
        let resources: Vec<Resource> = docs(text)
            .into_iter()
            .filter_map(|d| if let Document::Istio(r) = d { Some(r) } else { None })
            .collect();
        assert_eq!(analyze(&resources), Vec::new());
    }

    #[test]
    fn analyzing_only_some_resources_reports_what_the_whole_analysis_says_of_them() {
        let vs = |name: &str, host: &str| {
            format!(
                "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                 metadata: {{name: {name}, namespace: default}}\n\
                 spec: {{hosts: [{name}.example.com], http: [{{route: [{{destination: {{host: {host}}}}}]}}]}}\n"
            )
        };
        let text = [
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se, namespace: default}\n\
             spec: {hosts: [known.example.com], ports: [{number: 80, name: http}]}\n"
                .to_string(),
            vs("a", "nowhere"),
            vs("b", "known.example.com"),
            vs("c", "elsewhere"),
            // Claims the same host as `a`: IST0109 for both.
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {name: a2, namespace: default}\nspec: {hosts: [a.example.com], http: [{route: [{destination: {host: known.example.com}}]}]}\n"
                .to_string(),
        ]
        .concat();
        let resources: Vec<Resource> = docs(&text)
            .into_iter()
            .filter_map(|d| if let Document::Istio(r) = d { Some(r) } else { None })
            .collect();
        let all = analyze(&resources);
        for picked in [&["a"][..], &["b"], &["c", "a2"], &[]] {
            let only = analyze_only(&resources, &|r| picked.contains(&r.name()));
            let expected: Vec<Diagnostic> = all
                .iter()
                .filter(|d| {
                    picked
                        .iter()
                        .any(|p| d.resource == format!("VirtualService default/{p}"))
                })
                .cloned()
                .collect();
            assert_eq!(only, expected, "{picked:?}");
        }
        assert!(all.iter().any(|d| d.code == "IST0109"), "{all:?}");
        assert!(all.iter().any(|d| d.code == "IST0101"), "{all:?}");
    }

    #[test]
    fn overlapping_hosts() {
        assert!(hosts_overlap("*.productpage.d", "*.d"));
        assert!(hosts_overlap("a.b", "a.b"));
        assert!(!hosts_overlap("*.productpage.b", "*.productpage.c"));
        assert_eq!(resolve_host("reviews", "ns"), "reviews.ns.svc.cluster.local");
        assert_eq!(
            gateway_ref("istio-system/gw", "default"),
            ("istio-system".into(), "gw".into())
        );
        assert_eq!(gateway_ref("gw", "default"), ("default".into(), "gw".into()));
    }
}
