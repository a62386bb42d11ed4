//! Connections that start with a TLS handshake: mTLS (the client's certificate must chain to the
//! listener's CA), then HTTP/1.1 or HTTP/2 as ALPN agreed. HTTP/1.1 is served by our own codec
//! over the TLS connection ([`Wire`]); HTTP/2, and a client that offered no ALPN, by hyper.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use super::ReqBody;
use super::rewind::Rewind;
use crate::Inner;
use crate::http1::io::Inbound;
use crate::http1::wire::Wire;
use crate::pipeline::{self, ConnInfo};
use crate::tls::ServerTls;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes, then serves requests until the client closes or the listener drains.
pub(super) async fn serve(
    inner: Arc<Inner>,
    conn: Arc<ConnInfo>,
    io: Rewind,
    tls: &ServerTls,
    mut shutdown: watch::Receiver<bool>,
) {
    let remote = conn.remote;
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(io));
    let stream = tokio::select! {
        // Polled in order: no random number per poll.
        biased;
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "downstream TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "downstream TLS handshake timed out");
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let conn = Arc::new(ConnInfo {
        key: conn.key.clone(),
        local: conn.local,
        remote: conn.remote,
        tls: true,
    });
    // HTTP/1.1, as ALPN agreed, goes to our own codec over the TLS connection. Bytes read
    // before the handshake are all handshake (a client sends nothing else before the server's
    // answer); should any be left, hyper serves the connection as before.
    if alpn.as_deref() == Some(b"http/1.1") && stream.get_ref().0.prefix.is_empty() {
        let (rewind, tls) = stream.into_inner();
        let wire = Wire::tls(rewind.io, tls);
        return super::h1::serve(inner, conn, wire, Inbound::new(), shutdown).await;
    }
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        pipeline::serve(inner.clone(), conn.clone(), req.map(ReqBody::Hyper))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    // What ALPN agreed; a client that offered none is told apart by the h2 preface.
    let builder = match alpn.as_deref() {
        Some(b"h2") => builder.http2_only(),
        Some(_) => builder.http1_only(),
        None => builder,
    };
    let served = builder.serve_connection(TokioIo::new(stream), svc);
    super::drive(served, remote, "TLS", shutdown).await;
}
