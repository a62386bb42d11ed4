//! The compiled proxy configuration: everything one proxy needs, nothing Istio-shaped.
//!
//! The control plane produces one [`ProxyConfig`] per proxy; the proxy turns it into its
//! runtime tables (compiled regexes, weight tables, load balancers) when it arrives. These are
//! plain data structs so that tests can build them literally and `proxy-config` can print them.
//! They travel as JSON inside the protobuf envelope of the push stream (see `proto/mesh.proto`):
//! one definition serves the wire, the config dump and the golden tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The whole configuration of one proxy, versioned by the control plane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Opaque version string chosen by the control plane; echoed in ACK/NACK.
    pub version: String,
    /// Listeners the proxy must have open; any listener not listed is closed.
    pub listeners: Vec<Listener>,
    /// Route tables, referenced by name from listeners.
    pub route_tables: Vec<RouteTable>,
    /// Upstream clusters, referenced by name from routes.
    pub clusters: Vec<Cluster>,
}

/// Which side of the mesh a listener serves; decides headers such as `server`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// Traffic leaving the local app (sidecar outbound, an explicit HTTP proxy).
    #[default]
    Outbound,
    /// Traffic arriving for the local app (sidecar inbound).
    Inbound,
    /// An ingress gateway's server port.
    Gateway,
}

/// A socket the proxy accepts HTTP on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Unique name, e.g. `0.0.0.0_8080` or `virtualOutbound`.
    pub name: String,
    /// Address to bind.
    pub address: SocketAddr,
    /// Role of this listener.
    #[serde(default)]
    pub direction: Direction,
    /// Name of the [`RouteTable`] that routes requests received here.
    pub route_table: String,
    /// mTLS for connections accepted here; `None` serves plaintext only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::ListenerTls>,
}

/// A set of virtual hosts; the first whose domain matches the request authority is used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteTable {
    /// Name referenced by listeners (e.g. `http.8080`, `outbound`, `inbound|9080`).
    pub name: String,
    /// Virtual hosts, matched by authority. Exact domains beat wildcards, as in Envoy.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// Routes for one set of domains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualHost {
    /// Display name, e.g. `reviews.default.svc.cluster.local:9080`.
    pub name: String,
    /// Host patterns without port: `reviews`, `*.example.com`, `*`. Compared case-insensitively.
    pub domains: Vec<String>,
    /// When set, only requests for this port match (authority port, or 80 when absent).
    pub port: Option<u16>,
    /// Ordered routes: the first matching route wins. Istio adds no implicit default route,
    /// so a request matching none gets 404 with flag NR.
    pub routes: Vec<Route>,
}

/// One routing rule (an Istio `HTTPRoute`, compiled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Route {
    /// Name for logs and `proxy-config` (`<vs name>.<ns>` or the HTTPRoute name).
    pub name: String,
    /// Match blocks, OR'd. Empty means match every request.
    pub matches: Vec<RequestMatch>,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Route timeout in milliseconds; `None` = no timeout (Istio's default for VS routes).
    pub timeout_ms: Option<u64>,
    /// Retry policy; `None` = no retries.
    pub retries: Option<RetryPolicy>,
    /// Fault injection, applied by the proxy that routes (client side).
    pub fault: Option<Fault>,
    /// Header edits applied to every request / response on this route.
    pub headers: HeaderOps,
    /// Path/authority rewrite before forwarding.
    pub rewrite: Option<Rewrite>,
    /// Shadow traffic; fire-and-forget.
    pub mirrors: Vec<Mirror>,
    /// CORS policy.
    pub cors: Option<CorsPolicy>,
}

impl Route {
    /// A catch-all route sending everything to one cluster: default routing, inbound routing and
    /// the ALLOW_ANY passthrough all have this shape.
    pub fn to_cluster(name: impl Into<String>, cluster: impl Into<String>) -> Route {
        Route {
            name: name.into(),
            action: RouteAction::Forward(vec![WeightedCluster {
                cluster: cluster.into(),
                weight: 100,
                headers: HeaderOps::default(),
            }]),
            ..Route::default()
        }
    }
}

