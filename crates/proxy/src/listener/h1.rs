//! Downstream HTTP/1.1 connections, served by hand: one task per connection reads a request
//! head into a reused buffer, runs the request path, writes the response head and body from a
//! reused buffer (head and a ready body in one system call), and goes on with the next request
//! while both sides keep the connection.
//!
//! It replaced hyper's server connection (its dispatcher, a boxed service future per request, a
//! fresh read buffer per request and a flush per response; ~12,400 of ~30,000 instructions of a
//! proxied request, `benches/NOTES.md` round 3). The request body, when there is one, is read
//! through the connection's read side lent to it ([`super::body::DownBody`]).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Response, Version, header};
use hyper::body::Body;
use tokio::sync::watch;

use super::body::{DownBody, ReqBody};
use crate::Inner;
use crate::http1::WireError;
use crate::http1::framing;
use crate::http1::io::Inbound;
use crate::http1::server::{self, BodyFraming, RequestHead, ResponseFacts};
use crate::http1::wire::Wire;
use crate::pipeline::{self, ConnInfo, Stamp};
use crate::pool::BoxError;
use crate::reply::RespBody;

/// A response's header map is kept for the next request up to this capacity.
const SPARE_MAX: usize = 64;
/// Body bytes gathered into one write at most.
const GATHER: usize = 64 * 1024;
/// An unread request body up to this size is read and dropped after the response so the
/// connection can carry the next request; a larger one closes the connection.
const DRAIN: u64 = 256 * 1024;

/// Serves requests on `io` until either side ends the connection, or `shutdown` turns true
/// (an idle connection closes at once; one in the middle of a request finishes it and tells the
/// client `connection: close`). `inbound` holds the bytes already read.
pub(super) async fn serve(
    inner: Arc<Inner>,
    conn: Arc<ConnInfo>,
    io: Wire,
    mut inbound: Inbound,
    mut shutdown: watch::Receiver<bool>,
) {
    let io = Arc::new(io);
    // One wait for the shutdown per connection, not one per request: each new `changed()`
    // future joins the watch's waiter list (a lock) and leaves it again when dropped.
    let draining = shutdown.clone();
    let mut stop = std::pin::pin!(shutdown.changed());
    let mut wbuf = Vec::with_capacity(4096);
    // The header map of the last response written, emptied: the next request's is built in it.
    let mut spare = None;
    loop {
        let head = loop {
            match server::parse_request_head(&mut inbound.buf, &mut spare) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => {
                    reject(&io, &e).await;
                    return;
                }
            }
            let read = if inbound.buf.is_empty() {
                // Between requests: a shutdown closes the idle connection.
                tokio::select! {
                    // Polled in order: no random number per poll.
                    biased;
                    read = inbound.fill(&io) => read,
                    _ = &mut stop => return,
                }
            } else {
                inbound.fill(&io).await
            };
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        };
        let RequestHead {
            mut request,
            raw,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        if expect_continue {
            // As Envoy does by default: the proxy itself tells the client to go on, and the
            // upstream never sees the expectation.
            request.headers_mut().remove(header::EXPECT);
            if io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                return;
            }
        }
        let head_request = request.method() == Method::HEAD;
        let http10 = request.version() == Version::HTTP_10;
        let lent = (!framing.is_end()).then(|| {
            inbound.framing = framing;
            Arc::new(Mutex::new(std::mem::replace(&mut inbound, Inbound::new())))
        });
        let body = match &lent {
            None => ReqBody::Empty,
            Some(shared) => ReqBody::H1(DownBody {
                inbound: shared.clone(),
                io: io.clone(),
            }),
        };
        // Pinned where it is built: handing the (several-kilobyte) future to `select!` by value
        // would copy it once more per request.
        let mut exchange = std::pin::pin!(async {
            let (resp, stamp) =
                pipeline::handle(inner.clone(), conn.clone(), request.map(|()| body), raw, true).await;
            let keep_alive = keep_alive && !*draining.borrow();
            let facts = Facts {
                head_request,
                http10,
                keep_alive,
            };
            write_response(&io, resp, &stamp, facts, &mut wbuf, &mut spare).await
        });
        let kept = if lent.is_none() {
            // A client that goes away cancels its request, upstream included, as with hyper and
            // Envoy. (With a body, the body's reads see the close instead.)
            tokio::select! {
                // Polled in order: no random number per poll.
                biased;
                kept = &mut exchange => kept,
                () = io.closed() => return,
            }
        } else {
            exchange.await
        };
        if !matches!(kept, Ok(true)) {
            return;
        }
        if let Some(shared) = lent {
            // The body is dropped with the exchange; if something still holds it, the
            // connection cannot read the next request.
            let Ok(lent) = Arc::try_unwrap(shared) else { return };
            inbound = lent.into_inner().unwrap_or_else(|e| e.into_inner());
            if !inbound.framing.is_end() && !drain(&io, &mut inbound).await {
                return;
            }
        }
    }
}

