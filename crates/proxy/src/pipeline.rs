//! The request path, in the order a request travels: load the snapshot → canonicalize → route →
//! CORS → action (direct response, redirect, or forward) → response edits → metrics and access log.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};
use strait_mesh::Direction;

use crate::Inner;
use crate::access_log::LogEntry;
use crate::http1::raw::RawFields;
use crate::listener::ReqBody;
use crate::matcher::RequestView;
use crate::normalize::normalize_path;
use crate::reply::{Flags, RespBody, local};
use crate::route::{Action, CRoute, Weighted, split_authority};
use crate::snapshot::{ListenerKey, ListenerRt, Snapshot};
use crate::stats::LabelsRef;
use crate::upstream;

/// Parsed once: a `&str` name is parsed and validated again on every use.
const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Where a connection arrived.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) key: ListenerKey,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// The connection is TLS: its requests' scheme is `https`, as Envoy derives it from the
    /// connection (for `x-forwarded-proto` when the request has none, and for scheme matches).
    pub(crate) tls: bool,
}

/// What the request stages learned, for the response edits, metrics and the access log.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) flags: Flags,
    pub(crate) details: &'static str,
    pub(crate) cluster: Option<usize>,
    pub(crate) cluster_name: Option<Arc<str>>,
    pub(crate) endpoint: Option<usize>,
    pub(crate) upstream_time: Option<std::time::Duration>,
    /// When the upstream's response head arrived: the end of the request's measured duration
    /// too, so that the metrics need no clock read of their own.
    pub(crate) responded_at: Option<Instant>,
    pub(crate) route_name: Option<Arc<str>>,
    pub(crate) bytes_received: u64,
    /// `x-envoy-upstream-service-time` for a response that came from upstream.
    pub(crate) service_time: Option<HeaderValue>,
}

/// The fields the proxy sets on every response it sends downstream, in place of any of the same
/// name: `server` (Envoy's `OVERWRITE`) and `x-envoy-upstream-service-time`. Kept apart from the
/// response's map until it is written: the HTTP/1.1 encoder writes them while it writes the map
/// (a name comparison per field), where two hashed inserts cost ~500 instructions a request.
#[derive(Debug)]
pub(crate) struct Stamp {
    server: &'static HeaderValue,
    service_time: Option<HeaderValue>,
}

static SERVER_NAME: HeaderName = header::SERVER;
static SERVICE_TIME_NAME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
static SERVER_OUTBOUND: HeaderValue = HeaderValue::from_static("envoy");
static SERVER_INBOUND: HeaderValue = HeaderValue::from_static("istio-envoy");

