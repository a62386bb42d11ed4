//! Bookinfo end to end over real sockets: each service's exact JSON, productpage rendering with
//! real backends, login and `end-user` through an explicit proxy, and the failure texts.

#[path = "support/net.rs"]
mod net;

use net::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use strait_samples::App;

const DETAILS_0: &str = r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#;
const REVIEWS_V2: &str = r#"{"id": "0","podname": "reviews-v2-5b667bcbf8-abcde","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"stars": 5, "color": "black"}},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"stars": 4, "color": "black"}}]}"#;
const STAR: &str = "glyphicon glyphicon-star";

fn port(addr: SocketAddr) -> String {
    addr.port().to_string()
}

/// details, ratings and reviews of the given version, wired directly by address.
async fn backends(version: &str) -> (SocketAddr, SocketAddr) {
    let details = start(App::Details, &[]).await;
    let ratings = start(App::Ratings, &[]).await;
    let rp = port(ratings);
    let mut env = vec![
        ("RATINGS_HOSTNAME", "127.0.0.1"),
        ("RATINGS_SERVICE_PORT", rp.as_str()),
    ];
    match version {
        "v1" => env.push(("ENABLE_RATINGS", "false")),
        "v2" => env.extend([("ENABLE_RATINGS", "true"), ("STAR_COLOR", "black")]),
        _ => env.extend([("ENABLE_RATINGS", "true"), ("STAR_COLOR", "red")]),
    }
    let reviews = start(App::Reviews, &env).await;
    (details, reviews)
}

async fn productpage_for(details: SocketAddr, reviews: SocketAddr) -> SocketAddr {
    let (dp, rp) = (port(details), port(reviews));
    start(
        App::Productpage,
        &[
            ("DETAILS_HOSTNAME", "127.0.0.1"),
            ("DETAILS_SERVICE_PORT", &dp),
            ("REVIEWS_HOSTNAME", "127.0.0.1"),
            ("REVIEWS_SERVICE_PORT", &rp),
        ],
    )
    .await
}

#[tokio::test]
async fn details_json_is_exact() {
    let details = start(App::Details, &[]).await;
    let r = get(details, "/details/0", &[]).await;
    assert_eq!(
        (r.status, r.header("content-type"), r.body.as_str()),
        (200, Some("application/json"), DETAILS_0)
    );
    let r = get(details, "/details/0x1a", &[]).await;
    assert!(r.body.starts_with(r#"{"id":26,"#), "{}", r.body);
    let r = get(details, "/details/abc", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"error":"please provide numeric product id"}"#)
    );
    let r = get(details, "/health", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"status":"Details is healthy"}"#)
    );
}

#[tokio::test]
async fn ratings_json_is_exact_and_posts_are_kept() {
    let ratings = start(App::Ratings, &[]).await;
    let r = get(ratings, "/ratings/0", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#)
    );
    let r = get(ratings, "/ratings/x", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"error":"please provide numeric product ID"}"#)
    );
    let r = get(ratings, "/health", &[]).await;
    assert_eq!(r.body, r#"{"status":"Ratings is healthy"}"#);
    let r = get(ratings, "/nope", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    let posted = r#"{"Reviewer1": 1, "Reviewer2": 2}"#;
    let r = request(
        ratings,
        "POST",
        "/ratings/7",
        &[("Host", "r"), ("Content-Type", "application/json")],
        posted,
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"id":7,"ratings":{"Reviewer1":1,"Reviewer2":2}}"#)
    );
    let r = get(ratings, "/ratings/7", &[]).await;
    assert_eq!(r.body, r#"{"id":7,"ratings":{"Reviewer1":1,"Reviewer2":2}}"#);
    let r = request(ratings, "POST", "/ratings/7", &[("Host", "r")], "{bad").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"error":"please provide valid ratings JSON"}"#)
    );
}

