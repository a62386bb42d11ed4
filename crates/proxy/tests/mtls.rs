//! mTLS between two proxies over real sockets and real TLS: a client sidecar's cluster
//! originates TLS with its workload certificate, a server sidecar's inbound listener requires one
//! (PeerAuthentication STRICT / PERMISSIVE). Certificates come from a throwaway CA made here.

#[path = "support/harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use strait_mesh::*;
use strait_proxy::ApplyError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";
const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/productpage";

/// A CA and workload certificates written as PEM files into a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// `mesh` signs `reviews` and `productpage`; `rogue` (another CA) signs `intruder`, which
    /// claims the productpage identity.
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let mesh = pki.ca("mesh");
        pki.workload(&mesh, "reviews", REVIEWS);
        pki.workload(&mesh, "productpage", PRODUCTPAGE);
        let rogue = pki.ca("rogue");
        pki.workload(&rogue, "intruder", PRODUCTPAGE);
        pki
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    fn write(&self, file: &str, pem: &str) {
        std::fs::write(self.dir.path().join(file), pem).unwrap();
    }

    fn ca(&self, name: &str) -> Issuer<'static, KeyPair> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let cert = params.self_signed(&key).unwrap();
        self.write(&format!("{name}-ca.pem"), &cert.pem());
        Issuer::new(params, key)
    }

    /// A workload certificate as Istio issues them: a SPIFFE URI, usable as server and client.
    fn workload(&self, ca: &Issuer<'static, KeyPair>, name: &str, spiffe: &str) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![
            SanType::URI(spiffe.try_into().unwrap()),
            SanType::DnsName(format!("{name}.default.svc").try_into().unwrap()),
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, ca).unwrap();
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}.key"), &key.serialize_pem());
    }

    fn listener(&self, mode: PeerMode) -> ListenerTls {
        ListenerTls {
            mode,
            server_certificate: self.path("reviews.pem"),
            private_key: self.path("reviews.key"),
            ca_certificates: self.path("mesh-ca.pem"),
        }
    }

    /// The client sidecar's TLS toward reviews, as `workload` (signed by `ca`).
    fn cluster(&self, workload: &str, ca: &str, sans: &[&str]) -> ClusterTls {
        ClusterTls {
            mode: ClientTlsMode::Mutual,
            client_certificate: self.path(&format!("{workload}.pem")),
            private_key: self.path(&format!("{workload}.key")),
            ca_certificates: self.path(&format!("{ca}-ca.pem")),
            subject_alt_names: sans.iter().map(|s| s.to_string()).collect(),
            sni: String::new(),
        }
    }
}

/// The server sidecar: inbound, mTLS in, plaintext to `backend`.
fn server_sidecar(pki: &Pki, mode: PeerMode, backend: &Backend) -> ProxyConfig {
    let mut cfg = config(
        "s1",
        Direction::Inbound,
        vec![vhost(&["*"], vec![route("r", vec![], to("inbound"))])],
        vec![cluster("inbound", &[backend])],
    );
    cfg.listeners[0].tls = Some(pki.listener(mode));
    cfg
}

/// The client sidecar: outbound, `reviews` sent to `server` with `tls` over `protocol`.
fn client_sidecar(server: SocketAddr, tls: ClusterTls, protocol: UpstreamProtocol) -> ProxyConfig {
    let mut cfg = reviews_to(server);
    cfg.clusters[0].tls = Some(tls);
    cfg.clusters[0].protocol = protocol;
    cfg
}

/// A TCP relay to `to` that counts the connections it carried.
async fn counting_relay(to: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let (addr, count, _) = cutting_relay(to).await;
    (addr, count)
}

#[tokio::test]
async fn two_sidecars_speak_mutual_tls_over_http1_and_h2_and_keep_the_connection() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (_server, server_addr) = start(server_sidecar(&pki, PeerMode::Strict, &backend)).await;
    let (relay, carried) = counting_relay(server_addr).await;
    for protocol in [UpstreamProtocol::Http1, UpstreamProtocol::Http2] {
        let before = carried.load(Ordering::SeqCst);
        let tls = pki.cluster("productpage", "mesh", &[REVIEWS]);
        let (_client, client_addr) = start(client_sidecar(relay, tls, protocol)).await;
        for proto in [Proto::H1, Proto::H2, Proto::H1, Proto::H2, Proto::H1] {
            let r = send(proto, client_addr, "GET", "reviews", "/reviews/1", &[]).await;
            assert_eq!(r.status, 200, "{protocol:?} {:?}: {}", r.headers, r.body);
            assert_eq!(r.backend(), "v1");
            // The client sidecar's own fields crossed the TLS hop.
            assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
        }
        // Five sequential requests, one TLS connection: the pool kept it between requests.
        assert_eq!(carried.load(Ordering::SeqCst) - before, 1, "{protocol:?}");
    }
}

/// Sends a plaintext HTTP/1.1 request on a raw connection and returns how the read ended.
async fn plaintext_read(addr: SocketAddr) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n").await?;
    let mut buf = vec![0u8; 4096];
    s.read(&mut buf).await
}

