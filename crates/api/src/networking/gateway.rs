//! Gateway: the ports, hosts and TLS settings of an ingress/egress gateway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::virtual_service::is_zero;
use crate::proto::{int, is_false};

/// networking.istio.io Gateway spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    /// Labels of the gateway workloads (all namespaces); empty selects all workloads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Servers (port + hosts + TLS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
}

/// One server of a gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// Port to listen on.
    #[serde(default)]
    pub port: Port,
    /// Address to bind (IP or `unix://`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bind: String,
    /// Hosts exposed, `[ns/]dnsName`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Default endpoint (`127.0.0.1:PORT` or `unix://`), for sidecar ingress.
    #[serde(alias = "default_endpoint", default, skip_serializing_if = "String::is_empty")]
    pub default_endpoint: String,
    /// Name, used in stats.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A port with its protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// Port number.
    #[serde(default, deserialize_with = "int::req")]
    pub number: u32,
    /// HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP or TLS (case-insensitive).
    #[serde(default)]
    pub protocol: String,
    /// Port name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Target port (deprecated on Gateway).
    #[serde(
        alias = "target_port",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero"
    )]
    pub target_port: u32,
}

/// TLS settings of a gateway server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Redirect every HTTP request to HTTPS.
    #[serde(alias = "https_redirect", default, skip_serializing_if = "is_false")]
    pub https_redirect: bool,
    /// TLS mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
    /// Certificate file.
    #[serde(
        alias = "server_certificate",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub server_certificate: String,
    /// Key file.
    #[serde(alias = "private_key", default, skip_serializing_if = "String::is_empty")]
    pub private_key: String,
    /// CA file for client certificates.
    #[serde(alias = "ca_certificates", default, skip_serializing_if = "String::is_empty")]
    pub ca_certificates: String,
    /// CRL file.
    #[serde(alias = "ca_crl", default, skip_serializing_if = "String::is_empty")]
    pub ca_crl: String,
    /// Secret holding the certificate.
    #[serde(alias = "credential_name", default, skip_serializing_if = "String::is_empty")]
    pub credential_name: String,
    /// Several secrets (RSA + ECDSA).
    #[serde(alias = "credential_names", default, skip_serializing_if = "Vec::is_empty")]
    pub credential_names: Vec<String>,
    /// Several certificate files.
    #[serde(alias = "tls_certificates", default, skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<TlsCertificate>,
    /// Secret holding only the CA.
    #[serde(
        alias = "ca_cert_credential_name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_cert_credential_name: String,
    /// Accepted client SANs.
    #[serde(alias = "subject_alt_names", default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// Accepted client SPKI hashes.
    #[serde(
        alias = "verify_certificate_spki",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verify_certificate_spki: Vec<String>,
    /// Accepted client certificate hashes.
    #[serde(
        alias = "verify_certificate_hash",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verify_certificate_hash: Vec<String>,
    /// Minimum TLS version (default 1.2).
    #[serde(
        alias = "min_protocol_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_protocol_version: Option<TlsProtocol>,
    /// Maximum TLS version.
    #[serde(
        alias = "max_protocol_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_protocol_version: Option<TlsProtocol>,
    /// Cipher suites.
    #[serde(alias = "cipher_suites", default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
}

/// A certificate/key pair given as files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsCertificate {
    /// Certificate file.
    #[serde(
        alias = "server_certificate",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub server_certificate: String,
    /// Key file.
    #[serde(alias = "private_key", default, skip_serializing_if = "String::is_empty")]
    pub private_key: String,
    /// CA file.
    #[serde(alias = "ca_certificates", default, skip_serializing_if = "String::is_empty")]
    pub ca_certificates: String,
}

/// Gateway TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Route on SNI without terminating.
    Passthrough,
    /// Terminate with a server certificate.
    Simple,
    /// Terminate and require a client certificate.
    Mutual,
    /// SNI encodes the destination cluster.
    AutoPassthrough,
    /// Mesh mTLS.
    IstioMutual,
    /// Client certificate optional.
    OptionalMutual,
}

/// TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsProtocol {
    /// Automatic.
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    /// TLS 1.0.
    #[serde(rename = "TLSV1_0")]
    Tlsv10,
    /// TLS 1.1.
    #[serde(rename = "TLSV1_1")]
    Tlsv11,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    Tlsv12,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    Tlsv13,
}
