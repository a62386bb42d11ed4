//! The snapshot compiler must agree exactly with `compile()` for every kind of proxy.

use std::collections::BTreeMap;

use strait_api::{Document, Resource, parse_documents};

use super::*;
use crate::compile::compile;

/// A mesh that exercises every lookup the indexes replace: services in three namespaces with
/// WorkloadEntries and inline endpoints, DestinationRules in the client's, the service's and
/// the root namespace (exact and wildcard hosts, conflicting ages), VirtualServices bound to
/// the mesh and to a gateway, with `sourceLabels`, `sourceNamespace`, wildcard hosts, and two
/// rules for one host (the oldest wins).
pub(crate) fn mesh_yaml() -> String {
    let mut out = String::new();
    let mut doc = |s: String| {
        out.push_str(&s);
        out.push_str("\n---\n");
    };
    for (i, ns) in ["default", "prod", "default", "prod", "shop", "shop"]
        .iter()
        .enumerate()
    {
        doc(format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc{i}, namespace: {ns}}}\n\
             spec:\n  hosts: [svc{i}.{ns}.svc.cluster.local]\n  resolution: STATIC\n  \
             ports: [{{number: 9080, name: http, protocol: HTTP}}, {{number: 9090, name: grpc-x, targetPort: 7070}}, {{number: 3306, name: tcp}}]\n  \
             workloadSelector: {{labels: {{app: svc{i}}}}}"
        ));
        for v in 1..=2 {
            doc(format!(
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
                 metadata: {{name: svc{i}-v{v}, namespace: {ns}, annotations: {{strait.io/app-address: 127.20.{i}.{v}}}}}\n\
                 spec: {{address: 127.10.{i}.{v}, labels: {{app: svc{i}, version: v{v}}}, ports: {{http: 8{i}0{v}}}}}"
            ));
        }
    }
    doc("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext, namespace: default}\n\
         spec:\n  hosts: [api.example.com, '*.wild.example.com']\n  resolution: STATIC\n  \
         ports: [{number: 80, name: http}]\n  endpoints: [{address: 127.30.0.1}, {address: 127.30.0.2, labels: {version: v2}}]"
        .into());
    // DestinationRules: client namespace beats service namespace beats root; exact beats
    // wildcard; the oldest of equals wins.
    for (name, ns, host, ts) in [
        ("dr-svc0", "default", "svc0", "2024-01-02T00:00:00Z"),
        (
            "dr-svc0-old",
            "default",
            "svc0.default.svc.cluster.local",
            "2024-01-01T00:00:00Z",
        ),
        (
            "dr-prod-wild",
            "prod",
            "*.default.svc.cluster.local",
            "2024-01-01T00:00:00Z",
        ),
        ("dr-svc1", "prod", "svc1", "2024-01-03T00:00:00Z"),
        ("dr-root", "istio-system", "*", "2024-01-01T00:00:00Z"),
        ("dr-ext", "default", "*.example.com", "2024-01-01T00:00:00Z"),
        ("dr-wild", "default", "*.wild.example.com", "2024-01-04T00:00:00Z"),
    ] {
        doc(format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
             metadata: {{name: {name}, namespace: {ns}, creationTimestamp: '{ts}'}}\n\
             spec:\n  host: '{host}'\n  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}\n  \
             subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}, trafficPolicy: {{loadBalancer: {{simple: RANDOM}}}}}}]"
        ));
    }
    doc("apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: svc0, namespace: default, creationTimestamp: '2024-01-01T00:00:00Z'}\n\
         spec:\n  hosts: [svc0]\n  http:\n  \
         - match: [{sourceLabels: {version: v2}, headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: svc0, subset: v2}}]\n  \
         - match: [{sourceNamespace: prod}]\n    route: [{destination: {host: svc0, subset: v1}}]\n  \
         - match: [{port: 9090}]\n    route: [{destination: {host: svc1.prod.svc.cluster.local}}]\n  \
         - route: [{destination: {host: svc0, subset: v1}, weight: 90}, {destination: {host: svc0, subset: v2}, weight: 10}]\n    \
           timeout: 2s\n    retries: {attempts: 3, retryOn: '5xx,503'}"
        .into());
    doc("apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: svc0-newer, namespace: default, creationTimestamp: '2024-02-01T00:00:00Z'}\n\
         spec: {hosts: [svc0], http: [{route: [{destination: {host: svc2}}]}]}"
        .into());
    doc("apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: wild, namespace: default, creationTimestamp: '2024-01-05T00:00:00Z'}\n\
         spec: {hosts: ['*.example.com'], http: [{fault: {abort: {httpStatus: 503, percentage: {value: 50}}}, route: [{destination: {host: api.example.com}}]}]}"
        .into());
    doc("apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: only-app-label, namespace: prod, creationTimestamp: '2024-01-06T00:00:00Z'}\n\
         spec: {hosts: [svc1], http: [{match: [{sourceLabels: {app: svc4}}], route: [{destination: {host: svc1, subset: v2}}]}]}"
        .into());
    doc("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n\
         spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]}"
        .into());
    doc("apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: front, namespace: default, creationTimestamp: '2024-01-07T00:00:00Z'}\n\
         spec: {hosts: ['*.shop.svc.cluster.local'], gateways: [gw, mesh], http: [{match: [{uri: {prefix: /shop}}], route: [{destination: {host: svc4.shop.svc.cluster.local}}]}]}"
        .into());
    out
}

