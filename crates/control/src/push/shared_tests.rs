//! The real push path (shared pieces, rendered on write) sends exactly what `compile()` makes.

use std::net::SocketAddr;
use std::time::Duration;

use strait_mesh::pb::config_discovery_client::ConfigDiscoveryClient;
use strait_mesh::pb::{Ack, ConfigPush};
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};

use super::*;
use crate::compile::compile;
use crate::compile::snapshot::tests::{mesh_yaml, nodes};

async fn serve(store: Arc<Store>) -> (Arc<PushServer>, SocketAddr) {
    let server = PushServer::new(store);
    server.spawn_watcher();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server.service())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (server, addr)
}

struct Sim {
    node: ProxyNode,
    /// Announced gzip in its Hello.
    gzip: bool,
    /// Announced deltas in its Hello.
    delta: bool,
    /// What it runs: the last push, whole or applied as a delta.
    running: Option<strait_mesh::ProxyConfig>,
    /// Deltas received.
    deltas: usize,
    tx: mpsc::Sender<ProxyMessage>,
    pushes: Streaming<ConfigPush>,
}

impl Sim {
    async fn connect(addr: SocketAddr, node: ProxyNode, gzip: bool, delta: bool) -> Sim {
        let mut client = ConfigDiscoveryClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(16);
        let hello = Hello {
            proxy_id: node.id.clone(),
            role: if node.role == ProxyRole::Gateway {
                "gateway"
            } else {
                "sidecar"
            }
            .into(),
            namespace: node.namespace.clone(),
            workload: node.workload.clone(),
            labels: node.labels.clone().into_iter().collect(),
            service_account: node.service_account.clone(),
            address: node.address.clone(),
            running_version: String::new(),
            accept_encodings: if gzip { vec!["gzip".into()] } else { Vec::new() },
            accept_delta: delta,
        };
        tx.send(ProxyMessage {
            kind: Some(proxy_message::Kind::Hello(hello)),
        })
        .await
        .expect("hello");
        let pushes = client
            .stream_config(ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        Sim {
            node,
            gzip,
            delta,
            running: None,
            deltas: 0,
            tx,
            pushes,
        }
    }

    /// The next push, checked byte for byte against `compile()` of the store's snapshot (after
    /// a multi-member gzip decode for a proxy that accepts gzip; plain JSON for the others).
    async fn expect_compiled_push(&mut self, store: &Store) -> String {
        let push = tokio::time::timeout(Duration::from_secs(10), self.pushes.message())
            .await
            .expect("a push within 10 s")
            .expect("stream ok")
            .expect("stream open");
        let mut expected = compile(&store.snapshot(), &self.node);
        expected.version = push.version.clone();
        let json = if !push.delta_base.is_empty() {
            assert!(
                self.delta,
                "{}: a delta to a proxy that did not ask for them",
                self.node.id
            );
            assert_eq!(push.encoding, "", "{}", self.node.id);
            let base = self.running.as_ref().expect("a delta comes after a whole push");
            assert_eq!(
                base.version, push.delta_base,
                "{}: the delta's base",
                self.node.id
            );
            let delta = strait_mesh::ConfigDelta::from_json(&push.config_json).expect("delta decodes");
            let mut config = delta.apply(base).expect("delta applies");
            config.version = push.version.clone();
            self.deltas += 1;
            config.to_json()
        } else if self.gzip {
            assert_eq!(push.encoding, "gzip", "{}", self.node.id);
            let mut json = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(push.config_json.as_slice()),
                &mut json,
            )
            .expect("the body is gzip");
            json
        } else {
            assert_eq!(push.encoding, "", "{}", self.node.id);
            push.config_json
        };
        assert!(
            json == expected.to_json(),
            "{}: the pushed body differs from compile()",
            self.node.id
        );
        self.running = Some(expected);
        push.version
    }

    async fn ack(&self, version: &str) {
        self.tx
            .send(ProxyMessage {
                kind: Some(proxy_message::Kind::Ack(Ack {
                    version: version.into(),
                })),
            })
            .await
            .expect("ack");
    }
}

