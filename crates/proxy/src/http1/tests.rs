use proptest::prelude::*;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::client::{Head, RequestHead, encode_request_head, parse_response_head};
use super::fields::render_decimal;
use super::framing::{self, Chunk, Decoded, Framing, encode_chunk, push_chunk};
use super::server::{self, BodyFraming, ResponseFacts, encode_response_head, parse_request_head};
use super::*;

fn head(raw: &[u8], method: &Method) -> Result<Option<Head>, WireError> {
    parse_response_head(&mut BytesMut::from(raw), method, false)
}

fn complete(raw: &[u8]) -> Head {
    head(raw, &Method::GET).unwrap().unwrap()
}

/// Feeds `wire` to a decoder in reads of the given sizes (cycled) and collects the body.
fn decode_all(
    mut framing: Framing,
    wire: &[u8],
    reads: &[usize],
) -> Result<(Vec<u8>, Option<HeaderMap>), WireError> {
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut trailers = None;
    let mut fed = 0;
    let mut read = reads.iter().cycle();
    loop {
        match framing.decode(&mut buf)? {
            Decoded::Data(d) => {
                assert!(!d.is_empty(), "data steps are never empty");
                body.extend_from_slice(&d);
            }
            Decoded::Trailers(t) => trailers = Some(t),
            Decoded::End => return Ok((body, trailers)),
            Decoded::More if fed == wire.len() => {
                framing.at_eof()?;
                return Ok((body, trailers));
            }
            Decoded::More => {
                let n = (*read.next().unwrap_or(&1)).clamp(1, wire.len() - fed);
                buf.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
            }
        }
    }
}

fn chunked(body: &[u8], sizes: &[usize], trailer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut size = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*size.next().unwrap_or(&1)).clamp(1, rest.len());
        // Upper-case hex and a chunk extension, both legal.
        out.extend_from_slice(format!("{n:X};ext=1\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"x-checksum: abc\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn a_head_is_split_off_and_its_values_share_the_read_buffer() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nok"[..]);
    let start = buf.as_ptr() as usize;
    let h = parse_response_head(&mut buf, &Method::GET, false)
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..], b"ok", "the body stays in the buffer");
    assert_eq!(h.response.status(), StatusCode::OK);
    assert_eq!(h.response.version(), Version::HTTP_11);
    assert_eq!(h.framing, Framing::Length(2));
    assert!(h.keep_alive);
    let values: Vec<_> = h.response.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    let at = values[0].as_bytes().as_ptr() as usize;
    assert!(
        at > start && at < start + 60,
        "the value was not copied out of the head"
    );
}

#[test]
fn an_incomplete_head_asks_for_more() {
    assert!(
        head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n", &Method::GET)
            .unwrap()
            .is_none()
    );
    assert!(head(b"", &Method::GET).unwrap().is_none());
}

#[test]
fn framing_follows_rfc_9112() {
    let cases: [(&[u8], Method, Framing, bool); 9] = [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            Method::HEAD,
            Framing::Done,
            true,
        ),
        (
            b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
            Method::GET,
            Framing::Done,
            true,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\n\r\n",
            Method::GET,
            Framing::Done,
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
            Method::GET,
            Framing::Chunked(Chunk::Size),
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            Method::GET,
            Framing::UntilClose,
            false,
        ),
        // Both: chunked wins and the connection is not reused (a smuggling attempt, maybe).
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            Method::GET,
            Framing::Chunked(Chunk::Size),
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\n\r\n",
            Method::GET,
            Framing::UntilClose,
            false,
        ),
        (
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
            Method::GET,
            Framing::Length(1),
            false,
        ),
        (
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\nconnection: Keep-Alive\r\n\r\n",
            Method::GET,
            Framing::Length(1),
            true,
        ),
    ];
    for (raw, method, framing, keep_alive) in cases {
        let h = head(raw, &method).unwrap().unwrap();
        let text = String::from_utf8_lossy(raw);
        assert_eq!(h.framing, framing, "{text}");
        assert_eq!(h.keep_alive, keep_alive, "{text}");
    }
    let h = complete(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: x-a, close\r\n\r\n");
    assert!(!h.keep_alive);
    let h = complete(b"HTTP/1.1 200 OK\r\ncontent-length: 4, 4\r\ncontent-length: 4\r\n\r\n");
    assert_eq!(h.framing, Framing::Length(4));
}

