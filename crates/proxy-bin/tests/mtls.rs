//! Two `strait-proxy` processes speaking mTLS to each other, configured by static files as a
//! user writes them: a client sidecar (plaintext in, mTLS out) and a server sidecar (STRICT mTLS
//! in, plaintext to a local app). Real processes, real sockets, real TLS; certificates from a
//! throwaway CA made here.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;

use support::{exchange, free_port, spawn_proxy, wait_ready};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use strait_mesh::*;

const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// Writes `mesh-ca.pem` and, signed by it, `reviews.{pem,key}` and `productpage.{pem,key}`.
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "mesh CA");
    std::fs::write(dir.join("mesh-ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    for name in ["reviews", "productpage"] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        let id = format!("spiffe://cluster.local/ns/default/sa/{name}");
        p.subject_alt_names = vec![SanType::URI(id.as_str().try_into().unwrap())];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        std::fs::write(
            dir.join(format!("{name}.pem")),
            p.signed_by(&key, &issuer).unwrap().pem(),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// An app answering every HTTP/1.1 request on a connection with `200 hello`.
fn app() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in socket.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = conn.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn one_route(listener: Listener, cluster: Cluster) -> ProxyConfig {
    ProxyConfig {
        version: "mtls-1".into(),
        listeners: vec![listener],
        route_tables: vec![RouteTable {
            name: "t".into(),
            virtual_hosts: vec![VirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                port: None,
                routes: vec![Route {
                    name: "r".into(),
                    action: RouteAction::Forward(vec![WeightedCluster {
                        cluster: cluster.name.clone(),
                        weight: 100,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
            }],
        }],
        clusters: vec![cluster],
    }
}

fn cluster_to(addr: SocketAddr, tls: Option<ClusterTls>) -> Cluster {
    Cluster {
        name: "c".into(),
        service: "reviews.default.svc.cluster.local".into(),
        endpoints: vec![Endpoint {
            address: addr,
            labels: Default::default(),
            weight: 1,
        }],
        tls,
        ..Default::default()
    }
}

/// The `reviews` workload's listener TLS from the files of [`write_pki`] in `dir`, with the
/// private key read from `key` there.
fn reviews_tls(dir: &Path, mode: PeerMode, key: &str) -> ListenerTls {
    let d = |f: &str| dir.join(f).display().to_string();
    ListenerTls {
        mode,
        server_certificate: d("reviews.pem"),
        private_key: d(key),
        ca_certificates: d("mesh-ca.pem"),
    }
}

fn listener(addr: SocketAddr, direction: Direction, tls: Option<ListenerTls>) -> Listener {
    Listener {
        name: "main".into(),
        address: addr,
        direction,
        route_table: "t".into(),
        tls,
    }
}

#[test]
fn two_proxy_processes_speak_mtls_and_strict_resets_plaintext() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = |f: &str| dir.path().join(f).display().to_string();
    write_pki(dir.path());
    let app = app();
    let (server_at, client_at) = (free_port(), free_port());
    let server_tls = reviews_tls(dir.path(), PeerMode::Strict, "reviews.key");
    let server = one_route(
        listener(server_at, Direction::Inbound, Some(server_tls)),
        cluster_to(app, None),
    );
    let client_tls = ClusterTls {
        mode: ClientTlsMode::Mutual,
        client_certificate: d("productpage.pem"),
        private_key: d("productpage.key"),
        ca_certificates: d("mesh-ca.pem"),
        subject_alt_names: vec![REVIEWS.into()],
        sni: String::new(),
    };
    let client = one_route(
        listener(client_at, Direction::Outbound, None),
        cluster_to(server_at, Some(client_tls)),
    );
    std::fs::write(dir.path().join("server.json"), server.to_json()).unwrap();
    std::fs::write(dir.path().join("client.json"), client.to_json()).unwrap();
    let (server_admin, client_admin) = (free_port(), free_port());
    let mut server = spawn_proxy(&dir.path().join("server.json"), server_admin, &[]);
    let mut client = spawn_proxy(&dir.path().join("client.json"), client_admin, &[]);
    wait_ready(&mut server, server_admin);
    wait_ready(&mut client, client_admin);

    let through = exchange(client_at, "reviews", "/reviews/0").expect("the client sidecar answers");
    assert!(through.starts_with("HTTP/1.1 200"), "{through}");
    assert!(through.ends_with("hello"), "{through}");

    let err = exchange(server_at, "reviews", "/reviews/0")
        .expect_err("a STRICT listener must not answer plaintext");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn a_static_config_naming_a_missing_key_is_refused_with_the_field_and_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = |f: &str| dir.path().join(f).display().to_string();
    write_pki(dir.path());
    let tls = reviews_tls(dir.path(), PeerMode::Permissive, "missing.key");
    let config = one_route(
        listener(free_port(), Direction::Inbound, Some(tls)),
        cluster_to(app(), None),
    );
    let path = dir.path().join("bad.json");
    std::fs::write(&path, config.to_json()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strait-proxy"))
        .args([
            "--config",
            &path.display().to_string(),
            "--admin",
            &free_port().to_string(),
        ])
        .output()
        .expect("strait-proxy runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listener main: tls.privateKey"), "{err}");
    assert!(err.contains(&d("missing.key")), "{err}");
}
