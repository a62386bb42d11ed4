//! Forwarding: fault → destination → cluster → request edits → mirrors → tries (timeout, retries)
//! → response edits. Every failure becomes the status, body and flag Envoy would give.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full};

use crate::cluster::{ActiveGuard, ClusterRt, EndpointRt};
use crate::headers::strip_hop_by_hop;
use crate::http1::client::RequestHead;
use crate::http1::raw::RawFields;
use crate::listener::ReqBody;
use crate::pipeline::{Canon, Outcome};
use crate::policy::{RetryPolicy, chance};
use crate::pool::{SendError, UpBody, UpstreamBody};
use crate::reply::{self, Flags, RespBody, local};
use crate::route::{CRoute, Dest, Weighted};
use crate::snapshot::Snapshot;

const RQ_TIMEOUT: HeaderName = HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
const ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// Envoy's default retry back-off base and cap.
const BACKOFF_BASE: Duration = Duration::from_millis(25);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// Why one try failed before response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TryError {
    ConnectFailure,
    RefusedStream,
    Reset,
    PerTryTimeout,
    /// Every endpoint is ejected by outlier detection.
    NoHealthy,
}

/// The upstream request minus its body, shared by every try and mirror.
struct Template {
    method: Method,
    path: PathAndQuery,
    /// The request's fields; empty with `raw` (the proxy's request id rides in `raw` too).
    headers: HeaderMap,
    /// The client's fields as they came, when nothing on the route edits them.
    raw: Option<RawFields>,
    /// `x-forwarded-proto` for a request that came without one (see [`Template::head`]).
    forwarded_proto: HeaderValue,
    /// The response's fields may come back as a block (`RequestHead::block`).
    block: bool,
}

impl Drop for Template {
    /// The request's header map is made again for the next upstream response on this thread.
    fn drop(&mut self) {
        crate::http1::recycle_header_map(std::mem::take(&mut self.headers));
    }
}

/// The fault filter's delay for this request, if its dice say so. Envoy's fault filter runs
/// before the router: the caller waits this out (flag DI) before [`prepare`], so a delayed
/// request holds no cluster admission while it waits.
pub(crate) fn fault_delay(route: &CRoute) -> Option<Duration> {
    let (delay, pct) = route.fault.as_ref()?.delay?;
    chance(pct).then_some(delay)
}

/// A request ready to go upstream: everything decided without waiting, so that the future that
/// does wait ([`forward`]) holds only this, not the request it came from.
pub(crate) struct Prepared<'s> {
    route: &'s CRoute,
    dest: &'s Dest,
    cluster: &'s ClusterRt,
    admitted: ActiveGuard,
    template: Template,
    body: ReqBody,
    timeout: Option<Duration>,
    cors_origin: Option<HeaderValue>,
}

