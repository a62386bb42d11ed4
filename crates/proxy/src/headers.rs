//! Header edits (Istio `headers.request/response`) compiled to parsed names and values, and the
//! hop-by-hop headers a proxy must not forward.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use strait_mesh::{HeaderEdit, HeaderOps};

use crate::error::ApplyError;

/// One direction's edits, names and values parsed at apply time.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledEdit {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
    /// Istio: setting `host` / `:authority` rewrites the authority.
    pub(crate) authority: Option<String>,
}

/// Request and response edits of a route or destination.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledOps {
    pub(crate) request: CompiledEdit,
    pub(crate) response: CompiledEdit,
}

impl CompiledOps {
    /// Parses every name and value once.
    pub(crate) fn compile(ops: &HeaderOps, route: &str) -> Result<Self, ApplyError> {
        Ok(CompiledOps {
            request: CompiledEdit::compile(&ops.request, route)?,
            response: CompiledEdit::compile(&ops.response, route)?,
        })
    }
}

fn name(n: &str, route: &str) -> Result<HeaderName, ApplyError> {
    HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).map_err(|_| ApplyError::HeaderName {
        route: route.to_string(),
        name: n.to_string(),
    })
}

fn pair(n: &str, v: &str, route: &str) -> Result<(HeaderName, HeaderValue), ApplyError> {
    let value = HeaderValue::from_str(v).map_err(|_| ApplyError::HeaderValue {
        route: route.to_string(),
        name: n.to_string(),
    })?;
    Ok((name(n, route)?, value))
}

fn is_authority(n: &str) -> bool {
    n.eq_ignore_ascii_case("host") || n == ":authority"
}

impl CompiledEdit {
    fn compile(e: &HeaderEdit, route: &str) -> Result<Self, ApplyError> {
        let mut out = CompiledEdit::default();
        for (n, v) in &e.set {
            if is_authority(n) {
                out.authority = Some(v.clone());
            } else if !n.starts_with(':') {
                out.set.push(pair(n, v, route)?);
            }
        }
        for (n, v) in &e.add {
            if is_authority(n) {
                out.authority = Some(v.clone());
            } else if !n.starts_with(':') {
                out.add.push(pair(n, v, route)?);
            }
        }
        for n in &e.remove {
            // Istio ignores pseudo headers here; removing Host is not allowed either.
            if !n.starts_with(':') && !is_authority(n) {
                out.remove.push(name(n, route)?);
            }
        }
        Ok(out)
    }

    /// Nothing to set, add or remove.
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty() && self.authority.is_none()
    }

    /// Applies set, then add, then remove, as Envoy orders them.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for (n, v) in &self.set {
            headers.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            headers.append(n.clone(), v.clone());
        }
        for n in &self.remove {
            headers.remove(n);
        }
    }
}

/// Removes connection-scoped headers (RFC 9110 §7.6.1), including those named by `Connection`.
/// HTTP/2 peers reject them outright, so they must go before crossing protocols.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names (pointer-cheap comparisons for the
    // standard ones) instead of eight hashed removals, which were ~5% of a request's instructions.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(n);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

fn is_hop_by_hop(n: &HeaderName) -> bool {
    *n == header::CONNECTION
        || *n == header::TRANSFER_ENCODING
        || *n == header::TE
        || *n == header::UPGRADE
        || *n == header::PROXY_AUTHORIZATION
        || *n == header::PROXY_AUTHENTICATE
        || n.as_str() == "keep-alive"
        || n.as_str() == "proxy-connection"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn set_add_remove_and_authority() {
        let edit = HeaderEdit {
            set: BTreeMap::from([("X-A".into(), "1".into()), ("host".into(), "new.example".into())]),
            add: BTreeMap::from([("x-b".into(), "2".into())]),
            remove: vec!["x-c".into()],
        };
        let c = CompiledEdit::compile(&edit, "r").unwrap();
        assert_eq!(c.authority.as_deref(), Some("new.example"));
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("0"));
        h.insert("x-b", HeaderValue::from_static("1"));
        h.insert("x-c", HeaderValue::from_static("gone"));
        c.apply(&mut h);
        assert_eq!(h["x-a"], "1");
        assert_eq!(h.get_all("x-b").iter().count(), 2);
        assert!(!h.contains_key("x-c"));
    }

    #[test]
    fn bad_names_and_values_are_rejected() {
        let edit = HeaderEdit {
            set: BTreeMap::from([("bad name".into(), "v".into())]),
            ..Default::default()
        };
        assert!(CompiledEdit::compile(&edit, "r").is_err());
        let edit = HeaderEdit {
            set: BTreeMap::from([("x".into(), "a\nb".into())]),
            ..Default::default()
        };
        assert!(CompiledEdit::compile(&edit, "r").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
        for name in [
            "transfer-encoding",
            "te",
            "upgrade",
            "proxy-authorization",
            "proxy-authenticate",
            "keep-alive",
            "proxy-connection",
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-kept", HeaderValue::from_static("1"));
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
            strip_hop_by_hop(&mut h);
            assert_eq!(h.len(), 1, "{name} was kept");
        }
        let mut h = HeaderMap::new();
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
    }
}
