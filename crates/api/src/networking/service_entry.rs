//! ServiceEntry: adds a service (hosts, ports, endpoints) to the mesh's registry.

use serde::{Deserialize, Serialize};

use super::virtual_service::is_zero;
use super::{WorkloadEntry, WorkloadSelector};
use crate::proto::int;

/// networking.istio.io ServiceEntry spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntry {
    /// Hosts (required).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Virtual IPs or CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// Inside or outside the mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How endpoints are found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Inline endpoints (exclusive with `workload_selector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntry>,
    /// Selects WorkloadEntries (and pods) in the same namespace.
    #[serde(alias = "workload_selector", default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
    /// Namespaces the service is visible in.
    #[serde(alias = "export_to", default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Identities the endpoints must present.
    #[serde(alias = "subject_alt_names", default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

impl ServiceEntry {
    /// The resolution, `NONE` when unset.
    pub fn resolution(&self) -> Resolution {
        self.resolution.unwrap_or(Resolution::None)
    }

    /// The location, `MESH_EXTERNAL` when unset.
    pub fn location(&self) -> Location {
        self.location.unwrap_or(Location::MeshExternal)
    }
}

/// A service port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// Port number.
    #[serde(default, deserialize_with = "int::req")]
    pub number: u32,
    /// Protocol (HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Name, unique in the entry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Port on the endpoints, `number` when zero.
    #[serde(
        alias = "target_port",
        default,
        deserialize_with = "int::req",
        skip_serializing_if = "is_zero"
    )]
    pub target_port: u32,
}

/// Where the service lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh (default): no mTLS.
    MeshExternal,
    /// Part of the mesh.
    MeshInternal,
}

/// How endpoints are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the original destination IP.
    None,
    /// Endpoint IPs.
    Static,
    /// Resolve endpoints (or hosts) with DNS, all addresses.
    Dns,
    /// Resolve with DNS, first address.
    DnsRoundRobin,
    /// Resolve the request's host at request time.
    DynamicDns,
}