#[tokio::test]
async fn reviews_v2_body_is_exact_with_real_ratings() {
    let ratings = start(App::Ratings, &[]).await;
    let rp = port(ratings);
    let reviews = start(
        App::Reviews,
        &[
            ("ENABLE_RATINGS", "true"),
            ("STAR_COLOR", "black"),
            ("HOSTNAME", "reviews-v2-5b667bcbf8-abcde"),
            ("RATINGS_HOSTNAME", "127.0.0.1"),
            ("RATINGS_SERVICE_PORT", &rp),
        ],
    )
    .await;
    let r = get(reviews, "/reviews/0", &[]).await;
    assert_eq!(
        (r.status, r.header("content-type"), r.body.as_str()),
        (200, Some("application/json"), REVIEWS_V2)
    );
    let r = get(reviews, "/health", &[]).await;
    assert_eq!(r.body, r#"{"status": "Reviews is healthy"}"#);
    assert_eq!(get(reviews, "/reviews/abc", &[]).await.status, 404);
}

#[tokio::test]
async fn reviews_v1_never_shows_ratings() {
    let reviews = start(
        App::Reviews,
        &[("ENABLE_RATINGS", "false"), ("CLUSTER_NAME", "c1")],
    )
    .await;
    let r = get(reviews, "/reviews/3", &[]).await;
    assert!(
        r.body
            .starts_with(r#"{"id": "3","podname": "null","clustername": "c1","reviews": ["#),
        "{}",
        r.body
    );
    assert!(!r.body.contains("rating"));
}

#[tokio::test]
async fn ratings_down_gives_the_error_form_in_v2() {
    let dead = dead_port().await.to_string();
    let reviews = start(
        App::Reviews,
        &[
            ("ENABLE_RATINGS", "true"),
            ("RATINGS_HOSTNAME", "127.0.0.1"),
            ("RATINGS_SERVICE_PORT", &dead),
        ],
    )
    .await;
    let r = get(reviews, "/reviews/0", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body
            .matches(r#""rating": {"error": "Ratings service is currently unavailable"}"#)
            .count(),
        2
    );
    let details = start(App::Details, &[]).await;
    let page = productpage_for(details, reviews).await;
    let html = get(page, "/productpage", &[]).await.body;
    assert_eq!(
        html.matches("Ratings service is currently unavailable").count(),
        2
    );
    assert_eq!(html.matches(STAR).count(), 0);
}

#[tokio::test]
async fn productpage_shows_stars_per_reviews_version() {
    for (version, stars, colour) in [("v1", 0, None), ("v2", 9, Some("black")), ("v3", 9, Some("red"))] {
        let (details, reviews) = backends(version).await;
        let page = productpage_for(details, reviews).await;
        let r = get(page, "/productpage", &[]).await;
        assert_eq!(r.status, 200, "{version}");
        assert!(r.body.contains("<title>Simple Bookstore App</title>"));
        assert!(
            r.body.contains("Book Details") && r.body.contains("PublisherA"),
            "{version}"
        );
        assert!(r.body.contains("Book Reviews"), "{version}");
        assert_eq!(r.body.matches(STAR).count(), stars, "{version}");
        if let Some(colour) = colour {
            assert!(
                r.body
                    .contains(&format!("<div class=\"flex gap-x-1 text-{colour}-500\">")),
                "{version}"
            );
        }
        assert!(r.body.contains("id=\"sign-in-button\""));
    }
}

#[tokio::test]
async fn login_as_jason_reaches_reviews_and_ratings_through_the_explicit_proxy() {
    let details = start(App::Details, &[]).await;
    let ratings = start(App::Ratings, &[]).await;
    // Both productpage and reviews call by service name through the same recording proxy.
    let reviews_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reviews_addr = reviews_listener.local_addr().unwrap();
    let routes = HashMap::from([
        ("details:9080".to_string(), details),
        ("reviews:9080".to_string(), reviews_addr),
        ("ratings:9080".to_string(), ratings),
    ]);
    let (proxy, mut seen) = recording_proxy(routes).await;
    let proxy_url = format!("http://{proxy}");
    let reviews_env = strait_samples::Env::from_pairs(&[
        ("ENABLE_RATINGS", "true"),
        ("STAR_COLOR", "black"),
        ("HTTP_PROXY", &proxy_url),
    ]);
    tokio::spawn(strait_samples::serve(App::Reviews, reviews_listener, reviews_env));
    let page = start(App::Productpage, &[("http_proxy", &proxy_url)]).await;

    let login = request(
        page,
        "POST",
        "/login",
        &[
            ("Host", "bookinfo"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "username=jason&passwd=password",
    )
    .await;
    assert_eq!(login.status, 302);
    assert_eq!(login.header("location"), Some("None"));
    let set_cookie = login.header("set-cookie").expect("a session cookie");
    assert!(
        set_cookie.starts_with("session=eyJ1c2VyIjoiamFzb24ifQ."),
        "{set_cookie}"
    );
    assert!(set_cookie.ends_with("; HttpOnly; Path=/"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();

    let r = get(
        page,
        "/productpage",
        &[("Cookie", cookie), ("x-request-id", "req-1")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("<p class=\"text-base font-medium text-gray-50\">jason</p>")
    );
    assert!(r.body.contains("Sign out"));
    assert_eq!(r.body.matches(STAR).count(), 9);

    let details_head = next_head(&mut seen).await;
    assert!(
        details_head.starts_with("GET http://details:9080/details/0 HTTP/1.1\r\n"),
        "{details_head}"
    );
    let reviews_head = next_head(&mut seen).await;
    assert!(
        reviews_head.starts_with("GET http://reviews:9080/reviews/0 HTTP/1.1\r\n"),
        "{reviews_head}"
    );
    assert_eq!(head_header(&reviews_head, "host"), Some("reviews:9080"));
    assert_eq!(head_header(&reviews_head, "end-user"), Some("jason"));
    assert_eq!(head_header(&reviews_head, "x-request-id"), Some("req-1"));
    let ratings_head = next_head(&mut seen).await;
    assert!(
        ratings_head.starts_with("GET http://ratings:9080/ratings/0 HTTP/1.1\r\n"),
        "{ratings_head}"
    );
    assert_eq!(head_header(&ratings_head, "end-user"), Some("jason"));
    assert_eq!(head_header(&ratings_head, "accept"), Some("application/json"));

    // A forged cookie is no login at all.
    let forged = cookie.replace("eyJ1c2VyIjoiamFzb24ifQ", "eyJ1c2VyIjoiYWRtaW4ifQ");
    let r = get(page, "/productpage", &[("Cookie", &forged)]).await;
    assert!(r.body.contains("id=\"sign-in-button\""));
    let _details = next_head(&mut seen).await;
    let reviews_head = next_head(&mut seen).await;
    assert_eq!(head_header(&reviews_head, "end-user"), None);

    let out = get(
        page,
        "/logout",
        &[("Cookie", cookie), ("Referer", "/productpage")],
    )
    .await;
    assert_eq!((out.status, out.header("location")), (302, Some("/productpage")));
    assert_eq!(
        out.header("set-cookie"),
        Some("session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/")
    );
}

#[tokio::test]
async fn productpage_forwards_b3_the_way_its_tracer_does() {
    let (details, mut seen) = fake_upstream(vec![(200, DETAILS_0)]).await;
    let (reviews, _reviews_seen) = fake_upstream(vec![(200, r#"{"reviews": []}"#)]).await;
    let page = productpage_for(details, reviews).await;
    let headers = [
        ("x-b3-traceid", "463ac35c9f6413ad"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-parentspanid", "0020000000000001"),
        ("x-b3-flags", "1"),
        ("User-Agent", "curl/8.16.0"),
    ];
    assert_eq!(get(page, "/productpage", &headers).await.status, 200);
    let head = next_head(&mut seen).await;
    assert_eq!(
        head_header(&head, "x-b3-traceid"),
        Some("0000000000000000463ac35c9f6413ad")
    );
    assert_eq!(head_header(&head, "x-b3-spanid"), Some("a2fb4a1d1a96d312"));
    assert_eq!(head_header(&head, "x-b3-sampled"), Some("1"));
    assert_eq!(head_header(&head, "x-b3-parentspanid"), None);
    assert_eq!(head_header(&head, "x-b3-flags"), None);
    assert_eq!(head_header(&head, "user-agent"), Some("curl/8.16.0"));
    assert_eq!(head_header(&head, "end-user"), None);
}

#[tokio::test]
async fn details_down_shows_the_details_error() {
    let (_, reviews) = backends("v1").await;
    let dead: SocketAddr = format!("127.0.0.1:{}", dead_port().await).parse().unwrap();
    let page = productpage_for(dead, reviews).await;
    let r = get(page, "/productpage", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("<p class=\"text-2xl text-red-500\">Error fetching product details</p>")
    );
    assert!(r.body.contains(
        "<p class=\"text-lg text-gray-600\">Sorry, product details are currently unavailable for this book.</p>"
    ));
    assert!(r.body.contains("Book Reviews"));
    let api = get(page, "/api/v1/products/0", &[]).await;
    assert_eq!(
        (api.status, api.body.as_str()),
        (
            500,
            r#"{"error": "Sorry, product details are currently unavailable for this book."}"#
        )
    );
}

#[tokio::test]
async fn details_abort_status_passes_through_the_api() {
    let (details, _seen) = fake_upstream(vec![(555, "fault filter abort")]).await;
    let (_, reviews) = backends("v1").await;
    let page = productpage_for(details, reviews).await;
    assert_eq!(get(page, "/api/v1/products/0", &[]).await.status, 555);
    assert!(
        get(page, "/productpage", &[])
            .await
            .body
            .contains("Error fetching product details")
    );
}

#[tokio::test]
async fn reviews_failing_twice_shows_the_reviews_error() {
    let (details, _) = backends("v1").await;
    let (reviews, mut seen) = fake_upstream(vec![(503, "no healthy upstream")]).await;
    let page = productpage_for(details, reviews).await;
    let r = get(page, "/productpage", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("<p class=\"text-2xl text-red-500\">Error fetching product reviews</p>")
    );
    assert!(
        r.body
            .contains("Sorry, product reviews are currently unavailable for this book.")
    );
    // Exactly two attempts per page.
    next_head(&mut seen).await;
    next_head(&mut seen).await;
    let api = get(page, "/api/v1/products/0/reviews", &[]).await;
    assert_eq!(
        (api.status, api.body.as_str()),
        (
            503,
            r#"{"error": "Sorry, product reviews are currently unavailable for this book."}"#
        )
    );
    next_head(&mut seen).await;
    next_head(&mut seen).await;
    assert!(seen.try_recv().is_err(), "no third attempt");
}

#[tokio::test]
async fn reviews_down_entirely_shows_the_reviews_error() {
    let (details, _) = backends("v1").await;
    let dead: SocketAddr = format!("127.0.0.1:{}", dead_port().await).parse().unwrap();
    let page = productpage_for(details, dead).await;
    let r = get(page, "/productpage", &[]).await;
    assert!(r.body.contains("Error fetching product reviews"));
    assert!(r.body.contains("Book Details"));
}

#[tokio::test]
async fn reviews_second_attempt_rescues_the_page() {
    let (details, _) = backends("v1").await;
    let ok = r#"{"id": "0","podname": "p","clustername": "null","reviews": [{"reviewer": "R1", "text": "t", "rating": {"stars": 3, "color": "red"}}]}"#;
    let (reviews, mut seen) = fake_upstream(vec![(503, ""), (200, ok)]).await;
    let page = productpage_for(details, reviews).await;
    let r = get(page, "/productpage", &[]).await;
    assert_eq!(r.body.matches(STAR).count(), 3);
    next_head(&mut seen).await;
    next_head(&mut seen).await;
}

#[tokio::test]
async fn productpage_static_routes_and_api() {
    let (details, reviews) = backends("v2").await;
    let page = productpage_for(details, reviews).await;
    let r = get(page, "/api/v1/products", &[]).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.body.starts_with(r#"[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: "#));
    let r = get(page, "/api/v1/products/0", &[]).await;
    assert_eq!(
        r.body,
        r#"{"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200, "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}"#
    );
    let ratings = start(App::Ratings, &[]).await;
    let (dp, rp, tp) = (port(details), port(reviews), port(ratings));
    let wired = start(
        App::Productpage,
        &[
            ("SERVICES_DOMAIN", "0.0.1"),
            ("DETAILS_HOSTNAME", "127"),
            ("DETAILS_SERVICE_PORT", &dp),
            ("REVIEWS_HOSTNAME", "127"),
            ("REVIEWS_SERVICE_PORT", &rp),
            ("RATINGS_HOSTNAME", "127"),
            ("RATINGS_SERVICE_PORT", &tp),
        ],
    )
    .await;
    let r = get(wired, "/api/v1/products/0/ratings", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}"#)
    );
    let r = get(wired, "/api/v1/products/0/reviews", &[]).await;
    assert!(
        r.body
            .starts_with(r#"{"id": "0", "podname": "null", "clustername": "null", "reviews": ["#),
        "{}",
        r.body
    );
    let r = get(page, "/health", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "Product page is healthy"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(get(page, "/login", &[]).await.status, 405);
    assert_eq!(get(page, "/nope", &[]).await.status, 404);
    assert!(get(page, "/", &[]).await.body.contains("/productpage?u=normal"));
    assert_eq!(
        get(page, "/static/img/izzy.png", &[])
            .await
            .header("content-type"),
        Some("image/png")
    );
    assert_eq!(get(page, "/static/tailwind/tailwind.css", &[]).await.status, 200);
    get(page, "/productpage", &[]).await;
    let metrics = get(page, "/metrics", &[]).await.body;
    assert!(
        metrics.contains(r#"request_result_total{destination_app="details",response_code="200"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn details_v2_asks_google_books_through_the_proxy() {
    const VOLUME: &str = r#"{"items":[{"volumeInfo":{"authors":["William Shakespeare"],"publisher":"Courier Corporation","publishedDate":"2002-07-26","industryIdentifiers":[{"type":"ISBN_10","identifier":"0486424618"},{"type":"ISBN_13","identifier":"9780486424613"}],"pageCount":80,"printType":"BOOK","language":"en"}}]}"#;
    let (google, _) = fake_upstream(vec![(200, VOLUME)]).await;
    let (proxy, mut seen) =
        recording_proxy(HashMap::from([("www.googleapis.com".to_string(), google)])).await;
    let proxy_url = format!("http://{proxy}");
    let details = start(
        App::Details,
        &[
            ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
            ("DO_NOT_ENCRYPT", "true"),
            ("HTTP_PROXY", &proxy_url),
        ],
    )
    .await;
    let r = get(details, "/details/0", &[("end-user", "jason")]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            200,
            r#"{"id":0,"author":"William Shakespeare","year":"2002-07-26","type":"paperback","pages":80,"publisher":"Courier Corporation","language":"English","ISBN-10":"0486424618","ISBN-13":"9780486424613"}"#
        )
    );
    let head = next_head(&mut seen).await;
    assert!(
        head.starts_with("GET http://www.googleapis.com/books/v1/volumes?q=isbn:0486424618 HTTP/1.1\r\n"),
        "{head}"
    );
    assert_eq!(head_header(&head, "host"), Some("www.googleapis.com"));
    assert_eq!(head_header(&head, "end-user"), Some("jason"));

    let tls = start(App::Details, &[("ENABLE_EXTERNAL_BOOK_SERVICE", "true")]).await;
    let r = get(tls, "/details/0", &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with(r#"{"error":""#), "{}", r.body);
}

/// Istio's delay-fault lab: ratings hangs for jason. reviews v2 waits up to 10 s, so productpage's
/// two 3 s attempts give up first and the page shows the reviews error; reviews v3 gives up after
/// 2.5 s and the page shows the ratings error instead.
#[tokio::test]
async fn ratings_delay_lab_v2_times_out_productpage_v3_shows_ratings_error() {
    for (colour, reviews_error, ratings_error) in [("black", true, false), ("red", false, true)] {
        let details = start(App::Details, &[]).await;
        let (ratings, _seen) = hanging_upstream().await;
        let tp = port(ratings);
        let reviews = start(
            App::Reviews,
            &[
                ("ENABLE_RATINGS", "true"),
                ("STAR_COLOR", colour),
                ("RATINGS_HOSTNAME", "127.0.0.1"),
                ("RATINGS_SERVICE_PORT", &tp),
            ],
        )
        .await;
        let page = productpage_for(details, reviews).await;
        let r = get(page, "/productpage", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body.contains("Error fetching product reviews"),
            reviews_error,
            "{colour}"
        );
        assert_eq!(
            r.body
                .contains("Sorry, product reviews are currently unavailable for this book."),
            reviews_error,
            "{colour}"
        );
        assert_eq!(
            r.body.contains("Ratings service is currently unavailable"),
            ratings_error,
            "{colour}"
        );
    }
}

#[tokio::test]
async fn details_that_never_answer_time_out_into_the_details_error() {
    let (details, mut seen) = hanging_upstream().await;
    let (_, reviews) = backends("v1").await;
    let page = productpage_for(details, reviews).await;
    let r = get(page, "/productpage", &[]).await;
    assert!(r.body.contains("Error fetching product details"));
    assert!(r.body.contains("Book Reviews"));
    next_head(&mut seen).await;
    assert!(seen.try_recv().is_err(), "details gets a single attempt");
}