#[test]
fn bad_heads_are_errors() {
    let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "x-a: 1\r\n".repeat(MAX_HEADERS + 1));
    let long = format!("HTTP/1.1 200 OK\r\nx-a: {}", "a".repeat(MAX_HEAD + 1));
    for raw in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length:\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        many.as_bytes(),
        long.as_bytes(),
    ] {
        assert!(
            head(raw, &Method::GET).is_err(),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn a_chunked_body_with_trailers_decodes() {
    let wire = b"2\r\nok\r\n3;name=value\r\n!!!\r\n0\r\nx-sum: 1\r\n\r\n";
    let (body, trailers) = decode_all(Framing::Chunked(Chunk::Size), wire, &[1, 5, 2]).unwrap();
    assert_eq!(body, b"ok!!!");
    assert_eq!(trailers.unwrap()["x-sum"], "1");
}

#[test]
fn broken_bodies_are_errors() {
    let chunked = Framing::Chunked(Chunk::Size);
    assert!(decode_all(chunked, b"zz\r\nok\r\n0\r\n\r\n", &[64]).is_err());
    assert!(decode_all(chunked, b"2\r\nokX\r\n0\r\n\r\n", &[64]).is_err());
    // The connection closed early.
    assert!(matches!(
        decode_all(chunked, b"2\r\nok\r\n", &[64]),
        Err(WireError::Closed)
    ));
    assert!(matches!(
        decode_all(Framing::Length(5), b"ok", &[64]),
        Err(WireError::Closed)
    ));
    // Close-delimited bodies end at the close.
    let (body, _) = decode_all(Framing::UntilClose, b"all of it", &[3]).unwrap();
    assert_eq!(body, b"all of it");
}

#[test]
fn a_length_body_leaves_what_follows_it_in_the_buffer() {
    let mut buf = BytesMut::from(&b"okHTTP/1.1"[..]);
    let mut f = Framing::Length(2);
    assert_eq!(
        f.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"ok"))
    );
    assert_eq!(f.decode(&mut buf).unwrap(), Decoded::End);
    assert_eq!(&buf[..], b"HTTP/1.1");
    assert!(f.is_end());
}

fn request(method: Method, headers: &[(&'static str, &'static str)]) -> Parts {
    let mut req = http::Request::builder()
        .method(method)
        .uri("/a/b?c=d")
        .body(())
        .unwrap();
    for (n, v) in headers {
        req.headers_mut().append(*n, HeaderValue::from_static(v));
    }
    req.into_parts().0
}

fn encoded(parts: &Parts, length: Option<u64>) -> (String, bool) {
    encoded_with(parts, None, length)
}

fn encoded_with(
    parts: &Parts,
    replace: Option<(&HeaderName, &HeaderValue)>,
    length: Option<u64>,
) -> (String, bool) {
    let path = parts.uri.path_and_query().unwrap().clone();
    let head = RequestHead {
        method: &parts.method,
        path: &path,
        headers: &parts.headers,
        raw: None,
        replace,
        default: None,
        block: false,
    };
    let mut out = Vec::new();
    let chunked = encode_request_head(head, "default.host", length, &mut out);
    (String::from_utf8(out).unwrap(), chunked)
}

