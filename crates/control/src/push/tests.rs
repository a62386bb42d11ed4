use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use strait_api::Kind;
use strait_mesh::Cluster;
use strait_mesh::pb::config_discovery_client::ConfigDiscoveryClient;
use strait_mesh::pb::{Ack, ConfigPush, Nack};
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};

use super::*;
use crate::compile::compile;

/// A compiler with a known outcome: one cluster per DestinationRule, nothing for other kinds.
/// So applying a VirtualService must not push, and applying a DestinationRule must.
fn test_compiler() -> Compiler {
    Arc::new(|resources: &[Arc<Resource>], node: &ProxyNode| ProxyConfig {
        clusters: resources
            .iter()
            .filter(|r| r.kind == Kind::DestinationRule)
            .map(|r| Cluster {
                name: format!("{}|{}", r.name(), node.id),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn dr(name: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec: {{host: {name}}}\n"
    )
}

const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}\n";

async fn serve(compiler: Compiler) -> (Arc<Store>, Arc<PushServer>, SocketAddr) {
    let store = Arc::new(Store::in_memory());
    let server = PushServer::with_compiler(store.clone(), compiler);
    server.spawn_watcher();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = server.service();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (store, server, addr)
}

struct TestProxy {
    tx: mpsc::Sender<ProxyMessage>,
    pushes: Streaming<ConfigPush>,
}

impl TestProxy {
    async fn connect(addr: SocketAddr, id: &str, role: &str) -> TestProxy {
        let mut client = ConfigDiscoveryClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(16);
        let hello = Hello {
            proxy_id: id.into(),
            role: role.into(),
            namespace: "default".into(),
            labels: if role == "gateway" {
                [("istio".to_string(), "ingressgateway".to_string())].into()
            } else {
                Default::default()
            },
            address: "127.0.0.1".into(),
            ..Default::default()
        };
        tx.send(ProxyMessage {
            kind: Some(proxy_message::Kind::Hello(hello)),
        })
        .await
        .expect("send hello");
        let pushes = client
            .stream_config(ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        TestProxy { tx, pushes }
    }

    async fn next_push(&mut self) -> (String, ProxyConfig) {
        let push = tokio::time::timeout(Duration::from_secs(10), self.pushes.message())
            .await
            .expect("a push within 10 s")
            .expect("stream ok")
            .expect("stream open");
        let config = ProxyConfig::from_json(&push.config_json).expect("config JSON");
        assert_eq!(config.version, push.version, "the config carries its version");
        (push.version, config)
    }

    async fn ack(&self, version: &str) {
        let ack = Ack {
            version: version.into(),
        };
        self.tx
            .send(ProxyMessage {
                kind: Some(proxy_message::Kind::Ack(ack)),
            })
            .await
            .expect("ack");
    }

    async fn nack(&self, version: &str, reason: &str) {
        let nack = Nack {
            version: version.into(),
            reason: reason.into(),
        };
        self.tx
            .send(ProxyMessage {
                kind: Some(proxy_message::Kind::Nack(nack)),
            })
            .await
            .expect("nack");
    }
}

/// Polls `check` until it holds, failing after 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(server: &PushServer, id: &str) -> Option<ProxyStatus> {
    server.status().into_iter().find(|s| s.id == id)
}

#[tokio::test]
async fn hello_gets_config_and_ack_is_recorded() {
    let (store, server, addr) = serve(test_compiler()).await;
    store.apply_text(&dr("reviews"), "t", false).expect("apply");
    let mut proxy = TestProxy::connect(addr, "productpage.default", "sidecar").await;
    let (version, config) = proxy.next_push().await;
    assert_eq!(version, "1", "version = store revision at compile time");
    assert_eq!(config.clusters[0].name, "reviews|productpage.default");
    proxy.ack(&version).await;
    eventually("ack recorded", || async {
        status_of(&server, "productpage.default")
            .and_then(|s| s.acked_version)
            .as_deref()
            == Some("1")
    })
    .await;
    let status = status_of(&server, "productpage.default").expect("status");
    assert_eq!(status.role, "sidecar");
    assert_eq!(status.sent_version.as_deref(), Some("1"));
    assert_eq!(status.nack_version, None);
    let acked = server
        .acked_config("productpage.default")
        .expect("connected")
        .expect("acked");
    assert_eq!(acked.version, "1");
    assert_eq!(acked.clusters.len(), 1);
    assert_eq!(server.acked_config("nobody"), None);
}

#[tokio::test]
async fn pushes_only_when_the_config_changes() {
    let (store, server, addr) = serve(test_compiler()).await;
    let mut proxy = TestProxy::connect(addr, "gw.istio-system", "gateway").await;
    let (v0, _) = proxy.next_push().await;
    assert_eq!(v0, "0");
    proxy.ack(&v0).await;

    // A change this proxy's config does not depend on: recompiling (here synchronously, and in
    // the watcher) must not push.
    store.apply_text(VS, "t", false).expect("apply vs");
    server.recompile_all();
    assert_eq!(
        status_of(&server, "gw.istio-system")
            .and_then(|s| s.sent_version)
            .as_deref(),
        Some("0")
    );

    // A change it depends on: the next message on the stream is that version (so nothing was
    // pushed for the VirtualService in between).
    store.apply_text(&dr("ratings"), "t", false).expect("apply dr");
    let (v2, config) = proxy.next_push().await;
    assert_eq!(v2, "2");
    assert_eq!(config.clusters[0].name, "ratings|gw.istio-system");
    assert_eq!(
        status_of(&server, "gw.istio-system").expect("status").role,
        "gateway"
    );
}

const BOOKINFO_GATEWAY: &str = include_str!("../../../../samples/bookinfo/networking/bookinfo-gateway.yaml");

#[tokio::test]
async fn real_compiler_pushes_gateway_routes_and_ignores_mesh_rules() {
    let (store, server, addr) = serve(Arc::new(compile)).await;
    let gateway = BOOKINFO_GATEWAY.split("\n---\n").next().unwrap_or_default();
    store
        .apply_text(gateway, "gw.yaml", false)
        .expect("apply gateway");
    let mut proxy = TestProxy::connect(addr, "istio-ingressgateway.istio-system", "gateway").await;
    let (v1, before) = proxy.next_push().await;
    proxy.ack(&v1).await;
    let routes = |c: &ProxyConfig| {
        c.route_tables
            .iter()
            .flat_map(|t| &t.virtual_hosts)
            .map(|v| v.routes.len())
            .sum::<usize>()
    };
    assert_eq!(routes(&before), 0, "no VirtualService bound yet");

    // Binding a VirtualService to the gateway changes the gateway's routes: a push.
    store
        .apply_text(BOOKINFO_GATEWAY, "bookinfo-gateway.yaml", false)
        .expect("apply");
    let (v2, after) = proxy.next_push().await;
    assert_eq!(v2, store.revision().to_string());
    assert!(
        routes(&after) > 0,
        "the bookinfo routes reach the gateway: {after:?}"
    );
    proxy.ack(&v2).await;

    // A mesh-only VirtualService does not concern the gateway: no push.
    store.apply_text(VS, "vs.yaml", false).expect("apply");
    server.recompile_all();
    let status = status_of(&server, "istio-ingressgateway.istio-system").expect("status");
    assert_eq!(status.sent_version.as_deref(), Some(v2.as_str()));
}

#[tokio::test]
async fn nack_is_recorded_and_keeps_the_acked_version() {
    let (store, server, addr) = serve(test_compiler()).await;
    let mut proxy = TestProxy::connect(addr, "reviews-v1.default", "sidecar").await;
    let (v0, _) = proxy.next_push().await;
    proxy.ack(&v0).await;
    store.apply_text(&dr("reviews"), "t", false).expect("apply");
    let (v1, _) = proxy.next_push().await;
    assert_eq!(v1, "1");
    proxy.nack(&v1, "route table: unknown cluster").await;
    eventually("nack recorded", || async {
        status_of(&server, "reviews-v1.default")
            .and_then(|s| s.nack_version)
            .as_deref()
            == Some("1")
    })
    .await;
    let status = status_of(&server, "reviews-v1.default").expect("status");
    assert_eq!(
        status.nack_reason.as_deref(),
        Some("route table: unknown cluster")
    );
    assert_eq!(
        status.acked_version.as_deref(),
        Some("0"),
        "a NACK leaves the proxy on its last good config"
    );
    assert_eq!(status.sent_version.as_deref(), Some("1"));
    let acked = server
        .acked_config("reviews-v1.default")
        .expect("connected")
        .expect("acked");
    assert_eq!(acked.version, "0");

    // A later good version is acknowledged; the NACK stays on record for the older version.
    store.apply_text(&dr("ratings"), "t", false).expect("apply");
    let (v2, _) = proxy.next_push().await;
    proxy.ack(&v2).await;
    eventually("ack after nack", || async {
        status_of(&server, "reviews-v1.default").is_some_and(|s| {
            s.acked_version.as_deref() == Some("2") && s.nack_version.as_deref() == Some("1")
        })
    })
    .await;
}

#[tokio::test]
async fn stream_end_removes_the_proxy() {
    let (_store, server, addr) = serve(test_compiler()).await;
    let mut proxy = TestProxy::connect(addr, "details.default", "sidecar").await;
    proxy.next_push().await;
    assert!(status_of(&server, "details.default").is_some());
    drop(proxy);
    eventually("proxy removed", || async { server.status().is_empty() }).await;
}

#[tokio::test]
async fn first_message_must_be_hello() {
    let (_store, _server, addr) = serve(test_compiler()).await;
    let mut client = ConfigDiscoveryClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(4);
    let ack = Ack { version: "1".into() };
    tx.send(ProxyMessage {
        kind: Some(proxy_message::Kind::Ack(ack)),
    })
    .await
    .expect("send");
    let mut pushes = client
        .stream_config(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    let status = pushes.message().await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[test]
fn offer_skips_identical_and_older_configs() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut conn = Connection {
        node: ProxyNode::default(),
        connected_since: SystemTime::now(),
        tx,
        accepts_delta: true,
        compiled_revision: 0,
        last: None,
        sent_version: None,
        pending: Vec::new(),
        acked: None,
        nack: None,
    };
    let a = Arc::new(Body::whole(ProxyConfig::default()));
    let b = Arc::new(Body::whole(ProxyConfig {
        clusters: vec![Cluster::default()],
        ..Default::default()
    }));
    conn.offer(3, a.clone());
    conn.offer(4, a.clone());
    conn.offer(2, b.clone());
    conn.offer(5, b.clone());
    let versions: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|p| match p {
            Outgoing::Push(v, _, base) => {
                assert!(base.is_none(), "nothing was acknowledged: no delta");
                v.to_string()
            }
            Outgoing::Fail(_) => String::new(),
        })
        .collect();
    assert_eq!(versions, ["3", "5"]);
    assert_eq!(conn.pending.len(), 2);
}