impl Stamp {
    /// The fields as (name, value) pairs, for an encoder that writes them in place of the map's.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> + Clone {
        std::iter::once((&SERVER_NAME, self.server))
            .chain(self.service_time.as_ref().map(|v| (&SERVICE_TIME_NAME, v)))
    }

    /// Puts the fields into the response's map (for hyper's HTTP/2 server).
    fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in self.fields() {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// The request as the routing stages see it, computed once.
pub(crate) struct Canon {
    pub(crate) authority: String,
    pub(crate) scheme: &'static str,
    pub(crate) listener_port: u16,
    /// Gateways are the mesh edge: they append the client address to `x-forwarded-for`
    /// (Envoy `use_remote_address`); sidecars pass the header through.
    pub(crate) forwarded_for: Option<std::net::IpAddr>,
    /// The response goes back through the proxy's own HTTP/1.1 encoder, which writes an
    /// upstream's fields kept as a block (hyper's servers need them in the response's map).
    pub(crate) h1_downstream: bool,
    /// `authority` is the request's Host field, byte for byte.
    pub(crate) authority_is_host: bool,
}

/// Entry point for requests served by hyper (h2c): [`handle`], with the [`Stamp`] put into the
/// response's map.
pub(crate) async fn serve(
    inner: Arc<Inner>,
    conn: Arc<ConnInfo>,
    req: Request<ReqBody>,
) -> Result<Response<RespBody>, Infallible> {
    let (mut resp, stamp) = handle(inner, conn, req, None, false).await;
    stamp.apply(resp.headers_mut());
    Ok(resp)
}

/// Entry point for every request on every listener: the response, and the fields the proxy
/// sets on it (written by the HTTP/1.1 encoder, or put into the map by [`serve`]). With
/// `h1_downstream` (the proxy's own HTTP/1.1 server calls) an upstream response's fields may
/// be in its body's `block()` instead of its map. `raw`: the request's fields as they came
/// (the proxy's own HTTP/1.1 server), not in its map.
pub(crate) async fn handle(
    inner: Arc<Inner>,
    conn: Arc<ConnInfo>,
    mut req: Request<ReqBody>,
    mut raw: Option<RawFields>,
    h1_downstream: bool,
) -> (Response<RespBody>, Stamp) {
    let started = Instant::now();
    // Envoy's connection manager gives every request an id before anything else looks at it.
    match &mut raw {
        Some(r) if r.has_request_id => {}
        Some(r) => r.set_request_id(request_id()),
        None => {
            if let header::Entry::Vacant(slot) = req.headers_mut().entry(REQUEST_ID) {
                slot.insert(request_id());
            }
        }
    }
    normalize_uri(&mut req);
    // Boxed: only with the access log on, and a 376-byte entry inline would widen (and so copy)
    // every request's future.
    let mut log = inner
        .opts
        .access_log
        .then(|| log_entry(&req, raw.as_ref(), &conn));
    // One load per request: a config swap never tears a request in flight.
    let snap = inner.snapshot.load_full();
    let mut outcome = Outcome::default();
    let (resp, direction) = match snap.as_ref().and_then(|s| {
        let l = s.listeners.get(&conn.key)?;
        Some((s, l))
    }) {
        Some((snap, listener)) => {
            let mut canon = canonicalize(&req, raw.as_ref(), &conn);
            canon.h1_downstream = h1_downstream;
            if listener.direction == Direction::Gateway {
                canon.forwarded_for = Some(conn.remote.ip());
            }
            if let Some(log) = log.as_mut() {
                log.authority = canon.authority.clone();
            }
            let resp = match route_request(snap, listener, &canon, &mut req, &mut raw, &mut outcome) {
                Routed::Reply(resp) => resp,
                // Fault delay → prepare → forward, awaited here rather than inside an async
                // `route_request`: every async layer builds and copies its child's whole future
                // once per request. Taken apart so that only the forward future lives across
                // the await.
                Routed::Forward(Forward {
                    route,
                    weighted,
                    matched_prefix,
                    cors_origin,
                }) => {
                    if let Some(delay) = upstream::fault_delay(route) {
                        tokio::time::sleep(delay).await;
                        outcome.flags.insert(Flags::DI);
                    }
                    let prepared = upstream::prepare(
                        snap,
                        route,
                        weighted,
                        &canon,
                        matched_prefix,
                        req,
                        raw,
                        cors_origin,
                        &mut outcome,
                    );
                    match prepared {
                        Ok(prepared) => upstream::forward(snap, prepared, &mut outcome).await,
                        Err(resp) => resp,
                    }
                }
            };
            (resp, listener.direction)
        }
        None => {
            // The listener is being removed or no config is live yet.
            outcome.flags.insert(Flags::NR);
            outcome.details = "route_not_found";
            (local(StatusCode::NOT_FOUND, Bytes::new()), Direction::Outbound)
        }
    };
    // Istio: `server: envoy` leaving through the client sidecar, `istio-envoy` on inbound/gateway.
    let stamp = Stamp {
        server: match direction {
            Direction::Outbound => &SERVER_OUTBOUND,
            Direction::Inbound | Direction::Gateway => &SERVER_INBOUND,
        },
        service_time: outcome.service_time.take(),
    };

    let cluster = snap
        .as_ref()
        .and_then(|s| outcome.cluster.and_then(|i| s.clusters.get(i)));
    let endpoint = cluster.and_then(|c| outcome.endpoint.and_then(|i| c.endpoints.get(i)));
    inner.stats.record(
        LabelsRef {
            reporter: match direction {
                Direction::Inbound => "destination",
                Direction::Outbound | Direction::Gateway => "source",
            },
            source_workload: &inner.id,
            destination_service: cluster.map(|c| &c.service).filter(|s| !s.is_empty()),
            destination_app: endpoint.and_then(|e| e.app.as_ref()),
            destination_version: endpoint.and_then(|e| e.version.as_ref()),
            destination_cluster: outcome.cluster_name.as_ref(),
            response_code: resp.status().as_u16(),
            response_flags: outcome.flags,
        },
        outcome
            .responded_at
            .map_or_else(|| started.elapsed(), |at| at.saturating_duration_since(started)),
    );
    if let Some(log) = log.as_mut() {
        log.status = resp.status().as_u16();
        log.flags = outcome.flags;
        log.details = outcome.details;
        log.duration = started.elapsed();
        log.upstream_time = outcome.upstream_time;
        log.upstream_host = endpoint.map(|e| e.addr);
        log.upstream_cluster = outcome.cluster_name.clone();
        log.route_name = outcome.route_name.clone();
        log.bytes_received = outcome.bytes_received;
        log.bytes_sent = match resp.body().block() {
            Some(block) => block.content_length,
            None => resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        }
        .unwrap_or(0);
        log.write();
    }
    (resp, stamp)
}

/// Puts the client's fields kept as they came into the request's map, before what the proxy
/// added: for what reads more of them than routing's matches.
fn into_map(req: &mut Request<ReqBody>, raw: &mut Option<RawFields>) {
    if let Some(r) = raw.take() {
        let added = std::mem::take(req.headers_mut());
        *req.headers_mut() = r.into_map(added);
    }
}

/// Applies path normalization to the request URI, keeping the query untouched.
fn normalize_uri(req: &mut Request<ReqBody>) {
    let Cow::Owned(path) = normalize_path(req.uri().path()) else {
        return;
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = PathAndQuery::try_from(pq) {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The access log's entry for a request, with what it reads of the request: a few fields by
/// name, from the fields kept as they came or from the map (no map is built for the log).
fn log_entry(req: &Request<ReqBody>, raw: Option<&RawFields>, conn: &ConnInfo) -> Box<LogEntry> {
    let field = |name: &'static str| field_str(req, raw, name);
    Box::new(LogEntry {
        start: Some(SystemTime::now()),
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.to_string()),
        protocol: protocol(req.version()),
        xff: field("x-forwarded-for"),
        user_agent: field("user-agent"),
        downstream_local: Some(conn.local),
        downstream_remote: Some(conn.remote),
        request_id: field("x-request-id"),
        ..Default::default()
    })
}

/// A request field's first value as text (by `HeaderValue::to_str`'s rules), from the fields
/// kept as they came or from the map: the access log reads a few by name and needs no map.
fn field_str(req: &Request<ReqBody>, raw: Option<&RawFields>, name: &'static str) -> Option<String> {
    match raw {
        Some(raw) => raw
            .get_all(&HeaderName::from_static(name))
            .next()
            .and_then(crate::http1::raw::visible)
            .map(str::to_string),
        None => header_str(req.headers(), name),
    }
}

/// Authority from the URI (absolute-form from an explicit-proxy client, or HTTP/2 `:authority`),
/// else the Host header.
fn canonicalize(req: &Request<ReqBody>, raw: Option<&RawFields>, conn: &ConnInfo) -> Canon {
    let host = match raw {
        Some(raw) => raw.host(),
        None => req.headers().get(header::HOST).map(|v| v.to_str().map_err(drop)),
    };
    let (authority, authority_is_host) = match req.uri().authority() {
        Some(a) => (a.as_str().to_string(), false),
        None => match host {
            Some(Ok(host)) => (host.to_string(), true),
            _ => (String::new(), false),
        },
    };
    let scheme = if conn.tls || req.uri().scheme_str() == Some("https") {
        "https"
    } else {
        "http"
    };
    Canon {
        authority,
        scheme,
        listener_port: conn.local.port(),
        forwarded_for: None,
        h1_downstream: false,
        authority_is_host,
    }
}

/// What routing decided: a reply made here, or a request to forward.
enum Routed<'s> {
    Reply(Response<RespBody>),
    Forward(Forward<'s>),
}

/// A request on a `Forward` route, with what the router found for it (borrowed from the
/// snapshot the request runs on).
struct Forward<'s> {
    route: &'s Arc<CRoute>,
    weighted: &'s Weighted,
    matched_prefix: Option<&'s str>,
    cors_origin: Option<HeaderValue>,
}

impl From<Response<RespBody>> for Routed<'_> {
    fn from(resp: Response<RespBody>) -> Self {
        Routed::Reply(resp)
    }
}

/// Routes the request: every outcome but forwarding is decided here, without waiting.
fn route_request<'s>(
    snap: &'s Snapshot,
    listener: &ListenerRt,
    canon: &Canon,
    req: &mut Request<ReqBody>,
    raw: &mut Option<RawFields>,
    outcome: &mut Outcome,
) -> Routed<'s> {
    let Some(table) = snap.tables.get(listener.table) else {
        return no_route(outcome).into();
    };
    // Envoy routes CONNECT only with an explicit connect matcher, which the model has none of.
    if req.method() == Method::CONNECT {
        return no_route(outcome).into();
    }
    let authority: Cow<'_, str> = if canon.authority.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(canon.authority.to_ascii_lowercase())
    } else {
        canon.authority.as_str().into()
    };
    let (host, port) = split_authority(&authority);
    let Some(vhost) = table.vhost(&authority, host, port) else {
        return no_route(outcome).into();
    };
    let view = RequestView {
        path: req.uri().path(),
        query: req.uri().query(),
        method: req.method().as_str(),
        authority: &canon.authority,
        scheme: canon.scheme,
        port: canon.listener_port,
        headers: req.headers(),
        raw: raw.as_ref(),
    };
    let Some(selected) = vhost.route(&view) else {
        return no_route(outcome).into();
    };
    let route = selected.route;
    let matched_prefix = selected.matched_prefix;
    outcome.route_name = Some(route.name.clone());

    // CORS: a matched preflight is answered here; otherwise remember the origin for the response.
    if route.cors.is_some() {
        into_map(req, raw);
    }
    let cors_origin = match &route.cors {
        Some(cors) => match cors.allowed_origin(req.headers()) {
            Some(origin)
                if req.method() == Method::OPTIONS
                    && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) =>
            {
                let mut resp = local(StatusCode::OK, Bytes::new());
                cors.preflight(origin, resp.headers_mut());
                outcome.details = "cors_response";
                return resp.into();
            }
            Some(origin) => Some(origin.clone()),
            None => None,
        },
        None => None,
    };

    let mut resp = match &route.action {
        Action::Direct { status, body } => {
            outcome.details = "direct_response";
            local(*status, body.clone().unwrap_or_default())
        }
        Action::Redirect(r) => {
            outcome.details = "direct_response";
            let location = r.location(
                canon.scheme,
                &canon.authority,
                req.uri().path(),
                req.uri().query(),
                matched_prefix,
            );
            let mut resp = local(r.code, Bytes::new());
            match HeaderValue::from_str(&location) {
                Ok(v) => {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Err(_) => return local(StatusCode::BAD_REQUEST, "invalid redirect location").into(),
            }
            resp
        }
        Action::Forward(weighted) => {
            return Routed::Forward(Forward {
                route,
                weighted,
                matched_prefix,
                cors_origin,
            });
        }
    };
    route.headers.response.apply(resp.headers_mut());
    if let (Some(cors), Some(origin)) = (&route.cors, &cors_origin) {
        cors.simple(origin, resp.headers_mut());
    }
    resp.into()
}