/// Answers a request head that cannot be parsed, and ends the connection (as hyper did).
async fn reject(io: &Wire, e: &WireError) {
    let reply: &[u8] = match e {
        WireError::TooLarge(_) => {
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        }
        _ => b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    };
    tracing::debug!(error = %e, "bad request head");
    let _ = io.write_all(reply).await;
}

/// Reads and drops the rest of a request body nobody read (a 404 to a POST, say), up to
/// [`DRAIN`] bytes. False: the connection has to close.
async fn drain(io: &Wire, inbound: &mut Inbound) -> bool {
    let mut dropped = 0u64;
    loop {
        match poll_fn(|cx| inbound.poll_body(io, cx)).await {
            Some(Ok(frame)) => {
                dropped += frame.data_ref().map_or(0, |d| d.len() as u64);
                if dropped > DRAIN {
                    return false;
                }
            }
            None => return true,
            // A broken body, or the client closed before its end.
            Some(Err(_)) => return false,
        }
    }
}

/// What a response's head depends on besides the response: the request's method and version,
/// and whether the connection may stay open.
#[derive(Debug, Clone, Copy)]
struct Facts {
    head_request: bool,
    http10: bool,
    keep_alive: bool,
}

/// Writes the response, with the proxy's own fields (`stamp`); `Ok(true)` when the connection
/// can carry another request.
async fn write_response(
    io: &Wire,
    resp: Response<RespBody>,
    stamp: &Stamp,
    facts: Facts,
    wbuf: &mut Vec<u8>,
    spare: &mut Option<HeaderMap>,
) -> io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    wbuf.clear();
    let facts = ResponseFacts {
        status: parts.status,
        head_request: facts.head_request,
        http10: facts.http10,
        keep_alive: facts.keep_alive,
        body_length: body.size_hint().exact(),
    };
    let block = body.take_block();
    let (framing, mut keep) =
        server::encode_response_head(facts, block.as_ref(), &parts.headers, stamp.fields(), wbuf);
    drop(block);
    let mut headers = parts.headers;
    // Kept for the next request unless it grew large (or is the unallocated map of a response
    // whose fields came as a block); emptied now, so that it holds on to none of the upstream's
    // read buffer.
    if (1..=SPARE_MAX).contains(&headers.capacity()) {
        headers.clear();
        *spare = Some(headers);
    }
    if framing == BodyFraming::None {
        io.write_all(wbuf).await?;
        return Ok(keep);
    }
    let mut out = Outgoing {
        chunked: framing == BodyFraming::Chunked,
        left: match framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        },
    };
    loop {
        let step = poll_fn(|cx| out.gather(&mut body, cx, wbuf)).await;
        let (ended, failed) = match step {
            Ok(ended) => (ended, false),
            Err(e) => {
                // The upstream failed mid-body: what was gathered goes out, then the close
                // (without a last chunk) tells the client the response is cut short.
                tracing::debug!(error = %e, "response body failed");
                (true, true)
            }
        };
        if ended {
            if failed {
                keep = false;
            } else if out.chunked {
                wbuf.extend_from_slice(framing::LAST_CHUNK);
            }
            // A body shorter than its Content-Length leaves the client waiting for the rest.
            if out.left.is_some_and(|n| n > 0) {
                keep = false;
            }
        }
        io.write_all(wbuf).await?;
        wbuf.clear();
        if ended {
            return Ok(keep);
        }
    }
}

/// How the response body is being written.
struct Outgoing {
    chunked: bool,
    /// Bytes still owed under a Content-Length.
    left: Option<u64>,
}

impl Outgoing {
    /// Appends what the body has ready to `wbuf` (framed), up to [`GATHER`] bytes. `Ready(true)`
    /// at the end of the body; `Ready(false)` when there is something to write first. Bytes past
    /// a Content-Length are dropped, never written.
    fn gather(
        &mut self,
        body: &mut RespBody,
        cx: &mut Context<'_>,
        wbuf: &mut Vec<u8>,
    ) -> Poll<Result<bool, BoxError>> {
        loop {
            if wbuf.len() >= GATHER {
                return Poll::Ready(Ok(false));
            }
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not sent to HTTP/1.1 clients.
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        framing::push_chunk(&data, wbuf);
                    } else if let Some(left) = &mut self.left {
                        let n = (data.len() as u64).min(*left);
                        wbuf.extend_from_slice(&data[..n as usize]);
                        *left -= n;
                    } else {
                        wbuf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(true)),
                Poll::Pending if wbuf.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Ok(false)),
            }
        }
    }
}
