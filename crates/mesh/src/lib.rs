//! The contract between the control plane and the proxy.
//!
//! [`config`] is the compiled, Istio-free configuration a proxy executes; [`pb`] is the gRPC
//! protocol that carries it. The proxy depends on this crate and never on the Istio API types.
#![forbid(unsafe_code)]

pub mod config;
pub mod delta;
pub mod supervisor;
pub mod ticker;
pub mod tls;

pub use config::*;
pub use delta::ConfigDelta;
pub use tls::{ClientTlsMode, ClusterTls, ListenerTls, PeerMode};

/// Generated gRPC types and services for the push stream.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("strait.mesh.v1");
}

/// Well-known ports, Istio's numbers so that Istio users find their way.
pub mod ports {
    /// Proxy admin (config dump).
    pub const PROXY_ADMIN: u16 = 15000;
    /// Sidecar outbound (explicit HTTP proxy).
    pub const OUTBOUND: u16 = 15001;
    /// Control-plane gRPC, plaintext.
    pub const CONTROL_GRPC: u16 = 15010;
    /// Control-plane REST API.
    pub const CONTROL_REST: u16 = 15014;
    /// Merged Prometheus metrics.
    pub const METRICS: u16 = 15020;
    /// Health / readiness.
    pub const HEALTH: u16 = 15021;
}

impl ProxyConfig {
    /// Decodes a pushed configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Encodes for the push stream.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
