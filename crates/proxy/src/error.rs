//! Errors of the proxy's control surface (applying configuration, admin, static files).
//!
//! Request-time failures are not errors here: they become Envoy-style local replies
//! (see [`crate::reply`]) because the client must get the status, body and flag Envoy would give.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a configuration was rejected. The message is sent back to the control plane as the NACK
/// reason, so each variant names the offending object and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A listener could not be bound; nothing from the new config was applied.
    #[error("listener {listener} cannot bind {address}: {source}; free the port or change the address")]
    Bind {
        /// Listener name.
        listener: String,
        /// Address that was asked for.
        address: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// A regular expression in a match, rewrite or CORS origin does not compile (RE2 syntax expected).
    #[error("route {route}: invalid regex {pattern:?}: {reason}")]
    Regex {
        /// Route (or virtual host / table) that holds the expression.
        route: String,
        /// The expression.
        pattern: String,
        /// Why the regex engine rejected it.
        reason: String,
    },
    /// A header name in a match or header operation is not a valid HTTP header name.
    #[error("route {route}: invalid header name {name:?}")]
    HeaderName {
        /// Route that holds the header.
        route: String,
        /// The offending name.
        name: String,
    },
    /// A header value in a header operation cannot be sent on the wire (control characters).
    #[error("route {route}: invalid value for header {name:?}")]
    HeaderValue {
        /// Route that holds the header.
        route: String,
        /// Header the value belongs to.
        name: String,
    },
    /// A listener names a route table that the config does not contain.
    #[error("listener {listener} references route table {table:?}, which is not in the config")]
    UnknownRouteTable {
        /// Listener name.
        listener: String,
        /// Missing table name.
        table: String,
    },
    /// Two listeners share a name or an address.
    #[error("listener {listener} is declared twice (same name or same address {address})")]
    DuplicateListener {
        /// Listener name.
        listener: String,
        /// Its address.
        address: SocketAddr,
    },
    /// A status code outside 100..=999 in a direct response, redirect or fault.
    #[error("route {route}: invalid HTTP status {status}")]
    Status {
        /// Route that holds the status.
        route: String,
        /// The bad status.
        status: u16,
    },
    /// A TLS certificate, key or CA file of a listener or cluster is missing or unusable.
    #[error("{owner}: tls.{field} {path:?}: {reason}")]
    Tls {
        /// `listener NAME` or `cluster NAME`.
        owner: String,
        /// The field naming the file, e.g. `privateKey`.
        field: &'static str,
        /// The path as configured.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A rewrite or redirect value that is not a valid URI part.
    #[error("route {route}: invalid URI part {value:?} in rewrite or redirect")]
    Uri {
        /// Route that holds the value.
        route: String,
        /// The offending value.
        value: String,
    },
}

/// Failures of the proxy's own services (admin endpoint, static configuration files).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The static configuration file cannot be read.
    #[error("cannot read proxy config {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The static configuration file is not a valid ProxyConfig in JSON or YAML.
    #[error("proxy config {path} is not valid {format}: {reason}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// `JSON` or `YAML`.
        format: &'static str,
        /// Parser message, with position.
        reason: String,
    },
    /// `serve_admin` was called on a proxy built without an admin address.
    #[error("no admin address configured; set ProxyOptions::admin_addr")]
    NoAdminAddress,
    /// The admin port cannot be bound.
    #[error("cannot bind admin address {address}: {source}; free the port or pick another")]
    AdminBind {
        /// Address that was asked for.
        address: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// Accepting admin connections failed.
    #[error("admin listener failed: {0}")]
    AdminAccept(std::io::Error),
}