const SVC0_CHANGED: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
    metadata: {name: svc0, namespace: default, creationTimestamp: '2024-01-01T00:00:00Z'}\n\
    spec: {hosts: [svc0], http: [{route: [{destination: {host: svc0, subset: v1}, weight: 50}, \
    {destination: {host: svc0, subset: v2}, weight: 50}]}]}\n";

/// A store with the test mesh, its push server, and every test node connected with its first
/// configuration checked and acknowledged. Every other proxy announces gzip, so both encodings
/// of the same configurations are checked; all announce deltas or none.
async fn mesh_with_sims(delta: bool) -> (Arc<Store>, Arc<PushServer>, Vec<Sim>) {
    let store = Arc::new(Store::in_memory());
    store
        .apply_text(&mesh_yaml(), "mesh.yaml", false)
        .expect("apply mesh");
    let (server, addr) = serve(store.clone()).await;
    let mut sims = Vec::new();
    for (i, node) in nodes().into_iter().enumerate() {
        let mut sim = Sim::connect(addr, node, i % 2 == 0, delta).await;
        let version = sim.expect_compiled_push(&store).await;
        sim.ack(&version).await;
        acked(&server, &sim.node.id, &version).await;
        sims.push(sim);
    }
    (store, server, sims)
}

#[tokio::test]
async fn every_proxy_gets_exactly_what_compile_makes_before_and_after_a_change() {
    let (store, server, mut sims) = mesh_with_sims(false).await;

    store
        .apply_text(SVC0_CHANGED, "change.yaml", false)
        .expect("apply change");
    for sim in &mut sims {
        // Gateways do not route svc0 from the mesh: they may get no push.
        if sim.node.role == ProxyRole::Gateway {
            continue;
        }
        let version = sim.expect_compiled_push(&store).await;
        sim.ack(&version).await;
    }

    let snapshot = store.snapshot();
    for sim in sims.iter().filter(|s| s.node.role == ProxyRole::Sidecar) {
        let id = sim.node.id.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status = server
                .status()
                .into_iter()
                .find(|s| s.id == id)
                .expect("connected");
            if status.acked_version == status.sent_version {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} never acked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let acked = server.acked_config(&id).expect("connected").expect("acked");
        let mut expected = compile(&snapshot, &sim.node);
        expected.version = acked.version.clone();
        assert_eq!(acked, expected, "{id}");
    }
}

/// Waits (with a deadline) until the server has recorded proxy `id`'s ACK of `version`: a
/// change applied before that is pushed whole (the proxy might be running something else).
async fn acked(server: &PushServer, id: &str, version: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !server
        .status()
        .iter()
        .any(|s| s.id == id && s.acked_version.as_deref() == Some(version))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never acked {version}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Changes that touch one service, add one, remove one, and change a DestinationRule.
fn changes() -> Vec<String> {
    let vs = |name: &str, host: &str, subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: {name}, namespace: default}}\n\
             spec: {{hosts: [{host}], http: [{{route: [{{destination: {{host: {host}, subset: {subset}}}}}]}}]}}\n"
        )
    };
    vec![
        SVC0_CHANGED.to_string(),
        vs("svc0", "svc0", "v2"),
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {name: added, namespace: default}\n\
         spec: {hosts: [added.example.com], ports: [{number: 80, name: http, protocol: HTTP}], \
         resolution: STATIC, endpoints: [{address: 10.9.9.9}]}\n"
            .to_string(),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {name: added, namespace: default}\n\
         spec: {host: added.example.com, subsets: [{name: a, labels: {tier: gold}}]}\n"
            .to_string(),
    ]
}

#[tokio::test]
async fn deltas_rebuild_exactly_what_compile_makes_change_after_change() {
    let (store, server, mut sims) = mesh_with_sims(true).await;
    let steps = changes().len() + 1;
    for k in 0..steps {
        match changes().get(k) {
            Some(change) => {
                store
                    .apply_text(change, "change.yaml", false)
                    .unwrap_or_else(|e| panic!("change {k}: {e}"));
            }
            // Last, a service goes away: the ServiceEntry added above.
            None => {
                store
                    .delete(strait_api::Kind::ServiceEntry, "default", "added")
                    .expect("delete");
            }
        }
        let revision = store.revision().to_string();
        for sim in sims.iter_mut().filter(|s| s.node.role == ProxyRole::Sidecar) {
            // Every sidecar routes every service: each gets this change's version.
            loop {
                let version = sim.expect_compiled_push(&store).await;
                sim.ack(&version).await;
                if version == revision {
                    acked(&server, &sim.node.id, &version).await;
                    break;
                }
            }
        }
    }
    for sim in sims.iter().filter(|s| s.node.role == ProxyRole::Sidecar) {
        assert_eq!(sim.deltas, steps, "{}: every change came as a delta", sim.node.id);
    }
    drop(server);
}

