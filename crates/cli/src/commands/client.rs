//! The CLI's view of the control plane's REST API (see `strait_control::rest`).

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;

use super::http;

/// Default REST address of the control plane.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:15014";

/// `--server`, shared by every command that talks to the control plane.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Control-plane REST API address.
    #[arg(long, env = "STRAIT_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
}

/// An answer: HTTP status and JSON body (a non-JSON body becomes `{"error": text}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Value,
}

impl Answer {
    /// The error lines of an error answer (`error` or `errors`).
    pub fn errors(&self) -> Vec<String> {
        if let Some(list) = self.body.get("errors").and_then(Value::as_array) {
            return list
                .iter()
                .map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()))
                .collect();
        }
        match self.body.get("error").and_then(Value::as_str) {
            Some(e) => vec![e.to_string()],
            None => vec![format!(
                "the control plane answered {}: {}",
                self.status, self.body
            )],
        }
    }
}

/// A REST client for one control plane.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    addr: SocketAddr,
}

impl Client {
    /// Resolves `--server` (`http://host:port`).
    pub async fn new(server: &ServerArgs) -> anyhow::Result<Client> {
        let base = server.server.trim_end_matches('/').to_string();
        let authority = match base.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => anyhow::bail!(
                "--server {base}: only http:// is supported (the REST API is plaintext on localhost), not {scheme}://"
            ),
            None => base.as_str(),
        };
        let authority = authority.split('/').next().unwrap_or_default();
        let with_port = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("--server {base}: cannot resolve {authority}"))?
            .next()
            .with_context(|| format!("--server {base}: {authority} has no address"))?;
        Ok(Client { base, addr })
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let (status, bytes) = http::request(self.addr, method, path, headers, body).await.with_context(|| {
            format!(
                "cannot reach the control plane at {}; start it with `strait control-plane` (or `strait demo`), \
                 or point --server / STRAIT_SERVER at it",
                self.base
            )
        })?;
        let body = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| serde_json::json!({ "error": String::from_utf8_lossy(&bytes).trim().to_string() }),
        );
        Ok(Answer { status, body })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.call("GET", path, &[], Bytes::new()).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Answer> {
        self.call("DELETE", path, &[], Bytes::new()).await
    }

    /// `POST path` with a manifest body; `source` names it in error messages.
    pub async fn post_manifest(&self, path: &str, source: &str, text: &str) -> anyhow::Result<Answer> {
        let headers = [("x-strait-source", source), ("content-type", "application/yaml")];
        self.call("POST", path, &headers, Bytes::from(text.to_string()))
            .await
    }
}

/// Percent-encodes a path segment or query value (names are RFC 1123, but ids come from users).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode("reviews-v1.default"), "reviews-v1.default");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn error_lines() {
        let a = Answer {
            status: 422,
            body: serde_json::json!({"errors": ["x", "y"]}),
        };
        assert_eq!(a.errors(), ["x", "y"]);
        let a = Answer {
            status: 404,
            body: serde_json::json!({"error": "gone"}),
        };
        assert_eq!(a.errors(), ["gone"]);
    }
}
