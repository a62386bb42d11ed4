//! WorkloadEntry: a workload that is not a Kubernetes pod (a VM, or a local process in Strait).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proto::int;

/// networking.istio.io WorkloadEntry spec (also the inline endpoints of a ServiceEntry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEntry {
    /// IP, DNS name (DNS resolution) or `unix://` socket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Service port name -> workload port (beats the ServiceEntry targetPort).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    /// Labels (selected by ServiceEntry workloadSelector and DR subsets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Network, for multi-network meshes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// `region/zone/subzone`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub locality: String,
    /// Load-balancing weight.
    #[serde(default, deserialize_with = "int::req", skip_serializing_if = "is_zero")]
    pub weight: u32,
    /// Service account, hence the workload identity.
    #[serde(alias = "service_account", default, skip_serializing_if = "String::is_empty")]
    pub service_account: String,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}
