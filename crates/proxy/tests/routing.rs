//! Routing semantics over real sockets: match order, matchers, weights, explicit-proxy requests,
//! and Envoy's answers when no route or cluster applies.

#[path = "support/harness.rs"]
mod harness;

use harness::*;
use strait_mesh::*;

#[tokio::test]
async fn first_match_wins_and_regex_is_full_match() {
    let (v1, v2, v3) = (
        Backend::start("v1").await,
        Backend::start("v2").await,
        Backend::start("v3").await,
    );
    let routes = vec![
        route(
            "jason",
            vec![RequestMatch {
                headers: vec![header_exact("end-user", "jason")],
                ..Default::default()
            }],
            to("c2"),
        ),
        route(
            "ids",
            vec![RequestMatch {
                uri: Some(StringMatch::Regex(r"/id/\d+$".into())),
                ..Default::default()
            }],
            to("c3"),
        ),
        route(
            "reviews",
            vec![RequestMatch {
                uri: Some(StringMatch::Prefix("/reviews".into())),
                ..Default::default()
            }],
            to("c1"),
        ),
    ];
    let cfg = config(
        "v1",
        Direction::Inbound,
        vec![vhost(&["reviews"], routes)],
        vec![
            cluster("c1", &[&v1]),
            cluster("c2", &[&v2]),
            cluster("c3", &[&v3]),
        ],
    );
    let (_p, addr) = start(cfg).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = send(proto, addr, "GET", "reviews", "/reviews/0", &[]).await;
        assert_eq!((r.status, r.backend().as_str()), (200, "v1"), "{proto:?}");
        let r = send(
            proto,
            addr,
            "GET",
            "reviews",
            "/reviews/0",
            &[("end-user", "jason")],
        )
        .await;
        assert_eq!(
            r.backend(),
            "v2",
            "{proto:?}: the earlier route wins even though prefix also matches"
        );
        let r = send(proto, addr, "GET", "reviews", "/id/123", &[]).await;
        assert_eq!(r.backend(), "v3", "{proto:?}");
        let r = send(proto, addr, "GET", "reviews", "/id/a123", &[]).await;
        assert_eq!(r.status, 404, "{proto:?}: regex must match the whole path");
        let r = send(proto, addr, "GET", "reviews", "/reviews/../id/7", &[]).await;
        assert_eq!(
            (r.backend().as_str(), r.json()["path"].as_str()),
            ("v3", Some("/id/7")),
            "{proto:?}: dot segments resolved before routing"
        );
        let r = send(proto, addr, "GET", "reviews", "/id/123?x=1", &[]).await;
        assert_eq!(
            r.backend(),
            "v3",
            "{proto:?}: the query is not part of the uri match"
        );
    }
}

#[tokio::test]
async fn presence_without_headers_query_and_ignore_case() {
    let (a, b, c, d) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
        Backend::start("d").await,
    );
    let routes = vec![
        route(
            "presence",
            vec![RequestMatch {
                headers: vec![HeaderMatch {
                    name: "x-canary".into(),
                    value: None,
                }],
                ..Default::default()
            }],
            to("a"),
        ),
        route(
            "query",
            vec![RequestMatch {
                query_params: vec![QueryParamMatch {
                    name: "id".into(),
                    value: Some(StringMatch::Regex(r"\d+".into())),
                }],
                ..Default::default()
            }],
            to("b"),
        ),
        route(
            "case",
            vec![RequestMatch {
                uri: Some(StringMatch::Exact("/Login".into())),
                ignore_uri_case: true,
                ..Default::default()
            }],
            to("c"),
        ),
        route(
            "not-jason",
            vec![RequestMatch {
                without_headers: vec![header_exact("end-user", "jason")],
                ..Default::default()
            }],
            to("d"),
        ),
    ];
    let cfg = config(
        "v1",
        Direction::Gateway,
        vec![vhost(&["*"], routes)],
        vec![
            cluster("a", &[&a]),
            cluster("b", &[&b]),
            cluster("c", &[&c]),
            cluster("d", &[&d]),
        ],
    );
    let (_p, addr) = start(cfg).await;
    let h = Proto::H1;
    assert_eq!(
        send(h, addr, "GET", "x", "/", &[("x-canary", "")])
            .await
            .backend(),
        "a"
    );
    assert_eq!(send(h, addr, "GET", "x", "/?id=42", &[]).await.backend(), "b");
    assert_eq!(send(h, addr, "GET", "x", "/LOGIN", &[]).await.backend(), "c");
    assert_eq!(send(h, addr, "GET", "x", "/login", &[]).await.backend(), "c");
    assert_eq!(send(h, addr, "GET", "x", "/?id=x42", &[]).await.backend(), "d");
    let jason = send(h, addr, "GET", "x", "/other", &[("end-user", "jason")]).await;
    assert_eq!(
        (jason.status, jason.body.as_str()),
        (404, ""),
        "jason is excluded by withoutHeaders"
    );
}

