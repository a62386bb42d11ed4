//! A typed Istio resource: apiVersion, kind, metadata and the kind's spec.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Kind, ObjectMeta, networking, security};

/// One Istio resource, as stored and served (Kubernetes object shape).
///
/// Deserializing reads `kind` first and types `spec` accordingly, so a stored resource always
/// comes back as the kind it was written as (an untagged guess would confuse kinds whose fields
/// are all optional).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
// Specs are parsed once and stored; matching `Spec::VirtualService(vs)` without a Box keeps the
// compiler's code plain, and the size difference costs nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
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

impl Spec {
    /// The kind this spec belongs to.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Gateway(_) => Kind::Gateway,
            Spec::VirtualService(_) => Kind::VirtualService,
            Spec::DestinationRule(_) => Kind::DestinationRule,
            Spec::ServiceEntry(_) => Kind::ServiceEntry,
            Spec::WorkloadEntry(_) => Kind::WorkloadEntry,
            Spec::PeerAuthentication(_) => Kind::PeerAuthentication,
            Spec::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Spec::RequestAuthentication(_) => Kind::RequestAuthentication,
        }
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            api_version: String,
            kind: Kind,
            #[serde(default)]
            metadata: ObjectMeta,
            #[serde(default)]
            spec: Option<Value>,
        }
        let raw = Raw::deserialize(d)?;
        let spec =
            crate::validate::typed_spec(raw.kind, raw.spec.unwrap_or(Value::Object(Default::default())))
                .map_err(|(path, message)| de::Error::custom(format!("{path}: {message}")))?;
        Ok(Resource {
            api_version: raw.api_version,
            kind: raw.kind,
            metadata: raw.metadata,
            spec,
        })
    }
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
