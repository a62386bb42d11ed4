//! The backend every cell talks to: a minimal HTTP server answering every request with the same
//! 1 KB body (Istio's benchmark payload), over HTTP/1.1 keep-alive or h2c.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Size of the response body, bytes.
pub const BODY_SIZE: usize = 1024;

/// The response body: 1 KB of printable text.
pub fn body() -> Bytes {
    Bytes::from(vec![b'x'; BODY_SIZE])
}

/// Serves forever on `listener`. Per-connection errors (a client resetting) are ignored: they
/// belong to the load generator's report, not to the backend.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let body = body();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = body.clone();
                async move {
                    Response::builder()
                        .header(header::CONTENT_TYPE, "text/plain")
                        .body(Full::new(body))
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `addr` and serves forever.
pub async fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!(
        "bench-backend: serving {BODY_SIZE}-byte responses on http://{}",
        listener.local_addr()?
    );
    serve(listener).await?;
    Ok(())
}
