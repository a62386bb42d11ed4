//! HTTP/1.1 over TLS to endpoints, with hyper's client connection: a keep-alive pool of senders
//! per endpoint address. A sender goes back to the pool when its response body has been read to
//! the end, and is checked for readiness when taken again; one whose connection closed is
//! dropped. h2 over TLS shares [`super::H2Pool`] (one multiplexed connection per endpoint).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::{BoxError, SendError, UpBody, classify, connect_tcp};
use crate::tls::ClientTls;

/// Idle connections kept per endpoint; more are closed when they come back.
const MAX_IDLE_PER_ENDPOINT: usize = 128;

type Idle = Mutex<HashMap<SocketAddr, Vec<SendRequest<UpBody>>>>;

/// Keep-alive TLS connections, per endpoint address.
#[derive(Debug)]
pub(crate) struct SecurePool {
    tls: ClientTls,
    connect_timeout: Duration,
    keep_alive: bool,
    idle: Arc<Idle>,
}

impl SecurePool {
    pub(crate) fn new(tls: ClientTls, connect_timeout: Duration, keep_alive: bool) -> Self {
        SecurePool {
            tls,
            connect_timeout,
            keep_alive,
            idle: Arc::default(),
        }
    }

    /// Sends `req` (origin-form) to `addr`; `host` is written when the request has no Host.
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        mut req: Request<UpBody>,
        host: &str,
    ) -> Result<Response<SecureBody>, SendError> {
        if !req.headers().contains_key(header::HOST)
            && let Ok(v) = http::HeaderValue::from_str(host)
        {
            req.headers_mut().insert(header::HOST, v);
        }
        let mut sender = match self.take(addr).await {
            Some(s) => s,
            // Boxed: the TLS handshake's future is large and rarely needed; inline it would be
            // copied with every move of the request's future.
            None => Box::pin(self.connect(addr)).await?,
        };
        let resp = sender.send_request(req).await.map_err(|e| classify(&e))?;
        let back = self.keep_alive.then(|| Back {
            idle: Arc::downgrade(&self.idle),
            addr,
            sender,
        });
        Ok(resp.map(|body| SecureBody {
            body,
            ended: false,
            back,
        }))
    }

    /// Forgets the idle connections that closed (their connection tasks have closed the
    /// sockets).
    pub(crate) fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain(|sender| !sender.is_closed());
            !list.is_empty()
        });
    }

    /// An idle connection to `addr` that is ready for a request, if any.
    async fn take(&self, addr: SocketAddr) -> Option<SendRequest<UpBody>> {
        loop {
            let mut sender = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(&addr)?.pop()?
            };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<UpBody>, SendError> {
        let handshake = async {
            let tcp = connect_tcp(addr).await?;
            let stream = self.tls.handshake(addr, tcp).await?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| SendError::Connect)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%addr, error = %e, "upstream TLS connection closed");
                }
            });
            Ok(sender)
        };
        tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| SendError::Connect)?
    }
}

/// A connection waiting for its response body to end before it can serve again.
#[derive(Debug)]
struct Back {
    idle: Weak<Idle>,
    addr: SocketAddr,
    sender: SendRequest<UpBody>,
}

/// A response body read over a pooled TLS connection; the connection goes back to the pool
/// when the body was read to its end, and is closed when the body is dropped before that.
#[derive(Debug)]
pub(crate) struct SecureBody {
    body: Incoming,
    ended: bool,
    back: Option<Back>,
}

impl Drop for SecureBody {
    fn drop(&mut self) {
        if !(self.ended || self.body.is_end_stream()) {
            return;
        }
        let Some(back) = self.back.take() else { return };
        let Some(idle) = back.idle.upgrade() else { return };
        let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(back.addr).or_default();
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push(back.sender);
        }
    }
}

impl Body for SecureBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.ended = true;
        }
        polled.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
