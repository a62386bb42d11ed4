//! httpbin over real sockets: exact go-httpbin bodies for the endpoints Istio's tasks use.

#[path = "support/net.rs"]
mod net;

use net::*;
use strait_samples::App;

const JSON: &str = "application/json; charset=utf-8";

#[tokio::test]
async fn get_echoes_args_headers_origin_and_url() {
    let bin = start(App::Httpbin, &[]).await;
    let (r, me) = request_from(
        bin,
        "GET",
        "/get?b=2&a=1&a=3",
        &[
            ("Host", "httpbin:8000"),
            ("User-Agent", "curl/8.16.0"),
            ("Accept", "*/*"),
        ],
        "",
    )
    .await;
    assert_eq!((r.status, r.header("content-type")), (200, Some(JSON)));
    let want = format!(
        "{{\n  \"args\": {{\n    \"a\": [\n      \"1\",\n      \"3\"\n    ],\n    \"b\": [\n      \"2\"\n    ]\n  }},\n  \
         \"headers\": {{\n    \"Accept\": [\n      \"*/*\"\n    ],\n    \"Connection\": [\n      \"close\"\n    ],\n    \
         \"Host\": [\n      \"httpbin:8000\"\n    ],\n    \"User-Agent\": [\n      \"curl/8.16.0\"\n    ]\n  }},\n  \
         \"method\": \"GET\",\n  \"origin\": \"{me}\",\n  \"url\": \"http://httpbin:8000/get?b=2\\u0026a=1\\u0026a=3\"\n}}\n"
    );
    assert_eq!(r.body, want);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn headers_are_arrays_with_go_canonical_keys() {
    let bin = start(App::Httpbin, &[]).await;
    let r = request(
        bin,
        "GET",
        "/headers",
        &[
            ("Host", "httpbin:8000"),
            ("x-forwarded-client-cert", "By=spiffe://a;Hash=1"),
            ("x-b3-traceid", "abc"),
        ],
        "",
    )
    .await;
    assert_eq!(
        r.body,
        "{\n  \"headers\": {\n    \"Connection\": [\n      \"close\"\n    ],\n    \"Host\": [\n      \"httpbin:8000\"\n    ],\n    \
         \"X-B3-Traceid\": [\n      \"abc\"\n    ],\n    \"X-Forwarded-Client-Cert\": [\n      \"By=spiffe://a;Hash=1\"\n    ]\n  }\n}\n"
    );
    assert!(
        r.body
            .lines()
            .any(|l| l.trim() == "\"X-Forwarded-Client-Cert\": [")
    );
}

#[tokio::test]
async fn ip_user_agent_and_hostname() {
    let bin = start(App::Httpbin, &[]).await;
    let (r, me) = request_from(bin, "GET", "/ip", &[("Host", "h")], "").await;
    assert_eq!(r.body, format!("{{\n  \"origin\": \"{me}\"\n}}\n"));
    let r = get(bin, "/ip", &[("X-Forwarded-For", "10.0.0.7, 10.0.0.8")]).await;
    assert_eq!(r.body, "{\n  \"origin\": \"10.0.0.7\"\n}\n");
    let r = get(bin, "/user-agent", &[("User-Agent", "curl/8.16.0")]).await;
    assert_eq!(r.body, "{\n  \"user-agent\": \"curl/8.16.0\"\n}\n");
    let r = get(bin, "/hostname", &[]).await;
    assert_eq!(r.body, "{\n  \"hostname\": \"go-httpbin\"\n}\n");
}

#[tokio::test]
async fn status_codes_teapot_and_errors() {
    let bin = start(App::Httpbin, &[]).await;
    let r = get(bin, "/status/418", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (418, "I'm a teapot!"));
    assert_eq!(
        r.header("x-more-info"),
        Some("http://tools.ietf.org/html/rfc2324")
    );
    let r = request(bin, "HEAD", "/status/200", &[("Host", "h")], "").await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (200, "", Some("text/plain; charset=utf-8"))
    );
    let r = get(bin, "/status/503", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (503, ""));
    let r = get(bin, "/status/401", &[]).await;
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Fake Realm\""));
    let r = get(bin, "/status/302", &[]).await;
    assert_eq!(r.header("location"), Some("/redirect/1"));
    let r = get(bin, "/status/200:0,504:1", &[]).await;
    assert_eq!(r.status, 504);
    let r = get(bin, "/status/abc", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            "{\n  \"status_code\": 400,\n  \"error\": \"Bad Request\",\n  \"detail\": \"invalid status code: \\\"abc\\\": strconv.Atoi: parsing \\\"abc\\\": invalid syntax\"\n}\n"
        )
    );
    let r = get(bin, "/status/700", &[]).await;
    assert!(
        r.body
            .contains("invalid status code: 700 not in range [100, 599]")
    );
}

