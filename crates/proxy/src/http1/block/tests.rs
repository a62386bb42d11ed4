use bytes::BytesMut;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use proptest::prelude::*;

use crate::headers::strip_hop_by_hop;
use crate::http1::client::{Head, parse_response_head};
use crate::http1::framing::Framing;
use crate::http1::server::{ResponseFacts, encode_response_head};

fn parsed(raw: &[u8], as_block: bool) -> (Head, BytesMut) {
    let mut buf = BytesMut::from(raw);
    let head = parse_response_head(&mut buf, &Method::GET, as_block)
        .unwrap()
        .unwrap();
    (head, buf)
}

#[test]
fn fields_the_proxy_must_not_forward_or_writes_itself_are_cut_out_and_names_lowercased() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nServer: backend\r\n\
X-Envoy-Upstream-Service-Time: 9\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
Date: Fri, 27 Nov 2026 16:00:00 GMT\r\nUpgrade: h2c\r\nX-Custom: Value\r\n\r\nhello";
    let (head, rest) = parsed(raw, true);
    let block = head.block.expect("a plain head gives a block");
    assert_eq!(
        &block.bytes[..],
        b"content-type: text/plain\r\ndate: Fri, 27 Nov 2026 16:00:00 GMT\r\nx-custom: Value\r\n"
    );
    assert_eq!(block.content_length, Some(5));
    assert!(block.has_date);
    assert_eq!(block.get("x-custom"), Some(&b"Value"[..]));
    assert!(head.response.headers().is_empty(), "the map is left empty");
    assert_eq!(head.framing, Framing::Length(5));
    assert!(head.keep_alive);
    assert_eq!(&rest[..], b"hello", "the body stays in the read buffer");
}

#[test]
fn a_head_with_no_fields_gives_an_empty_block() {
    let (head, _) = parsed(b"HTTP/1.1 204 No Content\r\n\r\n", true);
    let block = head.block.unwrap();
    assert!(block.bytes.is_empty());
    assert!(!block.has_date);
    assert_eq!(block.content_length, None);
}

#[test]
fn unusual_heads_get_the_map() {
    for raw in [
        // Connection names another field, which must go too.
        &b"HTTP/1.1 200 OK\r\nConnection: X-A\r\nx-a: 1\r\ncontent-length: 0\r\n\r\n"[..],
        // Not `name: value`.
        b"HTTP/1.1 200 OK\r\nx-a:1\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a:  1\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a: 1 \r\ncontent-length: 0\r\n\r\n",
        // Bare LF line ends.
        b"HTTP/1.1 200 OK\nx-a: 1\ncontent-length: 0\n\n",
    ] {
        let text = String::from_utf8_lossy(raw);
        let (head, _) = parsed(raw, true);
        assert!(head.block.is_none(), "{text}");
        assert_eq!(head.response.headers()["x-a"], "1", "{text}");
        assert_eq!(head.framing, Framing::Length(0), "{text}");
    }
}

#[test]
fn framing_and_persistence_are_the_same_as_with_the_map() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 4, 4\r\nContent-Length: 4\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: Close\r\n\r\n",
        b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\nconnection: Keep-Alive\r\n\r\n",
        b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
    ] {
        let text = String::from_utf8_lossy(raw);
        let (map, _) = parsed(raw, false);
        let (block, _) = parsed(raw, true);
        assert!(block.block.is_some(), "{text}");
        assert_eq!(block.framing, map.framing, "{text}");
        assert_eq!(block.keep_alive, map.keep_alive, "{text}");
    }
    for raw in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
    ] {
        let mut buf = BytesMut::from(raw);
        assert!(parse_response_head(&mut buf, &Method::GET, true).is_err());
    }
}

/// The downstream head an HTTP/1.1 client gets for `raw` from upstream, with the proxy's
/// `server` and service time: through the response's map (hop-by-hop fields stripped, as
/// `upstream::forward` does) or through a block. Its field lines sorted: the map groups the
/// values of one name together, the block keeps the upstream's order.
fn downstream(raw: &[u8], as_block: bool) -> Result<(bool, Vec<String>), String> {
    let mut buf = BytesMut::from(raw);
    let head = parse_response_head(&mut buf, &Method::GET, as_block)
        .map_err(|e| e.to_string())?
        .ok_or("incomplete")?;
    let mut map = head.response.headers().clone();
    strip_hop_by_hop(&mut map);
    let server = HeaderName::from_static("server");
    let envoy = HeaderValue::from_static("envoy");
    let time = HeaderName::from_static("x-envoy-upstream-service-time");
    let three = HeaderValue::from_static("3");
    let facts = ResponseFacts {
        status: StatusCode::OK,
        head_request: false,
        http10: false,
        keep_alive: head.keep_alive,
        // What the upstream body says of its length, as `listener::h1` asks it.
        body_length: match head.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            _ => None,
        },
    };
    let mut out = Vec::new();
    let stamp = [(&server, &envoy), (&time, &three)];
    encode_response_head(facts, head.block.as_ref(), &map, stamp.iter().copied(), &mut out);
    let text = String::from_utf8(out).map_err(|e| e.to_string())?;
    let mut lines: Vec<String> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty() && !l.starts_with("date: "))
        .map(str::to_string)
        .collect();
    lines.sort();
    Ok((head.block.is_some(), lines))
}

/// Field names a response may carry, in the case an upstream may write them.
const NAMES: &[&str] = &[
    "Content-Type",
    "content-length",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Server",
    "X-Envoy-Upstream-Service-Time",
    "TE",
    "Upgrade",
    "Proxy-Authenticate",
    "Proxy-Connection",
    "Date",
    "Set-Cookie",
    "X-Request-Id",
    "x-a",
    "X-B",
    "Cache-Control",
];

fn field() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        proptest::sample::select(NAMES).prop_map(str::to_string),
        "[A-Za-z][A-Za-z0-9-]{0,12}",
    ];
    let value = prop_oneof![
        Just("close".to_string()),
        Just("keep-alive".to_string()),
        Just("chunked".to_string()),
        "[0-9]{1,3}",
        "[!-~]([ !-~]{0,20}[!-~])?",
        Just(String::new()),
    ];
    (name, value)
}

proptest! {
    /// Whatever the fields, a client gets the same head from a block as from the map.
    #[test]
    fn a_block_writes_what_the_map_writes(fields in proptest::collection::vec(field(), 0..12)) {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for (n, v) in &fields {
            raw.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let by_map = downstream(&raw, false);
        let by_block = downstream(&raw, true);
        match (by_map, by_block) {
            (Ok((_, map)), Ok((_, block))) => prop_assert_eq!(map, block),
            (Err(_), Err(_)) => {}
            (map, block) => prop_assert!(false, "map {:?}, block {:?}", map, block),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_block_parser(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
        buf.extend_from_slice(&raw);
        let _ = parse_response_head(&mut buf, &Method::GET, true);
    }
}
