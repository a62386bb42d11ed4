//! The upstream HTTP/1.1 pool through the whole proxy, over real sockets: keep-alive reuse with
//! streamed and buffered bodies, and no reuse of a connection that a request abandoned (route
//! timeout, downstream gone mid-body). The connection is polled by the request's own task, so
//! these are the cases where that task stops polling it early.

#[path = "support/harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::*;
use strait_mesh::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn on(prefix: &str) -> Vec<RequestMatch> {
    vec![RequestMatch {
        uri: Some(StringMatch::Prefix(prefix.into())),
        ..Default::default()
    }]
}

fn retry_5xx() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        per_try_timeout_ms: None,
        retry_on: vec!["5xx".into()],
        retriable_status_codes: vec![],
    }
}

/// `/streamed` has no retry policy, so its request body is streamed upstream; `/buffered` has
/// one, so its body is buffered for replays. Both go to `b`.
fn streamed_and_buffered(b: &Backend) -> ProxyConfig {
    let streamed = route("streamed", on("/streamed"), to("c"));
    let mut buffered = route("buffered", on("/buffered"), to("c"));
    buffered.retries = Some(retry_5xx());
    config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![streamed, buffered])],
        vec![cluster("c", &[b])],
    )
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let b = Backend::start("a").await;
    let (_p, addr) = start(streamed_and_buffered(&b)).await;
    for path in ["/streamed", "/buffered", "/streamed", "/buffered"] {
        for proto in [Proto::H1, Proto::H2] {
            let r = send(proto, addr, "POST", "reviews", path, &[]).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            assert_eq!(r.json()["body"], "ping", "{path}: the request body arrived");
        }
    }
    assert_eq!(b.hits(), 8);
    assert_eq!(
        b.conns.load(Ordering::SeqCst),
        1,
        "every request reused the first connection"
    );
}

#[tokio::test]
async fn a_retried_response_and_a_timed_out_request_do_not_leave_connections_behind() {
    let b = Backend::start("a").await;
    let mut timed = route("timed", on("/timed"), to("c"));
    timed.timeout_ms = Some(100);
    let mut retried = route("retried", on("/retried"), to("c"));
    retried.retries = Some(retry_5xx());
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![timed, retried])],
        vec![cluster("c", &[&b])],
    );
    let (_p, addr) = start(cfg).await;
    let slow = [("x-test-delay-ms", "3000")];
    let r = send(Proto::H1, addr, "GET", "reviews", "/timed", &slow).await;
    assert_eq!((r.status, r.body.as_str()), (504, "upstream request timeout"));
    // The timed-out exchange's connection is mid-request: it must not be reused.
    assert_eq!(get(addr, "reviews", "/timed").await.status, 200);
    assert_eq!(b.conns.load(Ordering::SeqCst), 2);
    // A 503 that is retried is dropped unread: that connection is closed too, and the retry
    // and everything after it go on a fresh one, which is then kept.
    b.fail_first.store(1, Ordering::SeqCst);
    let r = get(addr, "reviews", "/retried").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.seen_header("x-envoy-attempt-count").as_deref(), Some("2"));
    assert_eq!(get(addr, "reviews", "/retried").await.status, 200);
    assert_eq!(b.conns.load(Ordering::SeqCst), 3);
}

/// Connections a [`partial_backend`] accepted and saw closed.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    closed: AtomicUsize,
}

/// A backend that answers `/partial` with ten announced bytes of which it sends two (then
/// waits), and anything else with a complete keep-alive "ok".
async fn partial_backend() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counts.accepted.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let reply: &[u8] = if head.starts_with(b"GET /partial ") {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                        };
                        if stream.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                }
                counts.closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_downstream_gone_mid_body_closes_the_upstream_connection() {
    let (backend, seen) = partial_backend().await;
    let (_p, addr) = start(reviews_to(backend)).await;

    // A client that reads the head and the first two bytes, then leaves.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /partial HTTP/1.1\r\nhost: reviews\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(6).any(|w| w == b"\r\n\r\nok") {
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the proxy closed before the first body bytes");
        got.extend_from_slice(&chunk[..n]);
    }
    drop(client);
    eventually("the upstream connection to be closed", || {
        seen.closed.load(Ordering::SeqCst) == 1
    })
    .await;

    // The next request gets a fresh connection, which is then kept.
    for _ in 0..2 {
        let r = get(addr, "reviews", "/full").await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
}

/// Sends `head` then `body` in pieces of `piece` bytes on a raw connection, and returns the
/// response's status line and body (read by its content-length).
async fn raw_exchange(client: &mut TcpStream, head: &str, body: &[u8], piece: usize) -> (String, Vec<u8>) {
    client.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(piece) {
        client.write_all(part).await.unwrap();
        client.flush().await.unwrap();
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    let end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the proxy closed before the response head");
        got.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while got.len() < end + length {
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the proxy closed mid-body");
        got.extend_from_slice(&chunk[..n]);
    }
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, got[end..end + length].to_vec())
}

fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn large_and_chunked_request_bodies_arrive_whole_on_a_kept_connection() {
    let b = Backend::start("a").await;
    let (_p, addr) = start(streamed_and_buffered(&b)).await;
    // Larger than what goes out in the head's write, in pieces that arrive separately.
    let body: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut client = TcpStream::connect(addr).await.unwrap();
    for path in ["/streamed", "/buffered"] {
        // Chunked from the client: streamed upstream chunked, or buffered and sent with a length.
        let head = format!("POST {path} HTTP/1.1\r\nhost: reviews\r\ntransfer-encoding: chunked\r\n\r\n");
        let (status, echoed) = raw_exchange(&mut client, &head, &chunked(&body, 7_000), 5_000).await;
        assert!(status.contains(" 200 "), "{path}: {status}");
        let echoed: serde_json::Value = serde_json::from_slice(&echoed).unwrap();
        assert_eq!(
            echoed["body"].as_str().map(str::len),
            Some(body.len()),
            "{path} chunked"
        );
        assert_eq!(
            echoed["body"].as_str().map(str::as_bytes),
            Some(&body[..]),
            "{path} chunked"
        );
        // With a length from the client.
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: reviews\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let (status, echoed) = raw_exchange(&mut client, &head, &body, 9_000).await;
        assert!(status.contains(" 200 "), "{path}: {status}");
        let echoed: serde_json::Value = serde_json::from_slice(&echoed).unwrap();
        assert_eq!(
            echoed["body"].as_str().map(str::as_bytes),
            Some(&body[..]),
            "{path} with a length"
        );
    }
    assert_eq!(b.hits(), 4);
    assert_eq!(
        b.conns.load(Ordering::SeqCst),
        1,
        "every request reused the first connection"
    );
}