/// Everything of forwarding that needs no waiting: fault abort → destination → cluster →
/// admission → request edits. `Err` is the reply when the request goes nowhere.
// The reply is no larger than what `Ok` carries, and either is moved once, into the caller.
#[allow(clippy::too_many_arguments, clippy::result_large_err)]
pub(crate) fn prepare<'s>(
    snap: &'s Snapshot,
    route: &'s CRoute,
    weighted: &'s Weighted,
    canon: &Canon,
    matched_prefix: Option<&str>,
    req: Request<ReqBody>,
    raw: Option<RawFields>,
    cors_origin: Option<HeaderValue>,
    outcome: &mut Outcome,
) -> Result<Prepared<'s>, Response<RespBody>> {
    // Fault abort: after route selection, before the router, so aborts are never retried.
    if let Some((status, pct)) = route.fault.as_ref().and_then(|f| f.abort)
        && chance(pct)
    {
        outcome.flags.insert(Flags::FI);
        outcome.details = "fault_filter_abort";
        return Err(local(status, reply::FAULT_ABORT));
    }
    let Some(dest) = weighted.pick() else {
        return Err(fail(
            outcome,
            Flags::NC,
            "cluster_not_found",
            StatusCode::SERVICE_UNAVAILABLE,
            "",
        ));
    };
    outcome.cluster_name = Some(dest.cluster_name.clone());
    let Some((ci, cluster)) = dest.cluster.and_then(|i| snap.clusters.get(i).map(|c| (i, c))) else {
        // Istio: a route to an undefined subset is 503 NC with an empty body.
        return Err(fail(
            outcome,
            Flags::NC,
            "cluster_not_found",
            StatusCode::SERVICE_UNAVAILABLE,
            "",
        ));
    };
    outcome.cluster = Some(ci);
    if cluster.endpoints.is_empty() && !cluster.passthrough {
        return Err(fail(
            outcome,
            Flags::UH,
            "no_healthy_upstream",
            StatusCode::SERVICE_UNAVAILABLE,
            reply::NO_HEALTHY,
        ));
    }
    let Some(admitted) = cluster.admit() else {
        return Err(fail(
            outcome,
            Flags::UO,
            "overflow",
            StatusCode::SERVICE_UNAVAILABLE,
            reply::OVERFLOW,
        ));
    };

    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    // The client's fields go upstream as they came when nothing here edits them (the request
    // head had none of the fields handled below: see `http1::raw`). Otherwise into the map.
    let raw = match raw {
        Some(raw)
            if canon.authority_is_host
                && canon.forwarded_for.is_none()
                && route.rewrite.is_none()
                && route.headers.request.is_empty()
                && dest.headers.request.is_empty() =>
        {
            Some(raw)
        }
        Some(raw) => {
            headers = raw.into_map(headers);
            None
        }
        None => None,
    };
    // Envoy honours the per-request timeout header from the client, then drops it.
    // Only from inside the mesh: a gateway treats its clients as external and ignores it.
    // A scan of the few names first: a hashed removal of a name that is absent (nearly always)
    // cost ~230 instructions a request.
    let header_timeout = headers
        .keys()
        .any(|n| n.as_str() == RQ_TIMEOUT.as_str())
        .then(|| headers.remove(RQ_TIMEOUT))
        .flatten()
        .filter(|_| canon.forwarded_for.is_none())
        .and_then(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()));
    let timeout = match header_timeout {
        Some(0) => None,
        Some(ms) => Some(Duration::from_millis(ms)),
        None => route.timeout,
    };
    strip_hop_by_hop(&mut headers);
    route.headers.request.apply(&mut headers);
    dest.headers.request.apply(&mut headers);
    let rewritten = route
        .rewrite
        .as_ref()
        .and_then(|r| r.authority.as_deref())
        .or(dest.headers.request.authority.as_deref())
        .or(route.headers.request.authority.as_deref());
    let authority = rewritten.unwrap_or(&canon.authority);
    // Usually the client's own Host, unchanged: nothing to look up or write. Otherwise keep an
    // identical value rather than allocate a new one.
    let host_kept = rewritten.is_none() && canon.authority_is_host;
    if !host_kept
        && headers
            .get(header::HOST)
            .is_none_or(|h| h.as_bytes() != authority.as_bytes())
        && let Ok(v) = HeaderValue::from_str(authority)
    {
        headers.insert(header::HOST, v);
    }
    let original = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let path = match route
        .rewrite
        .as_ref()
        .and_then(|r| r.path(original.path(), matched_prefix))
    {
        None => original,
        Some(new_path) => {
            let full = match original.query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            match PathAndQuery::try_from(full) {
                Ok(p) => {
                    if let Ok(v) = HeaderValue::from_str(original.as_str()) {
                        headers.insert(ORIGINAL_PATH, v);
                    }
                    p
                }
                Err(_) => {
                    return Err(local(
                        StatusCode::BAD_REQUEST,
                        "rewritten path is not a valid URI path",
                    ));
                }
            }
        }
    };
    if let Some(ip) = canon.forwarded_for {
        let xff = match headers.get(FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(FORWARDED_FOR, v);
        }
    }
    Ok(Prepared {
        route,
        dest,
        cluster,
        admitted,
        template: Template {
            method: parts.method,
            path,
            headers,
            raw,
            forwarded_proto: forwarded_proto(canon.scheme),
            // Nothing between the upstream and an HTTP/1.1 client reads or edits the fields.
            block: canon.h1_downstream
                && route.headers.response.is_empty()
                && dest.headers.response.is_empty()
                && cors_origin.is_none(),
        },
        body,
        timeout,
        cors_origin,
    })
}

