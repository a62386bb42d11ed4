//! security.istio.io types: PeerAuthentication, AuthorizationPolicy and RequestAuthentication,
//! every field as Istio serves them (v1, with v1beta1 accepted).

mod authorization_policy;
mod peer_authentication;
mod request_authentication;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use authorization_policy::*;
pub use peer_authentication::*;
pub use request_authentication::*;

/// `selector: {matchLabels}`: which workloads a policy applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    /// Labels a workload must carry.
    #[serde(alias = "match_labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// `targetRef(s)`: a policy attached to a Gateway API resource or Service instead of a selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    /// API group (`""` for core, `gateway.networking.k8s.io`).
    #[serde(default)]
    pub group: String,
    /// Kind (`Service`, `Gateway`, `ServiceEntry`, `GatewayClass`).
    #[serde(default)]
    pub kind: String,
    /// Name (required).
    #[serde(default)]
    pub name: String,
    /// Namespace; must be the policy's own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}
