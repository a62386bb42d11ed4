//! VirtualService and DestinationRule semantics from Istio's reference, end to end: through the
//! ingress gateway, its routes, the reviews sidecars and the reviews applications.

use std::path::PathBuf;

use strait_e2e::{Demo, Response};

/// Which reviews version answered `/reviews/0`: v1 has no rating, v2 black stars, v3 red.
fn version(r: &Response) -> &'static str {
    assert_eq!(r.status, 200, "reviews answered {}: {}", r.status, r.body);
    if r.body.contains("\"color\": \"black\"") {
        "v2"
    } else if r.body.contains("\"color\": \"red\"") {
        "v3"
    } else if !r.body.contains("\"rating\"") {
        "v1"
    } else {
        panic!("unrecognised reviews body: {}", r.body)
    }
}

fn write(dir: &tempdir::Dir, name: &str, yaml: &str) -> PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, yaml).expect("write test manifest");
    path
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("strait-e2e-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const HOST: (&str, &str) = ("host", "routing.test");

fn get(demo: &Demo, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut all = vec![HOST];
    all.extend_from_slice(headers);
    demo.get(path, &all).expect("request through the gateway")
}

#[test]
fn istio_routing_semantics_through_the_mesh() {
    let demo = Demo::start(42);
    let dir = tempdir::Dir::new("routing");
    let dr = write(
        &dir,
        "dr.yaml",
        r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
  - name: v3
    labels: {version: v3}
  - name: v4
    labels: {version: v4}
"#,
    );
    demo.apply(&dr);
    let vs = write(
        &dir,
        "vs.yaml",
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: routing
spec:
  hosts: [routing.test]
  gateways: [bookinfo-gateway]
  http:
  - name: first-wins
    match: [{uri: {prefix: /reviews}, headers: {x-order: {exact: a}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: never-reached-for-x-order-a
    match: [{uri: {exact: /reviews/0}, headers: {x-order: {exact: a}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: full-match-regex
    match: [{headers: {x-id: {regex: "\\d+"}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: presence
    match: [{headers: {x-canary: {}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: undefined-subset
    match: [{headers: {x-nc: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v9}}]
  - name: subset-without-endpoints
    match: [{headers: {x-uh: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v4}}]
  - name: weights
    match: [{uri: {prefix: /reviews}}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 1}
    - {destination: {host: reviews, subset: v3}, weight: 3}
"#,
    );
    let out = demo.apply(&vs);
    assert!(
        out.contains("virtualservice.networking.istio.io/routing created"),
        "{out}"
    );
    demo.wait_synced();

    // Ordered rules, first match wins.
    assert_eq!(version(&get(&demo, "/reviews/0", &[("x-order", "a")])), "v2");
    // Regex is a full-string match: `\d+` matches 123, not a123 (which falls through to weights).
    assert_eq!(
        version(&get(
            &demo,
            "/reviews/0",
            &[("x-id", "123"), ("x-canary-no", "1")]
        )),
        "v3"
    );
    let r = get(&demo, "/reviews/0", &[("x-id", "a123"), ("x-canary", "")]);
    assert_eq!(
        version(&r),
        "v2",
        "a123 must not match \\d+; the presence rule catches it"
    );
    // Presence match `{}` matches any value, even empty.
    assert_eq!(version(&get(&demo, "/reviews/0", &[("x-canary", "yes")])), "v2");

    // Undefined subset: 503 with flag NC, empty body.
    let r = get(&demo, "/reviews/0", &[("x-nc", "1")]);
    assert_eq!((r.status, r.body.as_str()), (503, ""), "{r:?}");
    // Subset that selects no pods: 503 `no healthy upstream` (UH).
    let r = get(&demo, "/reviews/0", &[("x-uh", "1")]);
    assert_eq!((r.status, r.body.as_str()), (503, "no healthy upstream"), "{r:?}");
    // No rule matches: 404 NR, no implicit default route.
    let r = get(&demo, "/nothing-here", &[]);
    assert_eq!((r.status, r.body.as_str()), (404, ""), "{r:?}");
    // Unknown host on the gateway: 404 as well... unless the bookinfo `*` host catches it, so use
    // a path bookinfo does not route.
    let r = demo
        .get("/not-bookinfo", &[("host", "other.test")])
        .expect("request");
    assert_eq!(r.status, 404);

    // Relative weights 1:3 -> v3 share 0.75; accept within 4.5 standard deviations of the binomial.
    let n = 200usize;
    let v3 = (0..n)
        .filter(|_| version(&get(&demo, "/reviews/0", &[])) == "v3")
        .count();
    let (p, nf) = (0.75f64, n as f64);
    let sd = (nf * p * (1.0 - p)).sqrt();
    let (lo, hi) = (nf * p - 4.5 * sd, nf * p + 4.5 * sd);
    assert!(
        (lo..=hi).contains(&(v3 as f64)),
        "v3 got {v3} of {n}, expected within [{lo:.0}, {hi:.0}]"
    );
    assert!(v3 < n, "v1 must get some traffic at weight 1");
}
