//! Load-balancer settings of a DestinationRule traffic policy: the algorithm, consistent
//! hashing (sticky sessions), locality-aware routing and slow start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proto::{Duration, int};

/// Load balancing: a simple algorithm or consistent hashing, plus locality settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {
    /// Algorithm (default LEAST_REQUEST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleLb>,
    /// Consistent hashing (exclusive with `simple`).
    #[serde(alias = "consistent_hash", default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHashLb>,
    /// Locality-aware settings.
    #[serde(
        alias = "locality_lb_setting",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub locality_lb_setting: Option<LocalityLbSetting>,
    /// Zone-aware settings, as istio/api's DestinationRule doc comments show them (same shape as
    /// `localityLbSetting`).
    #[serde(
        alias = "zone_aware_lb_setting",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub zone_aware_lb_setting: Option<LocalityLbSetting>,
    /// Deprecated slow-start window.
    #[serde(
        alias = "warmup_duration_secs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub warmup_duration_secs: Option<Duration>,
    /// Slow start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupConfiguration>,
}

/// Simple load-balancing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLb {
    /// Default (LEAST_REQUEST).
    Unspecified,
    /// Deprecated alias of LEAST_REQUEST.
    LeastConn,
    /// Random.
    Random,
    /// Original destination.
    Passthrough,
    /// Round robin.
    RoundRobin,
    /// Power of two choices, fewest active requests.
    LeastRequest,
}

/// Slow start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmupConfiguration {
    /// Window (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Starting share of traffic, 0-100 (default 10).
    #[serde(alias = "minimum_percent", default, skip_serializing_if = "Option::is_none")]
    pub minimum_percent: Option<f64>,
    /// Curve, >= 1 (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
}

/// Consistent hashing (sticky sessions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHashLb {
    /// Hash on this header.
    #[serde(alias = "http_header_name", default, skip_serializing_if = "Option::is_none")]
    pub http_header_name: Option<String>,
    /// Hash on this cookie (generated when `ttl` is set).
    #[serde(alias = "http_cookie", default, skip_serializing_if = "Option::is_none")]
    pub http_cookie: Option<HttpCookie>,
    /// Hash on the source IP.
    #[serde(alias = "use_source_ip", default, skip_serializing_if = "Option::is_none")]
    pub use_source_ip: Option<bool>,
    /// Hash on this query parameter.
    #[serde(
        alias = "http_query_parameter_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_query_parameter_name: Option<String>,
    /// Ring hash (default).
    #[serde(alias = "ring_hash", default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    /// Maglev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<MagLev>,
    /// Deprecated ring size.
    #[serde(
        alias = "minimum_ring_size",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_ring_size: Option<u64>,
}

/// Cookie used for hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookie {
    /// Cookie name.
    #[serde(default)]
    pub name: String,
    /// Cookie path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Lifetime of a generated cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Extra cookie attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<CookieAttribute>,
}

/// A cookie attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CookieAttribute {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Ring hash settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    /// Minimum ring size (default 1024).
    #[serde(
        alias = "minimum_ring_size",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_ring_size: Option<u64>,
}

/// Maglev settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MagLev {
    /// Table size, prime (default 65537).
    #[serde(
        alias = "table_size",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub table_size: Option<u64>,
}

/// Locality-aware load balancing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLbSetting {
    /// Weighted distribution per locality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribute: Vec<LocalityDistribute>,
    /// Region failover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<LocalityFailover>,
    /// Labels ordering failover priority.
    #[serde(alias = "failover_priority", default, skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
    /// Enable/disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Traffic from a locality spread over others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityDistribute {
    /// Origin locality (may end in `*`).
    #[serde(default)]
    pub from: String,
    /// Destination locality -> weight (sums to 100).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub to: BTreeMap<String, u32>,
}

/// Region failover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityFailover {
    /// Origin region.
    #[serde(default)]
    pub from: String,
    /// Failover region.
    #[serde(default)]
    pub to: String,
}