/// One Istio `HTTPMatchRequest`: every present condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestMatch {
    /// Path (without query) matcher.
    pub uri: Option<StringMatch>,
    /// `http` or `https`.
    pub scheme: Option<StringMatch>,
    /// Request method.
    pub method: Option<StringMatch>,
    /// Authority (Host) matcher, compared with the full authority.
    pub authority: Option<StringMatch>,
    /// Header conditions; header names are lowercase.
    pub headers: Vec<HeaderMatch>,
    /// Negated header conditions: the request matches only if none of these holds.
    pub without_headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    pub query_params: Vec<QueryParamMatch>,
    /// Listener / destination port the request arrived for.
    pub port: Option<u16>,
    /// Istio: `ignoreUriCase` affects uri exact and prefix matches only.
    pub ignore_uri_case: bool,
}

/// Istio `StringMatch`. `Regex` is RE2 syntax and must match the whole string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StringMatch {
    /// Equal to.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Full-string regex match.
    Regex(String),
}

/// A condition on one header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Lowercase header name.
    pub name: String,
    /// `None` = presence match (`headers: {x: {}}`).
    pub value: Option<StringMatch>,
}

/// A condition on one query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryParamMatch {
    /// Parameter name (case-sensitive).
    pub name: String,
    /// `None` = presence match.
    pub value: Option<StringMatch>,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteAction {
    /// Forward to one of these clusters, chosen by relative weight.
    Forward(Vec<WeightedCluster>),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer directly.
    DirectResponse(DirectResponse),
}

impl Default for RouteAction {
    fn default() -> Self {
        RouteAction::Forward(Vec::new())
    }
}

/// One destination of a route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WeightedCluster {
    /// Cluster name, e.g. `outbound|9080|v1|reviews.default.svc.cluster.local`. A name that is not
    /// in the config gives 503 with flag NC (Istio: route to an undefined subset).
    pub cluster: String,
    /// Relative weight; shares are weight / sum of weights.
    pub weight: u32,
    /// Header edits for requests sent to this destination (applied after the route's).
    pub headers: HeaderOps,
}

/// Istio `HTTPRedirect`, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Redirect {
    /// Replace the whole path.
    pub uri: Option<String>,
    /// Replace the matched prefix (the route's uri match is a prefix).
    pub prefix_rewrite: Option<String>,
    /// Replace the host.
    pub authority: Option<String>,
    /// Replace the scheme.
    pub scheme: Option<String>,
    /// Replace the port.
    pub port: Option<u16>,
    /// Status code; Istio's default is 301.
    pub code: u16,
}

/// Istio `HTTPDirectResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DirectResponse {
    /// Status code.
    pub status: u16,
    /// Body; none when absent.
    pub body: Option<String>,
}

/// Istio `HTTPRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rewrite {
    /// Replaces the matched prefix (prefix match) or the whole path (other matches).
    pub uri: Option<String>,
    /// Regex rewrite `(match, replacement)`.
    pub uri_regex: Option<(String, String)>,
    /// Replaces the Host / :authority.
    pub authority: Option<String>,
}

/// Retry policy. Total tries = 1 + attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub attempts: u32,
    /// Per-try timeout in milliseconds.
    pub per_try_timeout_ms: Option<u64>,
    /// Envoy retry-on conditions (`5xx`, `gateway-error`, `connect-failure`, `reset`, ...).
    pub retry_on: Vec<String>,
    /// Status codes that are retried (from integers in Istio's `retryOn`).
    pub retriable_status_codes: Vec<u16>,
}

/// Fault injection, executed before forwarding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Fault {
    /// Delay injection.
    pub delay: Option<FaultDelay>,
    /// Abort injection.
    pub abort: Option<FaultAbort>,
}

/// Delay a share of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultDelay {
    /// Delay in milliseconds.
    pub fixed_delay_ms: u64,
    /// Share of requests, 0..=100. Istio: an absent percentage means 0.
    pub percentage: f64,
}

