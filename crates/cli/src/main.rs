//! `strait`: one binary for the demo, the control plane, the proxy, the sample apps and the
//! kubectl/istioctl-style commands, so a laptop needs nothing else.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

use commands::{analyze, control_plane, demo, proxy, resources, run, sample, status};

/// Strait: an Istio-compatible service mesh.
#[derive(Parser)]
#[command(name = "strait", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the control plane, Bookinfo with sidecars and the ingress gateway on localhost.
    Demo(demo::Args),
    /// Run the control plane (config store, REST API, config push).
    ControlPlane(control_plane::Args),
    /// Run a proxy (sidecar or gateway), from the control plane or a static config file.
    Proxy(proxy::Args),
    /// Start one workload with its sidecar and register it with the control plane.
    Run(run::Args),
    /// Run one of the sample applications (Bookinfo services, httpbin).
    #[command(hide = true)]
    Sample(sample::Args),
    /// Create or update resources from files (`-f`), like `kubectl apply`.
    Apply(resources::ApplyArgs),
    /// List or show resources, like `kubectl get`.
    Get(resources::GetArgs),
    /// Delete resources by file or by kind and name.
    Delete(resources::DeleteArgs),
    /// Validate files offline; exits non-zero if any resource is invalid.
    Validate(resources::ValidateArgs),
    /// Check files for cross-resource problems, like `istioctl analyze` (offline).
    Analyze(analyze::Args),
    /// Show every connected proxy and the config version it acknowledged.
    ProxyStatus(status::ProxyStatusArgs),
    /// Show what one proxy is running (routes, clusters, endpoints, listeners).
    ProxyConfig(status::ProxyConfigArgs),
}

fn main() -> ExitCode {
    // One crypto provider everywhere (aws-lc-rs); installing it explicitly avoids rustls having to
    // guess at run time. An Err means one was installed already, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRAIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Demo(_) | Command::ControlPlane(_)) {
        // Before the runtime's threads exist (see strait_control::malloc).
        strait_control::malloc::use_one_malloc_arena();
    }
    let runtime = match build_runtime(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(a) => demo::run(a).await,
            Command::ControlPlane(a) => control_plane::run(a).await,
            Command::Proxy(a) => proxy::run(a).await,
            Command::Run(a) => run::run(a).await,
            Command::Sample(a) => sample::run(a).await,
            Command::Apply(a) => resources::apply(a).await,
            Command::Get(a) => resources::get(a).await,
            Command::Delete(a) => resources::delete(a).await,
            Command::Validate(a) => resources::validate(a).await,
            Command::Analyze(a) => analyze::run(a).await,
            Command::ProxyStatus(a) => status::proxy_status(a).await,
            Command::ProxyConfig(a) => status::proxy_config(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime for one subcommand. A proxy with one worker (`--concurrency 1` or
/// `TOKIO_WORKER_THREADS=1`, how sidecars are usually pinned) runs a `current_thread` runtime:
/// no worker thread to wake, no work-stealing queues, requests never cross threads, and one
/// thread's stack and allocator arena less. Everything else keeps the multi-threaded runtime.
fn build_runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = match command {
        Command::Proxy(a) => proxy::worker_threads(a),
        _ => None,
    };
    strait_proxy_bin::build_runtime(workers)
}
