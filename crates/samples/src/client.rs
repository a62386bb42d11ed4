//! The tiny HTTP/1.1 client the Bookinfo services use to call each other.
//!
//! Like the originals it opens a new connection per call. When `HTTP_PROXY` is set it talks to
//! that proxy (Strait's sidecar) and sends the request in absolute form, which is how an
//! explicit-proxy sidecar learns the destination; otherwise it resolves and connects directly.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Why an upstream call produced no reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("the upstream port {port:?} is not a number between 1 and 65535; fix the *_SERVICE_PORT setting")]
    BadPort { port: String },
    #[error("HTTP_PROXY {proxy:?} is not of the form http://host:port")]
    BadProxy { proxy: String },
    #[error("could not connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("no answer from {addr} within {timeout:?} while {stage}")]
    Timeout {
        addr: String,
        timeout: Duration,
        stage: &'static str,
    },
    #[error("the HTTP exchange with {addr} failed: {source}")]
    Http { addr: String, source: hyper::Error },
    #[error("the request for {url} could not be built: {source}")]
    Build { url: String, source: http::Error },
}

/// Where a call goes: `http://{host}:{port}{path}`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: String,
    pub(crate) path: String,
}

impl Target {
    /// `host:port` as clients write it in `Host` and URLs: the default port 80 is left out.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port.trim() == "80" {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL as the originals log it.
    pub(crate) fn url(&self) -> String {
        format!("http://{}{}", self.authority(), self.path)
    }
}

/// A reply: status and whole body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// How long each phase of a call may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    /// Applies to the response head and to the body separately, like a socket read timeout.
    pub(crate) read: Duration,
}

/// Aborts the connection driver when the call ends, whatever the outcome.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Splits `http://host:port[/...]` (scheme optional) into host and port.
fn parse_proxy(proxy: &str) -> Result<(String, u16), CallError> {
    let bad = || CallError::BadProxy {
        proxy: proxy.to_string(),
    };
    let trimmed = proxy.trim();
    let rest = match trimmed.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(bad()),
        None => trimmed,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hostport)| hostport);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 80,
    };
    Ok((host.to_string(), port))
}

/// Performs one `GET`, directly or through the explicit proxy.
pub(crate) async fn get(
    proxy: Option<&str>,
    target: &Target,
    headers: &[(HeaderName, HeaderValue)],
    limits: Timeouts,
) -> Result<Reply, CallError> {
    let port: u16 = target
        .port
        .trim()
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| CallError::BadPort {
            port: target.port.clone(),
        })?;
    let (connect_host, connect_port) = match proxy {
        Some(p) => parse_proxy(p)?,
        None => (target.host.clone(), port),
    };
    let addr = format!("{connect_host}:{connect_port}");
    let stream = timeout(
        limits.connect,
        TcpStream::connect((connect_host.as_str(), connect_port)),
    )
    .await
    .map_err(|_| CallError::Timeout {
        addr: addr.clone(),
        timeout: limits.connect,
        stage: "connecting",
    })?
    .map_err(|source| CallError::Connect {
        addr: addr.clone(),
        source,
    })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| CallError::Http {
            addr: addr.clone(),
            source,
        })?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));

    // An explicit proxy needs the absolute form to know where the request goes.
    let uri = if proxy.is_some() {
        target.url()
    } else {
        target.path.clone()
    };
    let mut builder = Request::get(uri).header(header::HOST, target.authority());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|source| CallError::Build {
            url: target.url(),
            source,
        })?;
    let response = timeout(limits.read, sender.send_request(request))
        .await
        .map_err(|_| CallError::Timeout {
            addr: addr.clone(),
            timeout: limits.read,
            stage: "waiting for the reply",
        })?
        .map_err(|source| CallError::Http {
            addr: addr.clone(),
            source,
        })?;
    let status = response.status().as_u16();
    let body = timeout(limits.read, response.into_body().collect())
        .await
        .map_err(|_| CallError::Timeout {
            addr: addr.clone(),
            timeout: limits.read,
            stage: "reading the body",
        })?
        .map_err(|source| CallError::Http { addr, source })?
        .to_bytes();
    Ok(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxy_forms() {
        assert_eq!(
            parse_proxy("http://127.10.0.3:15001").unwrap(),
            ("127.10.0.3".into(), 15001)
        );
        assert_eq!(
            parse_proxy("127.0.0.1:8080/").unwrap(),
            ("127.0.0.1".into(), 8080)
        );
        assert_eq!(parse_proxy("http://[::1]:3128").unwrap(), ("::1".into(), 3128));
        assert_eq!(parse_proxy("http://user:pw@proxy").unwrap(), ("proxy".into(), 80));
        assert!(parse_proxy("https://x:1").is_err());
        assert!(parse_proxy("http://:1").is_err());
        assert!(parse_proxy("http://x:notaport").is_err());
    }

    #[test]
    fn absolute_url_brackets_ipv6() {
        let t = Target {
            host: "::1".into(),
            port: "9080".into(),
            path: "/ratings/0".into(),
        };
        assert_eq!(t.url(), "http://[::1]:9080/ratings/0");
        let t = Target {
            host: "www.googleapis.com".into(),
            port: "80".into(),
            path: "/x".into(),
        };
        assert_eq!(t.url(), "http://www.googleapis.com/x");
    }
}
