//! Compiler tests: literal Istio YAML in, proxy configuration out.

use std::collections::BTreeMap;
use std::sync::Arc;

use strait_api::{Document, Resource, parse_documents};
use strait_mesh as mesh;

use super::{ProxyNode, ProxyRole, compile};

/// Bookinfo's registry as `strait demo` registers it: a ServiceEntry per service and a
/// WorkloadEntry per workload.
fn registry_yaml() -> String {
    let mut out = String::new();
    for (svc, workloads) in [
        ("productpage", vec![("productpage-v1", "v1", 2)]),
        (
            "reviews",
            vec![
                ("reviews-v1", "v1", 5),
                ("reviews-v2", "v2", 6),
                ("reviews-v3", "v3", 7),
            ],
        ),
    ] {
        out.push_str(&format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {svc}}}\n\
             spec:\n  hosts: [{svc}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n\
             \x20 ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {svc}}}}}\n---\n"
        ));
        for (name, version, n) in workloads {
            out.push_str(&format!(
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
                 metadata: {{name: {name}, annotations: {{strait.io/app-address: 127.10.1.{n}}}}}\n\
                 spec: {{address: 127.10.0.{n}, serviceAccount: bookinfo-{svc}, labels: {{app: {svc}, version: {version}}}}}\n---\n"
            ));
        }
    }
    out
}

fn resources(extra: &[&str]) -> Vec<Arc<Resource>> {
    let mut text = registry_yaml();
    for e in extra {
        text.push_str(e);
        text.push_str("\n---\n");
    }
    let docs = parse_documents(&text, "test").unwrap_or_else(|e| panic!("test YAML invalid: {e:?}"));
    docs.into_iter()
        .filter_map(|d| match d {
            Document::Istio(r) => Some(Arc::new(r)),
            Document::Kubernetes(_) => None,
        })
        .collect()
}

fn sidecar(workload: &str, ip: &str, labels: &[(&str, &str)]) -> ProxyNode {
    ProxyNode {
        id: format!("{workload}.default"),
        role: ProxyRole::Sidecar,
        namespace: "default".into(),
        workload: workload.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        service_account: "default".into(),
        address: ip.into(),
    }
}

fn gateway_node() -> ProxyNode {
    ProxyNode {
        id: "istio-ingressgateway.istio-system".into(),
        role: ProxyRole::Gateway,
        namespace: "istio-system".into(),
        workload: "istio-ingressgateway".into(),
        labels: BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]),
        service_account: "default".into(),
        address: "127.0.0.1".into(),
    }
}

fn vhost<'a>(config: &'a mesh::ProxyConfig, table: &str, name: &str) -> &'a mesh::VirtualHost {
    config
        .route_tables
        .iter()
        .find(|t| t.name == table)
        .and_then(|t| t.virtual_hosts.iter().find(|v| v.name == name))
        .unwrap_or_else(|| panic!("no vhost {name} in {table}: {config:#?}"))
}

fn clusters_of(route: &mesh::Route) -> Vec<(&str, u32)> {
    match &route.action {
        mesh::RouteAction::Forward(w) => w.iter().map(|c| (c.cluster.as_str(), c.weight)).collect(),
        other => panic!("not a forward: {other:?}"),
    }
}

const REVIEWS_V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";
const REVIEWS_V2: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";

const DR_REVIEWS: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n\
spec:\n  host: reviews\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n  - {name: v4, labels: {version: v4}}";

#[test]
fn default_routing_without_virtual_service() {
    let config = compile(
        &resources(&[]),
        &sidecar("productpage-v1", "127.10.0.2", &[("app", "productpage")]),
    );
    let v = vhost(&config, "outbound", "reviews.default.svc.cluster.local:9080");
    assert!(
        v.domains.contains(&"reviews".to_string()),
        "short name from the same namespace"
    );
    assert_eq!(
        clusters_of(&v.routes[0]),
        vec![("outbound|9080||reviews.default.svc.cluster.local", 100)]
    );
    assert_eq!(
        v.routes[0].retries.as_ref().map(|r| r.attempts),
        Some(2),
        "Istio's default retry policy"
    );
    let whole = config
        .clusters
        .iter()
        .find(|c| c.name == "outbound|9080||reviews.default.svc.cluster.local");
    assert_eq!(whole.map(|c| c.endpoints.len()), Some(3));
    assert_eq!(
        whole.map(|c| c.lb_policy),
        Some(mesh::LbPolicy::LeastRequest),
        "Istio's default LB"
    );
}

