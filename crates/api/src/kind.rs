//! The Istio kinds Strait understands, with the names kubectl accepts for them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An Istio resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// networking.istio.io Gateway.
    Gateway,
    /// networking.istio.io VirtualService.
    VirtualService,
    /// networking.istio.io DestinationRule.
    DestinationRule,
    /// networking.istio.io ServiceEntry.
    ServiceEntry,
    /// networking.istio.io WorkloadEntry.
    WorkloadEntry,
    /// security.istio.io PeerAuthentication.
    PeerAuthentication,
    /// security.istio.io AuthorizationPolicy.
    AuthorizationPolicy,
    /// security.istio.io RequestAuthentication.
    RequestAuthentication,
}

impl Kind {
    /// Every kind, in the order `get all` lists them.
    pub const ALL: [Kind; 8] = [
        Kind::Gateway,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
    ];

    /// The kind as written in YAML (`VirtualService`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gateway => "Gateway",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::RequestAuthentication => "RequestAuthentication",
        }
    }

    /// API group (`networking.istio.io` or `security.istio.io`).
    pub fn group(self) -> &'static str {
        match self {
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                "security.istio.io"
            }
            _ => "networking.istio.io",
        }
    }

    /// API versions Istio serves for this kind; the first is the storage version.
    pub fn versions(self) -> &'static [&'static str] {
        match self.group() {
            "security.istio.io" => &["v1", "v1beta1"],
            _ => &["v1", "v1beta1", "v1alpha3"],
        }
    }

    /// Lowercase plural (`virtualservices`), as in URLs and `kubectl get`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Gateway => "gateways",
            Kind::VirtualService => "virtualservices",
            Kind::DestinationRule => "destinationrules",
            Kind::ServiceEntry => "serviceentries",
            Kind::WorkloadEntry => "workloadentries",
            Kind::PeerAuthentication => "peerauthentications",
            Kind::AuthorizationPolicy => "authorizationpolicies",
            Kind::RequestAuthentication => "requestauthentications",
        }
    }

    /// The CRD short name (`vs`).
    pub fn short_name(self) -> &'static str {
        match self {
            Kind::Gateway => "gw",
            Kind::VirtualService => "vs",
            Kind::DestinationRule => "dr",
            Kind::ServiceEntry => "se",
            Kind::WorkloadEntry => "we",
            Kind::PeerAuthentication => "pa",
            Kind::AuthorizationPolicy => "ap",
            Kind::RequestAuthentication => "ra",
        }
    }

    /// `virtualservice.networking.istio.io`, the prefix of kubectl's apply lines.
    pub fn qualified(self) -> String {
        format!("{}.{}", self.as_str().to_ascii_lowercase(), self.group())
    }

    /// Accepts what kubectl accepts: kind, singular, plural or short name, any case, optionally
    /// qualified with the group (`virtualservices.networking.istio.io`).
    pub fn parse(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let bare = lower.split('.').next().unwrap_or_default();
        Kind::ALL
            .into_iter()
            .find(|k| bare == k.as_str().to_ascii_lowercase() || bare == k.plural() || bare == k.short_name())
    }

    /// The kind named by a manifest's `kind` field (exact, case-sensitive as Kubernetes is).
    pub fn from_kind_field(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_resolve() {
        assert_eq!(Kind::parse("vs"), Some(Kind::VirtualService));
        assert_eq!(Kind::parse("VirtualServices"), Some(Kind::VirtualService));
        assert_eq!(
            Kind::parse("virtualservice.networking.istio.io"),
            Some(Kind::VirtualService)
        );
        assert_eq!(Kind::parse("ap"), Some(Kind::AuthorizationPolicy));
        assert_eq!(Kind::parse("pods"), None);
        assert_eq!(
            Kind::VirtualService.qualified(),
            "virtualservice.networking.istio.io"
        );
    }
}
