//! Validation with Istio's rules (its admission webhook plus the CRD schema and CEL rules).
//! Every error carries the field path it is about, e.g. `spec.http[0].route[1].weight`.

mod common;
mod destination_rule;
mod gateway;
mod http_route;
mod registry;
mod security;
mod virtual_service;

use serde_json::Value;

use crate::{Kind, Resource, Spec};

/// One validation problem in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field path such as `spec.http[0].route`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads a spec into the kind's type. Errors are `(field path, message)`, the path starting at
/// `spec` (`spec.http[0].route[0].destination.hostt`, `unknown field; expected one of ...`).
pub fn typed_spec(kind: Kind, spec: Value) -> Result<Spec, (String, String)> {
    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, (String, String)> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let inner = e.path().to_string();
            let mut path = if inner.is_empty() || inner == "." {
                "spec".to_string()
            } else {
                format!("spec.{inner}")
            };
            let mut message = e.into_inner().to_string();
            // serde reports an unknown field at its parent: name the field itself in the path.
            if let Some(rest) = message.strip_prefix("unknown field `")
                && let Some((field, expected)) = rest.split_once('`')
            {
                // The path already ends with the unknown key.
                if !path.ends_with(field) {
                    path = format!("{path}.{field}");
                }
                let expected = expected.trim_start_matches(',').trim();
                message = if expected.is_empty() {
                    "unknown field".to_string()
                } else {
                    format!("unknown field; {expected}")
                };
            }
            (path, message)
        })
    }
    Ok(match kind {
        Kind::Gateway => Spec::Gateway(typed(spec)?),
        Kind::VirtualService => Spec::VirtualService(typed(spec)?),
        Kind::DestinationRule => Spec::DestinationRule(typed(spec)?),
        Kind::ServiceEntry => Spec::ServiceEntry(typed(spec)?),
        Kind::WorkloadEntry => Spec::WorkloadEntry(typed(spec)?),
        Kind::PeerAuthentication => Spec::PeerAuthentication(typed(spec)?),
        Kind::AuthorizationPolicy => Spec::AuthorizationPolicy(typed(spec)?),
        Kind::RequestAuthentication => Spec::RequestAuthentication(typed(spec)?),
    })
}

/// Validates a typed resource as Istio's webhook would. Empty means valid.
pub fn validate(resource: &Resource) -> Vec<FieldError> {
    let mut errs = common::Errs::default();
    let ns = resource.namespace();
    // Kubernetes object names are DNS-1123 subdomains (lower case).
    let name = resource.name();
    let lower_label = |l: &str| common::is_dns1123_label(l) && !l.bytes().any(|b| b.is_ascii_uppercase());
    if name.is_empty() {
        errs.add("metadata.name", "name is required");
    } else if name.len() > 253 || !name.split('.').all(lower_label) {
        errs.add(
            "metadata.name",
            format!("{name:?} is not a valid name: use lower-case letters, digits, '-' and '.'"),
        );
    }
    // Istio's own examples use `nsA`: accept Istio's (case-insensitive) label format here.
    if !common::is_dns1123_label(ns) {
        errs.add(
            "metadata.namespace",
            format!("{ns:?} is not a valid namespace: use letters, digits and '-' (at most 63)"),
        );
    }
    match &resource.spec {
        Spec::Gateway(g) => gateway::gateway(&mut errs, g),
        Spec::VirtualService(vs) => virtual_service::virtual_service(&mut errs, vs),
        Spec::DestinationRule(dr) => destination_rule::destination_rule(&mut errs, dr),
        Spec::ServiceEntry(se) => registry::service_entry(&mut errs, se),
        Spec::WorkloadEntry(we) => registry::workload_entry(&mut errs, "spec", we),
        Spec::PeerAuthentication(pa) => security::peer_authentication(&mut errs, pa),
        Spec::AuthorizationPolicy(ap) => security::authorization_policy(&mut errs, ns, ap),
        Spec::RequestAuthentication(ra) => security::request_authentication(&mut errs, ns, ra),
    }
    errs.into_vec()
}

#[cfg(test)]
mod tests;
