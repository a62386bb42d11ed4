//! Accept loops: one per bound socket, serving HTTP/1.1 ([`h1`], our own) and h2c with prior
//! knowledge (hyper's), both with keep-alive, and both behind mTLS ([`secure`]) on listeners
//! that have it (HTTP/1.1 over TLS is our own codec too; h2 over TLS is hyper's).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Inner;
use crate::http1::io::Inbound;
use crate::http1::wire::Wire;
use crate::pipeline::{self, ConnInfo};
use crate::snapshot::ListenerKey;
use crate::tls::{self, ServerTls};

mod body;
mod h1;
mod rewind;
mod secure;

pub(crate) use body::ReqBody;

/// The first bytes of every h2c connection with prior knowledge (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A socket being served. Dropping it stops accepting and lets open connections finish their
/// in-flight requests (graceful shutdown), as Envoy drains a removed listener.
#[derive(Debug)]
pub(crate) struct RunningListener {
    pub(crate) bound: SocketAddr,
    accept: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl Drop for RunningListener {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.shutdown.send(true);
    }
}

/// Starts serving `socket`. The loop holds only a weak reference so a dropped proxy stops it.
pub(crate) fn spawn(inner: Weak<Inner>, key: ListenerKey, socket: TcpListener) -> RunningListener {
    let bound = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(inner, key, socket, bound, shutdown_rx));
    RunningListener {
        bound,
        accept,
        shutdown,
    }
}

async fn accept_loop(
    inner: Weak<Inner>,
    key: ListenerKey,
    socket: TcpListener,
    bound: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, remote) = match socket.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(%bound, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(ConnInfo {
            key: key.clone(),
            local: stream.local_addr().unwrap_or(bound),
            remote,
            tls: false,
        });
        tokio::spawn(serve(inner, conn, stream, shutdown.clone()));
    }
}

/// Serves one connection: mTLS when the listener has TLS and the first byte starts a handshake,
/// else HTTP/1.1 unless its first bytes are the h2c preface.
async fn serve(
    inner: Arc<Inner>,
    conn: Arc<ConnInfo>,
    stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut inbound = Inbound::new();
    let wire = Wire::Plain(stream);
    if let Some(tls) = listener_tls(&inner, &conn) {
        if !read_more(&wire, &mut inbound, &mut shutdown).await {
            return;
        }
        if inbound.buf.first() == Some(&tls::HANDSHAKE_RECORD) {
            let Some(stream) = wire.into_plain() else { return };
            let io = rewind::Rewind {
                prefix: inbound.buf.freeze(),
                io: stream,
            };
            return secure::serve(inner, conn, io, &tls, shutdown).await;
        }
        if tls.strict {
            // PeerAuthentication STRICT: a plaintext client gets its connection reset, as
            // Envoy's listener does when no filter chain matches.
            tracing::debug!(remote = %conn.remote, "plaintext connection to a STRICT mTLS listener reset");
            if let Wire::Plain(stream) = &wire {
                let _ = stream.set_zero_linger();
            }
            return;
        }
    }
    // Usually one read: an HTTP/1.1 request's first byte already differs from the preface's.
    while inbound.buf.len() < PREFACE.len() && PREFACE.starts_with(&inbound.buf) {
        if !read_more(&wire, &mut inbound, &mut shutdown).await {
            return;
        }
    }
    if !inbound.buf.starts_with(PREFACE) {
        return h1::serve(inner, conn, wire, inbound, shutdown).await;
    }
    let Some(stream) = wire.into_plain() else { return };
    let remote = conn.remote;
    let io = rewind::Rewind {
        prefix: inbound.buf.freeze(),
        io: stream,
    };
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        pipeline::serve(inner.clone(), conn.clone(), req.map(ReqBody::Hyper))
    });
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc);
    drive(served, remote, "h2c", shutdown).await;
}

/// Runs a connection served by hyper until it ends, or drains it (in-flight requests finish,
/// no new ones) when the listener is removed.
async fn drive<C>(served: C, remote: SocketAddr, what: &str, mut shutdown: watch::Receiver<bool>)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(served);
    tokio::select! {
        // Polled in order: no random number per poll.
        biased;
        res = served.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%remote, error = %e, "downstream {what} connection ended with an error");
            }
        }
        _ = shutdown.changed() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}

/// Reads what the socket has into `inbound`; false on end of stream, error or shutdown.
async fn read_more(stream: &Wire, inbound: &mut Inbound, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        // Polled in order: no random number per poll.
        biased;
        read = inbound.fill(stream) => matches!(read, Ok(n) if n > 0),
        _ = shutdown.changed() => false,
    }
}

/// The TLS of the listener a connection arrived on, from the config being served now.
fn listener_tls(inner: &Inner, conn: &ConnInfo) -> Option<Arc<ServerTls>> {
    let snap = inner.snapshot.load();
    snap.as_ref()?.listeners.get(&conn.key)?.tls.clone()
}
