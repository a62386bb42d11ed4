//! Types several networking kinds share: destinations, string matches, selectors, header edits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proto::int;

/// Where traffic goes: a service host, an optional subset and port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Service host: short name (resolved in the rule's namespace), FQDN or ServiceEntry host.
    #[serde(default)]
    pub host: String,
    /// Subset name defined in a DestinationRule for the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subset: String,
    /// Port of the service; needed only when the service has several ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// A service port chosen by number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    /// Port number.
    #[serde(default, deserialize_with = "int::req")]
    pub number: u32,
}

/// Istio's StringMatch: one of exact, prefix or regex (RE2, whole-string). An empty match
/// (`{}`) means "present" for headers and query parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StringMatchRepr", into = "StringMatchRepr")]
pub enum StringMatch {
    /// Exact, case-sensitive.
    Exact(String),
    /// Prefix, case-sensitive.
    Prefix(String),
    /// RE2 regular expression matching the whole string.
    Regex(String),
    /// `{}`: no constraint besides presence.
    Any,
}

impl StringMatch {
    /// The regex, when this is a regex match (validation compiles it).
    pub fn regex(&self) -> Option<&str> {
        match self {
            StringMatch::Regex(r) => Some(r),
            _ => None,
        }
    }
}

/// Wire shape of [`StringMatch`]: a protobuf oneof.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StringMatchRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<StringMatchRepr> for StringMatch {
    type Error = String;
    fn try_from(r: StringMatchRepr) -> Result<Self, String> {
        match (r.exact, r.prefix, r.regex) {
            (None, None, None) => Ok(StringMatch::Any),
            (Some(e), None, None) => Ok(StringMatch::Exact(e)),
            (None, Some(p), None) => Ok(StringMatch::Prefix(p)),
            (None, None, Some(x)) => Ok(StringMatch::Regex(x)),
            _ => Err("a string match takes only one of exact, prefix or regex".to_string()),
        }
    }
}

impl From<StringMatch> for StringMatchRepr {
    fn from(m: StringMatch) -> Self {
        let mut r = StringMatchRepr::default();
        match m {
            StringMatch::Exact(e) => r.exact = Some(e),
            StringMatch::Prefix(p) => r.prefix = Some(p),
            StringMatch::Regex(x) => r.regex = Some(x),
            StringMatch::Any => {}
        }
        r
    }
}

/// `workloadSelector: {labels}` of DestinationRule and ServiceEntry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    /// Labels a workload must carry (all of them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Request and response header edits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Headers {
    /// Edits to the request before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    /// Edits to the response before returning it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Set (overwrite), add (append) and remove headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderOperations {
    /// Overwrite these headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Append these headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}
