//! `strait demo`: the control plane, Bookinfo with a sidecar per workload, and the ingress gateway,
//! all on loopback, so Istio's request-routing lab runs on one machine.
//!
//! The control plane runs in this process; every sidecar, application and the gateway is its own
//! OS process, as in a real mesh, so any one of them can be killed or measured alone.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use strait_control::server::{self, ControlPlaneOptions};
use tokio::process::Child;

use super::workload::{App, Workload};

/// Istio's Bookinfo routing samples, shipped inside the binary so the demo runs from anywhere.
const BOOKINFO_GATEWAY: &str = include_str!("../../../../samples/bookinfo/networking/bookinfo-gateway.yaml");
const DESTINATION_RULE_ALL: &str =
    include_str!("../../../../samples/bookinfo/networking/destination-rule-all.yaml");

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Second octet of the workloads' loopback addresses: workloads get `127.<subnet>.0.N`.
    #[arg(long, default_value_t = 10)]
    pub subnet: u8,
    /// Address the ingress gateway listens on (the Gateway's port, 8080, on this address).
    #[arg(long, default_value = "127.0.0.1")]
    pub gateway_address: IpAddr,
    /// Address of the control plane: REST API on port 15014, gRPC push on 15010.
    #[arg(long, default_value = "127.0.0.1")]
    pub control_address: IpAddr,
    /// State directory (default: a fresh directory under the system temp dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Extra environment of a sample, as the original image's build args set it.
type SampleEnv = &'static [(&'static str, &'static str)];

/// The Bookinfo workloads: (name, service, version, extra env).
fn bookinfo(subnet: u8) -> Vec<Workload> {
    let spec: [(&str, &str, &str, SampleEnv); 6] = [
        ("productpage-v1", "productpage", "v1", &[]),
        ("details-v1", "details", "v1", &[]),
        ("ratings-v1", "ratings", "v1", &[]),
        ("reviews-v1", "reviews", "v1", &[("ENABLE_RATINGS", "false")]),
        (
            "reviews-v2",
            "reviews",
            "v2",
            &[("ENABLE_RATINGS", "true"), ("STAR_COLOR", "black")],
        ),
        (
            "reviews-v3",
            "reviews",
            "v3",
            &[("ENABLE_RATINGS", "true"), ("STAR_COLOR", "red")],
        ),
    ];
    spec.iter()
        .enumerate()
        .map(|(i, (name, service, version, env))| Workload {
            name: name.to_string(),
            namespace: "default".into(),
            service: service.to_string(),
            port: 9080,
            labels: BTreeMap::from([
                ("app".to_string(), service.to_string()),
                ("version".to_string(), version.to_string()),
            ]),
            service_account: format!("bookinfo-{service}"),
            ip: Ipv4Addr::new(127, subnet, 0, 2 + i as u8),
            app: App::Sample(service.to_string()),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        })
        .collect()
}