fn resources() -> Vec<Arc<Resource>> {
    let docs = parse_documents(&mesh_yaml(), "test").unwrap_or_else(|e| panic!("test YAML invalid: {e:?}"));
    docs.into_iter()
        .filter_map(|d| match d {
            Document::Istio(r) => Some(Arc::new(r)),
            Document::Kubernetes(_) => None,
        })
        .collect()
}

fn node(role: ProxyRole, ns: &str, workload: &str, address: &str, labels: &[(&str, &str)]) -> ProxyNode {
    ProxyNode {
        id: format!("{workload}.{ns}"),
        role,
        namespace: ns.into(),
        workload: workload.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        service_account: "default".into(),
        address: address.into(),
    }
}

pub(crate) fn nodes() -> Vec<ProxyNode> {
    let mut out = Vec::new();
    for (i, ns) in ["default", "prod", "default", "prod", "shop", "shop"]
        .iter()
        .enumerate()
    {
        for v in 1..=2 {
            out.push(node(
                ProxyRole::Sidecar,
                ns,
                &format!("svc{i}-v{v}"),
                &format!("127.10.{i}.{v}"),
                &[("app", &format!("svc{i}")), ("version", &format!("v{v}"))],
            ));
        }
    }
    // The inline endpoint's sidecar (found by address), one with no workload at all, one whose
    // address does not parse, one in a namespace with no rules.
    out.push(node(
        ProxyRole::Sidecar,
        "default",
        "ext-1",
        "127.30.0.2",
        &[("version", "v2")],
    ));
    out.push(node(ProxyRole::Sidecar, "default", "", "127.30.0.1", &[]));
    out.push(node(
        ProxyRole::Sidecar,
        "prod",
        "ghost",
        "not-an-ip",
        &[("version", "v1")],
    ));
    out.push(node(ProxyRole::Sidecar, "empty", "lonely", "127.99.0.1", &[]));
    out.push(node(
        ProxyRole::Gateway,
        "istio-system",
        "istio-ingressgateway",
        "127.0.0.1",
        &[("istio", "ingressgateway")],
    ));
    out
}

#[test]
fn the_snapshot_compiler_equals_compile_for_every_node() {
    let resources = resources();
    let compiler = SnapshotCompiler::new(resources.as_slice());
    for node in nodes() {
        let expected = compile(&resources, &node);
        assert!(
            !expected.clusters.is_empty(),
            "{}: the test mesh compiles to nothing",
            node.id
        );
        assert_eq!(compiler.compile(&node), expected, "{}", node.id);
    }
}

#[test]
fn share_keys_keep_only_labels_that_source_labels_mention() {
    let resources = resources();
    let compiler = SnapshotCompiler::new(resources.as_slice());
    let all = nodes();
    let key = compiler.share_key(&all[0]).expect("sidecars have a key");
    assert_eq!(key.namespace, "default");
    // `version` (svc0's rule) and `app` (only-app-label's rule) are both mentioned.
    assert_eq!(key.labels.len(), 2);
    assert_eq!(compiler.share_key(all.last().expect("a gateway")), None);
}

#[test]
fn sidecars_with_one_key_share_the_same_outbound_part() {
    let resources = resources();
    let compiler = SnapshotCompiler::new(resources.as_slice());
    for node in nodes().into_iter().filter(|n| n.role == ProxyRole::Sidecar) {
        let key = compiler.share_key(&node).expect("sidecar");
        let assembled = assemble(&compiler.shared_sidecar(&key), compiler.sidecar_own(&node));
        assert_eq!(assembled, compile(&resources, &node), "{}", node.id);
    }
}

