//! `strait proxy`: one sidecar or gateway, as its own OS process as in a real mesh.
//!
//! With `--config FILE` it runs a static configuration (handy for benchmarks and debugging);
//! otherwise it follows the control plane's push stream.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use strait_mesh::pb::Hello;
use strait_proxy::{Proxy, ProxyOptions, xds};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Run this static configuration (JSON or YAML `ProxyConfig`) instead of following a control plane.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Control-plane gRPC address.
    #[arg(long, env = "STRAIT_CONTROL_PLANE", default_value = "http://127.0.0.1:15010")]
    pub control_plane: String,
    /// `sidecar` or `gateway`.
    #[arg(long, default_value = "sidecar")]
    pub role: String,
    /// Workload name (the WorkloadEntry's name for a sidecar).
    #[arg(long, default_value = "proxy")]
    pub workload: String,
    /// Namespace.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Workload labels, `k=v,k=v` (a gateway: `istio=ingressgateway`).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Service account.
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// The workload's address: sidecar listeners bind here.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Admin address (config dump, readiness); default `<address>:15000`.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Do not print an access-log line per request (benchmarks compare proxies without logging).
    #[arg(long)]
    pub no_access_log: bool,
    /// Worker threads (Istio's `--concurrency`). 1 runs everything on one thread, the cheapest
    /// shape for a sidecar pinned to one core. Default: `TOKIO_WORKER_THREADS`, else one per CPU.
    #[arg(long)]
    pub concurrency: Option<std::num::NonZeroUsize>,
}

/// How many worker threads the proxy's runtime should have: `--concurrency`, else a valid
/// `TOKIO_WORKER_THREADS`, else `None` (the runtime's default, one per CPU).
pub fn worker_threads(args: &Args) -> Option<usize> {
    args.concurrency.map(std::num::NonZeroUsize::get).or_else(|| {
        std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    })
}

/// Parses `k=v` pairs.
pub fn parse_labels(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("label {p:?} is not of the form key=value"))
        })
        .collect()
}

/// Runs the proxy until the process is stopped.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let labels = parse_labels(&args.labels)?;
    let id = format!("{}.{}", args.workload, args.namespace);
    let admin = args
        .admin
        .unwrap_or(SocketAddr::new(args.address, strait_mesh::ports::PROXY_ADMIN));
    let proxy = Proxy::new(ProxyOptions {
        id: id.clone(),
        admin_addr: Some(admin),
        access_log: !args.no_access_log,
    });
    let admin_task = {
        let proxy = proxy.clone();
        tokio::spawn(async move { proxy.serve_admin().await })
    };
    if let Some(path) = args.config {
        let config = strait_proxy::load_static(&path).await?;
        proxy
            .apply(config)
            .await
            .with_context(|| format!("cannot apply {}", path.display()))?;
        eprintln!("proxy {id}: serving static config from {}", path.display());
    } else {
        let hello = Hello {
            proxy_id: id,
            role: args.role,
            namespace: args.namespace,
            workload: args.workload,
            labels: labels.into_iter().collect(),
            service_account: args.service_account,
            address: args.address.to_string(),
            running_version: String::new(),
            // xds::run announces what the proxy decodes.
            accept_encodings: Vec::new(),
            // xds::run announces what the proxy applies.
            accept_delta: false,
        };
        tokio::spawn(xds::run(
            proxy.clone(),
            xds::XdsOptions {
                control_plane: args.control_plane,
                hello,
            },
        ));
    }
    match admin_task.await {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(e).context("admin server failed"),
        Err(e) => Err(anyhow::anyhow!("admin server task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn concurrency_flag_sets_the_worker_count() {
        let w = Wrapper::try_parse_from(["proxy", "--concurrency", "1"]).unwrap();
        assert_eq!(worker_threads(&w.args), Some(1));
        let w = Wrapper::try_parse_from(["proxy", "--concurrency", "3"]).unwrap();
        assert_eq!(worker_threads(&w.args), Some(3));
        assert!(Wrapper::try_parse_from(["proxy", "--concurrency", "0"]).is_err());
    }
}