#[tokio::test]
async fn weights_are_relative_within_binomial_bounds() {
    let (v1, v3) = (Backend::start("v1").await, Backend::start("v3").await);
    let action = RouteAction::Forward(vec![
        WeightedCluster {
            cluster: "c1".into(),
            weight: 1,
            ..Default::default()
        },
        WeightedCluster {
            cluster: "c3".into(),
            weight: 3,
            ..Default::default()
        },
        WeightedCluster {
            cluster: "never".into(),
            weight: 0,
            ..Default::default()
        },
    ]);
    let cfg = config(
        "v1",
        Direction::Inbound,
        vec![vhost(&["*"], vec![route("split", vec![], action)])],
        vec![cluster("c1", &[&v1]), cluster("c3", &[&v3])],
    );
    let (_p, addr) = start(cfg).await;
    let n = 400usize;
    let mut v1_count = 0usize;
    for _ in 0..n {
        let r = get(addr, "reviews", "/").await;
        assert_eq!(
            r.status, 200,
            "weight-0 destination must never be chosen: {}",
            r.body
        );
        if r.backend() == "v1" {
            v1_count += 1;
        }
    }
    // 1:3 => p = 0.25. Accept mean ± 5 standard deviations (false-failure odds < 1e-6).
    let (p, nf) = (0.25f64, n as f64);
    let (mean, sd) = (nf * p, (nf * p * (1.0 - p)).sqrt());
    let (lo, hi) = (mean - 5.0 * sd, mean + 5.0 * sd);
    assert!(
        (lo..=hi).contains(&(v1_count as f64)),
        "v1 got {v1_count}/{n}, expected {lo:.0}..{hi:.0}"
    );
}

#[tokio::test]
async fn no_route_no_cluster_no_endpoints_and_connect_failure() {
    let dead = closed_port().await;
    let mut refused = Cluster {
        name: "refused".into(),
        ..Default::default()
    };
    refused.endpoints.push(Endpoint {
        address: dead,
        labels: Default::default(),
        weight: 1,
    });
    refused.connect_timeout_ms = 1000;
    let routes = vec![
        route(
            "nc",
            vec![RequestMatch {
                uri: Some(StringMatch::Prefix("/nc".into())),
                ..Default::default()
            }],
            to("missing"),
        ),
        route(
            "uh",
            vec![RequestMatch {
                uri: Some(StringMatch::Prefix("/uh".into())),
                ..Default::default()
            }],
            to("empty"),
        ),
        route(
            "uf",
            vec![RequestMatch {
                uri: Some(StringMatch::Prefix("/uf".into())),
                ..Default::default()
            }],
            to("refused"),
        ),
    ];
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], routes)],
        vec![
            Cluster {
                name: "empty".into(),
                ..Default::default()
            },
            refused,
        ],
    );
    let (_p, addr) = start(cfg).await;
    for proto in [Proto::H1, Proto::H2] {
        let nr = send(proto, addr, "GET", "unknown-host", "/nc", &[]).await;
        assert_eq!((nr.status, nr.body.as_str()), (404, ""));
        assert_eq!(nr.header("content-length"), Some("0"));
        assert_eq!(nr.header("server"), Some("envoy"));
        assert_eq!(
            nr.header("x-envoy-upstream-service-time"),
            None,
            "no upstream answered"
        );
        let nr = send(proto, addr, "GET", "reviews", "/nothing", &[]).await;
        assert_eq!(nr.status, 404);
        let nc = send(proto, addr, "GET", "reviews", "/nc", &[]).await;
        assert_eq!((nc.status, nc.body.as_str()), (503, ""));
        let uh = send(proto, addr, "GET", "reviews", "/uh", &[]).await;
        assert_eq!((uh.status, uh.body.as_str()), (503, "no healthy upstream"));
        assert_eq!(uh.header("content-type"), Some("text/plain"));
        let uf = send(proto, addr, "GET", "reviews", "/uf", &[]).await;
        assert_eq!(
            (uf.status, uf.body.as_str()),
            (
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
            )
        );
    }
}

