use super::RawFields;
use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use proptest::prelude::*;

use crate::http1::client::{RequestHead, encode_request_head};
use crate::http1::server::parse_request_head;

/// Parses `head` with the server's parser: its raw fields, or the map it built instead.
fn parse(head: &[u8]) -> (Option<RawFields>, HeaderMap) {
    let mut buf = BytesMut::from(head);
    let parsed = parse_request_head(&mut buf, &mut None)
        .expect("valid head")
        .expect("complete head");
    (parsed.raw, parsed.request.headers().clone())
}

/// What the map path builds from `head`, straight from `httparse`: the oracle.
fn oracle(head: &[u8]) -> Option<HeaderMap> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut fields);
    let httparse::Status::Complete(_) = req.parse(head).ok()? else {
        return None;
    };
    let mut map = HeaderMap::new();
    for f in req.headers.iter() {
        map.append(
            HeaderName::from_bytes(f.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(f.value).ok()?,
        );
    }
    Some(map)
}

#[test]
fn plain_fields_are_kept_lowercased_and_looked_up_by_scan() {
    let (raw, map) = parse(
        b"GET /x HTTP/1.1\r\nHost: Reviews:9080\r\nX-Custom: A\r\nUser-Agent: t\r\nx-custom: B\r\n\r\n",
    );
    let raw = raw.expect("plain");
    assert!(map.is_empty(), "nothing in the map: {map:?}");
    assert_eq!(
        raw.bytes(),
        b"host: Reviews:9080\r\nx-custom: A\r\nuser-agent: t\r\nx-custom: B\r\n"
    );
    assert_eq!(raw.host(), Some(Ok("Reviews:9080")));
    let custom = HeaderName::from_static("x-custom");
    assert_eq!(raw.get_all(&custom).collect::<Vec<_>>(), [&b"A"[..], b"B"]);
    assert!(raw.contains(&header::USER_AGENT) && !raw.contains(&header::ACCEPT));
    assert!(!raw.has_request_id && !raw.has_forwarded_proto);
    let (raw, _) = parse(b"GET / HTTP/1.1\r\nX-Request-Id: abc\r\nx-forwarded-proto: https\r\n\r\n");
    let raw = raw.expect("plain");
    assert!(raw.has_request_id && raw.has_forwarded_proto && raw.host().is_none());
    let (raw, _) = parse(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(raw.expect("no fields is plain").bytes(), b"");
}

#[test]
fn a_sidecars_attempt_count_stays_raw_and_is_replaced_upstream() {
    let (raw, map) = parse(b"GET / HTTP/1.1\r\nhost: a\r\nX-Envoy-Attempt-Count: 3\r\nx-b: c\r\n\r\n");
    let raw = raw.expect("one attempt count keeps the raw fields");
    assert!(map.is_empty());
    // Matches see what the client sent; the upstream gets the proxy's count instead.
    let attempt = HeaderName::from_static("x-envoy-attempt-count");
    assert_eq!(raw.get_all(&attempt).collect::<Vec<_>>(), [&b"3"[..]]);
    assert_eq!(
        String::from_utf8_lossy(&encode(Some(&raw), &HeaderMap::new())),
        "GET /p HTTP/1.1\r\nhost: a\r\nx-b: c\r\nx-envoy-attempt-count: 1\r\nx-forwarded-proto: http\r\n\r\n"
    );
}

#[test]
fn a_plain_content_length_stays_raw_frames_the_body_and_is_written_once() {
    let head =
        b"POST / HTTP/1.1\r\nX-Envoy-Attempt-Count: 2\r\nhost: a\r\nContent-Length: 5\r\nx-b: c\r\n\r\nhello";
    let mut buf = BytesMut::from(&head[..]);
    let parsed = parse_request_head(&mut buf, &mut None).unwrap().unwrap();
    assert_eq!(parsed.framing, crate::http1::framing::Framing::Length(5));
    assert_eq!(&buf[..], b"hello");
    let raw = parsed.raw.expect("a plain length keeps the raw fields");
    assert_eq!(raw.content_length(), Some(5));
    // Matches see it; the upstream gets the length of the body sent (here a retry's buffered
    // copy would say the same) and the proxy's attempt count, each once.
    let length = HeaderName::from_static("content-length");
    assert_eq!(raw.get_all(&length).collect::<Vec<_>>(), [&b"5"[..]]);
    assert_eq!(
        String::from_utf8_lossy(&encode_as(&Method::POST, Some(5), Some(&raw), &HeaderMap::new())),
        "POST /p HTTP/1.1\r\nhost: a\r\nx-b: c\r\nx-envoy-attempt-count: 1\r\nx-forwarded-proto: http\r\ncontent-length: 5\r\n\r\n"
    );
    // Streamed with no known length, the body goes chunked, without the client's length.
    assert_eq!(
        String::from_utf8_lossy(&encode_as(&Method::POST, None, Some(&raw), &HeaderMap::new())),
        "POST /p HTTP/1.1\r\nhost: a\r\nx-b: c\r\nx-envoy-attempt-count: 1\r\nx-forwarded-proto: http\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    // What is not a length stays an error: `http1::tests::ambiguous_or_oversized_request_heads_are_refused`.
    // A GET that says `Content-Length: 0` keeps saying it, as the map path does.
    let (raw, map) = parse(b"GET / HTTP/1.1\r\ncontent-length: 0\r\nhost: a\r\n\r\n");
    let raw = raw.expect("plain");
    assert!(map.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&encode(Some(&raw), &HeaderMap::new())),
        "GET /p HTTP/1.1\r\nhost: a\r\nx-envoy-attempt-count: 1\r\nx-forwarded-proto: http\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn fields_the_proxy_handles_and_unusual_layouts_take_the_map() {
    for head in [
        &b"GET / HTTP/1.1\r\nhost: a\r\nConnection: keep-alive\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0, 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nTE: trailers\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nkeep-alive: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nproxy-authorization: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nx-envoy-attempt-count: 3\r\nx-envoy-attempt-count: 4\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nx-envoy-upstream-rq-timeout-ms: 10\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost:a\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a \r\n\r\n",
        b"GET / HTTP/1.1\nhost: a\n\n",
    ] {
        let (raw, map) = parse(head);
        assert!(raw.is_none(), "{}", String::from_utf8_lossy(head));
        assert_eq!(Some(map), oracle(head), "{}", String::from_utf8_lossy(head));
    }
}

/// The field lines of an encoded head as (name, value), grouped by name in a stable order: a
/// map writes repeated names together, the raw fields in the order they came, and both are the
/// same message (RFC 9110 §5.3: only the order within one name counts).
fn fields_by_name(encoded: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(encoded);
    let mut lines: Vec<(String, String)> = text
        .split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

fn encode(raw: Option<&RawFields>, headers: &HeaderMap) -> Vec<u8> {
    encode_as(&Method::GET, Some(0), raw, headers)
}

fn encode_as(method: &Method, length: Option<u64>, raw: Option<&RawFields>, headers: &HeaderMap) -> Vec<u8> {
    let proto = HeaderName::from_static("x-forwarded-proto");
    let attempt = HeaderName::from_static("x-envoy-attempt-count");
    let (http, one) = (HeaderValue::from_static("http"), HeaderValue::from_static("1"));
    let path = http::uri::PathAndQuery::from_static("/p");
    let head = RequestHead {
        method,
        path: &path,
        headers,
        raw,
        replace: Some((&attempt, &one)),
        default: Some((&proto, &http)),
        block: false,
    };
    let mut out = Vec::new();
    encode_request_head(head, "fallback", length, &mut out);
    out
}

const NAMES: &[&str] = &[
    "Host",
    "host",
    "X-Request-Id",
    "x-forwarded-proto",
    "User-Agent",
    "accept",
    "X-B3-TraceId",
    "end-user",
    "Cookie",
    "x-a",
    "X-A",
    "content-type",
    "Connection",
    "TE",
    "x-envoy-attempt-count",
    "X-Envoy-Attempt-Count",
];

proptest! {
    /// For any fields: the raw fields are taken exactly when the map path would take no field
    /// out, they hold what the map path would hold, and the upstream gets the same fields.
    #[test]
    fn raw_fields_are_what_the_map_would_hold(
        fields in prop::collection::vec(
            (prop::sample::select(NAMES), "[ -~\t]{0,12}|[\\x80-\\xff]{1,3}"),
            0..20,
        ),
        id in prop::option::of("[a-f0-9]{8}"),
        length in prop::option::of((0usize..20, "[0-9]{1,6}")),
    ) {
        let mut fields = fields;
        if let Some((at, n)) = length {
            fields.insert(at.min(fields.len()), ("Content-Length", n));
        }
        let mut head = b"GET /p HTTP/1.1\r\n".to_vec();
        for (name, value) in &fields {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let Some(expected) = oracle(&head) else {
            // httparse refuses it: so does the server, either way.
            let mut buf = BytesMut::from(&head[..]);
            prop_assert!(parse_request_head(&mut buf, &mut None).is_err());
            return Ok(());
        };
        let (raw, map) = parse(&head);
        match raw {
            None => prop_assert_eq!(map, expected),
            Some(raw) => {
                // What the proxy adds before the request goes out.
                let mut added = HeaderMap::new();
                if let Some(id) = &id {
                    added.append("x-request-id", HeaderValue::from_str(id).expect("hex"));
                }
                let mut with_added = expected.clone();
                for (n, v) in &added {
                    with_added.append(n.clone(), v.clone());
                }
                let whole = raw.clone().into_map(added.clone());
                prop_assert_eq!(&whole, &with_added);
                prop_assert_eq!(
                    fields_by_name(&encode(Some(&raw), &added)),
                    fields_by_name(&encode(None, &whole))
                );
                // The same id made by the proxy and kept with the raw fields instead of in a map.
                let mut own = raw.clone();
                if let Some(id) = &id {
                    own.set_request_id(HeaderValue::from_str(id).expect("hex"));
                }
                let request_id = HeaderName::from_static("x-request-id");
                prop_assert_eq!(
                    own.get_all(&request_id).collect::<Vec<_>>(),
                    with_added.get_all(&request_id).iter().map(HeaderValue::as_bytes).collect::<Vec<_>>()
                );
                let empty = HeaderMap::new();
                prop_assert_eq!(own.clone().into_map(HeaderMap::new()), with_added);
                prop_assert_eq!(
                    fields_by_name(&encode(Some(&own), &empty)),
                    fields_by_name(&encode(None, &whole))
                );
                for name in NAMES {
                    let name = HeaderName::from_bytes(name.as_bytes()).expect("valid");
                    prop_assert_eq!(
                        own.get_all(&name).collect::<Vec<_>>(),
                        whole.get_all(&name).iter().map(HeaderValue::as_bytes).collect::<Vec<_>>()
                    );
                }
            }
        }
    }

    /// Arbitrary bytes never panic the fast path.
    #[test]
    fn arbitrary_heads_never_panic(tail in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        head.extend_from_slice(&tail);
        let mut buf = BytesMut::from(&head[..]);
        let _ = parse_request_head(&mut buf, &mut None);
    }
}