/// Sends a [`prepare`]d request: body buffering for retries and mirrors → mirrors → tries
/// (timeout, retries) → response edits. Every failure becomes Envoy's status, body and flag.
pub(crate) async fn forward(
    snap: &Snapshot,
    prepared: Prepared<'_>,
    outcome: &mut Outcome,
) -> Response<RespBody> {
    let Prepared {
        route,
        dest,
        cluster,
        admitted,
        template,
        body,
        timeout,
        cors_origin,
    } = prepared;
    // Retries and mirrors need the body more than once, so it is buffered for them only.
    let mut body = if route.retries.is_some() || !route.mirrors.is_empty() {
        // Nothing to wait for when there is no body (most requests): what collecting it
        // would give, without the collector (~300 instructions).
        let collected = match body {
            ReqBody::Empty => Ok(Bytes::new()),
            body => body.collect().await.map(|b| b.to_bytes()),
        };
        match collected {
            Ok(b) => {
                outcome.bytes_received = b.len() as u64;
                Either::Left(b)
            }
            Err(_) => {
                outcome.flags.insert(Flags::DC);
                outcome.details = "downstream_remote_disconnect";
                return local(StatusCode::BAD_REQUEST, "");
            }
        }
    } else {
        // The length the request's framing says, as its Content-Length did: no header lookup.
        outcome.bytes_received = hyper::body::Body::size_hint(&body).exact().unwrap_or(0);
        Either::Right(Some(body))
    };

    if let Either::Left(buffered) = &body {
        for m in &route.mirrors {
            if chance(m.percentage) {
                mirror(snap, m.cluster, &template, buffered.clone());
            }
        }
    }

    let retries = route.retries.as_ref();
    let result = match timeout {
        Some(t) => tokio::time::timeout(t, run_tries(cluster, retries, &template, &mut body, outcome))
            .await
            .ok(),
        None => Some(run_tries(cluster, retries, &template, &mut body, outcome).await),
    };
    let Some(result) = result else {
        return fail(
            outcome,
            Flags::UT,
            "upstream_response_timeout",
            StatusCode::GATEWAY_TIMEOUT,
            reply::TIMEOUT,
        );
    };
    let (resp, ep_guard, sent_at) = match result {
        Ok(ok) => ok,
        Err((e, retried)) => {
            let (flag, details, status, body) = match e {
                TryError::ConnectFailure => (
                    Flags::UF,
                    "upstream_reset_before_response_started{connection_failure}",
                    StatusCode::SERVICE_UNAVAILABLE,
                    if retried {
                        reply::CONNECT_FAILURE_RETRIED
                    } else {
                        reply::CONNECT_FAILURE
                    },
                ),
                TryError::NoHealthy => (
                    Flags::UH,
                    "no_healthy_upstream",
                    StatusCode::SERVICE_UNAVAILABLE,
                    reply::NO_HEALTHY,
                ),
                TryError::PerTryTimeout => (
                    Flags::UT,
                    "upstream_per_try_timeout",
                    StatusCode::GATEWAY_TIMEOUT,
                    reply::TIMEOUT,
                ),
                TryError::Reset | TryError::RefusedStream => (
                    Flags::UC,
                    "upstream_reset_before_response_started{connection_termination}",
                    StatusCode::SERVICE_UNAVAILABLE,
                    reply::RESET,
                ),
            };
            return fail(outcome, flag, details, status, body);
        }
    };
    let responded_at = Instant::now();
    let upstream_time = responded_at.saturating_duration_since(sent_at);
    outcome.upstream_time = Some(upstream_time);
    outcome.responded_at = Some(responded_at);
    outcome.details = "via_upstream";
    let (mut rparts, rbody) = resp.into_parts();
    strip_hop_by_hop(&mut rparts.headers);
    route.headers.response.apply(&mut rparts.headers);
    dest.headers.response.apply(&mut rparts.headers);
    // Set on the response as it is written (`pipeline::Stamp`), after everything else.
    outcome.service_time = Some(small_number(upstream_time.as_millis() as u64));
    if let (Some(cors), Some(origin)) = (&route.cors, &cors_origin) {
        cors.simple(origin, &mut rparts.headers);
    }
    Response::from_parts(
        rparts,
        RespBody::Upstream {
            body: rbody,
            _guards: (ep_guard, admitted),
        },
    )
}

fn fail(
    outcome: &mut Outcome,
    flag: Flags,
    details: &'static str,
    status: StatusCode,
    body: &'static str,
) -> Response<RespBody> {
    outcome.flags.insert(flag);
    outcome.details = details;
    local(status, body)
}

type TryOk = (Response<UpstreamBody>, Option<ActiveGuard>, Instant);