/// Istio adds no default route: 404 with an empty body and flag NR.
fn no_route(outcome: &mut Outcome) -> Response<RespBody> {
    outcome.flags.insert(Flags::NR);
    outcome.details = "route_not_found";
    local(StatusCode::NOT_FOUND, Bytes::new())
}

/// A random UUIDv4, as Envoy generates for requests without `x-request-id`. Written straight
/// into a stack buffer: `format!` here cost ~3,600 instructions per request (callgrind); each
/// byte's two hex digits come from a table, at their place between the dashes.
fn request_id() -> HeaderValue {
    /// Where byte `i` of the UUID goes in its 36-character text.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    static HEX_PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut t = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = [HEX[i >> 4], HEX[i & 0xf]];
            i += 1;
        }
        t
    };
    let v: u128 = rand::random();
    let v = (v & !(0xf << 76)) | (0x4 << 76);
    let v = (v & !(0x3 << 62)) | (0x2 << 62);
    let mut out = [b'-'; 36];
    for (&at, byte) in AT.iter().zip(v.to_be_bytes()) {
        out[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    // An owned buffer rather than a copied slice: the per-try copy of the request headers
    // clones this value, and cloning a slice-made `Bytes` allocates a second time to share it.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(out))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log reads the same fields whether the request kept them as they came or in a map.
    #[test]
    fn the_access_log_reads_raw_fields_as_it_reads_the_map() {
        let conn = ConnInfo {
            key: ListenerKey::Name("l".into()),
            local: "127.0.0.1:80".parse().unwrap(),
            remote: "127.0.0.1:5000".parse().unwrap(),
            tls: false,
        };
        let fields =
            "Host: a\r\nUser-Agent: curl/8\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n";
        let mut logged = Vec::new();
        // Plain fields stay raw; `Connection` sends the same fields to the map.
        for extra in ["", "Connection: keep-alive\r\n"] {
            for id in [None, Some("abc")] {
                let id_line = id.map(|i| format!("x-request-id: {i}\r\n")).unwrap_or_default();
                let head = format!("GET /p?q=1 HTTP/1.1\r\n{fields}{id_line}{extra}\r\n");
                let mut buf = bytes::BytesMut::from(head.as_bytes());
                let parsed = crate::http1::server::parse_request_head(&mut buf, &mut None)
                    .unwrap()
                    .unwrap();
                let (mut raw, mut req) = (parsed.raw, parsed.request.map(|()| ReqBody::Empty));
                assert_eq!(raw.is_some(), extra.is_empty(), "{head}");
                let own = HeaderValue::from_static("own-id");
                match &mut raw {
                    Some(r) if !r.has_request_id => r.set_request_id(own),
                    Some(_) => {}
                    None => {
                        req.headers_mut().entry(REQUEST_ID).or_insert(own);
                    }
                }
                let e = log_entry(&req, raw.as_ref(), &conn);
                assert_eq!(e.user_agent.as_deref(), Some("curl/8"));
                assert_eq!(e.xff.as_deref(), Some("10.0.0.1"));
                assert_eq!(e.request_id.as_deref(), Some(id.unwrap_or("own-id")));
                assert_eq!(e.path, "/p?q=1");
                logged.push((e.user_agent, e.xff, e.request_id));
            }
        }
        assert_eq!(logged[..2], logged[2..]);
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        let s = a.to_str().unwrap();
        assert_eq!(s.len(), 36, "{s}");
        for (i, c) in s.chars().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert_eq!(c, '-', "{s}");
            } else {
                assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{s}");
            }
        }
        assert_eq!(&s[14..15], "4", "version nibble: {s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "variant: {s}");
    }
}