/// Abort a share of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultAbort {
    /// HTTP status to answer with.
    pub http_status: u16,
    /// Share of requests, 0..=100.
    pub percentage: f64,
}

/// Header edits, Istio `Headers.HeaderOperations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HeaderOps {
    /// Edits to the request sent upstream.
    pub request: HeaderEdit,
    /// Edits to the response sent downstream.
    pub response: HeaderEdit,
}

impl HeaderOps {
    /// True when there is nothing to do (lets the proxy skip the stage).
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// Set (overwrite), add (append) and remove headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HeaderEdit {
    /// Overwrite.
    pub set: BTreeMap<String, String>,
    /// Append.
    pub add: BTreeMap<String, String>,
    /// Remove.
    pub remove: Vec<String>,
}

impl HeaderEdit {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// Shadow a share of requests to another cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Mirror {
    /// Cluster to copy requests to.
    pub cluster: String,
    /// Share of requests, 0..=100. Istio: absent mirrorPercentage means 100.
    pub percentage: f64,
}

/// Istio `CorsPolicy`, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CorsPolicy {
    /// Allowed origins.
    pub allow_origins: Vec<StringMatch>,
    /// Allowed methods.
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    pub allow_headers: Vec<String>,
    /// Exposed response headers.
    pub expose_headers: Vec<String>,
    /// `access-control-max-age` in seconds.
    pub max_age_s: Option<u64>,
    /// `access-control-allow-credentials`.
    pub allow_credentials: Option<bool>,
}

/// Load-balancing algorithm. Istio's default when a DestinationRule sets none is LEAST_REQUEST.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbPolicy {
    /// Power of two choices over active requests.
    #[default]
    LeastRequest,
    /// Rotate.
    RoundRobin,
    /// Uniform random.
    Random,
}

/// Protocol spoken to the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// A set of endpoints that requests are balanced over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Cluster {
    /// `outbound|<port>|<subset>|<fqdn>` or `inbound|<port>||`, as Istio names them.
    pub name: String,
    /// Service FQDN this cluster belongs to (for display and metrics).
    pub service: String,
    /// Service port.
    pub port: u16,
    /// Subset name, empty for the whole service.
    pub subset: String,
    /// Load-balancing algorithm.
    pub lb_policy: LbPolicy,
    /// Protocol toward the endpoints.
    pub protocol: UpstreamProtocol,
    /// Endpoints. Empty means 503 `no healthy upstream` (flag UH).
    pub endpoints: Vec<Endpoint>,
    /// Connect timeout in milliseconds (Istio default 10 s).
    pub connect_timeout_ms: u64,
    /// Circuit-breaker limits; `None` = unlimited.
    pub connection_pool: Option<ConnectionPool>,
    /// Outlier detection; `None` = never eject.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS toward the endpoints; `None` = plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::ClusterTls>,
}

/// One upstream address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Socket address to connect to.
    pub address: SocketAddr,
    /// Workload labels, for display and metrics.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Relative weight (WorkloadEntry `weight`), default 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// Istio `ConnectionPoolSettings`, the values that are set (>0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConnectionPool {
    /// Max connections to the cluster.
    pub max_connections: Option<u32>,
    /// Max requests waiting for a connection.
    pub max_pending_requests: Option<u32>,
    /// Max active requests.
    pub max_requests: Option<u32>,
    /// Max requests per connection (1 disables keep-alive).
    pub max_requests_per_connection: Option<u32>,
    /// Max concurrent retries.
    pub max_retries: Option<u32>,
    /// Idle timeout for pooled connections, ms.
    pub idle_timeout_ms: Option<u64>,
}

/// Istio `OutlierDetection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive 5xx before ejection (0 disables).
    pub consecutive_5xx: u32,
    /// Consecutive 502/503/504 before ejection (0 disables).
    pub consecutive_gateway_errors: u32,
    /// Sweep interval, ms.
    pub interval_ms: u64,
    /// Base ejection time, ms (multiplied by the number of ejections).
    pub base_ejection_ms: u64,
    /// Max share of hosts ejected, percent.
    pub max_ejection_percent: u32,
}