/// Tries the request up to `1 + attempts` times. On failure returns the last error and whether
/// a retry happened. Sets URX when the retry budget ran out on a retriable result.
async fn run_tries(
    cluster: &ClusterRt,
    retries: Option<&RetryPolicy>,
    template: &Template,
    body: &mut Either<Bytes, Option<ReqBody>>,
    outcome: &mut Outcome,
) -> Result<TryOk, (TryError, bool)> {
    let max_tries = 1 + retries.map_or(0, |r| r.attempts);
    let mut tried = Tried::default();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = attempt >= max_tries;
        // Passthrough has no endpoints to balance over: it goes where the request says.
        let picked = if cluster.passthrough {
            None
        } else {
            let Some((ep_idx, ep_guard)) = cluster.pick(tried.as_slice()) else {
                return Err((TryError::NoHealthy, attempt > 1));
            };
            tried.push(ep_idx);
            outcome.endpoint = Some(ep_idx);
            Some((ep_idx, ep_guard))
        };
        let up_body: UpBody = match body {
            Either::Left(b) => Either::Left(Full::new(b.clone())),
            Either::Right(stream) => match stream.take() {
                Some(s) => Either::Right(s),
                // Only reachable without a retry policy, where there is a single try.
                None => Either::Left(Full::new(Bytes::new())),
            },
        };
        let attempt_count = (attempt > 1).then(|| small_number(u64::from(attempt)));
        let head = template.head(attempt_count.as_ref());
        let sent_at = Instant::now();
        let per_try = retries.and_then(|r| r.per_try_timeout);
        let ep = picked.as_ref().and_then(|(i, _)| cluster.endpoints.get(*i));
        // The send future is built where it is awaited, with no wrapper of our own around it:
        // every layer of async fn would copy the request and the response once more.
        let res = match (target(ep, template), per_try) {
            (None, _) => Err(TryError::ConnectFailure),
            (Some((addr, authority)), Some(t)) => {
                match tokio::time::timeout(t, cluster.upstream.send(addr, &authority, head, up_body)).await {
                    Ok(sent) => sent.map_err(try_error),
                    Err(_) => Err(TryError::PerTryTimeout),
                }
            }
            (Some((addr, authority)), None) => cluster
                .upstream
                .send(addr, &authority, head, up_body)
                .await
                .map_err(try_error),
        };
        if let Some((ep_idx, _)) = &picked {
            cluster.report(*ep_idx, res.as_ref().ok().map(|r| r.status().as_u16()));
        }
        match res {
            Ok(resp) => {
                let retriable = retries.is_some_and(|r| r.retries_status(resp.status().as_u16()));
                if retriable && !last {
                    drop(resp);
                    backoff(attempt).await;
                    continue;
                }
                if retriable {
                    outcome.flags.insert(Flags::URX);
                }
                return Ok((resp, picked.map(|(_, g)| g), sent_at));
            }
            Err(e) => {
                let retriable = retries.is_some_and(|r| retries_error(r, e));
                if retriable && !last {
                    backoff(attempt).await;
                    continue;
                }
                if retriable {
                    outcome.flags.insert(Flags::URX);
                }
                return Err((e, attempt > 1));
            }
        }
    }
}

/// Endpoints a request already tried: inline for the usual few tries, so no allocation.
#[derive(Default)]
struct Tried {
    inline: [usize; 4],
    len: usize,
    spill: Vec<usize>,
}

impl Tried {
    fn push(&mut self, i: usize) {
        if self.spill.is_empty()
            && let Some(slot) = self.inline.get_mut(self.len)
        {
            *slot = i;
            self.len += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.inline);
        }
        self.spill.push(i);
    }

    fn as_slice(&self) -> &[usize] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

/// Envoy counts any reset as a 5xx for `5xx` and `gateway-error`; `connect-failure` and
/// `refused-stream` are narrower.
fn retries_error(r: &RetryPolicy, e: TryError) -> bool {
    if e == TryError::NoHealthy {
        return false;
    }
    r.on.five_xx
        || r.on.gateway_error
        || r.on.reset
        || (r.on.connect_failure && e == TryError::ConnectFailure)
        || (r.on.refused_stream && e == TryError::RefusedStream)
}

/// Fully jittered exponential back-off, Envoy's default (25 ms base, 250 ms cap).
async fn backoff(attempt: u32) {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(4).saturating_sub(1))
        .min(BACKOFF_MAX);
    let ms = rand::random_range(0..=ceiling.as_millis() as u64);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Statics, not consts: [`Template::head`] lends them out.
static ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
static FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static FIRST_ATTEMPT: HeaderValue = HeaderValue::from_static("1");

impl Template {
    /// A try's request head: the template's, with the try's attempt count (1 when `None`) in
    /// place of any the client sent, and `x-forwarded-proto` when the client sent none.
    /// Borrowed: the HTTP/1.1 connection writes it without a copy. Both fields are written by
    /// the encoder rather than kept in the map: a hashed insert or lookup of a custom name cost
    /// ~200–250 instructions a request each, the encoder's name comparisons a few.
    fn head<'a>(&'a self, attempt_count: Option<&'a HeaderValue>) -> RequestHead<'a> {
        RequestHead {
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            raw: self.raw.as_ref(),
            replace: Some((&ATTEMPT_COUNT, attempt_count.unwrap_or(&FIRST_ATTEMPT))),
            default: Some((&FORWARDED_PROTO, &self.forwarded_proto)),
            block: self.block,
        }
    }
}