#[tokio::test]
async fn delay_validates_and_answers_like_anything() {
    let bin = start(App::Httpbin, &[]).await;
    let r = get(bin, "/delay/11", &[]).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("\"detail\": \"invalid duration: duration 11s longer than 10s\""),
        "{}",
        r.body
    );
    let r = get(bin, "/delay/0", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("server-timing"),
        Some("initial_delay;dur=0.00;desc=\"initial delay\"")
    );
    assert!(
        r.body.contains("\"data\": \"\"") && r.body.contains("\"json\": null"),
        "{}",
        r.body
    );
    assert_eq!(get(bin, "/delay/abc", &[]).await.status, 400);
}

#[tokio::test]
async fn anything_and_methods_with_bodies() {
    let bin = start(App::Httpbin, &[]).await;
    let (r, me) = request_from(
        bin,
        "POST",
        "/anything/x?q=1",
        &[("Host", "h"), ("Content-Type", "application/json")],
        r#"{"b": 2, "a": 1.5}"#,
    )
    .await;
    let want = format!(
        "{{\n  \"args\": {{\n    \"q\": [\n      \"1\"\n    ]\n  }},\n  \"headers\": {{\n    \"Connection\": [\n      \"close\"\n    ],\n    \
         \"Content-Length\": [\n      \"18\"\n    ],\n    \"Content-Type\": [\n      \"application/json\"\n    ],\n    \
         \"Host\": [\n      \"h\"\n    ]\n  }},\n  \"method\": \"POST\",\n  \"origin\": \"{me}\",\n  \"url\": \"http://h/anything/x?q=1\",\n  \
         \"data\": \"{{\\\"b\\\": 2, \\\"a\\\": 1.5}}\",\n  \"files\": {{}},\n  \"form\": {{}},\n  \"json\": {{\n    \"a\": 1.5,\n    \"b\": 2\n  }}\n}}\n"
    );
    assert_eq!(r.body, want);

    let r = request(
        bin,
        "POST",
        "/post",
        &[
            ("Host", "h"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "user=jason&x=%21",
    )
    .await;
    assert!(r.body.contains(
        "\"form\": {\n    \"user\": [\n      \"jason\"\n    ],\n    \"x\": [\n      \"!\"\n    ]\n  }"
    ));
    for (method, path) in [("PUT", "/put"), ("PATCH", "/patch"), ("DELETE", "/delete")] {
        let r = request(bin, method, path, &[("Host", "h")], "").await;
        assert_eq!(r.status, 200, "{method}");
        assert!(r.body.contains(&format!("\"method\": \"{method}\"")));
    }
    let r = request(bin, "GET", "/post", &[("Host", "h")], "").await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("allow")),
        (405, "Method Not Allowed\n", Some("POST"))
    );
    let r = request(bin, "POST", "/headers", &[("Host", "h")], "").await;
    assert_eq!(r.status, 200, "go-httpbin's /headers takes any method");
    let r = request(bin, "DELETE", "/anything", &[("Host", "h")], "").await;
    assert!(r.body.contains("\"method\": \"DELETE\""));
}

#[tokio::test]
async fn unknown_paths_cors_and_response_headers() {
    let bin = start(App::Httpbin, &[]).await;
    let r = get(bin, "/nope", &[("Origin", "http://example.com")]).await;
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    let r = request(bin, "OPTIONS", "/get", &[("Host", "h")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, HEAD, PUT, DELETE, PATCH, OPTIONS")
    );
    let r = get(bin, "/response-headers?X-Test=1", &[]).await;
    assert_eq!(r.header("x-test"), Some("1"));
    assert_eq!(r.header("content-type"), Some(JSON));
    assert_eq!(
        r.body,
        "{\n  \"Content-Type\": [\n    \"application/json; charset=utf-8\"\n  ],\n  \"X-Test\": [\n    \"1\"\n  ]\n}\n"
    );
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused() {
    let bin = start(App::Httpbin, &[]).await;
    let big = "x".repeat(1024 * 1024 + 1);
    let r = request(
        bin,
        "POST",
        "/post",
        &[("Host", "h"), ("Content-Type", "text/plain")],
        &big,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("\"detail\": \"error parsing request body: http: request body too large\""),
        "{}",
        r.body
    );
}