#[tokio::test]
async fn explicit_proxy_absolute_form_keeps_host() {
    let v1 = Backend::start("v1").await;
    let mut vh = vhost(&["reviews"], vec![route("r", vec![], to("c1"))]);
    vh.port = Some(9080);
    let cfg = config("v1", Direction::Outbound, vec![vh], vec![cluster("c1", &[&v1])]);
    let (_p, addr) = start(cfg).await;
    let r = send(
        Proto::H1,
        addr,
        "GET",
        "reviews:9080",
        "http://reviews:9080/reviews/0?x=1",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/reviews/0?x=1", "forwarded in origin-form");
    assert_eq!(r.seen_header("host").as_deref(), Some("reviews:9080"));
    assert_eq!(r.seen_header("x-envoy-attempt-count").as_deref(), Some("1"));
    assert!(r.seen_header("x-request-id").is_some());
    assert_eq!(
        r.header("server"),
        Some("envoy"),
        "the app's server header is replaced"
    );
    assert!(r.header("x-envoy-upstream-service-time").is_some());
    // The vhost port must equal the authority port, which defaults to 80.
    let wrong_port = send(Proto::H1, addr, "GET", "reviews", "http://reviews/reviews/0", &[]).await;
    assert_eq!(wrong_port.status, 404);
    // Host names compare case-insensitively.
    let upper = send(Proto::H1, addr, "GET", "REVIEWS:9080", "/reviews/0", &[]).await;
    assert_eq!(upper.status, 200);
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let (h1, h2) = (Backend::start("h1").await, Backend::start("h2").await);
    let mut c2 = cluster("c2", &[&h2]);
    c2.protocol = UpstreamProtocol::Http2;
    let routes = vec![
        route(
            "h2",
            vec![RequestMatch {
                uri: Some(StringMatch::Prefix("/h2".into())),
                ..Default::default()
            }],
            to("c2"),
        ),
        route("h1", vec![], to("c1")),
    ];
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["*"], routes)],
        vec![cluster("c1", &[&h1]), c2],
    );
    let (proxy, addr) = start(cfg.clone()).await;
    for _ in 0..5 {
        assert_eq!(get(addr, "x", "/h1").await.status, 200);
        assert_eq!(get(addr, "x", "/h2").await.status, 200);
    }
    // A config swap keeps the warm pools.
    let mut v2 = cfg;
    v2.version = "v2".into();
    proxy.apply(v2).await.unwrap();
    assert_eq!(get(addr, "x", "/h1").await.status, 200);
    assert_eq!(get(addr, "x", "/h2").await.status, 200);
    let conns = |b: &Backend| b.conns.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        (conns(&h1), conns(&h2)),
        (1, 1),
        "sequential requests reuse one upstream connection"
    );
}

#[tokio::test]
async fn h2c_upstream_and_inbound_server_header() {
    let v1 = Backend::start("v1").await;
    let mut c = cluster("c1", &[&v1]);
    c.protocol = UpstreamProtocol::Http2;
    let cfg = config(
        "v1",
        Direction::Inbound,
        vec![vhost(&["*"], vec![route("r", vec![], to("c1"))])],
        vec![c],
    );
    let (_p, addr) = start(cfg).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = send(proto, addr, "POST", "ratings", "/ratings/1", &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["version"], "HTTP/2.0");
        assert_eq!(
            r.json()["authority"],
            "ratings",
            "h2 :authority carries the logical host"
        );
        assert_eq!(r.json()["body"], "ping", "request bodies are forwarded");
        assert_eq!(r.header("server"), Some("istio-envoy"));
        assert_eq!(
            r.headers.get_all("server").iter().count(),
            1,
            "the app's is replaced"
        );
        let time = r.header("x-envoy-upstream-service-time");
        assert!(time.is_some_and(|t| t.parse::<u64>().is_ok()), "{time:?}");
    }
}

