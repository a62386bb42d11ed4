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

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let b = Backend::start("a").await;
    // No retry policy: the request body is streamed. With one: it is buffered for replays.
    let streamed = route("streamed", on("/streamed"), to("c"));
    let mut buffered = route("buffered", on("/buffered"), to("c"));
    buffered.retries = Some(retry_5xx());
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![streamed, buffered])],
        vec![cluster("c", &[&b])],
    );
    let (_p, addr) = start(cfg).await;
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
    let mut c = cluster("c", &[]);
    c.endpoints.push(Endpoint {
        address: backend,
        labels: Default::default(),
        weight: 1,
    });
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![route("r", vec![], to("c"))])],
        vec![c],
    );
    let (_p, addr) = start(cfg).await;

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
