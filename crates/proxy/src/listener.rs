//! Accept loops: one per bound socket, serving HTTP/1.1 and h2c (prior knowledge) with keep-alive.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Inner;
use crate::pipeline::{self, ConnInfo};
use crate::snapshot::ListenerKey;

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
        });
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| pipeline::serve(inner.clone(), conn.clone(), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let served = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(served);
            tokio::select! {
                res = served.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%remote, error = %e, "downstream connection ended with an error");
                    }
                }
                _ = shutdown.changed() => {
                    served.as_mut().graceful_shutdown();
                    let _ = served.await;
                }
            }
        });
    }
}
