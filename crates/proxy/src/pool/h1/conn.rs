//! One upstream HTTP/1.1 connection and the exchange of one request on it, with no task and no
//! channel of its own: whoever holds the connection (the request, then its response body) does
//! the reads and writes inside its own poll.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use http::{Method, Response};
use http_body_util::Either;
use hyper::body::{Body, Frame};

use crate::http1::WireError;
use crate::http1::block::FieldBlock;
use crate::http1::client::{self, RequestHead};
use crate::http1::framing::{self, Framing};
use crate::http1::io::Inbound;
use crate::http1::wire::Wire;
use crate::listener::ReqBody;
use crate::pool::UpBody;

/// A response head, with its fields in its map or, when asked for, as a block.
pub(super) type Answer = (Response<()>, Option<FieldBlock>);

/// Request bodies up to this size go out in the same write as the head (one copy, one syscall).
const INLINE_BODY: usize = 16 * 1024;

/// A request body still on its way upstream.
struct Sending {
    /// Bytes taken from the body and not yet written (a chunk with its framing, when chunked).
    out: Bytes,
    /// The rest of a body streamed from downstream; `None` once it ended (or for a buffered body).
    body: Option<ReqBody>,
    chunked: bool,
}

/// An upstream HTTP/1.1 connection.
pub(super) struct Conn {
    io: Wire,
    /// What was read and not consumed, and the framing of the response body being read; kept
    /// across responses.
    inbound: Inbound,
    /// Write buffer for request heads, kept across requests.
    wbuf: Vec<u8>,
    sending: Option<Sending>,
    /// The last response allowed another request on this connection.
    keep_alive: bool,
    /// Something failed mid-message: the connection is only good for closing.
    broken: bool,
}

impl Conn {
    pub(super) fn new(io: Wire) -> Self {
        Conn {
            io,
            inbound: Inbound::new(),
            wbuf: Vec::new(),
            sending: None,
            keep_alive: true,
            broken: false,
        }
    }

    /// True when the last exchange ended cleanly and the server has not closed the connection
    /// since. Costs no system call unless the socket became readable while idle (tokio tracks
    /// readiness); a socket with something to read while idle is closed or misbehaving.
    pub(super) fn is_open(&mut self) -> bool {
        if !self.reusable() {
            return false;
        }
        if self.io.idle_is_open() {
            return true;
        }
        self.broken = true;
        false
    }

    /// True when the response was read to its end, the request was written whole, and the
    /// server keeps the connection open.
    pub(super) fn reusable(&self) -> bool {
        !self.broken
            && self.keep_alive
            && self.sending.is_none()
            && self.inbound.framing.is_end()
            && self.inbound.buf.is_empty()
    }

    /// Writes the request (`host` when its head has none) and reads until the response head. A
    /// body streamed from downstream keeps going out while the head is awaited and, after it,
    /// while the response body is read.
    pub(super) async fn exchange(
        &mut self,
        head: RequestHead<'_>,
        host: &str,
        body: UpBody,
    ) -> Result<Answer, WireError> {
        let (length, body) = match body {
            Either::Left(full) => {
                let data = full_bytes(full);
                (Some(data.len() as u64), Either::Left(data))
            }
            Either::Right(stream) => (stream.size_hint().exact(), Either::Right(stream)),
        };
        self.wbuf.clear();
        let chunked = client::encode_request_head(head, host, length, &mut self.wbuf);
        self.sending = match body {
            Either::Left(data) if data.len() <= INLINE_BODY => {
                self.wbuf.extend_from_slice(&data);
                None
            }
            Either::Left(data) => Some(Sending {
                out: data,
                body: None,
                chunked: false,
            }),
            Either::Right(stream) => Some(Sending {
                out: Bytes::new(),
                body: Some(stream),
                chunked,
            }),
        };
        self.inbound.framing = Framing::Done;
        self.broken = true; // until the response head is in
        self.io.write_all(&self.wbuf).await?;
        let response = poll_fn(|cx| self.poll_head(cx, head.method, head.block)).await?;
        self.broken = false;
        Ok(response)
    }

    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
        as_block: bool,
    ) -> Poll<Result<Answer, WireError>> {
        loop {
            // A server may want the whole request body before it answers.
            if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            while let Some(head) = client::parse_response_head(&mut self.inbound.buf, method, as_block)? {
                if head.response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                    // Nothing asked for an upgrade (Upgrade is hop-by-hop and removed).
                    return Poll::Ready(Err(WireError::Head("unrequested protocol switch")));
                }
                if head.response.status().is_informational() {
                    // 100 Continue, 103 Early Hints: the final response follows.
                    continue;
                }
                self.inbound.framing = head.framing;
                self.keep_alive = head.keep_alive;
                return Poll::Ready(Ok((head.response, head.block)));
            }
            if ready!(self.inbound.poll_fill(&self.io, cx))? == 0 {
                return Poll::Ready(Err(WireError::Closed));
            }
        }
    }

    /// The next piece of the response body; `None` at its end.
    pub(super) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        if let Poll::Ready(Err(e)) = self.poll_send(cx) {
            self.broken = true;
            return Poll::Ready(Some(Err(e)));
        }
        let frame = ready!(self.inbound.poll_body(&self.io, cx));
        // (A close-delimited body that ended with the connection left `keep_alive` false.)
        if let Some(Err(_)) = &frame {
            self.broken = true;
        }
        Poll::Ready(frame)
    }

    /// The response body's framing, and how far it was read.
    pub(super) fn framing(&self) -> Framing {
        self.inbound.framing
    }

    /// Writes more of a request body that did not fit the head's write. `Ready(Ok)` once it is
    /// all written (or there was none).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        let Conn { io, sending, .. } = self;
        let Some(s) = sending else {
            return Poll::Ready(Ok(()));
        };
        loop {
            while !s.out.is_empty() {
                let n = ready!(io.poll_write(cx, &s.out))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()));
                }
                s.out.advance(n);
            }
            // Over TLS, what was written may still sit encrypted in rustls's buffer.
            ready!(io.poll_flush(cx))?;
            let Some(body) = &mut s.body else {
                *sending = None;
                return Poll::Ready(Ok(()));
            };
            match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers of a streamed request body are not forwarded.
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        s.out = if s.chunked {
                            framing::encode_chunk(&data)
                        } else {
                            data
                        };
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(WireError::RequestBody(e.to_string()))),
                None => {
                    s.body = None;
                    if s.chunked {
                        s.out = Bytes::from_static(framing::LAST_CHUNK);
                    }
                }
            }
        }
    }
}

/// The bytes of a buffered body (its one frame is always ready).
fn full_bytes(mut full: http_body_util::Full<Bytes>) -> Bytes {
    match Pin::new(&mut full).poll_frame(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}
