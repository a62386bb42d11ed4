use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::server::{ControlPlane, ControlPlaneOptions, ServerError, start, start_with_store};
use crate::store::Store;

const BOOKINFO: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
"#;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn in_memory() -> ControlPlane {
    start_with_store(std::sync::Arc::new(Store::in_memory()), any_port(), any_port())
        .await
        .expect("start")
}

async fn call(cp: &ControlPlane, method: &str, path: &str, body: &str) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", cp.rest_addr))
        .header(super::SOURCE_HEADER, "bookinfo.yaml")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

#[tokio::test]
async fn apply_get_delete() {
    let cp = in_memory().await;
    let (status, body) = call(&cp, "POST", "/api/v1/apply", BOOKINFO).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["kind"], "VirtualService");
    assert_eq!(body["results"][0]["namespace"], "default");
    assert_eq!(body["results"][0]["action"], "created");
    assert_eq!(body["results"][1]["namespace"], "bookinfo");
    assert_eq!(body["notes"].as_array().map(Vec::len), Some(1));

    let (_, body) = call(&cp, "POST", "/api/v1/apply", BOOKINFO).await;
    assert_eq!(body["results"][0]["action"], "unchanged");

    let (status, body) = call(&cp, "GET", "/api/v1/resources/all", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
    let (_, body) = call(&cp, "GET", "/api/v1/resources/vs?namespace=default", "").await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["items"][0]["metadata"]["resourceVersion"], "1");
    assert_eq!(body["items"][0]["spec"]["hosts"][0], "reviews");
    let (_, body) = call(
        &cp,
        "GET",
        "/api/v1/resources/destinationrules?namespace=default",
        "",
    )
    .await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(0));

    let (status, body) = call(&cp, "GET", "/api/v1/resources/dr/bookinfo/reviews", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["metadata"]["generation"], 1);
    assert!(body["metadata"]["creationTimestamp"].is_string());

    let (status, body) = call(
        &cp,
        "DELETE",
        "/api/v1/resources/virtualservice/default/reviews",
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "deleted");
    let (status, body) = call(&cp, "GET", "/api/v1/resources/vs/default/reviews", "").await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"],
        "virtualservices.networking.istio.io \"reviews\" not found in namespace \"default\""
    );
    let (status, _) = call(&cp, "DELETE", "/api/v1/resources/vs/default/reviews", "").await;
    assert_eq!(status, 404);
    cp.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn invalid_apply_is_422_and_changes_nothing() {
    let cp = in_memory().await;
    call(&cp, "POST", "/api/v1/apply", BOOKINFO).await;
    let revision = cp.store.revision();
    let bad = format!(
        "{BOOKINFO}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: Bad}}\nspec: {{servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [\"*\"]}}]}}\n"
    );
    let (status, body) = call(&cp, "POST", "/api/v1/apply", &bad).await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1);
    let line = errors[0].as_str().unwrap_or_default();
    assert!(
        line.starts_with("bookinfo.yaml (document 4): Gateway default/Bad: metadata.name: "),
        "{line}"
    );
    let (status, body) = call(&cp, "POST", "/api/v1/apply", "kind: [unclosed").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(cp.store.revision(), revision);
    cp.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn dry_run_and_delete_by_documents() {
    let cp = in_memory().await;
    let (status, body) = call(&cp, "POST", "/api/v1/apply?dryRun=true", BOOKINFO).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["action"], "created");
    assert_eq!(cp.store.revision(), 0);
    call(&cp, "POST", "/api/v1/apply", BOOKINFO).await;
    let (status, body) = call(&cp, "POST", "/api/v1/delete", BOOKINFO).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][1]["action"], "deleted");
    let (status, body) = call(&cp, "POST", "/api/v1/delete", BOOKINFO).await;
    assert_eq!(status, 404);
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(2));
    cp.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn errors_and_proxies() {
    let cp = in_memory().await;
    let (status, body) = call(&cp, "GET", "/api/v1/resources/pods", "").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("\"pods\"")),
        "{body}"
    );
    let (status, body) = call(&cp, "GET", "/healthz", "").await;
    assert_eq!((status, body), (200, Value::String("ok\n".into())));
    let (status, body) = call(&cp, "GET", "/api/v1/proxies", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["proxies"], Value::Array(vec![]));
    let (status, body) = call(&cp, "GET", "/api/v1/proxies/nobody.default/config", "").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("nobody.default"))
    );
    cp.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn state_survives_restart_and_busy_port_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ControlPlaneOptions {
        state_dir: dir.path().to_path_buf(),
        rest_addr: any_port(),
        grpc_addr: any_port(),
    };
    let cp = start(&opts).await.expect("start");
    let (status, _) = call(&cp, "POST", "/api/v1/apply", BOOKINFO).await;
    assert_eq!(status, 200);

    let busy = ControlPlaneOptions {
        rest_addr: cp.rest_addr,
        ..opts.clone()
    };
    let err = start(&busy).await.expect_err("port taken");
    assert!(matches!(err, ServerError::Bind { .. }));
    let message = err.to_string();
    assert!(
        message.contains(&cp.rest_addr.to_string()) && message.contains("--rest"),
        "{message}"
    );
    cp.shutdown().await.expect("shutdown");

    let cp = start(&opts).await.expect("restart");
    let (status, body) = call(&cp, "GET", "/api/v1/resources/vs/default/reviews", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["metadata"]["resourceVersion"], "1");
    cp.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn apply_reports_analyzer_warnings_but_still_writes() {
    let cp = in_memory().await;
    let (status, body) = call(&cp, "POST", "/api/v1/apply", BOOKINFO).await;
    assert_eq!(status, 200, "{body}");
    // reviews routes to subset v1 of a host no ServiceEntry or DestinationRule here defines.
    let warnings: Vec<&str> = body["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("[IST0101]") && w.contains("VirtualService default/reviews")),
        "{warnings:?}"
    );
    let (status, _) = call(&cp, "GET", "/api/v1/resources/vs/default/reviews", "").await;
    assert_eq!(status, 200, "a warning never blocks the write");
    cp.shutdown().await.expect("shutdown");
}