/// Envoy's router sets `x-envoy-attempt-count` itself: a count the client sent is replaced, not
/// forwarded beside the proxy's. `x-forwarded-proto` is added only when the client sent none.
/// On HTTP/1.1 upstreams the encoder writes both; on h2c ones hyper's client gets them in its map.
#[tokio::test]
async fn attempt_count_is_the_proxys_and_forwarded_proto_the_clients_when_sent() {
    for protocol in [UpstreamProtocol::Http1, UpstreamProtocol::Http2] {
        let v1 = Backend::start("v1").await;
        let mut c = cluster("c1", &[&v1]);
        c.protocol = protocol;
        let cfg = config(
            "v1",
            Direction::Outbound,
            vec![vhost(&["reviews"], vec![route("r", vec![], to("c1"))])],
            vec![c],
        );
        let (_p, addr) = start(cfg).await;
        for proto in [Proto::H1, Proto::H2] {
            let case = format!("{protocol:?} upstream, {proto:?} downstream");
            let sent = [
                ("x-envoy-attempt-count", "7"),
                ("x-forwarded-proto", "https"),
                ("x-other", "kept"),
            ];
            for (sent, forwarded_proto) in [(&sent[..], "https"), (&[][..], "http")] {
                let r = send(proto, addr, "GET", "reviews", "/", sent).await;
                assert_eq!(r.status, 200, "{}", r.body);
                let seen = |name| r.seen_header(name);
                assert_eq!(seen("x-envoy-attempt-count").as_deref(), Some("1"), "{case}");
                assert_eq!(
                    seen("x-forwarded-proto").as_deref(),
                    Some(forwarded_proto),
                    "{case}"
                );
                let other = sent.iter().find(|(n, _)| *n == "x-other").map(|(_, v)| *v);
                assert_eq!(seen("x-other").as_deref(), other, "{case}");
            }
        }
    }
}

/// Envoy's connection manager sets `x-forwarded-proto` before routing, so a VirtualService
/// matching it routes a request that did not carry the field as if it had (Istio's redirect-to-
/// HTTPS recipes rely on it).
#[tokio::test]
async fn a_route_matches_the_forwarded_proto_the_proxy_will_set() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let routes = vec![
        route(
            "plain",
            vec![RequestMatch {
                headers: vec![header_exact("x-forwarded-proto", "http")],
                ..Default::default()
            }],
            to("c1"),
        ),
        route("rest", vec![], to("c2")),
    ];
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], routes)],
        vec![cluster("c1", &[&v1]), cluster("c2", &[&v2])],
    );
    let (_p, addr) = start(cfg).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = send(proto, addr, "GET", "reviews", "/", &[]).await;
        assert_eq!((r.status, r.backend().as_str()), (200, "v1"), "{proto:?}");
        assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
        let sent = [("x-forwarded-proto", "https")];
        let r = send(proto, addr, "GET", "reviews", "/", &sent).await;
        assert_eq!(
            r.backend(),
            "v2",
            "{proto:?}: a sidecar keeps the field a client sent"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_spread_over_endpoints() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["*"], vec![route("r", vec![], to("c"))])],
        vec![cluster("c", &[&a, &b, &c])],
    );
    let (_p, addr) = start(cfg).await;
    let tasks: Vec<_> = (0..150)
        .map(|i| {
            let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
            tokio::spawn(async move {
                send(proto, addr, "GET", "x", "/", &[("x-test-delay-ms", "5")])
                    .await
                    .status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // LEAST_REQUEST (the default) uses every endpoint.
    assert!(
        a.hits() > 0 && b.hits() > 0 && c.hits() > 0,
        "{} {} {}",
        a.hits(),
        b.hits(),
        c.hits()
    );
    assert_eq!(a.hits() + b.hits() + c.hits(), 150);
}

#[tokio::test]
async fn passthrough_cluster_forwards_to_the_requested_authority() {
    let ext = Backend::start("external").await;
    let pass = Cluster {
        name: strait_proxy::PASSTHROUGH_CLUSTER.into(),
        ..Default::default()
    };
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(
            &["*"],
            vec![route("allow_any", vec![], to(strait_proxy::PASSTHROUGH_CLUSTER))],
        )],
        vec![pass],
    );
    let (_p, addr) = start(cfg).await;
    let port = ext.addr.port();
    let by_ip = format!("http://127.0.0.1:{port}/anything");
    let r = send(Proto::H1, addr, "GET", &format!("127.0.0.1:{port}"), &by_ip, &[]).await;
    assert_eq!((r.status, r.backend().as_str()), (200, "external"), "{}", r.body);
    let by_name = format!("http://localhost:{port}/anything");
    let r = send(
        Proto::H1,
        addr,
        "GET",
        &format!("localhost:{port}"),
        &by_name,
        &[],
    )
    .await;
    assert_eq!((r.status, r.backend().as_str()), (200, "external"), "{}", r.body);
    assert_eq!(r.seen_header("host"), Some(format!("localhost:{port}")));
}
