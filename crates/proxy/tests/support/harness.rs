//! In-process test harness: echo backends, a raw hyper client (HTTP/1.1 and h2c), and config
//! builders. Everything runs on 127.0.0.1 with ephemeral ports.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use strait_mesh::*;
use strait_proxy::{Proxy, ProxyOptions};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A backend that echoes who answered and what it saw.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    /// Requests received.
    pub hits: Arc<AtomicUsize>,
    /// Answer 503 to this many requests first (a flaky service).
    pub fail_first: Arc<AtomicUsize>,
    /// TCP connections accepted.
    pub conns: Arc<AtomicUsize>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let fail_first = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let (n, h, f, c) = (name.to_string(), hits.clone(), fail_first.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = socket.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (n, h, f) = (n.clone(), h.clone(), f.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| echo(n.clone(), h.clone(), f.clone(), req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            name: name.into(),
            addr,
            hits,
            fail_first,
            conns,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn echo(
    name: String,
    hits: Arc<AtomicUsize>,
    fail_first: Arc<AtomicUsize>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some(ms) = parts
        .headers
        .get("x-test-delay-ms")
        .and_then(|v| v.to_str().ok()?.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut status: u16 = parts
        .headers
        .get("x-test-status")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(200);
    if fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        status = 503;
    }
    // Repeated fields joined with ", " (their combined value): a field the proxy should have
    // replaced but sent twice shows as "old, new".
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &parts.headers {
        let v = String::from_utf8_lossy(v.as_bytes());
        headers
            .entry(k.to_string())
            .and_modify(|seen| {
                seen.push_str(", ");
                seen.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    let seen = serde_json::json!({
        "backend": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "version": format!("{:?}", parts.version),
        "authority": parts.uri.authority().map(|a| a.to_string()),
    });
    let mut resp = Response::new(Full::new(Bytes::from(seen.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut().insert("x-backend", name.parse().unwrap());
    resp.headers_mut()
        .insert("server", "backend-app".parse().unwrap());
    Ok(resp)
}

/// A response as the test sees it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The backend that answered, from the echo body.
    pub fn backend(&self) -> String {
        self.json()["backend"].as_str().unwrap_or("").to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A request header as the backend saw it.
    pub fn seen_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_string)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Which protocol the test client speaks to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// Sends one request on a fresh connection. `uri` is used verbatim (absolute-form for HTTP/1
/// explicit-proxy tests); for h2 an origin-form uri is made absolute with `host`.
pub async fn send(
    proto: Proto,
    addr: SocketAddr,
    method: &str,
    host: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let stream = TcpStream::connect(addr).await.unwrap();
    let io = TokioIo::new(stream);
    let uri = match proto {
        Proto::H2 if uri.starts_with('/') => format!("http://{host}{uri}"),
        _ => uri.to_string(),
    };
    let mut b = Request::builder().method(method).uri(uri);
    if proto == Proto::H1 {
        b = b.header("host", host);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from_static(b"ping"))).unwrap();
    let resp = match proto {
        Proto::H1 => {
            let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            tx.send_request(req).await.unwrap()
        }
        Proto::H2 => {
            let (mut tx, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            tx.send_request(req).await.unwrap()
        }
    };
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into(),
    }
}

/// `GET path` with a Host header over HTTP/1.1.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Resp {
    send(Proto::H1, addr, "GET", host, path, &[]).await
}

pub fn cluster(name: &str, backends: &[&Backend]) -> Cluster {
    Cluster {
        name: name.into(),
        service: format!("{name}.default.svc.cluster.local"),
        endpoints: backends
            .iter()
            .map(|b| Endpoint {
                address: b.addr,
                labels: BTreeMap::from([("version".to_string(), b.name.clone())]),
                weight: 1,
            })
            .collect(),
        ..Default::default()
    }
}

/// A cluster of one endpoint at `addr` (a hand-written server or a closed port).
pub fn cluster_at(name: &str, addr: SocketAddr) -> Cluster {
    let mut c = cluster(name, &[]);
    c.endpoints.push(Endpoint {
        address: addr,
        labels: Default::default(),
        weight: 1,
    });
    c
}

/// An outbound proxy config sending every request for host `reviews` to `addr`.
pub fn reviews_to(addr: SocketAddr) -> ProxyConfig {
    config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![route("r", vec![], to("c"))])],
        vec![cluster_at("c", addr)],
    )
}

pub fn to(cluster: &str) -> RouteAction {
    RouteAction::Forward(vec![WeightedCluster {
        cluster: cluster.into(),
        weight: 100,
        ..Default::default()
    }])
}

pub fn route(name: &str, matches: Vec<RequestMatch>, action: RouteAction) -> Route {
    Route {
        name: name.into(),
        matches,
        action,
        ..Default::default()
    }
}

pub fn vhost(domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: domains.join(","),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        port: None,
        routes,
    }
}

/// One listener `main` on 127.0.0.1:0 with route table `t`.
pub fn config(
    version: &str,
    direction: Direction,
    vhosts: Vec<VirtualHost>,
    clusters: Vec<Cluster>,
) -> ProxyConfig {
    ProxyConfig {
        version: version.into(),
        listeners: vec![Listener {
            name: "main".into(),
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            direction,
            route_table: "t".into(),
            tls: None,
        }],
        route_tables: vec![RouteTable {
            name: "t".into(),
            virtual_hosts: vhosts,
        }],
        clusters,
    }
}

/// Starts a proxy with `cfg` applied; returns it and the `main` listener address.
pub async fn start(cfg: ProxyConfig) -> (Proxy, SocketAddr) {
    let proxy = Proxy::new(ProxyOptions {
        id: "test".into(),
        admin_addr: None,
        access_log: false,
    });
    proxy.apply(cfg).await.unwrap();
    let addr = proxy.listener_addr("main").unwrap();
    (proxy, addr)
}

/// Polls `f` until it is true or the deadline passes.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn header_exact(name: &str, value: &str) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value: Some(StringMatch::Exact(value.into())),
    }
}

/// A port that nothing listens on (bound then released).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// One response off a raw connection: status line, header section (lower-cased, and as it
/// came), body.
#[derive(Debug)]
pub struct Raw {
    pub status: String,
    pub head: String,
    pub wire_head: String,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads one response from `client`, keeping what follows it in `buf`. Bodies by
/// content-length, chunked, or to the close (when `to_close`).
pub async fn read_response(client: &mut TcpStream, buf: &mut Vec<u8>, to_close: bool) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(5);
    let more = async |client: &mut TcpStream, buf: &mut Vec<u8>| -> bool {
        assert!(Instant::now() < deadline, "timed out reading a response");
        let mut chunk = [0u8; 16384];
        let n = client.read(&mut chunk).await.unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        n > 0
    };
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        assert!(more(client, buf).await, "closed before a response head: {buf:?}");
    };
    let wire_head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let head = wire_head.to_ascii_lowercase();
    buf.drain(..end);
    let status = head.lines().next().unwrap_or_default().to_string();
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    let body = if let Some(n) = field("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        while buf.len() < n {
            assert!(more(client, buf).await, "closed mid-body");
        }
        buf.drain(..n).collect()
    } else if field("transfer-encoding").as_deref() == Some("chunked") {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                assert!(more(client, buf).await, "closed mid-chunk");
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            while buf.len() < line_end + 2 + size + 2 {
                assert!(more(client, buf).await, "closed mid-chunk");
            }
            body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break body;
            }
        }
    } else if to_close {
        while more(client, buf).await {}
        std::mem::take(buf)
    } else {
        Vec::new()
    };
    Raw {
        status,
        head,
        wire_head,
        body,
    }
}
