//! RequestAuthentication: which JWTs a workload accepts.

use serde::{Deserialize, Serialize};

use super::{PolicyTargetReference, WorkloadSelector};
use crate::proto::{Duration, is_false};

/// security.istio.io RequestAuthentication spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestAuthentication {
    /// Workloads; absent means the whole namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Deprecated single target reference.
    #[serde(alias = "target_ref", default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Target references.
    #[serde(alias = "target_refs", default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Accepted token issuers.
    #[serde(alias = "jwt_rules", default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_rules: Vec<JwtRule>,
}

/// How to validate tokens of one issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRule {
    /// `iss` the token must carry (required).
    #[serde(default)]
    pub issuer: String,
    /// Accepted `aud` values; empty = not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// URL of the key set.
    #[serde(alias = "jwks_uri", default, skip_serializing_if = "String::is_empty")]
    pub jwks_uri: String,
    /// Inline key set (JSON).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwks: String,
    /// Headers the token may come in.
    #[serde(alias = "from_headers", default, skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters the token may come in.
    #[serde(alias = "from_params", default, skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    /// Cookies the token may come in.
    #[serde(alias = "from_cookies", default, skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Header receiving the base64 payload.
    #[serde(
        alias = "output_payload_to_header",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub output_payload_to_header: String,
    /// Keep the token in the forwarded request.
    #[serde(alias = "forward_original_token", default, skip_serializing_if = "is_false")]
    pub forward_original_token: bool,
    /// Claims copied to headers.
    #[serde(
        alias = "output_claim_to_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// JWKS fetch timeout (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Claims whose string value is split on spaces.
    #[serde(
        alias = "space_delimited_claims",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub space_delimited_claims: Vec<String>,
    /// Whether a token is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<JwtPresence>,
}

/// A header carrying a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtHeader {
    /// Header name (required).
    #[serde(default)]
    pub name: String,
    /// Prefix before the token (`Bearer `).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// A claim copied to a request header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// Header name.
    #[serde(default)]
    pub header: String,
    /// Claim name.
    #[serde(default)]
    pub claim: String,
}

/// Token presence requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JwtPresence {
    /// A request without a token passes unauthenticated.
    Optional,
    /// A request without a token is rejected.
    Required,
}
