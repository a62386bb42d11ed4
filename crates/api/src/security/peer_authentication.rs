//! PeerAuthentication: whether a workload accepts plaintext, mTLS or both.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::WorkloadSelector;

/// security.istio.io PeerAuthentication spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAuthentication {
    /// Workloads; absent means the whole namespace (or mesh in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Mode for the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MutualTls>,
    /// Per container port modes (only with a selector).
    #[serde(
        alias = "port_level_mtls",
        default,
        deserialize_with = "port_map",
        skip_serializing_if = "Option::is_none"
    )]
    pub port_level_mtls: Option<BTreeMap<u32, MutualTls>>,
}

/// An mTLS mode setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutualTls {
    /// The mode; absent is UNSET (inherit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MtlsMode>,
}

/// mTLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Inherit from the parent (PERMISSIVE when there is none).
    Unset,
    /// Plaintext only.
    Disable,
    /// Plaintext and mTLS.
    Permissive,
    /// mTLS only.
    Strict,
}

/// Map keys are port numbers written as strings; a key that is not a number is named in the error.
fn port_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<u32, MutualTls>>, D::Error> {
    let Some(raw) = Option::<BTreeMap<String, MutualTls>>::deserialize(d)? else {
        return Ok(None);
    };
    raw.into_iter()
        .map(|(k, v)| match k.trim().parse::<u32>() {
            Ok(port) => Ok((port, v)),
            Err(_) => Err(D::Error::custom(format!(
                "port {k:?} is not a number: keys of portLevelMtls are port numbers"
            ))),
        })
        .collect::<Result<BTreeMap<_, _>, _>>()
        .map(Some)
}
