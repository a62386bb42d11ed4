//! `strait run`: start one workload with its sidecar and register it with the control plane.
//!
//! ```text
//! strait run --name httpbin-v1 --service httpbin --port 8000 --labels app=httpbin,version=v1 \
//!     --address 127.30.0.2 --sample httpbin
//! strait run --name web --service web --port 8080 --address 127.30.0.3 -- python3 -m http.server --bind 127.30.1.3 8080
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use bytes::Bytes;

use super::proxy::parse_labels;
use super::workload::{App, Workload};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Workload name (becomes the WorkloadEntry's name).
    #[arg(long)]
    pub name: String,
    /// Namespace.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Service the workload backs (a ServiceEntry `<service>.<ns>.svc.cluster.local` is created).
    #[arg(long)]
    pub service: String,
    /// Service port; the application must listen on it at the app address (`{listen}`).
    #[arg(long)]
    pub port: u16,
    /// Labels `k=v,k=v`; `app` defaults to the service name.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Service account (identity).
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// The workload's loopback "pod IP" (`127.x.0.y`); the app listens on `127.x.1.y`.
    #[arg(long)]
    pub address: Ipv4Addr,
    /// Run a built-in sample (productpage, details, reviews, ratings, httpbin) instead of a command.
    #[arg(long)]
    pub sample: Option<String>,
    /// Control-plane REST API.
    #[arg(long, env = "STRAIT_SERVER", default_value = "http://127.0.0.1:15014")]
    pub server: String,
    /// Control-plane gRPC address for the sidecar.
    #[arg(long, env = "STRAIT_CONTROL_PLANE", default_value = "http://127.0.0.1:15010")]
    pub control_plane: String,
    /// Extra environment for the application, `K=V` (repeatable).
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// The application command (after `--`); `{listen}` is replaced by its listen address.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Registers the workload, starts it, and on Ctrl-C stops it and removes its registration.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut labels = parse_labels(&args.labels)?;
    labels.entry("app".into()).or_insert_with(|| args.service.clone());
    let app = match (&args.sample, args.command.is_empty()) {
        (Some(s), true) => App::Sample(s.clone()),
        (None, false) => App::Command(args.command.clone()),
        _ => anyhow::bail!("give either --sample NAME or a command after `--`"),
    };
    let env = args
        .env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .context("--env takes K=V")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workload = Workload {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        service: args.service.clone(),
        port: args.port,
        labels,
        service_account: args.service_account.clone(),
        ip: args.address,
        app,
        env,
    };
    let server = server_addr(&args.server)?;
    let (status, body) = super::http::request(
        server,
        "POST",
        "/api/v1/apply",
        &[("x-strait-source", "strait run")],
        Bytes::from(workload.registration_yaml()),
    )
    .await
    .with_context(|| format!("cannot reach the control plane at {}", args.server))?;
    if status != 200 {
        anyhow::bail!(
            "the control plane refused the registration ({status}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    let exe = std::env::current_exe().context("cannot find the strait binary")?;
    let mut children = workload.spawn(&exe, &args.control_plane, None)?;
    eprintln!(
        "{} running: sidecar on {} (outbound :15001, inbound :{}), app on {}:{}. Ctrl-C stops it.",
        workload.name,
        workload.ip,
        workload.port,
        workload.app_ip(),
        workload.port
    );
    super::workload::wait_for_stop().await;
    for child in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let path = format!(
        "/api/v1/resources/workloadentries/{}/{}",
        workload.namespace, workload.name
    );
    let _ = super::http::request(server, "DELETE", &path, &[], Bytes::new()).await;
    Ok(ExitCode::SUCCESS)
}

/// `http://host:port` -> socket address.
fn server_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").unwrap_or(url).trim_end_matches('/');
    rest.parse()
        .with_context(|| format!("--server must be http://IP:PORT, got {url:?}"))
}
