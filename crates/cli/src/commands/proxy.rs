//! `strait proxy`: one sidecar or gateway, as its own OS process as in a real mesh.
//!
//! With `--config FILE` it runs a static configuration (handy for benchmarks and debugging);
//! otherwise it follows the control plane's push stream.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

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

impl Args {
    /// The same options as `strait-proxy`'s, whose library runs both.
    fn options(self) -> strait_proxy_bin::Options {
        strait_proxy_bin::Options {
            config: self.config,
            control_plane: self.control_plane,
            role: self.role,
            workload: self.workload,
            namespace: self.namespace,
            labels: self.labels,
            service_account: self.service_account,
            address: self.address,
            admin: self.admin,
            no_access_log: self.no_access_log,
            concurrency: self.concurrency,
        }
    }
}

/// How many worker threads the proxy's runtime should have: `--concurrency`, else a valid
/// `TOKIO_WORKER_THREADS`, else `None` (the runtime's default, one per CPU).
pub fn worker_threads(args: &Args) -> Option<usize> {
    let opts = strait_proxy_bin::Options {
        concurrency: args.concurrency,
        ..strait_proxy_bin::Options::default()
    };
    strait_proxy_bin::worker_threads(&opts, std::env::var("TOKIO_WORKER_THREADS").ok().as_deref())
}

/// Parses `k=v` pairs.
pub fn parse_labels(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(strait_proxy_bin::parse_labels(pairs)?)
}

/// Runs the proxy until the process is stopped: exactly what `strait-proxy` runs.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    strait_proxy_bin::run(args.options()).await?;
    Ok(ExitCode::SUCCESS)
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
