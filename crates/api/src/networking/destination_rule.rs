//! DestinationRule: what happens after routing (subsets, load balancing, connection pools,
//! outlier detection, client TLS).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::virtual_service::is_zero;
use super::{LoadBalancerSettings, PortSelector};
use crate::proto::{Duration, Percent, int, is_false};
use crate::security::WorkloadSelector;

/// networking.istio.io DestinationRule spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRule {
    /// Service host (short name resolved in the rule's namespace).
    #[serde(default)]
    pub host: String,
    /// Policy for the whole host.
    #[serde(alias = "traffic_policy", default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named endpoint subsets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Namespaces the rule is visible in.
    #[serde(alias = "export_to", default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Restricts the rule to these client workloads (`matchLabels`, unlike ServiceEntry's
    /// `labels`: Istio uses `istio.type.v1beta1.WorkloadSelector` here).
    #[serde(alias = "workload_selector", default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
}

/// A subset of a service's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// Name, unique in the rule.
    #[serde(default)]
    pub name: String,
    /// Endpoint labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Overrides of the top-level policy.
    #[serde(alias = "traffic_policy", default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Traffic policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    /// Load balancing.
    #[serde(alias = "load_balancer", default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Circuit breaking.
    #[serde(alias = "connection_pool", default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of failing endpoints.
    #[serde(alias = "outlier_detection", default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Client TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Per-port policies (replace the top-level ones for that port).
    #[serde(alias = "port_level_settings", default, skip_serializing_if = "Vec::is_empty")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// HTTP CONNECT tunnelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSettings>,
    /// PROXY protocol toward upstream.
    #[serde(alias = "proxy_protocol", default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Limit on concurrent retries.
    #[serde(alias = "retry_budget", default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
}

/// Policy for one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortTrafficPolicy {
    /// The port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
    /// Load balancing.
    #[serde(alias = "load_balancer", default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Circuit breaking.
    #[serde(alias = "connection_pool", default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection.
    #[serde(alias = "outlier_detection", default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Client TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// Connection pool (circuit breaker) settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    /// TCP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSettings>,
    /// HTTP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
}

/// TCP connection pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSettings {
    /// Maximum connections.
    #[serde(
        alias = "max_connections",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero_i32"
    )]
    pub max_connections: i32,
    /// Connect timeout (default 10s).
    #[serde(alias = "connect_timeout", default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// TCP keep-alive.
    #[serde(alias = "tcp_keepalive", default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Maximum connection lifetime.
    #[serde(
        alias = "max_connection_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connection_duration: Option<Duration>,
    /// Idle timeout.
    #[serde(alias = "idle_timeout", default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// TCP keep-alive probes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Probes before the connection is dead.
    #[serde(default, deserialize_with = "int::req", skip_serializing_if = "is_zero")]
    pub probes: u32,
    /// Idle time before probing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    /// Interval between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// HTTP connection pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    /// Maximum queued requests.
    #[serde(
        alias = "http1_max_pending_requests",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero_i32"
    )]
    pub http1_max_pending_requests: i32,
    /// Maximum active requests.
    #[serde(
        alias = "http2_max_requests",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero_i32"
    )]
    pub http2_max_requests: i32,
    /// Requests per connection (1 = no keep-alive).
    #[serde(
        alias = "max_requests_per_connection",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero_i32"
    )]
    pub max_requests_per_connection: i32,
    /// Maximum concurrent retries.
    #[serde(
        alias = "max_retries",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero_i32"
    )]
    pub max_retries: i32,
    /// Idle timeout.
    #[serde(alias = "idle_timeout", default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Upgrade HTTP/1.1 to HTTP/2.
    #[serde(alias = "h2_upgrade_policy", default, skip_serializing_if = "Option::is_none")]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Use the client's protocol upstream.
    #[serde(alias = "use_client_protocol", default, skip_serializing_if = "is_false")]
    pub use_client_protocol: bool,
    /// Maximum concurrent HTTP/2 streams.
    #[serde(
        alias = "max_concurrent_streams",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero_i32"
    )]
    pub max_concurrent_streams: i32,
    /// HTTP/2 PING keep-alive.
    #[serde(alias = "http2_keep_alive", default, skip_serializing_if = "Option::is_none")]
    pub http2_keep_alive: Option<Http2KeepAlive>,
}

/// HTTP/2 keep-alive pings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2KeepAlive {
    /// Interval between pings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Wait for the ping response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// HTTP/2 upgrade policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// Mesh default.
    Default,
    /// Never upgrade.
    DoNotUpgrade,
    /// Upgrade.
    Upgrade,
}

/// Outlier detection; absent means no ejection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Separate local-origin failures from upstream ones.
    #[serde(
        alias = "split_external_local_origin_errors",
        default,
        skip_serializing_if = "is_false"
    )]
    pub split_external_local_origin_errors: bool,
    /// Local-origin failures before ejection.
    #[serde(
        alias = "consecutive_local_origin_failures",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_local_origin_failures: Option<u32>,
    /// 502/503/504 before ejection.
    #[serde(
        alias = "consecutive_gateway_errors",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_gateway_errors: Option<u32>,
    /// 5xx before ejection (default 5; 0 disables).
    #[serde(
        alias = "consecutive_5xx_errors",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    /// Deprecated alias of consecutive gateway errors.
    #[serde(
        alias = "consecutive_errors",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_errors: Option<i32>,
    /// Sweep interval (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Minimum ejection time (default 30s).
    #[serde(
        alias = "base_ejection_time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub base_ejection_time: Option<Duration>,
    /// Maximum share ejected (default 10).
    #[serde(
        alias = "max_ejection_percent",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_ejection_percent: Option<i32>,
    /// Panic threshold (default 0).
    #[serde(
        alias = "min_health_percent",
        default,
        deserialize_with = "int::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_health_percent: Option<i32>,
}

/// Client TLS toward upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// Mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClientTlsMode>,
    /// Client certificate file.
    #[serde(
        alias = "client_certificate",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub client_certificate: String,
    /// Key file.
    #[serde(alias = "private_key", default, skip_serializing_if = "String::is_empty")]
    pub private_key: String,
    /// CA file.
    #[serde(alias = "ca_certificates", default, skip_serializing_if = "String::is_empty")]
    pub ca_certificates: String,
    /// Secret with the certificates.
    #[serde(alias = "credential_name", default, skip_serializing_if = "String::is_empty")]
    pub credential_name: String,
    /// Accepted server SANs.
    #[serde(alias = "subject_alt_names", default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// SNI to send.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sni: String,
    /// Skip server verification.
    #[serde(
        alias = "insecure_skip_verify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_verify: Option<bool>,
    /// CRL file.
    #[serde(alias = "ca_crl", default, skip_serializing_if = "String::is_empty")]
    pub ca_crl: String,
}

/// Client TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Plaintext.
    Disable,
    /// TLS, server verified.
    Simple,
    /// mTLS with given certificates.
    Mutual,
    /// mTLS with mesh certificates.
    IstioMutual,
}

/// HTTP CONNECT tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelSettings {
    /// CONNECT or POST.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Target host.
    #[serde(alias = "target_host", default)]
    pub target_host: String,
    /// Target port.
    #[serde(alias = "target_port", default, deserialize_with = "int::req")]
    pub target_port: u32,
}

/// PROXY protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    /// V1 or V2.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Retry budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// Share of active requests that may be retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
    /// Minimum concurrent retries allowed.
    #[serde(
        alias = "min_retry_concurrency",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero"
    )]
    pub min_retry_concurrency: u32,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
