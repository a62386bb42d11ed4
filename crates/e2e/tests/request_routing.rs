//! Istio's request-routing lab on Bookinfo, with Istio's own sample files, unchanged.

use strait_e2e::{Demo, istio_samples, stars};

fn networking(file: &str) -> std::path::PathBuf {
    istio_samples().join("samples/bookinfo/networking").join(file)
}

/// Logs in like the doc tests (`curl -c jar --data "username=jason&passwd=password" /login`) and
/// returns the session cookie.
fn login(demo: &Demo, user: &str) -> String {
    let body = format!("username={user}&passwd=password");
    let r = strait_e2e::http(
        demo.gateway,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    )
    .expect("login request");
    assert_eq!(r.status, 302, "login answers a redirect: {r:?}");
    let cookie = r.header("set-cookie").expect("login sets a session cookie");
    cookie.split(';').next().expect("cookie pair").to_string()
}

#[test]
fn bookinfo_through_the_gateway_and_request_routing() {
    let demo = Demo::start(41);

    // Without routing rules, the page is served through the gateway with Istio's server header.
    let page = demo.get("/productpage", &[]).expect("productpage");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Simple Bookstore App</title>"));
    assert_eq!(page.header("server"), Some("istio-envoy"));
    assert!(page.header("x-envoy-upstream-service-time").is_some());

    // virtual-service-all-v1.yaml: no page out of 20 has stars.
    let out = demo.apply(&networking("virtual-service-all-v1.yaml"));
    assert!(
        out.contains("virtualservice.networking.istio.io/reviews created"),
        "{out}"
    );
    demo.wait_synced();
    for i in 0..20 {
        let page = demo.get("/productpage", &[]).expect("productpage");
        assert_eq!(page.status, 200);
        assert_eq!(stars(&page.body), 0, "page {i} has stars after all-v1");
    }

    // virtual-service-reviews-test-v2.yaml: jason sees black stars on every page, others none.
    let out = demo.apply(&networking("virtual-service-reviews-test-v2.yaml"));
    assert!(
        out.contains("virtualservice.networking.istio.io/reviews configured"),
        "{out}"
    );
    demo.wait_synced();
    let cookie = login(&demo, "jason");
    for i in 0..10 {
        let page = demo
            .get("/productpage", &[("cookie", &cookie)])
            .expect("productpage as jason");
        assert!(
            page.body.contains(">jason</p>"),
            "page {i} does not show jason logged in"
        );
        assert_eq!(
            stars(&page.body),
            9,
            "jason's page {i} must have black stars (v2)"
        );
        assert!(
            page.body.contains("gap-x-1 text-black-500"),
            "jason's stars are black"
        );
        assert!(
            !page.body.contains("gap-x-1 text-red-500"),
            "jason never gets red stars (v3)"
        );
    }
    for i in 0..10 {
        let page = demo.get("/productpage", &[]).expect("anonymous productpage");
        assert_eq!(stars(&page.body), 0, "anonymous page {i} must have no stars (v1)");
    }
    let other = login(&demo, "alice");
    let page = demo
        .get("/productpage", &[("cookie", &other)])
        .expect("productpage as alice");
    assert_eq!(stars(&page.body), 0, "another user sees v1");

    // `strait get virtualservices` lists them like kubectl.
    let out = demo.strait(&["get", "virtualservices"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let header = text.lines().next().unwrap_or_default();
    for col in ["NAME", "GATEWAYS", "HOSTS", "AGE"] {
        assert!(header.contains(col), "missing column {col}: {header}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("reviews ") && l.contains("[\"reviews\"]")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("bookinfo ") && l.contains("[\"bookinfo-gateway\"]")),
        "{text}"
    );
}

/// Istio's fault-injection task on top of request routing: jason's ratings calls are aborted (500)
/// or delayed (7 s, beyond productpage's 2 × 3 s budget for reviews v2's 10 s ratings timeout).
#[test]
fn fault_injection_lab() {
    let demo = Demo::start(46);
    demo.apply(&networking("virtual-service-all-v1.yaml"));
    demo.apply(&networking("virtual-service-reviews-test-v2.yaml"));
    let out = demo.apply(&networking("virtual-service-ratings-test-abort.yaml"));
    assert!(
        out.contains("virtualservice.networking.istio.io/ratings configured"),
        "{out}"
    );
    demo.wait_synced();
    let jason = login(&demo, "jason");
    let page = demo
        .get("/productpage", &[("cookie", &jason)])
        .expect("productpage as jason");
    assert_eq!(
        page.body
            .matches("Ratings service is currently unavailable")
            .count(),
        2,
        "both reviews"
    );
    let page = demo.get("/productpage", &[]).expect("anonymous productpage");
    assert!(
        !page.body.contains("Ratings service is currently unavailable"),
        "others are unaffected"
    );

    demo.apply(&networking("virtual-service-ratings-test-delay.yaml"));
    demo.wait_synced();
    let page = demo
        .get("/productpage", &[("cookie", &jason)])
        .expect("productpage as jason");
    assert_eq!(page.status, 200, "the page itself never fails");
    assert!(
        page.body.contains("Error fetching product reviews"),
        "productpage gave up on reviews"
    );
    assert!(
        page.body
            .contains("Sorry, product reviews are currently unavailable for this book.")
    );
    let page = demo.get("/productpage", &[]).expect("anonymous productpage");
    assert!(!page.body.contains("Error fetching product reviews"));
}
