//! `strait-proxy`: the sidecar/gateway proxy of `strait proxy` in a binary of its own.
//!
//! Why a second binary: an idle proxy keeps resident every 64 KB window of code it touched at
//! start-up, and `strait` also carries the CLI, the control plane and the sample apps (clap for
//! every subcommand, tracing-subscriber, ...). This binary runs the same proxy with the same
//! flags and nothing else; `crates/proxy/benches/NOTES.md` ("Memory (RSS)") has the numbers.
//! `strait proxy` keeps working and is the fallback where this binary is not installed.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod log;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use strait_mesh::pb::Hello;
use strait_proxy::{ApplyError, Proxy, ProxyError, ProxyOptions, xds};

pub use args::{ArgsError, Command, HELP, Options};

/// Why the proxy stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A `--labels` entry without `=`.
    #[error("label {0:?} is not of the form key=value")]
    Label(String),
    /// The `--config` file could not be read or parsed.
    #[error(transparent)]
    Load(ProxyError),
    /// The `--config` file parsed but could not be applied (e.g. a port in use).
    #[error("cannot apply {}: {source}", path.display())]
    Apply {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: ApplyError,
    },
    /// The admin server stopped (it runs for the proxy's whole life).
    #[error("admin server failed: {0}")]
    Admin(ProxyError),
    /// The admin server's task panicked or was cancelled.
    #[error("admin server task failed: {0}")]
    AdminTask(String),
}

/// Parses `k=v` pairs (empty entries are skipped, keys and values trimmed), as `strait proxy`.
pub fn parse_labels(pairs: &[String]) -> Result<BTreeMap<String, String>, RunError> {
    pairs
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| RunError::Label(p.clone()))
        })
        .collect()
}

/// How many worker threads the runtime should have: `--concurrency`, else a valid
/// `TOKIO_WORKER_THREADS` (passed in as `env`), else `None` (one per CPU).
pub fn worker_threads(opts: &Options, env: Option<&str>) -> Option<usize> {
    opts.concurrency.map(std::num::NonZeroUsize::get).or_else(|| {
        env.and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    })
}

/// The runtime for `workers` threads. One worker (how sidecars are pinned) runs a
/// `current_thread` runtime: no worker thread to wake, requests never cross threads, and one
/// thread's stack and malloc arena less. Same choice as `strait proxy`.
pub fn build_runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    }
}

/// Runs the proxy until the process is stopped (or its admin server fails), exactly as
/// `strait proxy` does: admin server, then the static config or the control plane's stream.
pub async fn run(opts: Options) -> Result<(), RunError> {
    tokio::spawn(strait_mesh::supervisor::exit_when_gone("proxy"));
    let labels = parse_labels(&opts.labels)?;
    let id = format!("{}.{}", opts.workload, opts.namespace);
    let admin = opts
        .admin
        .unwrap_or(SocketAddr::new(opts.address, strait_mesh::ports::PROXY_ADMIN));
    let proxy = Proxy::new(ProxyOptions {
        id: id.clone(),
        admin_addr: Some(admin),
        access_log: !opts.no_access_log,
    });
    let admin_task = {
        let proxy = proxy.clone();
        tokio::spawn(async move { proxy.serve_admin().await })
    };
    if let Some(path) = opts.config {
        let config = strait_proxy::load_static(&path).await.map_err(RunError::Load)?;
        proxy.apply(config).await.map_err(|source| RunError::Apply {
            path: path.clone(),
            source,
        })?;
        eprintln!("proxy {id}: serving static config from {}", path.display());
    } else {
        let hello = Hello {
            proxy_id: id,
            role: opts.role,
            namespace: opts.namespace,
            workload: opts.workload,
            labels: labels.into_iter().collect(),
            service_account: opts.service_account,
            address: opts.address.to_string(),
            running_version: String::new(),
            // xds::run announces what the proxy decodes and accepts (encodings, deltas); the
            // rest of the Hello is protocol defaults, so new fields need no change here.
            ..Hello::default()
        };
        tokio::spawn(xds::run(
            proxy.clone(),
            xds::XdsOptions {
                control_plane: opts.control_plane,
                hello,
            },
        ));
    }
    match admin_task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RunError::Admin(e)),
        Err(e) => Err(RunError::AdminTask(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    #[test]
    fn labels_parse_like_strait_proxy() {
        let l = parse_labels(&["app = reviews".into(), String::new(), "version=v2".into()]).unwrap();
        assert_eq!(l.get("app").map(String::as_str), Some("reviews"));
        assert_eq!(l.get("version").map(String::as_str), Some("v2"));
        let e = parse_labels(&["oops".into()]).unwrap_err().to_string();
        assert_eq!(e, "label \"oops\" is not of the form key=value");
    }

    #[test]
    fn worker_count_from_flag_then_env() {
        let mut o = Options::default();
        assert_eq!(worker_threads(&o, None), None);
        assert_eq!(worker_threads(&o, Some(" 2 ")), Some(2));
        assert_eq!(worker_threads(&o, Some("0")), None);
        assert_eq!(worker_threads(&o, Some("many")), None);
        o.concurrency = NonZeroUsize::new(1);
        assert_eq!(worker_threads(&o, Some("4")), Some(1));
    }

    #[test]
    fn one_worker_gets_a_current_thread_runtime() {
        let rt = build_runtime(Some(1)).unwrap();
        assert_eq!(
            rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let rt = build_runtime(Some(2)).unwrap();
        assert_eq!(
            rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
    }

    #[test]
    fn a_config_that_cannot_be_read_is_an_error_not_a_panic() {
        let rt = build_runtime(Some(1)).unwrap();
        let opts = Options {
            config: Some(PathBuf::from("/nonexistent/strait-proxy-test.json")),
            admin: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        };
        let err = rt.block_on(run(opts)).unwrap_err();
        assert!(matches!(err, RunError::Load(_)), "{err}");
    }
}
