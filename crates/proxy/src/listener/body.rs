//! Request bodies as the request path sees them: none, read off a downstream HTTP/1.1
//! connection ([`DownBody`]), or hyper's (h2c).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::http1::io::Inbound;
use crate::http1::wire::Wire;
use crate::pool::BoxError;

/// The body of a request from downstream.
#[derive(Debug)]
pub(crate) enum ReqBody {
    /// The request has none (most requests: no allocation, nothing shared).
    Empty,
    /// Read off a downstream HTTP/1.1 connection.
    H1(DownBody),
    /// From hyper's h2c server.
    Hyper(Incoming),
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::H1(body) => body.poll_frame(cx),
            ReqBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::H1(body) => body.inbound().framing.is_end(),
            ReqBody::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::H1(body) => body.inbound().framing.size_hint(),
            ReqBody::Hyper(body) => body.size_hint(),
        }
    }
}

/// A request body on a downstream HTTP/1.1 connection. The connection lends its read side to
/// the body for the exchange (the body may be read from another task, an h2 upstream's) and
/// takes it back afterwards to read the next request: the lock is never contended, it only
/// makes the hand-over safe.
#[derive(Debug)]
pub(crate) struct DownBody {
    pub(super) inbound: Arc<Mutex<Inbound>>,
    pub(super) io: Arc<Wire>,
}

impl DownBody {
    fn inbound(&self) -> std::sync::MutexGuard<'_, Inbound> {
        self.inbound.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut inbound = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        inbound.poll_body(&self.io, cx).map_err(Into::into)
    }
}
