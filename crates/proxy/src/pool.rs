//! Upstream connection pools. HTTP/1.1 to endpoints uses our own keep-alive pool and codec ([`h1`]);
//! passthrough by host name uses hyper-util's client (it resolves names). h2c uses one multiplexed connection per endpoint, kept here so that `:authority`
//! can carry the logical host (as Envoy sends it) while the socket goes to the endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri, Version, header};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http2::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use strait_mesh::{Cluster, UpstreamProtocol};

use crate::http1::block::FieldBlock;
use crate::http1::client::RequestHead;
use crate::listener::ReqBody;
use tokio::net::TcpStream;

mod h1;

use h1::{Checkin, H1Pool};

use crate::tls::ClientTls;

/// Body sent upstream: buffered (replayable for retries and mirrors) or streamed.
pub(crate) type UpBody = Either<Full<Bytes>, ReqBody>;

/// Errors of bodies sent downstream (hyper's server takes any boxed error).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body from upstream: read off a pooled HTTP/1.1 connection (which goes back to
/// the pool after it), or from hyper's h2c and passthrough clients, whose connections run in
/// tasks of their own.
#[derive(Debug)]
pub(crate) struct UpstreamBody(Source);

#[derive(Debug)]
enum Source {
    H1(Checkin),
    Hyper(Incoming),
}

impl UpstreamBody {
    fn h1(conn: Checkin) -> Self {
        UpstreamBody(Source::H1(conn))
    }

    fn hyper(body: Incoming) -> Self {
        UpstreamBody(Source::Hyper(body))
    }

    /// The response's header fields, when they came as a block rather than in its map (an
    /// HTTP/1.1 upstream, asked for with [`RequestHead::block`]).
    pub(crate) fn block(&self) -> Option<&FieldBlock> {
        match &self.0 {
            Source::H1(conn) => conn.block(),
            Source::Hyper(_) => None,
        }
    }

    /// Takes the block (see [`Self::block`]).
    pub(crate) fn take_block(&mut self) -> Option<FieldBlock> {
        match &mut self.0 {
            Source::H1(conn) => conn.take_block(),
            Source::Hyper(_) => None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Source::H1(conn) => conn.poll_frame(cx).map_err(Into::into),
            Source::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::H1(conn) => conn.is_end_stream(),
            Source::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Source::H1(conn) => conn.size_hint(),
            Source::Hyper(body) => body.size_hint(),
        }
    }
}

/// Istio's default connect timeout (meshConfig.connectTimeout).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Istio's default idle timeout for upstream connections.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why a request got no response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// TCP connect failed or timed out.
    Connect,
    /// HTTP/2 stream refused by the peer.
    Refused,
    /// The connection or stream was reset.
    Reset,
}

/// Settings that decide which pool a cluster uses; clusters that agree share one, and pools
/// survive config swaps so warm connections are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    http2: bool,
    connect_timeout: Duration,
    idle_timeout: Duration,
    keep_alive: bool,
    /// [`ClientTls::fingerprint`]: the TLS settings and the files' contents, so a rotated
    /// certificate gets a fresh pool.
    tls: Option<u64>,
}

impl PoolKey {
    /// The pool settings of a cluster, with its prepared TLS if it has any.
    pub(crate) fn of(c: &Cluster, tls: Option<&ClientTls>) -> Self {
        let pool = c.connection_pool.as_ref();
        PoolKey {
            http2: c.protocol == UpstreamProtocol::Http2,
            connect_timeout: match c.connect_timeout_ms {
                0 => DEFAULT_CONNECT_TIMEOUT,
                ms => Duration::from_millis(ms),
            },
            idle_timeout: pool
                .and_then(|p| p.idle_timeout_ms)
                .filter(|t| *t > 0)
                .map_or(DEFAULT_IDLE_TIMEOUT, Duration::from_millis),
            // Istio: maxRequestsPerConnection 1 disables keep-alive.
            keep_alive: pool.and_then(|p| p.max_requests_per_connection) != Some(1),
            tls: tls.map(|t| t.fingerprint),
        }
    }

    /// Creates the pool; `tls` is the cluster's prepared TLS that [`PoolKey::of`] was given.
    pub(crate) fn build(self, tls: Option<ClientTls>) -> Upstream {
        if self.http2 {
            return Upstream::H2(H2Pool {
                connect_timeout: self.connect_timeout,
                conns: Arc::default(),
                tls,
            });
        }
        if let Some(tls) = tls {
            return Upstream::Secure(Arc::new(
                H1Pool::new(self.connect_timeout, self.idle_timeout, self.keep_alive).with_tls(tls),
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.connect_timeout));
        connector.set_nodelay(true);
        let mut b = Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(self.idle_timeout);
        if !self.keep_alive {
            b.pool_max_idle_per_host(0);
        }
        Upstream::H1 {
            pool: Arc::new(H1Pool::new(
                self.connect_timeout,
                self.idle_timeout,
                self.keep_alive,
            )),
            by_name: Box::new(b.build(connector)),
        }
    }
}

/// Pools kept across applies.
pub(crate) type PoolCache = HashMap<PoolKey, Upstream>;

/// A pool for one protocol.
#[derive(Debug, Clone)]
pub(crate) enum Upstream {
    /// HTTP/1.1 keep-alive pools: to endpoint addresses, and by host name for passthrough.
    H1 {
        /// Endpoint connections.
        pool: Arc<H1Pool>,
        /// Passthrough (DNS) connections.
        by_name: Box<Client<HttpConnector, UpBody>>,
    },
    /// h2c or h2 over TLS, one multiplexed connection per endpoint.
    H2(H2Pool),
    /// HTTP/1.1 over TLS to endpoint addresses (no passthrough).
    Secure(Arc<H1Pool>),
}

/// One shared h2c connection per endpoint address.
#[derive(Debug, Clone)]
pub(crate) struct H2Pool {
    connect_timeout: Duration,
    conns: Arc<Mutex<HashMap<SocketAddr, SendRequest<UpBody>>>>,
    /// h2 over TLS instead of h2c.
    tls: Option<ClientTls>,
}

impl H2Pool {
    /// Forgets the connections that closed (hyper's connection task has already closed their
    /// sockets).
    fn sweep(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|_, sender| !sender.is_closed());
    }
}

