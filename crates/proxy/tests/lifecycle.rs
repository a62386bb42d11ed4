//! Config lifecycle: atomic swaps that keep in-flight requests, rejected configs that leave the
//! previous one serving, listener reconciliation, the admin endpoint and static files.

#[path = "support/harness.rs"]
mod harness;

use std::net::SocketAddr;

use harness::*;
use strait_mesh::*;
use strait_proxy::{ApplyError, Proxy, ProxyOptions, load_static};

fn to_backend(version: &str, b: &Backend) -> ProxyConfig {
    config(
        version,
        Direction::Inbound,
        vec![vhost(&["*"], vec![route("r", vec![], to("c"))])],
        vec![cluster("c", &[b])],
    )
}

/// `config` with a second listener, "extra", on a free port and the same route table.
fn with_extra_listener(mut config: ProxyConfig) -> ProxyConfig {
    config.listeners.push(Listener {
        name: "extra".into(),
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        direction: Direction::Outbound,
        route_table: "t".into(),
        tls: None,
    });
    config
}

#[tokio::test]
async fn swap_keeps_in_flight_requests_and_bad_configs_are_rejected() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (proxy, addr) = start(to_backend("v1", &a)).await;
    let slow =
        tokio::spawn(
            async move { send(Proto::H1, addr, "GET", "x", "/", &[("x-test-delay-ms", "300")]).await },
        );
    eventually("the slow request to reach backend a", || a.hits() == 1).await;
    proxy.apply(to_backend("v2", &b)).await.unwrap();
    assert_eq!(
        proxy.listener_addr("main"),
        Some(addr),
        "an unchanged listener keeps its socket"
    );
    let r = slow.await.unwrap();
    assert_eq!(
        (r.status, r.backend().as_str()),
        (200, "a"),
        "the in-flight request finished on the old config"
    );
    assert_eq!(get(addr, "x", "/").await.backend(), "b");

    // Invalid regex: rejected with a reason, nothing changes.
    let mut bad = to_backend("v3", &a);
    bad.route_tables[0].virtual_hosts[0].routes[0].matches = vec![RequestMatch {
        uri: Some(StringMatch::Regex("([".into())),
        ..Default::default()
    }];
    let err = proxy.apply(bad).await.unwrap_err();
    assert!(matches!(err, ApplyError::Regex { .. }), "{err}");
    assert_eq!(proxy.running().unwrap().version, "v2");
    assert_eq!(get(addr, "x", "/").await.backend(), "b");

    // Unbindable address: rejected, the old config keeps serving, nothing half-applied.
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut unbindable = to_backend("v4", &a);
    unbindable.listeners.push(Listener {
        name: "extra".into(),
        address: taken.local_addr().unwrap(),
        direction: Direction::Inbound,
        route_table: "t".into(),
        tls: None,
    });
    let err = proxy.apply(unbindable).await.unwrap_err();
    assert!(matches!(err, ApplyError::Bind { .. }), "{err}");
    assert!(err.to_string().contains("extra"), "{err}");
    assert_eq!(proxy.running().unwrap().version, "v2");
    assert_eq!(proxy.listener_addr("extra"), None);
    assert_eq!(get(addr, "x", "/").await.backend(), "b");

    // Same address, new direction: the socket is kept and the new role applies at once.
    let mut outbound = to_backend("v6", &b);
    outbound.listeners[0].direction = Direction::Outbound;
    proxy.apply(outbound).await.unwrap();
    assert_eq!(proxy.listener_addr("main"), Some(addr));
    assert_eq!(get(addr, "x", "/").await.header("server"), Some("envoy"));

    // A listener naming a missing route table is rejected too.
    let mut dangling = to_backend("v5", &a);
    dangling.listeners[0].route_table = "nope".into();
    assert!(matches!(
        proxy.apply(dangling).await,
        Err(ApplyError::UnknownRouteTable { .. })
    ));
}