#[test]
fn unknown_hosts_pass_through_as_with_allow_any() {
    let config = compile(&resources(&[]), &sidecar("productpage-v1", "127.10.0.2", &[]));
    let table = config
        .route_tables
        .iter()
        .find(|t| t.name == "outbound")
        .expect("outbound");
    let last = table.virtual_hosts.last().expect("vhosts");
    assert_eq!(last.domains, vec!["*".to_string()], "the catch-all comes last");
    assert_eq!(
        clusters_of(&last.routes[0]),
        vec![(super::PASSTHROUGH_CLUSTER, 100)]
    );
    assert!(
        config
            .clusters
            .iter()
            .any(|c| c.name == super::PASSTHROUGH_CLUSTER)
    );
}

#[test]
fn subsets_select_endpoints_by_label_and_undefined_subsets_have_no_cluster() {
    let config = compile(
        &resources(&[DR_REVIEWS]),
        &sidecar("productpage-v1", "127.10.0.2", &[]),
    );
    let v2 = config
        .clusters
        .iter()
        .find(|c| c.name == REVIEWS_V2)
        .expect("subset cluster");
    assert_eq!(v2.endpoints.len(), 1);
    assert_eq!(v2.endpoints[0].address.to_string(), "127.10.0.6:9080");
    assert_eq!(v2.lb_policy, mesh::LbPolicy::RoundRobin);
    let v4 = config
        .clusters
        .iter()
        .find(|c| c.name.starts_with("outbound|9080|v4|"))
        .expect("v4 cluster");
    assert!(
        v4.endpoints.is_empty(),
        "a subset selecting no pods has no endpoints (503 UH)"
    );
    assert!(
        !config
            .clusters
            .iter()
            .any(|c| c.name.starts_with("outbound|9080|v3|")),
        "v3 is not defined (503 NC)"
    );
}

#[test]
fn header_rule_then_catch_all_as_in_reviews_test_v2() {
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n\
spec:\n  hosts: [reviews]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]";
    let config = compile(
        &resources(&[DR_REVIEWS, vs]),
        &sidecar("productpage-v1", "127.10.0.2", &[]),
    );
    let v = vhost(&config, "outbound", "reviews.default.svc.cluster.local:9080");
    assert_eq!(v.routes.len(), 2);
    assert_eq!(
        v.routes[0].matches[0].headers,
        vec![mesh::HeaderMatch {
            name: "end-user".into(),
            value: Some(mesh::StringMatch::Exact("jason".into()))
        }]
    );
    assert_eq!(clusters_of(&v.routes[0]), vec![(REVIEWS_V2, 100)]);
    assert!(v.routes[1].matches.is_empty(), "catch-all");
    assert_eq!(clusters_of(&v.routes[1]), vec![(REVIEWS_V1, 100)]);
}