impl Upstream {
    /// Drops the pool's idle connections that servers closed (or that expired). Passthrough
    /// connections are hyper-util's, which sweeps its own.
    pub(crate) fn sweep(&self) {
        match self {
            Upstream::H1 { pool, .. } => {
                pool.sweep();
            }
            Upstream::H2(pool) => pool.sweep(),
            Upstream::Secure(pool) => {
                pool.sweep();
            }
        }
    }

    /// Idle connections, without sweeping (tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        match self {
            Upstream::H1 { pool, .. } => pool.idle_total(),
            Upstream::H2(pool) => pool.conns.lock().map_or(0, |c| c.len()),
            Upstream::Secure(pool) => pool.idle_total(),
        }
    }

    /// Sends `req` (origin-form path, `Host` set to the logical authority) to `addr`, or with no
    /// address to `endpoint` resolved by DNS (passthrough). An HTTP/1.1 connection travels with
    /// the response body and returns to the pool after it.
    pub(crate) async fn send(
        &self,
        addr: Option<SocketAddr>,
        endpoint: &Authority,
        head: RequestHead<'_>,
        body: UpBody,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let Some(addr) = addr else {
            // Rare; boxed so that its future does not widen every request's.
            return Box::pin(self.send_by_name(endpoint, head.to_request(body))).await;
        };
        match self {
            // Written straight from the borrowed head: no copy of the request.
            Upstream::H1 { pool, .. } | Upstream::Secure(pool) => {
                pool.send(addr, head, endpoint.as_str(), body).await
            }
            Upstream::H2(pool) => {
                let mut req = head.to_request(body);
                // Envoy turns Host into :authority toward HTTP/2 upstreams.
                let authority = req
                    .headers_mut()
                    .remove(header::HOST)
                    .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                    .unwrap_or_else(|| endpoint.clone());
                *req.uri_mut() = absolute(authority, head.path.clone()).ok_or(SendError::Reset)?;
                *req.version_mut() = Version::HTTP_2;
                // Boxed for the same reason: the common case is HTTP/1.1.
                let resp = Box::pin(pool.send(addr, req)).await?;
                Ok(resp.map(UpstreamBody::hyper))
            }
        }
    }
}

impl Upstream {
    /// Sends to a host name resolved by DNS (Istio's PassthroughCluster, i.e. ALLOW_ANY for an
    /// explicit proxy). Always HTTP/1.1: nothing is known about the destination.
    async fn send_by_name(
        &self,
        authority: &Authority,
        mut req: Request<UpBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let Upstream::H1 { by_name: client, .. } = self else {
            return Err(SendError::Connect);
        };
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = absolute(authority.clone(), path).ok_or(SendError::Reset)?;
        *req.version_mut() = Version::HTTP_11;
        match client.request(req).await {
            Ok(resp) => Ok(resp.map(UpstreamBody::hyper)),
            Err(e) if e.is_connect() => Err(SendError::Connect),
            Err(e) => Err(classify(&e)),
        }
    }
}

fn absolute(authority: Authority, path: PathAndQuery) -> Option<Uri> {
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
        .ok()
}

impl H2Pool {
    async fn send(&self, addr: SocketAddr, req: Request<UpBody>) -> Result<Response<Incoming>, SendError> {
        let existing = {
            let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.get(&addr).filter(|s| !s.is_closed()).cloned()
        };
        let mut sender = match existing {
            Some(s) => s,
            None => {
                let s = self.connect(addr).await?;
                self.conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(addr, s.clone());
                s
            }
        };
        if sender.ready().await.is_err() {
            self.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&addr);
            return Err(SendError::Reset);
        }
        sender.send_request(req).await.map_err(|e| classify(&e))
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<UpBody>, SendError> {
        let handshake = async {
            let stream = connect_tcp(addr).await?;
            match &self.tls {
                Some(tls) => handshake_h2(addr, tls.handshake(addr, stream).await?).await,
                None => handshake_h2(addr, stream).await,
            }
        };
        tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| SendError::Connect)?
    }
}

/// A TCP connection to `addr` with Nagle off (requests and responses are written whole).
pub(crate) async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, SendError> {
    let stream = TcpStream::connect(addr).await.map_err(|_| SendError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

impl ClientTls {
    /// The TLS handshake over `tcp`; a failure is a connect failure (`UF`), as in Envoy.
    async fn handshake(
        &self,
        addr: SocketAddr,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SendError> {
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| {
                tracing::debug!(%addr, error = %e, "upstream TLS handshake failed");
                SendError::Connect
            })
    }
}

/// Starts an HTTP/2 connection over `io` (TCP or TLS), driven by a task of its own.
async fn handshake_h2<I>(addr: SocketAddr, io: I) -> Result<SendRequest<UpBody>, SendError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|_| SendError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%addr, error = %e, "upstream h2 connection closed");
        }
    });
    Ok(sender)
}

/// Looks for an HTTP/2 REFUSED_STREAM in the source chain (error path only).
fn classify(e: &(dyn std::error::Error + 'static)) -> SendError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if format!("{s:?}").contains("REFUSED_STREAM") {
            return SendError::Refused;
        }
        src = s.source();
    }
    SendError::Reset
}