#[tokio::test]
async fn strict_resets_plaintext_clients_and_permissive_serves_them_beside_mtls() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (server, server_addr) = start(server_sidecar(&pki, PeerMode::Strict, &backend)).await;
    let err = plaintext_read(server_addr)
        .await
        .expect_err("STRICT must not answer plaintext");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(backend.hits(), 0);

    let mut permissive = server_sidecar(&pki, PeerMode::Permissive, &backend);
    permissive.version = "s2".into();
    server.apply(permissive).await.unwrap();
    let plain = get(server_addr, "reviews", "/").await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    let tls = pki.cluster("productpage", "mesh", &[REVIEWS]);
    let (_client, client_addr) = start(client_sidecar(server_addr, tls, UpstreamProtocol::Http1)).await;
    assert_eq!(get(client_addr, "reviews", "/").await.status, 200);
    assert_eq!(backend.hits(), 2);
}

#[tokio::test]
async fn peers_outside_the_ca_or_with_another_identity_are_refused() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (_server, server_addr) = start(server_sidecar(&pki, PeerMode::Strict, &backend)).await;
    let cases = [
        // The server is reviews; the client expects ratings.
        (
            "wrong identity",
            pki.cluster(
                "productpage",
                "mesh",
                &["spiffe://cluster.local/ns/default/sa/ratings"],
            ),
        ),
        // The client's certificate is signed by a CA the server does not trust.
        ("foreign client CA", pki.cluster("intruder", "mesh", &[REVIEWS])),
        // The client trusts only the rogue CA, so the mesh's server certificate fails.
        ("foreign server CA", pki.cluster("productpage", "rogue", &[])),
        // TLS without a client certificate.
        (
            "no client certificate",
            ClusterTls {
                mode: ClientTlsMode::Simple,
                ..pki.cluster("productpage", "mesh", &[REVIEWS])
            },
        ),
    ];
    for (what, tls) in cases {
        let (_client, client_addr) = start(client_sidecar(server_addr, tls, UpstreamProtocol::Http1)).await;
        let r = get(client_addr, "reviews", "/").await;
        assert_eq!(r.status, 503, "{what}: {}", r.body);
        assert!(r.body.contains("upstream connect error"), "{what}: {}", r.body);
    }
    assert_eq!(backend.hits(), 0);
}

fn expect_tls_error(e: ApplyError, owner: &str, field: &str, path: &Path) {
    let msg = e.to_string();
    assert!(matches!(e, ApplyError::Tls { .. }), "{msg}");
    assert!(
        msg.contains(owner) && msg.contains(&format!("tls.{field}")),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[tokio::test]
async fn unusable_tls_files_reject_the_config_and_the_last_one_keeps_serving() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (server, server_addr) = start(server_sidecar(&pki, PeerMode::Permissive, &backend)).await;

    let missing = PathBuf::from(pki.path("nowhere.key"));
    let mut bad = server_sidecar(&pki, PeerMode::Permissive, &backend);
    bad.version = "bad-listener".into();
    if let Some(t) = bad.listeners[0].tls.as_mut() {
        t.private_key = missing.display().to_string();
    }
    let e = server
        .apply(bad)
        .await
        .expect_err("a missing key must be rejected");
    expect_tls_error(e, "listener main", "privateKey", &missing);

    let not_pem = PathBuf::from(pki.path("reviews.key"));
    let mut bad = server_sidecar(&pki, PeerMode::Permissive, &backend);
    bad.version = "bad-cluster".into();
    bad.clusters[0].tls = Some(ClusterTls {
        ca_certificates: not_pem.display().to_string(),
        ..pki.cluster("productpage", "mesh", &[])
    });
    let e = server
        .apply(bad)
        .await
        .expect_err("a CA file without certificates must be rejected");
    expect_tls_error(e, "cluster inbound", "caCertificates", &not_pem);

    assert_eq!(server.running().unwrap().version, "s1");
    assert_eq!(get(server_addr, "reviews", "/").await.status, 200);
}

/// A TLS client that offers no ALPN (as `openssl s_client` or an nginx upstream), with the
/// productpage certificate; the server's DNS name is checked the usual way.
async fn tls_without_alpn(pki: &Pki, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    tls_client(pki, addr, &[]).await
}

/// A TLS connection to `addr` as productpage, offering `alpn`.
async fn tls_client(
    pki: &Pki,
    addr: SocketAddr,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path("mesh-ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_file_iter(pki.path("productpage.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.path("productpage.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let mut config = config;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("reviews.default.svc").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_that_offers_no_alpn_is_served_by_what_it_sends() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (_server, server_addr) = start(server_sidecar(&pki, PeerMode::Strict, &backend)).await;
    let mut tls = tls_without_alpn(&pki, server_addr).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    tls.write_all(b"GET /h1 HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tls.read_to_end(&mut got).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // The connection is TLS, so the request's scheme is https (Envoy's x-forwarded-proto).
    let body = got.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let echoed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https", "{got}");

    // HTTP/2 with prior knowledge over the same kind of connection.
    let tls = tls_without_alpn(&pki, server_addr).await;
    let (mut tx, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://reviews/h2")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(backend.hits(), 2);
}

/// Sends `head` and `body` on `client` and returns the backend's echo of the request body.
async fn echoed_body(client: &mut TcpStream, buf: &mut Vec<u8>, head: &str, body: &[u8]) -> Vec<u8> {
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(body).await.unwrap();
    let r = read_response(client, buf, false).await;
    assert!(r.status.starts_with("http/1.1 200"), "{}", r.head);
    r.json()["body"].as_str().unwrap_or_default().as_bytes().to_vec()
}

#[tokio::test]
async fn large_bodies_cross_the_tls_hop_both_ways_and_the_connection_is_kept() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (_server, server_addr) = start(server_sidecar(&pki, PeerMode::Strict, &backend)).await;
    let (relay, carried) = counting_relay(server_addr).await;
    let tls = pki.cluster("productpage", "mesh", &[REVIEWS]);
    let (_client, client_addr) = start(client_sidecar(relay, tls, UpstreamProtocol::Http1)).await;
    // Larger than rustls's 64 KiB send buffer and many TLS records long, in both directions
    // (the backend echoes it inside its JSON answer).
    let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut client = TcpStream::connect(client_addr).await.unwrap();
    let mut buf = Vec::new();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: reviews\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert!(echoed_body(&mut client, &mut buf, &head, &body).await == body);
    // Chunked, in pieces of different sizes.
    let mut chunked = Vec::new();
    for piece in body.chunks(70_001) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /upload HTTP/1.1\r\nHost: reviews\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(echoed_body(&mut client, &mut buf, head, &chunked).await == body);
    // And a small one after them, on the same TLS connection.
    let head = "POST /upload HTTP/1.1\r\nHost: reviews\r\nContent-Length: 4\r\n\r\n";
    assert_eq!(echoed_body(&mut client, &mut buf, head, b"ping").await, b"ping");
    assert_eq!(carried.load(Ordering::SeqCst), 1);
    assert_eq!(backend.hits(), 3);
}

/// A TCP relay to `to` whose connections can all be cut at once (both sides closed).
async fn cutting_relay(
    to: SocketAddr,
) -> (
    SocketAddr,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let tasks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, t) = (count.clone(), tasks.clone());
    tokio::spawn(async move {
        while let Ok((mut down, _)) = socket.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            t.lock().unwrap().push(tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            }));
        }
    });
    (addr, count, tasks)
}

