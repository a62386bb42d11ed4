//! The compiler: Istio resources + workloads -> one proxy's configuration.
//!
//! A pure function, so it can be tested with literal inputs and benchmarked without a network.

use std::collections::BTreeMap;

use strait_api::Resource;
use strait_mesh::ProxyConfig;

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
pub fn compile(resources: &[Resource], node: &ProxyNode) -> ProxyConfig {
    let _ = (resources, node);
    ProxyConfig::default()
}
