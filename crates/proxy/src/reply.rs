//! Responses the proxy produces itself, Envoy's response flags, and the body type sent downstream.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

use crate::cluster::ActiveGuard;
use crate::http1::block::FieldBlock;
use crate::pool::{BoxError, UpstreamBody};

/// Envoy response flags, in the order Envoy prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Flags(u16);

impl Flags {
    /// No healthy upstream.
    pub(crate) const UH: Flags = Flags(1);
    /// Upstream request timeout.
    pub(crate) const UT: Flags = Flags(1 << 1);
    /// Upstream connection failure.
    pub(crate) const UF: Flags = Flags(1 << 3);
    /// Upstream connection termination.
    pub(crate) const UC: Flags = Flags(1 << 4);
    /// Upstream overflow (circuit breaker).
    pub(crate) const UO: Flags = Flags(1 << 5);
    /// No route.
    pub(crate) const NR: Flags = Flags(1 << 6);
    /// Fault delay injected.
    pub(crate) const DI: Flags = Flags(1 << 7);
    /// Fault abort injected.
    pub(crate) const FI: Flags = Flags(1 << 8);
    /// Retry limit exceeded.
    pub(crate) const URX: Flags = Flags(1 << 9);
    /// Cluster not found.
    pub(crate) const NC: Flags = Flags(1 << 10);
    /// Downstream connection termination.
    pub(crate) const DC: Flags = Flags(1 << 11);

    const NAMES: [&'static str; 12] = [
        "UH", "UT", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "URX", "NC", "DC",
    ];

    /// Adds flags.
    pub(crate) fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// True when `other` is set.
    #[cfg(test)]
    pub(crate) fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (i, name) in Self::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Envoy's body for a connect failure before any response headers.
pub(crate) const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
/// Same, after retries.
pub(crate) const CONNECT_FAILURE_RETRIED: &str = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure";
/// Envoy's body for an upstream reset before headers.
pub(crate) const RESET: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
/// Envoy's body for a circuit-breaker rejection.
pub(crate) const OVERFLOW: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";
/// Envoy's body for route timeouts.
pub(crate) const TIMEOUT: &str = "upstream request timeout";
/// Envoy's body when a cluster has no endpoints.
pub(crate) const NO_HEALTHY: &str = "no healthy upstream";
/// Envoy fault filter abort body.
pub(crate) const FAULT_ABORT: &str = "fault filter abort";

/// The body sent downstream: an upstream body streamed through, or a buffer of our own.
#[derive(Debug)]
pub(crate) enum RespBody {
    /// Streamed from upstream; the guards keep the endpoint and cluster counted as busy until done.
    Upstream {
        body: UpstreamBody,
        _guards: (Option<ActiveGuard>, ActiveGuard),
    },
    /// Produced by the proxy.
    Full(Full<Bytes>),
}

impl RespBody {
    /// An upstream response's header fields, when they came as a block rather than in the
    /// response's map.
    pub(crate) fn block(&self) -> Option<&FieldBlock> {
        match self {
            RespBody::Upstream { body, .. } => body.block(),
            RespBody::Full(_) => None,
        }
    }

    /// Takes the block: the encoder drops it once the head is written, so the upstream's read
    /// buffer is not held for the whole body (its header values were not, before).
    pub(crate) fn take_block(&mut self) -> Option<FieldBlock> {
        match self {
            RespBody::Upstream { body, .. } => body.take_block(),
            RespBody::Full(_) => None,
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RespBody::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
            RespBody::Full(full) => match Pin::new(full).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Upstream { body, .. } => body.is_end_stream(),
            RespBody::Full(f) => f.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Upstream { body, .. } => body.size_hint(),
            RespBody::Full(f) => f.size_hint(),
        }
    }
}

/// A response made by the proxy: `content-length` always, `content-type: text/plain` with a body.
pub(crate) fn local(status: StatusCode, body: impl Into<Bytes>) -> Response<RespBody> {
    let body: Bytes = body.into();
    let mut resp = Response::new(RespBody::Full(Full::new(body.clone())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if !body.is_empty() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_render_in_envoy_order() {
        assert_eq!(Flags::default().to_string(), "-");
        let mut f = Flags::URX;
        f.insert(Flags::UF);
        assert_eq!(f.to_string(), "UF,URX");
        assert!(f.contains(Flags::UF) && !f.contains(Flags::NR));
    }

    #[test]
    fn local_replies_carry_length_and_type() {
        let r = local(StatusCode::SERVICE_UNAVAILABLE, NO_HEALTHY);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "19");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/plain");
        let r = local(StatusCode::NOT_FOUND, Bytes::new());
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "0");
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
    }
}
