//! The proxy's own HTTP/1.1 server, over raw sockets: the shapes of client behaviour a library
//! client never produces — pipelining, HTTP/1.0, `Expect: 100-continue`, malformed and smuggling
//! heads, unread bodies, chunked responses — and what comes back on the wire.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::*;
use strait_mesh::RequestMatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// True once the proxy closed `client` (reads until the end; fails on more data).
async fn closed_by_proxy(client: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn proxy_to(backend: &Backend) -> (strait_proxy::Proxy, std::net::SocketAddr) {
    start(reviews_to(backend.addr)).await
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let b = Backend::start("a").await;
    let (_p, addr) = proxy_to(&b).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(
            b"GET /one HTTP/1.1\r\nhost: reviews\r\n\r\nPOST /two HTTP/1.1\r\nhost: reviews\r\ncontent-length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nhost: reviews\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    for (path, body) in [("/one", ""), ("/two", "abc"), ("/three", "")] {
        let r = read_response(&mut client, &mut buf, false).await;
        assert!(r.status.starts_with("http/1.1 200"), "{path}: {r:?}");
        assert_eq!(r.json()["path"], path);
        assert_eq!(r.json()["body"], body);
        assert!(r.head.contains("\r\ndate: "), "{}", r.head);
        assert!(r.head.contains("\r\nserver: envoy\r\n"), "{}", r.head);
    }
    assert_eq!(b.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http10_clients_get_a_closed_connection_unless_they_keep_it() {
    let b = Backend::start("a").await;
    let (_p, addr) = proxy_to(&b).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /kept HTTP/1.0\r\nhost: reviews\r\nconnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut client, &mut buf, false).await;
    assert!(r.head.contains("\r\nconnection: keep-alive\r\n"), "{}", r.head);
    assert_eq!(r.json()["path"], "/kept");
    client
        .write_all(b"GET /last HTTP/1.0\r\nhost: reviews\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut client, &mut buf, false).await;
    assert!(r.head.contains("\r\nconnection: close\r\n"), "{}", r.head);
    assert_eq!(r.json()["path"], "/last");
    assert!(closed_by_proxy(&mut client).await);
}

#[tokio::test]
async fn expect_100_continue_is_answered_by_the_proxy_and_not_forwarded() {
    let b = Backend::start("a").await;
    let (_p, addr) = proxy_to(&b).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"PUT /up HTTP/1.1\r\nhost: reviews\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let interim = read_response(&mut client, &mut buf, false).await;
    assert_eq!(interim.status, "http/1.1 100 continue");
    client.write_all(b"data").await.unwrap();
    let r = read_response(&mut client, &mut buf, false).await;
    assert!(r.status.starts_with("http/1.1 200"), "{r:?}");
    assert_eq!(r.json()["body"], "data");
    assert!(r.json()["headers"].get("expect").is_none(), "{}", r.json());
}

#[tokio::test]
async fn malformed_and_ambiguous_heads_get_400_and_a_close() {
    let b = Backend::start("a").await;
    let (_p, addr) = proxy_to(&b).await;
    for raw in [
        &b"GET / HTTP/1.1\r\nhost reviews\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nhost: reviews\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: reviews\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
    ] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(raw).await.unwrap();
        let r = read_response(&mut client, &mut Vec::new(), false).await;
        assert!(
            r.status.starts_with("http/1.1 400"),
            "{}: {r:?}",
            String::from_utf8_lossy(raw)
        );
        assert!(closed_by_proxy(&mut client).await);
    }
    let mut client = TcpStream::connect(addr).await.unwrap();
    let huge = format!(
        "GET / HTTP/1.1\r\nhost: reviews\r\nx-big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    client.write_all(huge.as_bytes()).await.unwrap();
    let r = read_response(&mut client, &mut Vec::new(), false).await;
    assert!(r.status.starts_with("http/1.1 431"), "{r:?}");
    assert_eq!(b.hits(), 0, "nothing reached the backend");
}

#[tokio::test]
async fn an_unread_request_body_is_drained_and_the_connection_kept() {
    let b = Backend::start("a").await;
    let (_p, addr) = proxy_to(&b).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    // No route for this host: 404 without reading the (chunked) body.
    client
        .write_all(
            b"POST / HTTP/1.1\r\nhost: nowhere\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut client, &mut buf, false).await;
    assert!(r.status.starts_with("http/1.1 404"), "{r:?}");
    client
        .write_all(b"GET /next HTTP/1.1\r\nhost: reviews\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut client, &mut buf, false).await;
    assert_eq!(r.json()["path"], "/next");
}

/// Sends `GET /` for host `reviews` on `client` and reads the response (what follows it stays
/// in `buf`).
async fn get_reviews(client: &mut TcpStream, buf: &mut Vec<u8>) -> Raw {
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: reviews\r\n\r\n")
        .await
        .unwrap();
    read_response(client, buf, false).await
}

/// A backend that answers every request on a connection with `reply`.
async fn replying(reply: &'static [u8]) -> std::net::SocketAddr {
    capturing(reply).await.0
}

/// [`replying`], and every request head it got, as it came on the wire.
async fn capturing(
    reply: &'static [u8],
) -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, heads) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let _ = seen.send(String::from_utf8_lossy(&head).into_owned());
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, heads)
}

#[tokio::test]
async fn upstream_fields_arrive_lowercased_without_hop_by_hop_ones_with_or_without_edits() {
    let backend = replying(
        b"HTTP/1.1 200 OK\r\nX-Custom: Value\r\nServer: backend\r\nKeep-Alive: timeout=5\r\n\
Connection: keep-alive\r\nX-Envoy-Upstream-Service-Time: 999\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let plain = reviews_to(backend);
    let mut edited = reviews_to(backend);
    edited.route_tables[0].virtual_hosts[0].routes[0]
        .headers
        .response
        .set
        .insert("x-added".into(), "yes".into());
    for (cfg, added) in [(plain, false), (edited, true)] {
        let (_p, addr) = start(cfg).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        // Twice on one connection: both sides keep it.
        for _ in 0..2 {
            let r = get_reviews(&mut client, &mut buf).await;
            let head = &r.wire_head;
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(head.contains("\r\nx-custom: Value\r\n"), "{head}");
            assert!(head.contains("\r\nserver: envoy\r\n"), "{head}");
            assert!(head.contains("\r\ncontent-length: 2\r\n"), "{head}");
            assert!(head.contains("\r\ndate: "), "{head}");
            assert_eq!(head.contains("\r\nx-added: yes\r\n"), added, "{head}");
            assert!(!r.head.contains("keep-alive"), "{head}");
            assert!(!r.head.contains("connection:"), "{head}");
            assert!(!r.head.contains("backend"), "{head}");
            assert!(!r.head.contains(": 999"), "{head}");
            assert_eq!(
                r.head.matches("x-envoy-upstream-service-time:").count(),
                1,
                "{head}"
            );
            assert_eq!(r.body, b"ok");
        }
    }
}

#[tokio::test]
async fn fields_named_by_the_upstreams_connection_field_are_not_forwarded() {
    let backend = replying(
        b"HTTP/1.1 200 OK\r\nConnection: X-Private\r\nx-private: secret\r\nx-kept: 1\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let (_p, addr) = start(reviews_to(backend)).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let r = get_reviews(&mut client, &mut Vec::new()).await;
    assert!(r.head.contains("\r\nx-kept: 1\r\n"), "{}", r.wire_head);
    assert!(!r.head.contains("private"), "{}", r.wire_head);
}

#[tokio::test]
async fn responses_without_a_length_go_chunked_or_to_the_close() {
    // A backend whose bodies are chunked, so the proxy cannot know the length.
    let backend =
        replying(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
            .await;
    let (_p, addr) = start(reviews_to(backend)).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        let r = get_reviews(&mut client, &mut buf).await;
        assert!(
            r.head.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{}",
            r.head
        );
        assert_eq!(r.body, b"abcdefg");
    }
    let mut old = TcpStream::connect(addr).await.unwrap();
    old.write_all(b"GET / HTTP/1.0\r\nhost: reviews\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut old, &mut Vec::new(), true).await;
    assert!(!r.head.contains("transfer-encoding"), "{}", r.head);
    assert_eq!(r.body, b"abcdefg");
}

/// The names of a head's fields, in order.
fn field_names(head: &str) -> Vec<&str> {
    head.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .collect()
}

/// A request's fields go upstream as they came, names lowercased (as Envoy writes them), with
/// the proxy's `x-request-id` and `x-forwarded-proto` added only when the client sent none: on a
/// plain route (the fields are never put into a map) and on one that edits them (they are).
/// The route is chosen by a header match either way, on the fields as they came.
#[tokio::test]
async fn request_fields_go_upstream_lowercased_with_the_proxys_own_added_once() {
    let (backend, mut seen) = capturing(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let mut cfg = reviews_to(backend);
    let mut jason = route(
        "jason",
        vec![RequestMatch {
            headers: vec![header_exact("end-user", "jason")],
            ..Default::default()
        }],
        to("c"),
    );
    jason.headers.request.set.insert("x-route".into(), "jason".into());
    cfg.route_tables[0].virtual_hosts[0].routes.insert(0, jason);
    let (_p, addr) = start(cfg).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for (user, edited) in [("Someone", false), ("jason", true)] {
        let request = format!(
            "GET /a HTTP/1.1\r\nHost: reviews\r\nUser-Agent: T\r\nX-Custom: A\r\nEnd-User: {user}\r\nx-custom: B\r\n\r\n"
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let r = read_response(&mut client, &mut buf, false).await;
        assert!(r.status.starts_with("http/1.1 200"), "{r:?}");
        let head = tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(head.starts_with("GET /a HTTP/1.1\r\n"), "{head}");
        for line in ["host: reviews", "user-agent: T", "x-forwarded-proto: http"] {
            assert!(head.contains(&format!("\r\n{line}\r\n")), "{line}: {head}");
        }
        let names = field_names(&head);
        assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()), "{head}");
        assert_eq!(
            names.iter().filter(|n| **n == "x-request-id").count(),
            1,
            "{head}"
        );
        let a = head.find("x-custom: A").expect("A");
        let b = head.find("x-custom: B").expect("B");
        assert!(a < b, "repeated fields keep their order: {head}");
        assert_eq!(head.contains("\r\nx-route: jason\r\n"), edited, "{head}");
    }
    // The client's own id and scheme are kept, and not added to.
    client
        .write_all(
            b"GET /b HTTP/1.1\r\nHost: reviews\r\nX-Request-Id: mine\r\nX-Forwarded-Proto: https\r\n\r\n",
        )
        .await
        .unwrap();
    let r = read_response(&mut client, &mut buf, false).await;
    assert!(r.status.starts_with("http/1.1 200"), "{r:?}");
    let head = seen.recv().await.unwrap();
    assert_eq!(head.matches("x-request-id").count(), 1, "{head}");
    assert!(head.contains("\r\nx-request-id: mine\r\n"), "{head}");
    assert_eq!(head.matches("x-forwarded-proto").count(), 1, "{head}");
    assert!(head.contains("\r\nx-forwarded-proto: https\r\n"), "{head}");
    // A body with a plain length, from another sidecar (its attempt count): one length and
    // one count go upstream, the proxy's. (Last: this backend reads heads only.)
    client
        .write_all(b"POST /c HTTP/1.1\r\nHost: reviews\r\nContent-Length: 5\r\nX-Envoy-Attempt-Count: 3\r\n\r\nhello")
        .await
        .unwrap();
    let r = read_response(&mut client, &mut buf, false).await;
    assert!(r.status.starts_with("http/1.1 200"), "{r:?}");
    let head = seen.recv().await.unwrap();
    assert!(head.starts_with("POST /c HTTP/1.1\r\n"), "{head}");
    assert_eq!(head.matches("content-length").count(), 1, "{head}");
    assert!(head.contains("\r\ncontent-length: 5\r\n"), "{head}");
    assert_eq!(head.matches("x-envoy-attempt-count").count(), 1, "{head}");
    assert!(head.contains("\r\nx-envoy-attempt-count: 1\r\n"), "{head}");
}