#[tokio::test]
async fn a_pooled_tls_connection_the_server_closed_is_not_used_again() {
    let pki = Pki::new();
    let backend = Backend::start("v1").await;
    let (_server, server_addr) = start(server_sidecar(&pki, PeerMode::Strict, &backend)).await;
    let (relay, carried, tasks) = cutting_relay(server_addr).await;
    let tls = pki.cluster("productpage", "mesh", &[REVIEWS]);
    let (_client, client_addr) = start(client_sidecar(relay, tls, UpstreamProtocol::Http1)).await;
    for _ in 0..2 {
        let r = send(Proto::H1, client_addr, "GET", "reviews", "/reviews/1", &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(carried.load(Ordering::SeqCst), 1);
    // The server side goes away while the connection is idle in the client sidecar's pool
    // (after the session tickets TLS 1.3 servers send, which are not a close).
    let cut: Vec<_> = tasks.lock().unwrap().drain(..).collect();
    for task in cut {
        task.abort();
        let _ = task.await;
    }
    let r = send(Proto::H1, client_addr, "GET", "reviews", "/reviews/1", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(carried.load(Ordering::SeqCst), 2);
}

/// A backend that never answers: it says when a request head has come in, and when the
/// connection it came on ends (the proxy gave up on the request).
async fn silent_backend() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<&'static str>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = socket.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = conn.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&chunk[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = tx.send("head");
                        seen.clear();
                    }
                }
                let _ = tx.send("closed");
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn a_tls_client_that_goes_away_cancels_its_request_upstream() {
    let pki = Pki::new();
    let (backend, mut events) = silent_backend().await;
    let mut cfg = config(
        "s1",
        Direction::Inbound,
        vec![vhost(&["*"], vec![route("r", vec![], to("inbound"))])],
        vec![cluster_at("inbound", backend)],
    );
    cfg.listeners[0].tls = Some(pki.listener(PeerMode::Strict));
    let (_server, server_addr) = start(cfg).await;
    let mut tls = tls_client(&pki, server_addr, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    tls.write_all(b"GET /hang HTTP/1.1\r\nHost: reviews\r\n\r\n")
        .await
        .unwrap();
    let next = async |events: &mut tokio::sync::mpsc::UnboundedReceiver<&'static str>| {
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .ok()
            .flatten()
    };
    assert_eq!(next(&mut events).await, Some("head"));
    // The client closes its connection while the request waits for the backend: the proxy
    // notices and drops the upstream request (its connection), as over plain TCP.
    drop(tls);
    assert_eq!(next(&mut events).await, Some("closed"));
}