#[test]
fn shared_json_from_cached_pieces_equals_serializing_the_shared_part() {
    let resources = resources();
    let compiler = SnapshotCompiler::new(resources.as_slice());
    let mut cache = PieceCache::default();
    for node in nodes().into_iter().filter(|n| n.role == ProxyRole::Sidecar) {
        let key = compiler.share_key(&node).expect("sidecar");
        let shared = compiler.shared_sidecar(&key);
        let clusters = serde_json::to_vec(&shared.clusters).expect("json");
        let json = compiler.shared_sidecar_json(&key, &mut cache);
        assert_eq!(
            json.outbound(),
            serde_json::to_vec(&shared.outbound).expect("json"),
            "{}",
            node.id
        );
        assert_eq!(
            json.clusters(),
            clusters[1..clusters.len() - 1].to_vec(),
            "{}",
            node.id
        );
        // The groups are the same items, in order, counted right.
        let joined = |groups: &[JsonItems]| {
            let parts: Vec<&[u8]> = groups
                .iter()
                .map(|g| &*g.json)
                .filter(|j| !j.is_empty())
                .collect();
            parts.join(&b',')
        };
        let count = |groups: &[JsonItems]| groups.iter().map(|g| g.count as usize).sum::<usize>();
        assert_eq!(joined(&json.cluster_groups), json.clusters());
        assert_eq!(joined_len(&json.cluster_groups), json.clusters().len());
        assert_eq!(count(&json.cluster_groups), shared.clusters.len());
        let vhosts = serde_json::to_vec(&shared.outbound.virtual_hosts).expect("json");
        assert_eq!(joined(&json.vhost_groups), vhosts[1..vhosts.len() - 1].to_vec());
        assert_eq!(count(&json.vhost_groups), shared.outbound.virtual_hosts.len());
    }
}

#[test]
fn pieces_of_an_older_snapshot_are_reused_only_where_nothing_they_depend_on_changed() {
    let before = resources();
    let mut after = resources();
    // Change the VirtualService that owns svc0 (its weights), nothing else.
    for r in &mut after {
        let r = Arc::make_mut(r);
        if let strait_api::Spec::VirtualService(vs) = &mut r.spec
            && r.metadata.name == "svc0"
            && let Some(last) = vs.http.last_mut()
            && let Some(first) = last.route.first_mut()
        {
            first.weight = 50;
            last.route[1].weight = 50;
        }
    }
    let old = SnapshotCompiler::new(before.as_slice());
    let new = SnapshotCompiler::new_after(after.as_slice(), Some(&old));
    assert!(
        Arc::ptr_eq(&new.registry, &old.registry),
        "only a VirtualService changed: the registry is shared"
    );
    let mut moved = after.clone();
    for r in &mut moved {
        if let strait_api::Spec::WorkloadEntry(we) = &mut Arc::make_mut(r).spec {
            we.address = "10.99.99.99".into();
            break;
        }
    }
    let rebuilt = SnapshotCompiler::new_after(moved.as_slice(), Some(&new));
    assert!(
        !Arc::ptr_eq(&rebuilt.registry, &new.registry),
        "a workload moved: rebuilt"
    );
    for node in nodes().into_iter().filter(|n| n.role == ProxyRole::Sidecar) {
        let key = old.share_key(&node).expect("sidecar");
        let mut old_pieces = PieceCache::default();
        let first = old.shared_sidecar_json(&key, &mut old_pieces);
        let mut pieces = PieceCache::default();
        let reused = new.shared_sidecar_json_reusing(&key, &mut pieces, Some((&old, &old_pieces)));
        let fresh = new.shared_sidecar_json(&key, &mut PieceCache::default());
        assert_eq!(reused.outbound(), fresh.outbound(), "{}", node.id);
        assert_eq!(reused.clusters(), fresh.clusters(), "{}", node.id);
        assert_ne!(
            reused.outbound(),
            first.outbound(),
            "{}: the change is in there",
            node.id
        );
        // Every service but svc0 kept its very pieces; svc0's virtual hosts were made again.
        let svc0 = new
            .hosts
            .iter()
            .position(|h| h.starts_with("svc0."))
            .expect("svc0");
        for (pos, (a, b)) in first.vhost_groups.iter().zip(&reused.vhost_groups).enumerate() {
            let shared = Arc::ptr_eq(&a.json, &b.json);
            if pos == svc0 {
                assert!(!shared, "{}: svc0's virtual hosts changed", node.id);
            } else if pos < new.hosts.len() {
                assert!(
                    shared,
                    "{}: service {pos}'s virtual hosts were not reused",
                    node.id
                );
            }
        }
        for (a, b) in first
            .cluster_groups
            .iter()
            .zip(&reused.cluster_groups)
            .take(new.hosts.len())
        {
            assert!(
                Arc::ptr_eq(&a.json, &b.json),
                "{}: clusters did not change",
                node.id
            );
        }
    }
}
