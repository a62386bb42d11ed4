//! The admin endpoint: config dump, readiness and Prometheus metrics, as Envoy's admin port offers.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::Inner;
use crate::error::ProxyError;

/// Serves admin requests on `socket` until the task is dropped.
pub(crate) async fn serve(inner: Arc<Inner>, socket: TcpListener) -> Result<(), ProxyError> {
    loop {
        let (stream, _) = socket.accept().await.map_err(ProxyError::AdminAccept)?;
        let inner = inner.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(inner.clone(), req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is supported\n",
            "text/plain",
        ));
    }
    let running = inner.snapshot.load().as_ref().map(|s| s.config.clone());
    Ok(match req.uri().path() {
        "/config_dump" => {
            let body = match running {
                Some(cfg) => serde_json::to_string_pretty(&*cfg).unwrap_or_else(|_| "{}".into()),
                None => "{}".into(),
            };
            text(StatusCode::OK, body, "application/json")
        }
        "/ready" | "/healthz/ready" => match running {
            Some(_) => text(StatusCode::OK, "LIVE\n", "text/plain"),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "PRE_INITIALIZING\n",
                "text/plain",
            ),
        },
        "/stats/prometheus" | "/stats/prometheus/" | "/metrics" => {
            text(StatusCode::OK, inner.stats.render(), "text/plain; version=0.0.4")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "unknown admin path; try /config_dump, /ready, /stats/prometheus\n",
            "text/plain",
        ),
    })
}

fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
