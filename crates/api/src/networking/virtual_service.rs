//! VirtualService: routing rules for hosts, plus its TLS and TCP routes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Destination, HttpRoute};
use crate::proto::int;

/// networking.istio.io VirtualService spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualService {
    /// Hosts the rules apply to; empty only for a delegate VirtualService.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Gateways (`[ns/]name`, or `mesh` for sidecars); empty means `mesh`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Ordered HTTP rules: first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRoute>,
    /// Ordered rules for TLS (matched by SNI without termination).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsRoute>,
    /// Ordered rules for opaque TCP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpRoute>,
    /// Namespaces the rule is visible in (`.` own, `*` all); empty means all.
    #[serde(alias = "export_to", default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

impl VirtualService {
    /// Gateways the VS binds to, `mesh` when none are listed (Istio's default).
    pub fn effective_gateways(&self) -> Vec<String> {
        if self.gateways.is_empty() {
            vec!["mesh".to_string()]
        } else {
            self.gateways.clone()
        }
    }
}

/// A TLS route: SNI-based matching of passthrough TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRoute {
    /// Conditions, OR'd.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<TlsMatchAttributes>,
    /// Weighted destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// A TCP route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    /// Conditions, OR'd.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<L4MatchAttributes>,
    /// Weighted destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// TLS match: SNI plus the L4 attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsMatchAttributes {
    /// SNI values (required; must fall within the VS hosts).
    #[serde(alias = "sni_hosts", default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<String>,
    /// Destination IPs or CIDRs.
    #[serde(alias = "destination_subnets", default, skip_serializing_if = "Vec::is_empty")]
    pub destination_subnets: Vec<String>,
    /// Listener port.
    #[serde(default, deserialize_with = "int::req", skip_serializing_if = "is_zero")]
    pub port: u32,
    /// Selects the client workloads the rule applies to.
    #[serde(alias = "source_labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the rule applies to (overrides the VS list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Client namespace the rule applies to.
    #[serde(alias = "source_namespace", default, skip_serializing_if = "String::is_empty")]
    pub source_namespace: String,
}

/// TCP match attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L4MatchAttributes {
    /// Destination IPs or CIDRs.
    #[serde(alias = "destination_subnets", default, skip_serializing_if = "Vec::is_empty")]
    pub destination_subnets: Vec<String>,
    /// Listener port.
    #[serde(default, deserialize_with = "int::req", skip_serializing_if = "is_zero")]
    pub port: u32,
    /// Selects the client workloads the rule applies to.
    #[serde(alias = "source_labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the rule applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Client namespace the rule applies to.
    #[serde(alias = "source_namespace", default, skip_serializing_if = "String::is_empty")]
    pub source_namespace: String,
}

/// A weighted L4 destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteDestination {
    /// Where to send.
    #[serde(default)]
    pub destination: Destination,
    /// Relative weight.
    #[serde(default, deserialize_with = "int::req", skip_serializing_if = "is_zero_i32")]
    pub weight: i32,
}

pub(crate) fn is_zero(v: &u32) -> bool {
    *v == 0
}

pub(crate) fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
