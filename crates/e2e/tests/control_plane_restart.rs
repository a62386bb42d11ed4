//! A proxy whose control plane goes away keeps serving, reconnects when it is back, and the
//! store survives the restart. Uses `strait control-plane`, `strait run` and a gateway `strait
//! proxy` as separate processes, with httpbin as the workload.

use std::time::Duration;

use strait_e2e::{Process, eventually, http, strait_cli};

const GATEWAY: &str = r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: httpbin-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: ["*"]
  gateways: [httpbin-gateway]
  http:
  - route:
    - destination: {host: httpbin, port: {number: 8000}}
"#;

const TEAPOT: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: ["*"]
  gateways: [httpbin-gateway]
  http:
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - route:
    - destination: {host: httpbin, port: {number: 8000}}
"#;

#[test]
fn proxies_keep_serving_without_control_plane_and_reconnect() {
    let subnet = 44;
    let dir = std::env::temp_dir().join(format!("strait-e2e-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    let state_arg = state.to_string_lossy().into_owned();
    let rest = format!("127.{subnet}.0.254:15014");
    let grpc = format!("127.{subnet}.0.254:15010");
    let cp_args = [
        "control-plane",
        "--state-dir",
        &state_arg,
        "--rest",
        &rest,
        "--grpc",
        &grpc,
    ];
    let rest_addr = rest.parse().expect("addr");
    let mut control = Process::strait("control plane", &cp_args);
    eventually("the control plane REST API", Duration::from_secs(20), || {
        http(rest_addr, "GET", "/healthz", &[], "")
            .ok()
            .filter(|r| r.status == 200)
    });
    let grpc_url = format!("http://{grpc}");
    let rest_url = format!("http://{rest}");
    let workload_ip = format!("127.{subnet}.0.2");
    let _httpbin = Process::strait(
        "httpbin workload",
        &[
            "run",
            "--name",
            "httpbin-v1",
            "--service",
            "httpbin",
            "--port",
            "8000",
            "--labels",
            "version=v1",
            "--service-account",
            "httpbin",
            "--address",
            &workload_ip,
            "--sample",
            "httpbin",
            "--server",
            &rest_url,
            "--control-plane",
            &grpc_url,
        ],
    );
    let gateway_ip = format!("127.{subnet}.0.1");
    let _gateway = Process::strait(
        "gateway",
        &[
            "proxy",
            "--role",
            "gateway",
            "--workload",
            "istio-ingressgateway",
            "--namespace",
            "istio-system",
            "--labels",
            "istio=ingressgateway",
            "--address",
            &gateway_ip,
            "--control-plane",
            &grpc_url,
        ],
    );
    std::fs::create_dir_all(&dir).expect("dir");
    let manifest = dir.join("gateway.yaml");
    std::fs::write(&manifest, GATEWAY).expect("write");
    let out = strait_cli(rest_addr, &["apply", "-f", &manifest.to_string_lossy()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let gateway = format!("{gateway_ip}:8080").parse().expect("addr");
    let status_200 = || {
        http(gateway, "GET", "/status/200", &[], "")
            .ok()
            .filter(|r| r.status == 200)
    };
    eventually("httpbin through the gateway", Duration::from_secs(30), status_200);
    let r = http(gateway, "GET", "/headers", &[], "").expect("headers");
    assert!(
        r.body.contains("\"X-Envoy-Attempt-Count\""),
        "the sidecar forwarded it: {}",
        r.body
    );

    // The control plane dies: the gateway and the sidecar keep serving their last config.
    control.kill();
    for _ in 0..20 {
        let r = http(gateway, "GET", "/status/200", &[], "").expect("gateway still answers");
        assert_eq!(r.status, 200);
    }

    // It comes back on the same state directory: the resources are still there, the proxies
    // reconnect, and a new change reaches them.
    let _control = Process::strait("control plane (restarted)", &cp_args);
    eventually("the restarted control plane", Duration::from_secs(20), || {
        http(rest_addr, "GET", "/healthz", &[], "")
            .ok()
            .filter(|r| r.status == 200)
    });
    let out = strait_cli(rest_addr, &["get", "gateways"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("httpbin-gateway"),
        "the store survived the restart"
    );
    std::fs::write(&manifest, TEAPOT).expect("write");
    let out = strait_cli(rest_addr, &["apply", "-f", &manifest.to_string_lossy()]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("virtualservice.networking.istio.io/httpbin configured")
    );
    let r = eventually(
        "the gateway to reconnect and get the new route",
        Duration::from_secs(30),
        || {
            http(gateway, "GET", "/teapot", &[], "")
                .ok()
                .filter(|r| r.status == 418)
        },
    );
    assert_eq!(r.body, "short and stout");
    assert_eq!(
        status_200().map(|r| r.status),
        Some(200),
        "other routes unaffected"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
