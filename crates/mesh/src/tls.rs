//! TLS settings of listeners and clusters: the shape of Istio's own fields, so that the mesh's
//! mTLS between sidecars and a DestinationRule's `tls` (MUTUAL / SIMPLE with file paths) compile
//! to the same thing.
//!
//! Certificates and keys are named by file path, as Istio's `ClientTLSSettings` and
//! `ServerTLSSettings` name them: a private key never travels inside a pushed config.

use serde::{Deserialize, Serialize};

/// How a listener treats connections that do not start a TLS handshake: Istio's
/// PeerAuthentication modes as a sidecar's inbound listener applies them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerMode {
    /// TLS with a client certificate only; a plaintext connection is reset.
    #[default]
    Strict,
    /// Both: a connection whose first byte is a TLS handshake record gets mTLS, others plaintext.
    Permissive,
}

/// A listener's TLS: the server certificate, and the CA that client certificates must chain to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListenerTls {
    /// Plaintext handling (PeerAuthentication `mtls.mode`).
    pub mode: PeerMode,
    /// PEM file with the certificate chain presented to clients.
    pub server_certificate: String,
    /// PEM file with its private key.
    pub private_key: String,
    /// PEM file with the CA certificates a client certificate must chain to. Required: a mesh
    /// listener authenticates its peers.
    pub ca_certificates: String,
}

/// Istio `ClientTLSSettings.mode` as far as a cluster can originate TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Verify the server; present no certificate.
    Simple,
    /// Verify the server and present a client certificate (Istio's MUTUAL and ISTIO_MUTUAL).
    #[default]
    Mutual,
}

/// A cluster's TLS origination (Istio `ClientTLSSettings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClusterTls {
    /// SIMPLE or MUTUAL.
    pub mode: ClientTlsMode,
    /// PEM file with the client certificate chain (MUTUAL).
    pub client_certificate: String,
    /// PEM file with its private key (MUTUAL).
    pub private_key: String,
    /// PEM file with the CA certificates the server's certificate must chain to.
    pub ca_certificates: String,
    /// Identities the server certificate must carry, one of them as a URI or DNS subject
    /// alternative name (`spiffe://cluster.local/ns/default/sa/reviews`). Empty: any certificate
    /// that chains to the CA.
    pub subject_alt_names: Vec<String>,
    /// SNI to send; empty sends none.
    pub sni: String,
}
