//! A typed Istio resource: apiVersion, kind, metadata and the kind's spec.

use serde::{Deserialize, Serialize};

use crate::{Kind, ObjectMeta, networking, security};

/// One Istio resource, as stored and served (Kubernetes object shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `networking.istio.io/v1` etc. as written by the user.
    pub api_version: String,
    /// The kind.
    pub kind: Kind,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The kind's spec.
    pub spec: Spec,
}

/// The spec of each kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Spec {
    /// Gateway spec.
    Gateway(networking::Gateway),
    /// VirtualService spec.
    VirtualService(networking::VirtualService),
    /// DestinationRule spec.
    DestinationRule(networking::DestinationRule),
    /// ServiceEntry spec.
    ServiceEntry(networking::ServiceEntry),
    /// WorkloadEntry spec.
    WorkloadEntry(networking::WorkloadEntry),
    /// PeerAuthentication spec.
    PeerAuthentication(security::PeerAuthentication),
    /// AuthorizationPolicy spec.
    AuthorizationPolicy(security::AuthorizationPolicy),
    /// RequestAuthentication spec.
    RequestAuthentication(security::RequestAuthentication),
}

impl Resource {
    /// The namespace, `default` when unset.
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// `VirtualService default/reviews`, how errors name a resource.
    pub fn display_name(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace(), self.name())
    }
}
