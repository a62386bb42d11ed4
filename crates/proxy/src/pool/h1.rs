//! The HTTP/1.1 keep-alive pool: idle connections per endpoint address, checked out LIFO (the
//! warmest first) and checked back in when the response body is finished.
//!
//! It replaced hyper-util's legacy client on the endpoint path, which per request hashed its pool
//! key with SipHash four times, moved large futures around, and spawned a task to wait for the
//! connection to become idle again (~11,000 of ~53,000 instructions per proxied request under
//! callgrind); then hyper's client connection itself, whose dispatch channel, per-response read
//! buffer and state machine cost ~12,800 of ~36,000 (round 3 in `benches/NOTES.md`).
//!
//! No connection has a task of its own ([`conn`]): the request that borrows a connection writes
//! and reads it inside its own poll, then the response body ([`super::UpstreamBody`]) reads it
//! until the body ends. A connection goes back to its idle list only when its body was read to
//! the end, the request was written whole and the server keeps it open; one that a request
//! abandons (downstream gone, timeout, retry) is dropped, which closes it.
//!
//! A pool with TLS settings makes its connections TLS ones ([`crate::http1::wire`]): the codec
//! and the pool are the same, hyper's client connection is not needed there either.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use hyper::body::{Frame, SizeHint};

use super::{SendError, UpBody, UpstreamBody};
use crate::http1::block::FieldBlock;
use crate::http1::client::RequestHead;
use crate::http1::wire::Wire;
use crate::stats::FxBuildHasher;
use crate::tls::ClientTls;

mod conn;

pub(crate) use crate::http1::WireError;
use conn::Conn;

/// Idle connections of one endpoint, each with the time it went idle.
type IdleList = Vec<(Box<Conn>, Instant)>;

/// Idle connections of every endpoint that share one set of pool settings.
pub(crate) struct H1Pool {
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Istio `maxRequestsPerConnection: 1`: one request per connection, nothing kept.
    keep_alive: bool,
    /// TLS (mTLS) toward the endpoints, for every connection.
    tls: Option<ClientTls>,
    idle: Mutex<HashMap<SocketAddr, IdleList, FxBuildHasher>>,
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Pool")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A connection lent to one exchange, carried by the response body: the body reads it, and
/// dropping it returns the connection to its endpoint's idle list if the body was read to the
/// end and the connection can take another request; otherwise the connection is closed.
pub(crate) struct Checkin {
    link: Option<Box<Conn>>,
    /// The response body was read to its end.
    finished: bool,
    addr: SocketAddr,
    pool: Arc<H1Pool>,
    /// The response's fields, when they came as a block rather than in its map.
    block: Option<FieldBlock>,
}

impl std::fmt::Debug for Checkin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkin")
            .field("addr", &self.addr)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Checkin {
    /// The next piece of the response body. After an error the connection is closed.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        let Some(link) = &mut self.link else {
            return Poll::Ready(None);
        };
        match link.poll_frame(cx) {
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.link = None;
                Poll::Ready(Some(Err(e)))
            }
            other => other,
        }
    }

    /// True when the body has nothing more to give.
    pub(crate) fn is_end_stream(&self) -> bool {
        self.link.as_ref().is_none_or(|l| l.framing().is_end())
    }

    /// The response's fields, when they came as a block rather than in its map.
    pub(crate) fn block(&self) -> Option<&FieldBlock> {
        self.block.as_ref()
    }

    /// Takes the block: once the head is written it need not hold on to the head's bytes.
    pub(crate) fn take_block(&mut self) -> Option<FieldBlock> {
        self.block.take()
    }

    /// The remaining length, when the response said it.
    pub(crate) fn size_hint(&self) -> SizeHint {
        self.link
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |l| l.framing().size_hint())
    }
}

impl Drop for Checkin {
    fn drop(&mut self) {
        let Some(link) = self.link.take() else {
            return;
        };
        // A body with a known length is done when its last byte arrived, and a server may drop
        // it then without asking for the end: that counts as read to the end too. A half-read
        // body leaves the connection mid-message: closing it is the only safe end.
        let finished = self.finished || link.framing().is_end();
        if finished && self.pool.keep_alive && link.reusable() {
            self.pool.put(self.addr, link);
        }
    }
}

