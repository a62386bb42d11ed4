//! Test helpers: start samples on ephemeral ports, a raw HTTP/1.1 client, fake upstreams, and a
//! recording explicit HTTP proxy.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use strait_samples::{App, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Upper bound for any single exchange, so a bug shows up as a failure and not a hung test.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Starts `app` on 127.0.0.1 with an ephemeral port.
pub async fn start(app: App, env: &[(&str, &str)]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let env = Env::from_pairs(env);
    tokio::spawn(async move {
        let _ = strait_samples::serve(app, listener, env).await;
    });
    addr
}

/// A port nothing listens on (bound then released).
pub async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A parsed reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// First header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends one request with `Connection: close` and reads the whole reply. Returns the reply and
/// the client's own address (httpbin echoes it as `origin`).
pub async fn request_from(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (Reply, SocketAddr) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let local = stream.local_addr().expect("local addr");
        let mut raw = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("Connection: close\r\n\r\n");
        raw.push_str(body);
        stream.write_all(raw.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.expect("read");
        (parse_reply(&out), local)
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("exchange within the deadline")
}

/// Sends one request (see [`request_from`]).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    request_from(addr, method, target, headers, body).await.0
}

/// `GET path` with a Host header.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("Host", "test")];
    all.extend_from_slice(headers);
    request(addr, "GET", path, &all, "").await
}

/// Reads a request head (up to the blank line) from a stream.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A fake upstream answering the n-th request with `replies[n]` (the last one repeats), and
/// reporting each request head it saw.
pub async fn fake_upstream(
    replies: Vec<(u16, &'static str)>,
) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let (status, body) = replies[n.min(replies.len() - 1)];
            tokio::spawn(async move {
                if let Some(head) = read_head(&mut stream).await {
                    let _ = tx.send(head);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    (addr, rx)
}

/// An explicit HTTP proxy like Strait's sidecar outbound listener: it expects absolute-form
/// requests, reports each request head, maps `host:port` to a real address and relays bytes.
pub async fn recording_proxy(
    routes: HashMap<String, SocketAddr>,
) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let tx = tx.clone();
            let routes = routes.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let _ = tx.send(head.clone());
                let target = head.split(' ').nth(1).unwrap_or_default().to_string();
                let Some(rest) = target.strip_prefix("http://") else {
                    let _ = client
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                };
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let Some(upstream_addr) = routes.get(authority) else {
                    let _ = client
                        .write_all(b"HTTP/1.1 503 No Route\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(upstream_addr).await else {
                    return;
                };
                let origin_form = head.replacen(&target, if path.is_empty() { "/" } else { path }, 1);
                if upstream.write_all(origin_form.as_bytes()).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, rx)
}

/// The next reported request head, or a failure after the deadline.
pub async fn next_head(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a request within the deadline")
        .expect("channel open")
}

/// The value of `name` in a request head (case-insensitive).
pub fn head_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// An upstream that accepts connections and reads requests but never answers (an injected delay
/// longer than every caller's timeout). Reports each request head.
pub async fn hanging_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            if let Some(head) = read_head(&mut stream).await {
                let _ = tx.send(head);
            }
            held.push(stream);
        }
    });
    (addr, rx)
}
