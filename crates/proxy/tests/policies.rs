//! Route policies over real sockets: faults, timeouts, retries, header edits, rewrites,
//! redirects, direct responses, CORS and mirrors.

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::*;
use strait_mesh::*;

fn on(prefix: &str) -> Vec<RequestMatch> {
    vec![RequestMatch {
        uri: Some(StringMatch::Prefix(prefix.into())),
        ..Default::default()
    }]
}

#[tokio::test]
async fn fault_abort_and_delay() {
    let v1 = Backend::start("v1").await;
    let mut abort = route("abort", on("/abort"), to("c1"));
    abort.fault = Some(Fault {
        abort: Some(FaultAbort {
            http_status: 555,
            percentage: 100.0,
        }),
        delay: None,
    });
    // Abort is not retried even with a retry policy (the fault filter runs before the router).
    abort.retries = Some(RetryPolicy {
        attempts: 3,
        retry_on: vec!["5xx".into()],
        ..Default::default()
    });
    let mut delay = route("delay", on("/delay"), to("c1"));
    delay.fault = Some(Fault {
        delay: Some(FaultDelay {
            fixed_delay_ms: 200,
            percentage: 100.0,
        }),
        abort: None,
    });
    let mut none = route("zero", on("/zero"), to("c1"));
    // Istio: percentage 0 injects nothing.
    none.fault = Some(Fault {
        abort: Some(FaultAbort {
            http_status: 500,
            percentage: 0.0,
        }),
        delay: None,
    });
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["ratings"], vec![abort, delay, none])],
        vec![cluster("c1", &[&v1])],
    );
    let (_p, addr) = start(cfg).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = send(proto, addr, "GET", "ratings", "/abort", &[]).await;
        assert_eq!((r.status, r.body.as_str()), (555, "fault filter abort"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
    }
    assert_eq!(v1.hits(), 0, "aborted requests never reach the upstream");
    let t0 = Instant::now();
    let r = get(addr, "ratings", "/delay").await;
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(200), "delay was injected");
    assert_eq!(get(addr, "ratings", "/zero").await.status, 200);
}

#[tokio::test]
async fn route_timeout_and_header_override() {
    let v1 = Backend::start("v1").await;
    let mut timed = route("timed", on("/timed"), to("c1"));
    timed.timeout_ms = Some(100);
    let open = route("open", on("/"), to("c1"));
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![timed, open])],
        vec![cluster("c1", &[&v1])],
    );
    let (_p, addr) = start(cfg).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = send(
            proto,
            addr,
            "GET",
            "reviews",
            "/timed",
            &[("x-test-delay-ms", "3000")],
        )
        .await;
        assert_eq!((r.status, r.body.as_str()), (504, "upstream request timeout"));
        let r = send(
            proto,
            addr,
            "GET",
            "reviews",
            "/open",
            &[
                ("x-test-delay-ms", "3000"),
                ("x-envoy-upstream-rq-timeout-ms", "100"),
            ],
        )
        .await;
        assert_eq!((r.status, r.body.as_str()), (504, "upstream request timeout"));
    }
    // No route timeout by default: a slowish upstream still succeeds.
    let r = send(
        Proto::H1,
        addr,
        "GET",
        "reviews",
        "/open",
        &[("x-test-delay-ms", "150")],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn retries_hit_flaky_backend_and_report_urx_when_exhausted() {
    let flaky = Backend::start("flaky").await;
    flaky.fail_first.store(2, std::sync::atomic::Ordering::SeqCst);
    let mut retried = route("retried", on("/"), to("c1"));
    retried.retries = Some(RetryPolicy {
        attempts: 2,
        per_try_timeout_ms: Some(2000),
        retry_on: vec!["5xx".into()],
        retriable_status_codes: vec![],
    });
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![retried])],
        vec![cluster("c1", &[&flaky])],
    );
    let (proxy, addr) = start(cfg).await;
    let r = send(Proto::H1, addr, "POST", "reviews", "/x", &[]).await;
    assert_eq!(r.status, 200, "third try succeeds: {}", r.body);
    assert_eq!(r.seen_header("x-envoy-attempt-count").as_deref(), Some("3"));
    assert_eq!(r.json()["body"], "ping", "the buffered body is replayed");
    assert_eq!(flaky.hits(), 3);

    // Exhausted: every try fails, the last upstream answer is returned.
    flaky.fail_first.store(10, std::sync::atomic::Ordering::SeqCst);
    let r = send(Proto::H2, addr, "GET", "reviews", "/x", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(flaky.hits(), 6);

    // Connect failures are retried too, and reported as UF,URX.
    let dead = closed_port().await;
    let c = cluster_at("dead", dead);
    let mut to_dead = route("dead", on("/"), to("dead"));
    to_dead.retries = Some(RetryPolicy {
        attempts: 1,
        retry_on: vec!["connect-failure".into()],
        ..Default::default()
    });
    let cfg = config(
        "v2",
        Direction::Outbound,
        vec![vhost(&["reviews"], vec![to_dead])],
        vec![c],
    );
    proxy.apply(cfg).await.unwrap();
    let r = get(addr, "reviews", "/").await;
    assert_eq!(r.status, 503);
    assert!(
        r.body
            .contains("retried and the latest reset reason: connection failure"),
        "{}",
        r.body
    );

    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let p2 = proxy.clone();
    tokio::spawn(async move { p2.serve_admin_on(admin).await });
    let stats = get(admin_addr, "admin", "/stats/prometheus").await.body;
    assert!(
        stats.contains("response_code=\"503\",response_flags=\"URX\""),
        "{stats}"
    );
    assert!(stats.contains("response_flags=\"UF,URX\""), "{stats}");
}

