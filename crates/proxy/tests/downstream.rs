//! The proxy's own HTTP/1.1 server, over raw sockets: the shapes of client behaviour a library
//! client never produces — pipelining, HTTP/1.0, `Expect: 100-continue`, malformed and smuggling
//! heads, unread bodies, chunked responses — and what comes back on the wire.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::*;
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

#[tokio::test]
async fn responses_without_a_length_go_chunked_or_to_the_close() {
    // A backend whose bodies are chunked, so the proxy cannot know the length.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let (_p, addr) = start(reviews_to(backend)).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: reviews\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut client, &mut buf, false).await;
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
