//! Which inbound headers each service copies onto its upstream calls.
//!
//! Istio cannot join spans or route on `end-user` unless the application forwards these headers;
//! the lists are the ones in the Bookinfo sources.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The list details and reviews forward verbatim.
pub(crate) const PROPAGATION: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// productpage copies these as they are; b3 goes through its tracer and `end-user` comes from the
/// session instead.
const PRODUCTPAGE_COPIED: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "sw8",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// What python-requests sends when productpage's caller sent no User-Agent.
const PYTHON_REQUESTS_AGENT: &str = "python-requests/2.32.3";

/// The first value of each listed header (as Java's `getHeaderString` joins repeats, so do we).
fn copy_listed(inbound: &HeaderMap, names: &[&'static str], out: &mut Vec<(HeaderName, HeaderValue)>) {
    for name in names {
        let values: Vec<&HeaderValue> = inbound.get_all(*name).iter().collect();
        let value = match values.as_slice() {
            [] => continue,
            [one] => (*one).clone(),
            many => {
                let joined: Vec<&[u8]> = many.iter().map(|v| v.as_bytes()).collect();
                match HeaderValue::from_bytes(&joined.join(&b","[..])) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            }
        };
        out.push((HeaderName::from_static(name), value));
    }
}

/// The headers details and reviews forward.
pub(crate) fn propagated(inbound: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    copy_listed(inbound, PROPAGATION, &mut out);
    out
}

/// The headers productpage sends upstream: b3 as its B3 propagator re-injects it, `end-user` from
/// the session, the copied list, and python-requests' default User-Agent and Accept.
pub(crate) fn productpage_forward(inbound: &HeaderMap, user: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Some(ctx) = B3Context::extract(inbound) {
        out.push((
            HeaderName::from_static("x-b3-traceid"),
            header_value(&format!("{:032x}", ctx.trace_id)),
        ));
        out.push((
            HeaderName::from_static("x-b3-spanid"),
            header_value(&format!("{:016x}", ctx.span_id)),
        ));
        out.push((
            HeaderName::from_static("x-b3-sampled"),
            header_value(if ctx.sampled { "1" } else { "0" }),
        ));
    }
    if let Some(user) = user
        && let Ok(value) = HeaderValue::from_str(user)
    {
        out.push((HeaderName::from_static("end-user"), value));
    }
    copy_listed(inbound, PRODUCTPAGE_COPIED, &mut out);
    if !inbound.contains_key(http::header::USER_AGENT) {
        out.push((
            http::header::USER_AGENT,
            HeaderValue::from_static(PYTHON_REQUESTS_AGENT),
        ));
    }
    out.push((http::header::ACCEPT, HeaderValue::from_static("*/*")));
    out
}

fn header_value(s: &str) -> HeaderValue {
    // Only hex digits and "0"/"1" reach here, which are always valid header text.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A trace context as OpenTelemetry's B3 propagator extracts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct B3Context {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) sampled: bool,
}

impl B3Context {
    /// Reads a single `b3` header if present (it wins), else the `x-b3-*` headers. Invalid or
    /// all-zero ids give no context at all, so nothing is forwarded.
    pub(crate) fn extract(headers: &HeaderMap) -> Option<B3Context> {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (trace, span, sampled, flags) = match get("b3") {
            Some(single) => {
                let fields: Vec<&str> = single.split('-').collect();
                match fields.as_slice() {
                    [t, s] => (Some(t.to_string()), Some(s.to_string()), None, None),
                    [t, s, sampled] | [t, s, sampled, _] => (
                        Some(t.to_string()),
                        Some(s.to_string()),
                        Some(sampled.to_string()),
                        None,
                    ),
                    _ => return None,
                }
            }
            None => (
                get("x-b3-traceid"),
                get("x-b3-spanid"),
                get("x-b3-sampled"),
                get("x-b3-flags"),
            ),
        };
        let (trace, span) = (trace?, span?);
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if !((trace.len() == 16 || trace.len() == 32) && hex(&trace) && span.len() == 16 && hex(&span)) {
            return None;
        }
        let trace_id = u128::from_str_radix(&trace, 16).ok()?;
        let span_id = u64::from_str_radix(&span, 16).ok()?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        let sampled =
            matches!(sampled.as_deref(), Some("1" | "True" | "true" | "d")) || flags.as_deref() == Some("1");
        Some(B3Context {
            trace_id,
            span_id,
            sampled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(v: &[(HeaderName, HeaderValue)]) -> Vec<String> {
        v.iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect()
    }

    #[test]
    fn productpage_rewrites_b3_and_adds_session_user() {
        let inbound = map(&[
            ("X-B3-TraceId", "ABCDEF0123456789"),
            ("x-b3-spanid", "0123456789abcdef"),
            ("x-b3-parentspanid", "1111111111111111"),
            ("x-b3-sampled", "true"),
            ("x-b3-flags", "1"),
            ("x-request-id", "r1"),
            ("end-user", "mallory"),
        ]);
        let got = names(&productpage_forward(&inbound, Some("jason")));
        assert_eq!(
            got,
            [
                "x-b3-traceid: 0000000000000000abcdef0123456789",
                "x-b3-spanid: 0123456789abcdef",
                "x-b3-sampled: 1",
                "end-user: jason",
                "x-request-id: r1",
                "user-agent: python-requests/2.32.3",
                "accept: */*",
            ]
        );
    }

    #[test]
    fn b3_sampled_defaults_to_zero_and_single_header_wins() {
        let ctx = B3Context::extract(&map(&[
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"),
            ("x-b3-traceid", "1111111111111111"),
            ("x-b3-spanid", "2222222222222222"),
            ("x-b3-sampled", "1"),
        ]))
        .unwrap();
        assert_eq!(ctx.span_id, 0xe457b5a2e4d86bd1);
        assert!(!ctx.sampled);
        assert!(B3Context::extract(&map(&[("b3", "1")])).is_none());
        assert!(
            B3Context::extract(&map(&[
                ("x-b3-traceid", "xyz"),
                ("x-b3-spanid", "2222222222222222")
            ]))
            .is_none()
        );
    }

    #[test]
    fn details_and_reviews_copy_the_list() {
        let inbound = map(&[
            ("end-user", "jason"),
            ("x-b3-flags", "1"),
            ("other", "x"),
            ("cookie", "a=b"),
        ]);
        assert_eq!(
            names(&propagated(&inbound)),
            ["x-b3-flags: 1", "end-user: jason", "cookie: a=b"]
        );
    }

    proptest::proptest! {
        #[test]
        fn b3_extract_never_panics(trace in ".{0,40}", span in ".{0,20}", sampled in ".{0,3}") {
            let mut h = HeaderMap::new();
            for (k, v) in [("x-b3-traceid", &trace), ("x-b3-spanid", &span), ("x-b3-sampled", &sampled)] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            if let Some(ctx) = B3Context::extract(&h) {
                proptest::prop_assert!(ctx.trace_id != 0 && ctx.span_id != 0);
            }
        }
    }
}