impl H1Pool {
    /// An empty pool.
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration, keep_alive: bool) -> Self {
        H1Pool {
            connect_timeout,
            idle_timeout,
            keep_alive,
            tls: None,
            idle: Mutex::new(HashMap::default()),
        }
    }

    /// The pool with TLS toward its endpoints.
    pub(crate) fn with_tls(self, tls: ClientTls) -> Self {
        H1Pool {
            tls: Some(tls),
            ..self
        }
    }

    /// Drops the idle connections that are closed or expired; returns how many are left. Called
    /// by the proxy's sweep ([`crate::sweep`]): nothing else looks at an idle connection, and an
    /// endpoint that went away is never checked out again, so its sockets would stay open (in
    /// CLOSE_WAIT) for as long as the pool lives.
    pub(crate) fn sweep(&self) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain_mut(|(link, since)| link.is_open() && since.elapsed() < self.idle_timeout);
            !list.is_empty()
        });
        idle.values().map(Vec::len).sum()
    }

    /// Sends the request (with `host` when its head has none) to `addr` on an idle connection,
    /// or a new one. An idle connection the server closed is noticed before the request is
    /// written (the server timed it out), and the request goes on another connection.
    pub(crate) async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        head: RequestHead<'_>,
        host: &str,
        body: UpBody,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let mut link = match self.take(addr) {
            Some(link) => link,
            // Boxed: the connect future is large and rarely needed; inline it would be copied
            // with every move of the request's future.
            None => Box::pin(self.connect(addr)).await?,
        };
        match link.exchange(head, host, body).await {
            Ok((head, block)) => Ok(head.map(|()| {
                UpstreamBody::h1(Checkin {
                    link: Some(link),
                    finished: false,
                    addr,
                    pool: self.clone(),
                    block,
                })
            })),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "upstream exchange failed");
                Err(SendError::Reset)
            }
        }
    }

    /// The most recently used live connection to `addr`; closed and expired ones are dropped.
    fn take(&self, addr: SocketAddr) -> Option<Box<Conn>> {
        loop {
            let (mut link, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(&addr)?.pop()?
            };
            if link.is_open() && since.elapsed() < self.idle_timeout {
                return Some(link);
            }
        }
    }

    fn put(&self, addr: SocketAddr, link: Box<Conn>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.entry(addr).or_default().push((link, Instant::now()));
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Box<Conn>, SendError> {
        let connect = async {
            let stream = super::connect_tcp(addr).await?;
            let wire = match &self.tls {
                None => Wire::Plain(stream),
                Some(tls) => {
                    let (tcp, tls) = tls.handshake(addr, stream).await?.into_inner();
                    Wire::tls(tcp, tls)
                }
            };
            Ok(Box::new(Conn::new(wire)))
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| SendError::Connect)?
    }

    /// Idle connections to `addr` (tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self, addr: SocketAddr) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get(&addr).map_or(0, Vec::len)
    }

    /// Idle connections to every endpoint (tests).
    #[cfg(test)]
    pub(crate) fn idle_total(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::Request;
    use http::uri::PathAndQuery;
    use http_body_util::{BodyExt, Either, Full};
    use hyper::service::service_fn;
    use tokio::net::TcpListener;
    use tokio::sync::Notify;

    use super::super::UpstreamBody;
    use super::*;

    /// An HTTP/1.1 server answering "ok"; counts accepted connections. With `close` it ends
    /// every connection after one response.
    async fn server(close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(!close)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    fn get() -> Request<UpBody> {
        let mut req = Request::new(Either::Left(Full::new(Bytes::new())));
        req.headers_mut()
            .insert(http::header::HOST, http::HeaderValue::from_static("x"));
        req
    }

    /// Sends `req` and returns the response with the body type the proxy uses (it drives the
    /// connection).
    async fn send(pool: &Arc<H1Pool>, addr: SocketAddr, req: Request<UpBody>) -> Response<UpstreamBody> {
        try_send(pool, addr, req).await.unwrap()
    }

    async fn try_send(
        pool: &Arc<H1Pool>,
        addr: SocketAddr,
        req: Request<UpBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let head = RequestHead {
            method: &parts.method,
            path: &path,
            headers: &parts.headers,
            raw: None,
            replace: None,
            default: None,
            block: false,
        };
        pool.send(addr, head, "x", body).await
    }

    async fn exchange(pool: &Arc<H1Pool>, addr: SocketAddr) {
        let resp = send(pool, addr, get()).await;
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
    }

    /// Polls until the pool holds `n` idle connections to `addr` (the check-in may wait for
    /// the connection task); panics after 5 s.
    async fn until_idle(pool: &H1Pool, addr: SocketAddr, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.idle_count(addr) != n {
            assert!(Instant::now() < deadline, "expected {n} idle connections");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let (addr, accepted) = server(false).await;
        let pool = Arc::new(H1Pool::new(Duration::from_secs(5), Duration::from_secs(60), true));
        for _ in 0..3 {
            exchange(&pool, addr).await;
            until_idle(&pool, addr, 1).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_more_connections_and_keep_them() {
        let (addr, accepted) = server(false).await;
        let pool = Arc::new(H1Pool::new(Duration::from_secs(5), Duration::from_secs(60), true));
        let a = send(&pool, addr, get()).await;
        let b = send(&pool, addr, get()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        for resp in [a, b] {
            let _ = resp.into_body().collect().await.unwrap();
        }
        until_idle(&pool, addr, 2).await;
    }

    #[tokio::test]
    async fn without_keep_alive_nothing_is_pooled() {
        let (addr, accepted) = server(false).await;
        let pool = Arc::new(H1Pool::new(
            Duration::from_secs(5),
            Duration::from_secs(60),
            false,
        ));
        for _ in 0..3 {
            exchange(&pool, addr).await;
            assert_eq!(pool.idle_count(addr), 0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn connections_the_server_closes_are_not_reused() {
        let (addr, accepted) = server(true).await;
        let pool = Arc::new(H1Pool::new(Duration::from_secs(5), Duration::from_secs(60), true));
        for _ in 0..3 {
            exchange(&pool, addr).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn expired_idle_connections_are_replaced() {
        let (addr, accepted) = server(false).await;
        let pool = Arc::new(H1Pool::new(Duration::from_secs(5), Duration::ZERO, true));
        exchange(&pool, addr).await;
        until_idle(&pool, addr, 1).await;
        exchange(&pool, addr).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connect_failure_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let pool = Arc::new(H1Pool::new(Duration::from_secs(5), Duration::from_secs(60), true));
        assert_eq!(try_send(&pool, addr, get()).await.err(), Some(SendError::Connect));
    }

    /// What a [`raw`] server saw.
    #[derive(Default)]
    struct Seen {
        accepted: AtomicUsize,
        requests: AtomicUsize,
        closed: AtomicUsize,
    }

    impl Seen {
        fn get(&self, n: &AtomicUsize) -> usize {
            n.load(Ordering::SeqCst)
        }
    }

    /// A hand-written HTTP/1.1 server, for the shapes hyper's server would not produce: answers
    /// every request head with `reply` (nothing if empty); with `close`, once that is notified
    /// after an answer, it ends the connection without saying so. Counts connections, requests
    /// and connections it saw closed.
    async fn raw(reply: &'static [u8], close: Option<Arc<Notify>>) -> (SocketAddr, Arc<Seen>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                let (counts, close) = (counts.clone(), close.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            counts.requests.fetch_add(1, Ordering::SeqCst);
                            if !reply.is_empty() && stream.write_all(reply).await.is_err() {
                                break;
                            }
                        }
                        if let Some(close) = &close
                            && counts.requests.load(Ordering::SeqCst) > 0
                        {
                            close.notified().await;
                            break;
                        }
                    }
                    drop(stream);
                    counts.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (addr, seen)
    }

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::task::yield_now().await;
        }
    }

    fn pool() -> Arc<H1Pool> {
        Arc::new(H1Pool::new(Duration::from_secs(5), Duration::from_secs(60), true))
    }

    #[tokio::test]
    async fn chunked_empty_and_head_responses_all_reuse_the_connection() {
        let cases: [(&[u8], http::Method); 4] = [
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                http::Method::GET,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", http::Method::GET),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", http::Method::GET),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                http::Method::HEAD,
            ),
        ];
        for (reply, method) in cases {
            let (addr, seen) = raw(reply, None).await;
            let pool = pool();
            for i in 1..=3 {
                let mut req = get();
                *req.method_mut() = method.clone();
                let resp = send(&pool, addr, req).await;
                let _ = resp.into_body().collect().await.unwrap();
                assert_eq!(pool.idle_count(addr), 1, "{reply:?} request {i} checked back in");
            }
            assert_eq!(seen.get(&seen.accepted), 1, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_the_connection() {
        // Ten bytes announced, two sent: the reader gets "ok" and gives up (a downstream gone).
        let (addr, seen) = raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok", None).await;
        let pool = pool();
        let mut body = send(&pool, addr, get()).await.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ok");
        drop(body);
        assert_eq!(pool.idle_count(addr), 0);
        until("the server to see the connection closed", || {
            seen.get(&seen.closed) == 1
        })
        .await;
    }

    #[tokio::test]
    async fn an_abandoned_request_closes_its_connection() {
        // The server never answers; the request is dropped as a timeout would drop it.
        let (addr, seen) = raw(b"", None).await;
        let pool = pool();
        let task = tokio::spawn({
            let pool = pool.clone();
            async move { try_send(&pool, addr, get()).await.map(|_| ()) }
        });
        until("the request to reach the server", || {
            seen.get(&seen.requests) == 1
        })
        .await;
        task.abort();
        until("the server to see the connection closed", || {
            seen.get(&seen.closed) == 1
        })
        .await;
        assert_eq!(pool.idle_count(addr), 0);
    }

    #[tokio::test]
    async fn an_idle_connection_the_server_closes_is_dropped_and_replaced() {
        // Keep-alive by the headers, but the server closes once the connection is idle.
        let close = Arc::new(Notify::new());
        let (addr, seen) = raw(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Some(close.clone()),
        )
        .await;
        let pool = pool();
        exchange(&pool, addr).await;
        assert_eq!(pool.idle_count(addr), 1);
        close.notify_one();
        until("the server to close", || seen.get(&seen.closed) == 1).await;
        // Nothing polls an idle connection. Once the runtime has seen the close (a yield runs
        // its I/O driver), the next exchange notices it before writing and the request goes on
        // a new connection instead of failing.
        tokio::task::yield_now().await;
        exchange(&pool, addr).await;
        assert_eq!(seen.get(&seen.accepted), 2);
    }

    #[tokio::test]
    async fn the_sweep_drops_idle_connections_servers_closed() {
        let close = Arc::new(Notify::new());
        let (addr, seen) = raw(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Some(close.clone()),
        )
        .await;
        let pool = pool();
        exchange(&pool, addr).await;
        assert_eq!(pool.sweep(), 1, "a live idle connection is kept");
        close.notify_one();
        until("the server to close", || seen.get(&seen.closed) == 1).await;
        // A yield runs the runtime's I/O driver, so the close is visible to the next poll.
        tokio::task::yield_now().await;
        assert_eq!(pool.sweep(), 0);
        assert_eq!(pool.idle_count(addr), 0);
    }

    #[tokio::test]
    async fn a_failed_response_is_an_error_and_nothing_is_kept() {
        let close = Arc::new(Notify::new());
        close.notify_one();
        let (addr, seen) = raw(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n", Some(close)).await;
        let pool = pool();
        assert_eq!(try_send(&pool, addr, get()).await.err(), Some(SendError::Reset));
        assert_eq!(pool.idle_count(addr), 0);
        assert_eq!(seen.get(&seen.requests), 1);
    }

    #[tokio::test]
    async fn informational_responses_are_skipped_and_closing_ones_are_not_kept() {
        let cases: [(&[u8], bool); 3] = [
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                true,
            ),
            (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", false),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", false),
        ];
        for (reply, kept) in cases {
            let (addr, _seen) = raw(reply, None).await;
            let pool = pool();
            let resp = send(&pool, addr, get()).await;
            assert_eq!(resp.status(), http::StatusCode::OK);
            assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
            assert_eq!(
                pool.idle_count(addr),
                usize::from(kept),
                "{}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[tokio::test]
    async fn a_body_without_length_ends_when_the_server_closes() {
        let close = Arc::new(Notify::new());
        close.notify_one();
        let (addr, seen) = raw(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", Some(close)).await;
        let pool = pool();
        let resp = send(&pool, addr, get()).await;
        assert_eq!(
            resp.into_body().collect().await.unwrap().to_bytes(),
            "until the end"
        );
        assert_eq!(pool.idle_count(addr), 0);
        assert_eq!(seen.get(&seen.closed), 1);
    }
}