/// `x-forwarded-proto` for a scheme: from statics, whose values were checked when compiled
/// (`from_static` on a runtime string checks every byte again).
fn forwarded_proto(scheme: &str) -> HeaderValue {
    static HTTP: HeaderValue = HeaderValue::from_static("http");
    static HTTPS: HeaderValue = HeaderValue::from_static("https");
    match scheme {
        "https" => HTTPS.clone(),
        "http" => HTTP.clone(),
        other => HeaderValue::from_str(other).unwrap_or_else(|_| HTTP.clone()),
    }
}

/// A header value for a count or a duration in milliseconds. The small ones, nearly all of them
/// (attempt counts, service times on a mesh), come from a static table instead of an allocation.
fn small_number(n: u64) -> HeaderValue {
    // Statics: their values are checked when compiled, not on every use.
    static SMALL: [HeaderValue; 20] = {
        const fn v(s: &'static str) -> HeaderValue {
            HeaderValue::from_static(s)
        }
        [
            v("0"),
            v("1"),
            v("2"),
            v("3"),
            v("4"),
            v("5"),
            v("6"),
            v("7"),
            v("8"),
            v("9"),
            v("10"),
            v("11"),
            v("12"),
            v("13"),
            v("14"),
            v("15"),
            v("16"),
            v("17"),
            v("18"),
            v("19"),
        ]
    };
    match SMALL.get(n as usize) {
        Some(v) => v.clone(),
        None => HeaderValue::from(n),
    }
}

/// Where one try goes: endpoint `ep` of the cluster, or for passthrough (no endpoint, `None`
/// address) the request's own authority.
fn target(ep: Option<&EndpointRt>, template: &Template) -> Option<(Option<SocketAddr>, Authority)> {
    match ep {
        Some(ep) => Some((Some(ep.addr), ep.authority.clone())),
        None => match &template.raw {
            Some(raw) => raw.host_bytes(),
            None => template.headers.get(header::HOST).map(HeaderValue::as_bytes),
        }
        .and_then(|h| Authority::try_from(h).ok())
        .map(|a| (None, a)),
    }
}

fn try_error(e: SendError) -> TryError {
    match e {
        SendError::Connect => TryError::ConnectFailure,
        SendError::Refused => TryError::RefusedStream,
        SendError::Reset => TryError::Reset,
    }
}

/// Fire-and-forget copy to a mirror cluster; its response (or failure) is discarded.
fn mirror(snap: &Snapshot, cluster: Option<usize>, template: &Template, body: Bytes) {
    let Some(ci) = cluster else { return };
    let Some(c) = snap.clusters.get(ci) else { return };
    let Some((ep_idx, guard)) = c.pick(&[]) else {
        return;
    };
    let Some(ep) = c.endpoints.get(ep_idx) else { return };
    let template = Template {
        method: template.method.clone(),
        path: template.path.clone(),
        headers: template.headers.clone(),
        raw: template.raw.clone(),
        forwarded_proto: template.forwarded_proto.clone(),
        // Its response is dropped unread.
        block: true,
    };
    let (upstream, addr, authority) = (c.upstream.clone(), ep.addr, ep.authority.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let body = Either::Left(Full::new(body));
        if let Ok(resp) = upstream
            .send(Some(addr), &authority, template.head(None), body)
            .await
        {
            // Drain so the pooled connection can be reused.
            let _ = resp.into_body().collect().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tried_keeps_every_endpoint_in_order_past_the_inline_ones() {
        let mut t = Tried::default();
        assert!(t.as_slice().is_empty());
        for i in 0..7 {
            t.push(10 + i);
            assert_eq!(t.as_slice(), (10..=10 + i).collect::<Vec<_>>().as_slice());
        }
    }

    #[test]
    fn forwarded_proto_names_the_scheme() {
        assert_eq!(forwarded_proto("http"), "http");
        assert_eq!(forwarded_proto("https"), "https");
    }

    #[test]
    fn small_numbers_render_like_any_number() {
        for n in [0u64, 1, 9, 10, 19, 20, 250, 12345] {
            assert_eq!(small_number(n), HeaderValue::from(n), "{n}");
        }
    }
}