#[tokio::test]
async fn header_operations_route_then_destination() {
    let v1 = Backend::start("v1").await;
    let mut r = route(
        "hdr",
        vec![],
        RouteAction::Forward(vec![WeightedCluster {
            cluster: "c1".into(),
            weight: 1,
            headers: HeaderOps {
                request: HeaderEdit {
                    set: BTreeMap::from([("x-layer".into(), "destination".into())]),
                    ..Default::default()
                },
                response: HeaderEdit {
                    add: BTreeMap::from([("x-resp".into(), "dest".into())]),
                    ..Default::default()
                },
            },
        }]),
    );
    r.headers = HeaderOps {
        request: HeaderEdit {
            set: BTreeMap::from([("x-layer".into(), "route".into()), ("x-route".into(), "1".into())]),
            add: BTreeMap::from([("x-added".into(), "a".into())]),
            remove: vec!["x-secret".into()],
        },
        response: HeaderEdit {
            set: BTreeMap::from([("x-resp".into(), "route".into())]),
            remove: vec!["x-backend".into()],
            ..Default::default()
        },
    };
    let cfg = config(
        "v1",
        Direction::Inbound,
        vec![vhost(&["*"], vec![r])],
        vec![cluster("c1", &[&v1])],
    );
    let (_p, addr) = start(cfg).await;
    let resp = send(
        Proto::H1,
        addr,
        "GET",
        "x",
        "/",
        &[("x-secret", "s"), ("x-added", "z")],
    )
    .await;
    assert_eq!(
        resp.seen_header("x-layer").as_deref(),
        Some("destination"),
        "destination ops run last"
    );
    assert_eq!(resp.seen_header("x-route").as_deref(), Some("1"));
    assert_eq!(resp.seen_header("x-secret"), None);
    assert!(resp.seen_header("x-added").is_some());
    assert_eq!(
        resp.headers.get_all("x-resp").iter().count(),
        2,
        "route set, then destination add"
    );
    assert!(resp.header("x-backend").is_none());
}

