//! The generated mesh: ServiceEntries selecting WorkloadEntries (Strait's local workload model),
//! DestinationRules with two subsets, and VirtualServices with header, prefix and weighted rules.

use std::fmt::Write;

use strait_control::compile::{ProxyNode, ProxyRole};

/// How big the mesh is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshSize {
    /// Services.
    pub services: usize,
    /// Workloads per service (versions v1, v2, ...).
    pub workloads_per_service: usize,
    /// Services (the first ones) that have a VirtualService and a DestinationRule.
    pub virtual_services: usize,
    /// Namespaces the services are spread over.
    pub namespaces: usize,
}

impl Default for MeshSize {
    /// Issue #3's scale: 1,000 services, 2,000 workloads, 500 VirtualServices.
    fn default() -> Self {
        MeshSize {
            services: 1000,
            workloads_per_service: 2,
            virtual_services: 500,
            namespaces: 10,
        }
    }
}

fn svc(i: usize) -> String {
    format!("svc-{i:04}")
}

fn ns(size: &MeshSize, i: usize) -> String {
    format!("ns-{:02}", i % size.namespaces.max(1))
}

fn host(size: &MeshSize, i: usize) -> String {
    format!("{}.{}.svc.cluster.local", svc(i), ns(size, i))
}

/// Workload `w`'s address: 127.30.0.0/16, which needs no setup on Linux.
fn address(w: usize) -> String {
    format!("127.{}.{}.{}", 30 + w / 62500, (w / 250) % 250, w % 250 + 1)
}

fn virtual_service(size: &MeshSize, i: usize, v1_weight: u32) -> String {
    let (name, ns, host) = (svc(i), ns(size, i), host(size, i));
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  hosts: [{host}]\n  http:\n\
         \x20 - match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n    route: [{{destination: {{host: {host}, subset: v2}}}}]\n\
         \x20 - match: [{{uri: {{prefix: /api/v2/}}}}]\n    route: [{{destination: {{host: {host}, subset: v2}}}}]\n    timeout: 3s\n\
         \x20 - route:\n    - {{destination: {{host: {host}, subset: v1}}, weight: {v1_weight}}}\n\
         \x20   - {{destination: {{host: {host}, subset: v2}}, weight: {}}}\n---\n",
        100 - v1_weight
    )
}

/// Services per YAML chunk (at most 500 documents). The parser takes far more per input since its
/// budgets were sized for a mesh (`strait_api::parse::MAX_YAML_DOCUMENTS`); chunks keep the
/// benchmark's applies the size of a user's files.
pub const SERVICES_PER_CHUNK: usize = 100;

/// The whole mesh as multi-document YAML, in chunks of [`SERVICES_PER_CHUNK`] services.
pub fn generate(size: &MeshSize) -> Vec<String> {
    (0..size.services)
        .step_by(SERVICES_PER_CHUNK)
        .map(|from| chunk(size, from, (from + SERVICES_PER_CHUNK).min(size.services)))
        .collect()
}

fn chunk(size: &MeshSize, from: usize, to: usize) -> String {
    let mut o = String::with_capacity((to - from) * 1500);
    for i in from..to {
        let (name, ns, host) = (svc(i), ns(size, i), host(size, i));
        let _ = write!(
            o,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  hosts: [{host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n\
             \x20 ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {name}}}}}\n---\n"
        );
        for v in 0..size.workloads_per_service {
            let w = i * size.workloads_per_service + v;
            let _ = write!(
                o,
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {name}-v{}, namespace: {ns}}}\n\
                 spec: {{address: {}, serviceAccount: {name}, labels: {{app: {name}, version: v{}}}}}\n---\n",
                v + 1,
                address(w),
                v + 1
            );
        }
        if i < size.virtual_services {
            let _ = write!(
                o,
                "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\n\
                 spec:\n  host: {host}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\n"
            );
            o.push_str(&virtual_service(size, i, 90));
        }
    }
    o
}

/// Round `k`'s change: service 0's weights move, which changes every sidecar's configuration
/// (no Sidecar resource scopes visibility, as in a default Istio install).
pub fn mutation(size: &MeshSize, k: usize) -> String {
    virtual_service(size, 0, 50 + (k % 40) as u32)
}

/// The sidecar of workload `w`, as its Hello would describe it.
pub fn node_for(size: &MeshSize, w: usize) -> ProxyNode {
    let per = size.workloads_per_service.max(1);
    let (i, v) = (w / per % size.services.max(1), w % per + 1);
    ProxyNode {
        id: format!("{}-v{v}.{}", svc(i), ns(size, i)),
        role: ProxyRole::Sidecar,
        namespace: ns(size, i),
        workload: format!("{}-v{v}", svc(i)),
        labels: [
            ("app".to_string(), svc(i)),
            ("version".to_string(), format!("v{v}")),
        ]
        .into(),
        service_account: svc(i),
        address: address(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_mesh_parses_and_compiles_with_every_service() {
        let size = MeshSize {
            services: 20,
            workloads_per_service: 2,
            virtual_services: 10,
            namespaces: 3,
        };
        let chunks = generate(&size);
        assert_eq!(chunks.len(), 1);
        let resources = crate::control_plane::parse(&chunks).unwrap();
        assert_eq!(resources.len(), 20 + 40 + 10 + 10);
        let cfg = strait_control::compile::compile(&resources, &node_for(&size, 5));
        let outbound = cfg.route_tables.iter().find(|t| t.name == "outbound").unwrap();
        let services = outbound
            .virtual_hosts
            .iter()
            .filter(|v| v.name.starts_with("svc-"))
            .count();
        assert_eq!(services, 20);
        // The VirtualService's three rules are compiled for service 0.
        let vh = outbound
            .virtual_hosts
            .iter()
            .find(|v| v.name.starts_with("svc-0000."))
            .unwrap();
        assert_eq!(vh.routes.len(), 3);
        assert!(crate::control_plane::parse(&[mutation(&size, 3)]).is_ok());
    }

    #[test]
    fn the_full_mesh_comes_in_chunks_the_parser_accepts() {
        let chunks = generate(&MeshSize::default());
        assert_eq!(chunks.len(), 10);
        for c in &chunks {
            assert!(c.matches("\n---\n").count() <= 1024);
        }
        assert!(crate::control_plane::parse(&chunks[..1]).is_ok());
    }

    #[test]
    fn addresses_are_unique_for_the_full_mesh() {
        let n = MeshSize::default().services * 2;
        let all: std::collections::BTreeSet<String> = (0..n).map(address).collect();
        assert_eq!(all.len(), n);
    }
}