#[test]
fn request_heads_carry_the_framing_of_the_body_sent() {
    let get = request(Method::GET, &[("host", "svc"), ("x-a", "1")]);
    assert_eq!(
        encoded(&get, Some(0)),
        (
            "GET /a/b?c=d HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\n\r\n".to_string(),
            false
        )
    );
    let post = request(Method::POST, &[("host", "svc")]);
    assert_eq!(
        encoded(&post, Some(0)).0,
        "POST /a/b?c=d HTTP/1.1\r\nhost: svc\r\ncontent-length: 0\r\n\r\n"
    );
    // The client's own framing fields are replaced by the body's.
    let streamed = request(
        Method::PUT,
        &[
            ("content-length", "7"),
            ("transfer-encoding", "chunked"),
            ("host", "svc"),
        ],
    );
    assert_eq!(
        encoded(&streamed, None),
        (
            "PUT /a/b?c=d HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n".to_string(),
            true
        )
    );
    assert_eq!(
        encoded(&streamed, Some(12345)).0,
        "PUT /a/b?c=d HTTP/1.1\r\nhost: svc\r\ncontent-length: 12345\r\n\r\n"
    );
    // A GET that said `content-length: 0` still says it; without a Host, the endpoint's goes.
    let get0 = request(Method::GET, &[("content-length", "0")]);
    assert_eq!(
        encoded(&get0, Some(0)).0,
        "GET /a/b?c=d HTTP/1.1\r\nhost: default.host\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn a_retry_replaces_the_attempt_count_of_the_borrowed_head() {
    let template = request(
        Method::GET,
        &[("host", "svc"), ("x-envoy-attempt-count", "1"), ("x-a", "1")],
    );
    let name = HeaderName::from_static("x-envoy-attempt-count");
    let two = HeaderValue::from_static("2");
    assert_eq!(
        encoded_with(&template, Some((&name, &two)), Some(0)).0,
        "GET /a/b?c=d HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\nx-envoy-attempt-count: 2\r\n\r\n"
    );
    // The owned copy hyper's clients take says the same.
    let path = template.uri.path_and_query().unwrap().clone();
    let head = RequestHead {
        method: &template.method,
        path: &path,
        headers: &template.headers,
        raw: None,
        replace: Some((&name, &two)),
        default: None,
        block: false,
    };
    let owned = head.to_request(());
    assert_eq!(owned.headers()["x-envoy-attempt-count"], "2");
    assert_eq!(owned.uri(), "/a/b?c=d");
    assert_eq!(
        template.headers["x-envoy-attempt-count"], "1",
        "the template is untouched"
    );
}

#[test]
fn a_default_field_is_written_only_when_the_head_has_none_of_that_name() {
    let name = HeaderName::from_static("x-forwarded-proto");
    let http = HeaderValue::from_static("http");
    for (sent, expected) in [
        (
            &[("host", "svc")][..],
            "GET /a/b?c=d HTTP/1.1\r\nhost: svc\r\nx-forwarded-proto: http\r\n\r\n",
        ),
        (
            &[("host", "svc"), ("x-forwarded-proto", "https")][..],
            "GET /a/b?c=d HTTP/1.1\r\nhost: svc\r\nx-forwarded-proto: https\r\n\r\n",
        ),
    ] {
        let template = request(Method::GET, sent);
        let path = template.uri.path_and_query().unwrap().clone();
        let head = RequestHead {
            method: &template.method,
            path: &path,
            headers: &template.headers,
            raw: None,
            replace: None,
            default: Some((&name, &http)),
            block: false,
        };
        let mut out = Vec::new();
        encode_request_head(head, "default.host", Some(0), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // The owned copy hyper's clients take says the same.
        let owned = head.to_request(());
        let values: Vec<_> = owned.headers().get_all(&name).iter().collect();
        assert_eq!(values.len(), 1);
        assert_eq!(
            values[0],
            expected
                .split("x-forwarded-proto: ")
                .nth(1)
                .unwrap()
                .split('\r')
                .next()
                .unwrap()
        );
    }
}

#[test]
fn chunks_are_framed_with_their_hex_size() {
    assert_eq!(&encode_chunk(&[b'a'; 26])[..4], b"1a\r\n");
    assert_eq!(&encode_chunk(b"ok")[..], b"2\r\nok\r\n");
}

proptest! {
    #[test]
    fn chunked_bodies_decode_to_what_was_sent_however_they_are_cut(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..80, 1..6),
        reads in proptest::collection::vec(1usize..50, 1..6),
        trailer in any::<bool>(),
    ) {
        let wire = chunked(&body, &sizes, trailer);
        let (got, trailers) = decode_all(Framing::Chunked(Chunk::Size), &wire, &reads).unwrap();
        prop_assert_eq!(got, body);
        prop_assert_eq!(trailers.is_some(), trailer);
    }

    #[test]
    fn length_bodies_decode_to_what_was_sent_however_they_are_cut(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        reads in proptest::collection::vec(1usize..50, 1..6),
    ) {
        let (got, _) = decode_all(Framing::Length(body.len() as u64), &body, &reads).unwrap();
        prop_assert_eq!(got, body);
    }

    #[test]
    fn a_head_parses_the_same_whatever_the_reads(cut in 1usize..60, len in 0u64..1_000_000) {
        let raw = format!("HTTP/1.1 201 Created\r\ncontent-length: {len}\r\nx-b: v\r\n\r\n");
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in raw.as_bytes().chunks(cut) {
            prop_assert!(got.is_none(), "complete before the last byte");
            buf.extend_from_slice(piece);
            got = parse_response_head(&mut buf, &Method::GET, false).unwrap();
        }
        let h = got.unwrap();
        prop_assert_eq!(h.framing, Framing::Length(len));
        prop_assert_eq!(h.response.status(), StatusCode::CREATED);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = head(&raw, &Method::GET);
        let _ = decode_all(Framing::Chunked(Chunk::Size), &raw, &[7]);
    }

    #[test]
    fn lengths_render_like_display(n in any::<u64>()) {
        let mut digits = [0u8; 20];
        let shown = n.to_string();
        prop_assert_eq!(render_decimal(n, &mut digits), shown.as_bytes());
    }
}

fn request_head(raw: &[u8]) -> Result<Option<server::RequestHead>, WireError> {
    parse_request_head(&mut BytesMut::from(raw), &mut None)
}

#[test]
fn request_heads_parse_with_their_framing_and_persistence() {
    let mut buf = BytesMut::from(
        &b"POST /a?b=c HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcGET"[..],
    );
    let h = parse_request_head(&mut buf, &mut None).unwrap().unwrap();
    assert_eq!(
        &buf[..],
        b"abcGET",
        "the body and what follows stay in the buffer"
    );
    assert_eq!(h.request.method(), Method::POST);
    assert_eq!(h.request.uri().path(), "/a");
    assert_eq!(h.request.uri().query(), Some("b=c"));
    assert_eq!(h.request.headers()["host"], "svc");
    assert_eq!(h.framing, Framing::Length(3));
    assert!(h.keep_alive && h.expect_continue);

    let cases: [(&[u8], Framing, bool); 6] = [
        (b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", Framing::Done, true),
        (
            b"GET / HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
            Framing::Done,
            true,
        ),
        (
            b"PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
            Framing::Chunked(Chunk::Size),
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n",
            Framing::Done,
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", Framing::Done, false),
        (
            b"GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
            Framing::Done,
            true,
        ),
    ];
    for (raw, framing, keep_alive) in cases {
        let h = request_head(raw).unwrap().unwrap();
        let text = String::from_utf8_lossy(raw);
        assert_eq!((h.framing, h.keep_alive), (framing, keep_alive), "{text}");
        assert!(!h.expect_continue, "{text}");
    }
    // An explicit proxy's absolute-form target keeps its authority.
    let h = request_head(b"GET http://reviews:9080/r HTTP/1.1\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        h.request.uri().authority().map(|a| a.as_str()),
        Some("reviews:9080")
    );
    assert!(request_head(b"GET / HTTP/1.1\r\nhost: a\r\n").unwrap().is_none());
}

#[test]
fn ambiguous_or_oversized_request_heads_are_refused() {
    for raw in [
        // Request smuggling shapes (RFC 9112 §6.1, §6.3).
        &b"POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: +3\r\n\r\n",
        b"G@T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
    ] {
        let got = request_head(raw);
        assert!(
            matches!(got, Err(WireError::Head(_))),
            "{}: {got:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "x-a: 1\r\n".repeat(MAX_HEADERS + 1));
    assert!(matches!(
        request_head(many.as_bytes()),
        Err(WireError::TooLarge(_))
    ));
    let long = format!("GET / HTTP/1.1\r\nx-a: {}", "a".repeat(MAX_HEAD + 1));
    assert!(matches!(
        request_head(long.as_bytes()),
        Err(WireError::TooLarge(_))
    ));
    // More fields than fit on the stack, fewer than the limit: parsed on the second try.
    let fifty = format!("GET / HTTP/1.1\r\n{}\r\n", "x-a: 1\r\n".repeat(50));
    let h = request_head(fifty.as_bytes()).unwrap().unwrap();
    let fields = h.raw.expect("plain fields").into_map(HeaderMap::new());
    assert_eq!(fields.get_all("x-a").iter().count(), 50);
}

fn facts(status: u16) -> ResponseFacts {
    ResponseFacts {
        status: StatusCode::from_u16(status).unwrap(),
        head_request: false,
        http10: false,
        keep_alive: true,
        body_length: None,
    }
}

fn response_head(
    facts: ResponseFacts,
    headers: &[(&'static str, &'static str)],
) -> (String, BodyFraming, bool) {
    let mut map = HeaderMap::new();
    for (n, v) in headers {
        map.append(*n, HeaderValue::from_static(v));
    }
    let mut out = Vec::new();
    let (framing, keep) = encode_response_head(facts, None, &map, std::iter::empty(), &mut out);
    (String::from_utf8(out).unwrap(), framing, keep)
}

#[test]
fn the_proxys_own_response_fields_replace_the_responses() {
    let mut map = HeaderMap::new();
    map.append("server", HeaderValue::from_static("backend"));
    map.append("x-a", HeaderValue::from_static("1"));
    map.append("server", HeaderValue::from_static("second"));
    let server = HeaderName::from_static("server");
    let envoy = HeaderValue::from_static("envoy");
    let time = HeaderName::from_static("x-envoy-upstream-service-time");
    let three = HeaderValue::from_static("3");
    let mut out = Vec::new();
    let replace = [(&server, &envoy), (&time, &three)];
    let facts = ResponseFacts {
        body_length: Some(0),
        ..facts(200)
    };
    encode_response_head(facts, None, &map, replace.iter().copied(), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "HTTP/1.1 200 OK\r\nx-a: 1\r\nserver: envoy\r\nx-envoy-upstream-service-time: 3\r\ndate: "
        ),
        "{text}"
    );
    assert_eq!(text.matches("server:").count(), 1, "{text}");
}

#[test]
fn response_heads_frame_the_body_for_the_client() {
    let date = ("date", "Thu, 26 Nov 2026 16:00:00 GMT");
    // The response's own length is kept; its transfer-encoding and connection are ours.
    let (text, framing, keep) = response_head(
        facts(200),
        &[
            ("content-length", "5"),
            ("transfer-encoding", "chunked"),
            ("connection", "x"),
            date,
        ],
    );
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\ndate: Thu, 26 Nov 2026 16:00:00 GMT\r\ncontent-length: 5\r\n\r\n"
    );
    assert_eq!((framing, keep), (BodyFraming::Length(5), true));
    // Unknown length: chunked for HTTP/1.1, until the close for HTTP/1.0.
    let (text, framing, _) = response_head(facts(200), &[date]);
    assert!(text.ends_with("transfer-encoding: chunked\r\n\r\n"), "{text}");
    assert_eq!(framing, BodyFraming::Chunked);
    let (text, framing, keep) = response_head(
        ResponseFacts {
            http10: true,
            ..facts(200)
        },
        &[date],
    );
    assert!(text.ends_with("connection: close\r\n\r\n"), "{text}");
    assert_eq!((framing, keep), (BodyFraming::UntilClose, false));
    // An HTTP/1.0 client that keeps the connection is told so.
    let (text, _, keep) = response_head(
        ResponseFacts {
            http10: true,
            body_length: Some(0),
            ..facts(200)
        },
        &[date],
    );
    assert!(
        text.ends_with("content-length: 0\r\nconnection: keep-alive\r\n\r\n"),
        "{text}"
    );
    assert!(keep);
    // HEAD describes the body without sending it; 204 has no length at all.
    let (text, framing, _) = response_head(
        ResponseFacts {
            head_request: true,
            ..facts(200)
        },
        &[("content-length", "9"), date],
    );
    assert!(text.contains("content-length: 9\r\n"), "{text}");
    assert_eq!(framing, BodyFraming::None);
    let (text, framing, _) = response_head(facts(204), &[("content-length", "9"), date]);
    assert!(!text.contains("content-length"), "{text}");
    assert_eq!(framing, BodyFraming::None);
    // A missing Date is added; a closing connection says so.
    let (text, _, keep) = response_head(
        ResponseFacts {
            keep_alive: false,
            body_length: Some(2),
            ..facts(503)
        },
        &[],
    );
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\ndate: "),
        "{text}"
    );
    assert!(
        text.ends_with(" GMT\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"),
        "{text}"
    );
    assert!(!keep);
}

proptest! {
    #[test]
    fn chunks_written_decode_to_the_same_bytes(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..6),
        reads in proptest::collection::vec(1usize..40, 1..4),
    ) {
        let mut wire = Vec::new();
        for p in &pieces {
            push_chunk(p, &mut wire);
        }
        wire.extend_from_slice(framing::LAST_CHUNK);
        let (got, trailers) = decode_all(Framing::Chunked(Chunk::Size), &wire, &reads).unwrap();
        prop_assert_eq!(got, pieces.concat());
        prop_assert!(trailers.is_none());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_request_parser(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = request_head(&raw);
    }
}

#[test]
fn a_spare_map_is_emptied_grown_and_filled_with_the_new_head_only() {
    // A response's map, as a connection hands it back (with fields still in it).
    let mut old = HeaderMap::with_capacity(2);
    old.insert("x-old", HeaderValue::from_static("1"));
    old.insert("content-type", HeaderValue::from_static("text/plain"));
    let mut spare = Some(old);
    // `Connection` takes the head to the map (see `http1::raw`).
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive\r\n");
    for i in 0..40 {
        raw.push_str(&format!("x-field-{i}: v{i}\r\n"));
    }
    raw.push_str("\r\n");
    let h = parse_request_head(&mut BytesMut::from(raw.as_bytes()), &mut spare)
        .unwrap()
        .unwrap();
    assert!(spare.is_none(), "the spare map was used");
    let headers = h.request.headers();
    assert_eq!(headers.len(), 42);
    assert!(!headers.contains_key("x-old") && !headers.contains_key("content-type"));
    assert_eq!(headers["x-field-39"], "v39");
    assert!(headers.capacity() >= 42 + 8, "room for the proxy's additions");
}