#[tokio::test]
async fn a_refused_delta_is_followed_by_the_whole_configuration_of_that_version() {
    let store = Arc::new(Store::in_memory());
    store
        .apply_text(&mesh_yaml(), "mesh.yaml", false)
        .expect("apply mesh");
    let (server, addr) = serve(store.clone()).await;
    let node = nodes()
        .into_iter()
        .find(|n| n.role == ProxyRole::Sidecar)
        .expect("a sidecar");
    let mut sim = Sim::connect(addr, node, false, true).await;
    let first = sim.expect_compiled_push(&store).await;
    sim.ack(&first).await;
    acked(&server, &sim.node.id, &first).await;
    store
        .apply_text(SVC0_CHANGED, "change.yaml", false)
        .expect("apply change");
    let delta = tokio::time::timeout(Duration::from_secs(10), sim.pushes.message())
        .await
        .expect("a push within 10 s")
        .expect("stream ok")
        .expect("stream open");
    assert_eq!(delta.delta_base, first, "a delta over the acknowledged version");
    sim.tx
        .send(ProxyMessage {
            kind: Some(proxy_message::Kind::Nack(Nack {
                version: delta.version.clone(),
                reason: "config delta over version 1 but this proxy runs nothing".into(),
            })),
        })
        .await
        .expect("nack");
    // What a proxy that lost its state would do: take the whole configuration.
    sim.running = None;
    let again = sim.expect_compiled_push(&store).await;
    assert_eq!(again, delta.version, "the same version, whole");
    assert_eq!(sim.deltas, 0);
}

/// A proxy that connects with a key nobody had compiles its shared part on the spot; the pieces
/// of that compile must be there for the next snapshot to reuse, as [`Prepared::share`]'s are.
/// (They were thrown away, so the first change after proxies connected rebuilt every service.)
#[test]
fn pieces_compiled_for_a_connecting_proxy_are_reused_by_the_next_snapshot() {
    let store = Store::in_memory();
    store
        .apply_text(&mesh_yaml(), "mesh.yaml", false)
        .expect("apply mesh");
    let sidecars: Vec<ProxyNode> = nodes()
        .into_iter()
        .filter(|n| n.role == ProxyRole::Sidecar)
        .collect();
    let before = store.shared_snapshot();
    // Shared parts compiled ahead, as after a change with the proxies connected …
    let ahead = Prepared::new(&before, None, None);
    ahead.share(&sidecars, None);
    // … and on the spot, as `connect` does for a key the snapshot has not compiled.
    let on_connect = Prepared::new(&before, None, None);
    for node in &sidecars {
        on_connect.body_for(node, None);
    }
    store
        .apply_text(SVC0_CHANGED, "change.yaml", false)
        .expect("apply change");
    let after = store.shared_snapshot();
    let reused = |older: &Prepared, node: &ProxyNode| {
        let next = Prepared::new(&after, None, Some(older));
        next.share(std::slice::from_ref(node), Some(older));
        let (a, b) = (
            older.shared_of(node).expect("compiled before"),
            next.shared_of(node).expect("shared"),
        );
        a.vhost_groups()
            .iter()
            .zip(b.vhost_groups())
            .filter(|(x, y)| Arc::ptr_eq(&x.json, &y.json))
            .count()
    };
    for node in &sidecars {
        let groups = ahead.shared_of(node).expect("shared").vhost_groups().len();
        let (r_ahead, r_connect) = (reused(&ahead, node), reused(&on_connect, node));
        // Only the services svc0's change touches are made again.
        assert!(r_ahead * 2 > groups, "{}: {r_ahead} of {groups} reused", node.id);
        assert_eq!(r_connect, r_ahead, "{}: pieces reused after a connect", node.id);
    }
}