#[test]
fn source_labels_and_port_select_which_proxies_get_a_rule() {
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n\
spec:\n  hosts: [reviews]\n  http:\n  - match: [{sourceLabels: {app: productpage}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match: [{port: 9999}]\n    route: [{destination: {host: reviews, subset: v1}}]";
    let rs = resources(&[DR_REVIEWS, vs]);
    let from_pp = compile(
        &rs,
        &sidecar("productpage-v1", "127.10.0.2", &[("app", "productpage")]),
    );
    let v = vhost(&from_pp, "outbound", "reviews.default.svc.cluster.local:9080");
    assert_eq!(v.routes.len(), 1, "the port-9999 rule does not apply on 9080");
    assert!(
        v.routes[0].matches[0].headers.is_empty(),
        "sourceLabels is not a request condition"
    );
    // For a proxy the rule does not select, no rule applies: the VS is ignored (default routing).
    let other = compile(&rs, &sidecar("reviews-v1", "127.10.0.5", &[("app", "reviews")]));
    let v = vhost(&other, "outbound", "reviews.default.svc.cluster.local:9080");
    assert_eq!(v.routes[0].name, "default");
}

#[test]
fn weights_faults_timeouts_and_retries() {
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n\
spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 1}\n    - {destination: {host: reviews, subset: v2}, weight: 3}\n\
\x20   timeout: 0.5s\n    retries: {attempts: 3, retryOn: \"503,reset\", perTryTimeout: 100ms}\n\
\x20   fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}, abort: {httpStatus: 500}}";
    let config = compile(
        &resources(&[DR_REVIEWS, vs]),
        &sidecar("productpage-v1", "127.10.0.2", &[]),
    );
    let r = &vhost(&config, "outbound", "reviews.default.svc.cluster.local:9080").routes[0];
    assert_eq!(
        clusters_of(r),
        vec![(REVIEWS_V1, 1), (REVIEWS_V2, 3)],
        "relative weights kept"
    );
    assert_eq!(r.timeout_ms, Some(500));
    let retries = r.retries.as_ref().expect("retries");
    assert_eq!((retries.attempts, retries.per_try_timeout_ms), (3, Some(100)));
    assert_eq!(retries.retriable_status_codes, vec![503]);
    assert!(retries.retry_on.contains(&"reset".to_string()));
    assert!(retries.retry_on.contains(&"retriable-status-codes".to_string()));
    let fault = r.fault.as_ref().expect("fault");
    assert_eq!(
        fault.delay.as_ref().map(|d| (d.fixed_delay_ms, d.percentage)),
        Some((7000, 100.0))
    );
    // Istio: an abort without percentage injects nothing.
    assert_eq!(fault.abort.as_ref().map(|a| a.percentage), Some(0.0));
}

#[test]
fn bookinfo_gateway_serves_port_8080_with_the_bound_virtual_service() {
    let gw = include_str!("../../../../samples/bookinfo/networking/bookinfo-gateway.yaml");
    let config = compile(&resources(&[gw]), &gateway_node());
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listeners[0].address.to_string(), "127.0.0.1:8080");
    assert_eq!(config.listeners[0].direction, mesh::Direction::Gateway);
    let v = vhost(&config, "http.8080", "*:8080");
    assert_eq!(v.domains, vec!["*".to_string()]);
    assert_eq!(v.routes.len(), 1);
    assert_eq!(
        v.routes[0].matches.len(),
        5,
        "the five uri matches of bookinfo-gateway.yaml"
    );
    assert_eq!(
        clusters_of(&v.routes[0]),
        vec![("outbound|9080||productpage.default.svc.cluster.local", 100)]
    );
    // A sidecar does not get gateway-bound rules.
    let sc = compile(&resources(&[gw]), &sidecar("reviews-v1", "127.10.0.5", &[]));
    assert_eq!(
        vhost(&sc, "outbound", "productpage.default.svc.cluster.local:9080").routes[0].name,
        "default"
    );
}

#[test]
fn sidecar_inbound_forwards_to_the_app_address() {
    let config = compile(
        &resources(&[]),
        &sidecar("reviews-v2", "127.10.0.6", &[("app", "reviews")]),
    );
    let inbound = config
        .listeners
        .iter()
        .find(|l| l.direction == mesh::Direction::Inbound)
        .expect("inbound");
    assert_eq!(inbound.address.to_string(), "127.10.0.6:9080");
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == "inbound|9080||")
        .expect("inbound cluster");
    assert_eq!(cluster.endpoints[0].address.to_string(), "127.10.1.6:9080");
    let outbound = config
        .listeners
        .iter()
        .find(|l| l.direction == mesh::Direction::Outbound)
        .expect("outbound");
    assert_eq!(outbound.address.to_string(), "127.10.0.6:15001");
}