#[tokio::test]
async fn rewrite_redirect_direct_response_and_cors() {
    let v1 = Backend::start("v1").await;
    let mut rw = route("rw", on("/v1/"), to("c1"));
    rw.rewrite = Some(Rewrite {
        uri: Some("/api/".into()),
        authority: Some("internal".into()),
        uri_regex: None,
    });
    let redirect = route(
        "redir",
        on("/old"),
        RouteAction::Redirect(Redirect {
            uri: Some("/new".into()),
            ..Default::default()
        }),
    );
    let direct = route(
        "direct",
        on("/health"),
        RouteAction::DirectResponse(DirectResponse {
            status: 418,
            body: Some("teapot".into()),
        }),
    );
    let mut cors = route("cors", on("/"), to("c1"));
    cors.cors = Some(CorsPolicy {
        allow_origins: vec![StringMatch::Exact("https://ok.example".into())],
        allow_methods: vec!["GET".into(), "POST".into()],
        max_age_s: Some(60),
        ..Default::default()
    });
    let cfg = config(
        "v1",
        Direction::Gateway,
        vec![vhost(&["shop.example"], vec![rw, redirect, direct, cors])],
        vec![cluster("c1", &[&v1])],
    );
    let (_p, addr) = start(cfg).await;
    let r = get(addr, "shop.example", "/v1/items?q=1").await;
    assert_eq!(r.json()["path"], "/api/items?q=1");
    assert_eq!(r.seen_header("host").as_deref(), Some("internal"));
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1"),
        "gateways append the client"
    );
    assert_eq!(
        r.seen_header("x-envoy-original-path").as_deref(),
        Some("/v1/items?q=1")
    );
    let r = get(addr, "shop.example", "/old").await;
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("http://shop.example/new"))
    );
    let r = get(addr, "shop.example", "/health").await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (418, "teapot", Some("text/plain"))
    );
    let pre = send(
        Proto::H1,
        addr,
        "OPTIONS",
        "shop.example",
        "/x",
        &[
            ("origin", "https://ok.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert_eq!(pre.status, 200);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://ok.example")
    );
    assert_eq!(pre.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(pre.header("access-control-max-age"), Some("60"));
    assert_eq!(v1.hits(), 1, "the preflight is answered by the proxy");
    let simple = send(
        Proto::H1,
        addr,
        "GET",
        "shop.example",
        "/x",
        &[("origin", "https://ok.example")],
    )
    .await;
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://ok.example")
    );
    let other = send(
        Proto::H1,
        addr,
        "GET",
        "shop.example",
        "/x",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(other.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn mirror_copies_requests_fire_and_forget() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let mut r = route("mirrored", vec![], to("c1"));
    r.mirrors = vec![Mirror {
        cluster: "c2".into(),
        percentage: 100.0,
    }];
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["httpbin"], vec![r])],
        vec![cluster("c1", &[&v1]), cluster("c2", &[&v2])],
    );
    let (_p, addr) = start(cfg).await;
    let r = send(Proto::H1, addr, "GET", "httpbin", "/headers", &[]).await;
    assert_eq!(r.backend(), "v1");
    eventually("the mirror to receive a copy", || v2.hits() == 1).await;
}

#[tokio::test]
async fn outlier_detection_ejects_failing_endpoints() {
    let (good, bad) = (Backend::start("good").await, Backend::start("bad").await);
    bad.fail_first.store(1000, std::sync::atomic::Ordering::SeqCst);
    let mut c = cluster("c", &[&good, &bad]);
    c.lb_policy = LbPolicy::RoundRobin;
    c.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: 1,
        interval_ms: 1000,
        base_ejection_ms: 60_000,
        max_ejection_percent: 100,
        ..Default::default()
    });
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["httpbin"], vec![route("r", vec![], to("c"))])],
        vec![c],
    );
    let (_p, addr) = start(cfg).await;
    let mut failures = 0;
    for _ in 0..10 {
        if get(addr, "httpbin", "/").await.status != 200 {
            failures += 1;
        }
    }
    assert_eq!((failures, bad.hits()), (1, 1), "one 503 ejects the bad endpoint");
    good.fail_first.store(1000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(get(addr, "httpbin", "/").await.status, 503);
    let r = get(addr, "httpbin", "/").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "no healthy upstream"),
        "all endpoints ejected"
    );
}

#[tokio::test]
async fn circuit_breaker_overflow_is_503_uo() {
    let slow = Backend::start("slow").await;
    let mut c = cluster("c", &[&slow]);
    c.connection_pool = Some(ConnectionPool {
        max_requests: Some(1),
        ..Default::default()
    });
    let cfg = config(
        "v1",
        Direction::Outbound,
        vec![vhost(&["httpbin"], vec![route("r", vec![], to("c"))])],
        vec![c],
    );
    let (_p, addr) = start(cfg).await;
    let first = tokio::spawn(async move {
        send(
            Proto::H1,
            addr,
            "GET",
            "httpbin",
            "/",
            &[("x-test-delay-ms", "2000")],
        )
        .await
    });
    eventually("the first request to be in flight", || slow.hits() == 1).await;
    let r = get(addr, "httpbin", "/").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        )
    );
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(
        get(addr, "httpbin", "/").await.status,
        200,
        "capacity is released with the response"
    );
}

#[tokio::test]
async fn gateways_ignore_client_timeout_header_and_connect() {
    let v1 = Backend::start("v1").await;
    let cfg = config(
        "v1",
        Direction::Gateway,
        vec![vhost(&["*"], vec![route("r", vec![], to("c1"))])],
        vec![cluster("c1", &[&v1])],
    );
    let (_p, addr) = start(cfg).await;
    let r = send(
        Proto::H1,
        addr,
        "GET",
        "x",
        "/",
        &[
            ("x-test-delay-ms", "150"),
            ("x-envoy-upstream-rq-timeout-ms", "20"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "external clients cannot shorten the timeout");
    let connect = send(Proto::H1, addr, "CONNECT", "x:443", "x:443", &[]).await;
    assert_eq!(connect.status, 404);
}