/// Runs the demo until Ctrl-C (or SIGTERM), then stops every process it started.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let rest = SocketAddr::new(args.control_address, strait_mesh::ports::CONTROL_REST);
    let grpc = SocketAddr::new(args.control_address, strait_mesh::ports::CONTROL_GRPC);
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("strait-demo-{}-{}", args.control_address, args.subnet))
    });
    if args.state_dir.is_none() {
        // Check the port before wiping the default state directory: it may belong to a running demo.
        if std::net::TcpListener::bind(rest).is_err() {
            anyhow::bail!(
                "a Strait demo or control plane is already running here ({rest} is in use). Stop it with \
                 Ctrl-C, or start this one elsewhere with --control-address, --subnet and --gateway-address."
            );
        }
        // The demo starts from Bookinfo's baseline each time: whatever an earlier run applied is gone.
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    let control = match server::start(&ControlPlaneOptions {
        state_dir: state_dir.clone(),
        rest_addr: rest,
        grpc_addr: grpc,
    })
    .await
    {
        Ok(c) => c,
        Err(server::ServerError::Bind { addr, .. }) => {
            anyhow::bail!(
                "a Strait demo or control plane is already running here ({addr} is in use). \
                 Stop it with Ctrl-C, or start this one elsewhere with --control-address, --subnet and --gateway-address."
            )
        }
        Err(e) => return Err(e.into()),
    };
    let exe = std::env::current_exe().context("cannot find the strait binary")?;
    // Every process logs to its own file, as `kubectl logs` would show it per container.
    let logs = state_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let control_plane = format!("http://{grpc}");
    let mut children: Vec<Child> = Vec::new();
    let workloads = bookinfo(args.subnet);
    for w in &workloads {
        control
            .store
            .apply_text(&w.registration_yaml(), &format!("workload {}", w.name), false)
            .map_err(|e| anyhow::anyhow!("cannot register {}: {e}", w.name))?;
    }
    for (text, source) in [
        (BOOKINFO_GATEWAY, "bookinfo-gateway.yaml"),
        (DESTINATION_RULE_ALL, "destination-rule-all.yaml"),
    ] {
        control
            .store
            .apply_text(text, source, false)
            .map_err(|e| anyhow::anyhow!("cannot apply {source}: {e}"))?;
    }
    for w in &workloads {
        children.extend(w.spawn(&exe, &control_plane, Some(&logs))?);
    }
    children.push(
        super::workload::proxy_command(&exe)
            .args([
                "--role",
                "gateway",
                "--workload",
                "istio-ingressgateway",
                "--namespace",
                "istio-system",
            ])
            .args(["--labels", "istio=ingressgateway,app=istio-ingressgateway"])
            .args([
                "--address",
                &args.gateway_address.to_string(),
                "--control-plane",
                &control_plane,
            ])
            .env(strait_mesh::supervisor::ENV, std::process::id().to_string())
            .stdin(std::process::Stdio::null())
            .stdout(super::workload::log_file(&logs, "istio-ingressgateway.proxy")?)
            .stderr(super::workload::log_file(&logs, "istio-ingressgateway.proxy")?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the ingress gateway")?,
    );
    let gateway = SocketAddr::new(args.gateway_address, 8080);
    let ready = wait_for_productpage(gateway, Duration::from_secs(60)).await;
    match ready {
        Ok(()) => print_banner(gateway, rest, &logs, started.elapsed()),
        Err(e) => eprintln!("warning: Bookinfo is not answering through the gateway yet: {e:#}"),
    }
    super::workload::wait_for_stop().await;
    eprintln!("stopping {} processes…", children.len());
    for child in &mut children {
        let _ = child.start_kill();
    }
    for child in &mut children {
        let _ = child.wait().await;
    }
    control.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

fn print_banner(gateway: SocketAddr, rest: SocketAddr, logs: &std::path::Path, took: Duration) {
    let server = if rest.port() == strait_mesh::ports::CONTROL_REST && rest.ip().is_loopback() {
        String::new()
    } else {
        format!(" --server http://{rest}")
    };
    println!(
        "Bookinfo is up through the ingress gateway after {:.1}s.\n\n\
         Try:\n\
         \x20 curl -s http://{gateway}/productpage | grep -o '<title>.*</title>'\n\
         \x20 strait{server} apply -f samples/bookinfo/networking/virtual-service-all-v1.yaml\n\
         \x20 strait{server} get virtualservices\n\
         \x20 strait{server} apply -f samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml\n\
         \x20 strait{server} proxy-status\n\n\
         (`strait` is `cargo run --release --` from the project root.)\n\
         Access logs and application logs: {}/<workload>.proxy.log and .app.log\n\
         Ctrl-C stops everything.",
        took.as_secs_f64(),
        logs.display()
    );
}

/// Polls the gateway until `/productpage` answers 200.
async fn wait_for_productpage(gateway: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match super::http::get(gateway, "/productpage").await {
            Ok((200, _)) => return Ok(()),
            Ok((status, _)) => last = format!("status {status}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{last}")
}