#[tokio::test]
async fn removed_listeners_are_closed_and_new_ones_bound() {
    let a = Backend::start("a").await;
    let two = with_extra_listener(to_backend("v1", &a));
    let (proxy, addr) = start(two).await;
    let extra = proxy.listener_addr("extra").unwrap();
    let r = get(extra, "x", "/").await;
    assert_eq!((r.status, r.header("server")), (200, Some("envoy")));
    proxy.apply(to_backend("v2", &a)).await.unwrap();
    assert_eq!(proxy.listener_addr("extra"), None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect(extra).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the removed listener stops accepting"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(get(addr, "x", "/").await.status, 200);
}

#[tokio::test]
async fn admin_ready_config_dump_and_stats() {
    let a = Backend::start("a").await;
    let proxy = Proxy::new(ProxyOptions {
        id: "p1".into(),
        admin_addr: None,
        access_log: true,
    });
    assert!(proxy.serve_admin().await.is_err(), "no admin address configured");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let p = proxy.clone();
    tokio::spawn(async move { p.serve_admin_on(admin).await });
    assert_eq!(get(admin_addr, "admin", "/ready").await.status, 503);
    assert!(proxy.running().is_none());
    proxy.apply(to_backend("v7", &a)).await.unwrap();
    assert_eq!(get(admin_addr, "admin", "/ready").await.status, 200);
    let dump = get(admin_addr, "admin", "/config_dump").await;
    let cfg: ProxyConfig = serde_json::from_str(&dump.body).unwrap();
    assert_eq!(cfg.version, "v7");
    let addr = proxy.listener_addr("main").unwrap();
    assert_eq!(get(addr, "x", "/").await.status, 200);
    assert_eq!(get(addr, "x", "/").await.status, 200);
    let stats = get(admin_addr, "admin", "/stats/prometheus").await.body;
    assert!(
        stats.contains("reporter=\"destination\",source_workload=\"p1\",destination_service=\"c.default.svc.cluster.local\""),
        "{stats}"
    );
    assert!(stats.contains("destination_version=\"a\""), "{stats}");
    assert!(
        stats.contains("response_code=\"200\",response_flags=\"-\",connection_security_policy=\"none\"} 2"),
        "{stats}"
    );
}

#[tokio::test]
async fn load_static_reads_yaml_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = to_backend("static-1", &Backend::start("a").await);
    let json = dir.path().join("proxy.json");
    std::fs::write(&json, cfg.to_json()).unwrap();
    assert_eq!(load_static(&json).await.unwrap(), cfg);
    let yaml = dir.path().join("proxy.yaml");
    std::fs::write(
        &yaml,
        "version: y1\nlisteners:\n- name: main\n  address: 127.0.0.1:0\n  direction: GATEWAY\n  routeTable: t\n\
         routeTables:\n- name: t\n  virtualHosts: []\nclusters: []\n",
    )
    .unwrap();
    let y = load_static(&yaml).await.unwrap();
    assert_eq!(
        (y.version.as_str(), y.listeners[0].direction),
        ("y1", Direction::Gateway)
    );
    let missing = load_static(&dir.path().join("nope.yaml")).await.unwrap_err();
    assert!(missing.to_string().contains("nope.yaml"), "{missing}");
}

#[tokio::test]
async fn a_removed_listener_closes_idle_connections_and_tells_busy_ones_to_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a").await;
    let two = with_extra_listener(to_backend("v1", &a));
    let (proxy, _) = start(two).await;
    let extra = proxy.listener_addr("extra").unwrap();
    // Several requests first: a connection waits for the shutdown once for its whole life, so
    // that wait must still work after requests have come and gone.
    let mut idle = tokio::net::TcpStream::connect(extra).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..3 {
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut idle, &mut buf, false).await;
        assert!(r.status.starts_with("http/1.1 200"), "{r:?}");
        assert!(!r.head.contains("connection: close"), "{r:?}");
    }
    // Busy: the request's body is held back until the listener is gone, so the response can
    // only be written after the shutdown.
    let mut busy = tokio::net::TcpStream::connect(extra).await.unwrap();
    busy.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nab")
        .await
        .unwrap();
    eventually("the request to reach the backend", || a.hits() == 4).await;
    proxy.apply(to_backend("v2", &a)).await.unwrap();
    busy.write_all(b"cde").await.unwrap();
    let deadline = std::time::Duration::from_secs(10);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(deadline, idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "the idle connection is closed: {read:?}"
    );
    let r = read_response(&mut busy, &mut Vec::new(), false).await;
    assert!(r.status.starts_with("http/1.1 200"), "{r:?}");
    assert!(r.head.contains("connection: close"), "{r:?}");
    let read = tokio::time::timeout(deadline, busy.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "the busy connection closes after its response: {read:?}"
    );
}
