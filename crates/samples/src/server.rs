//! The HTTP server every sample shares: accept, read the whole request, call the app, reply.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The biggest request body we read (go-httpbin's default limit; ample for Bookinfo).
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// A fully read request.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) peer: SocketAddr,
}

impl Req {
    /// The first value of a header as text (lossy), if present.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The path without the query.
    pub(crate) fn path(&self) -> &str {
        self.uri.path()
    }

    /// The raw query string ("" when absent).
    pub(crate) fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }
}

/// A complete response.
pub(crate) type Resp = Response<Full<Bytes>>;

/// One sample application.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answers a request; `None` means "never answer", which the original ratings service does for
    /// methods its dispatcher does not know.
    fn handle(&self, req: Req) -> impl Future<Output = Option<Resp>> + Send;

    /// The reply to a request whose body exceeds [`BODY_LIMIT`].
    fn body_too_large(&self) -> Resp {
        respond(413, "text/plain; charset=utf-8", "request body too large\n")
    }
}

/// Builds a response with a body and a content type.
pub(crate) fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !content_type.is_empty() {
        set_header(&mut resp, "content-type", content_type);
    }
    resp
}

/// Sets a header, skipping values that are not valid header text.
pub(crate) fn set_header(resp: &mut Resp, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        resp.headers_mut().insert(name, value);
    }
}

/// Appends a header, skipping values that are not valid header text.
pub(crate) fn add_header(resp: &mut Resp, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        resp.headers_mut().append(name, value);
    }
}

/// Accepts connections forever and serves each with `handler` (HTTP/1.1, and h2c for clients that
/// ask for it).
pub(crate) async fn serve_forever<H: Handler>(listener: TcpListener, handler: Arc<H>) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Running out of file descriptors must not end the server: back off and retry.
                tracing::warn!(%err, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let handler = handler.clone();
                async move { answer(handler.as_ref(), req, peer).await }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
    }
}

/// The connection is dropped without a reply (see [`Handler::handle`]).
#[derive(Debug, thiserror::Error)]
#[error("the application never answers this request; the connection is closed after {0:?}")]
struct NeverAnswered(Duration);

/// How long an unanswered request holds its connection: Node's default `requestTimeout` (5 min).
const UNANSWERED_HOLD: Duration = Duration::from_secs(300);

async fn answer<H: Handler>(
    handler: &H,
    req: http::Request<Incoming>,
    peer: SocketAddr,
) -> Result<Resp, NeverAnswered> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(handler.body_too_large()),
    };
    let req = Req {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        peer,
    };
    match handler.handle(req).await {
        Some(resp) => Ok(resp),
        None => {
            tokio::time::sleep(UNANSWERED_HOLD).await;
            Err(NeverAnswered(UNANSWERED_HOLD))
        }
    }
}
