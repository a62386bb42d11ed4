//! `bench-control-plane [--quick] --out FILE`: compile and push benchmark at 1,000 services /
//! 2,000 workloads / 500 VirtualServices. With `--sim-proxies N` it is instead the child process
//! that plays N proxies.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use strait_bench::control_plane::{CpOptions, MeshSize, run, run_proxies, write};

/// Arguments.
#[derive(Parser)]
#[command(about = "Control-plane benchmark: compile time, apply-to-all-acked, RSS")]
struct Args {
    /// Fewer rounds and compile iterations.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON result.
    #[arg(long, default_value = "target/bench/control_plane.json")]
    out: PathBuf,
    /// Simulated proxies to connect (default: 1,000; 100 with --quick).
    #[arg(long)]
    proxies: Option<usize>,
    /// Stop (and report) if the control plane's RSS passes this many MB.
    #[arg(long, default_value_t = 4096)]
    rss_limit_mb: u64,
    /// Services in the mesh.
    #[arg(long, default_value_t = 1000)]
    mesh_services: usize,
    /// Seconds to wait for all ACKs of one round.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Internal: be the simulated proxies (N of them) instead.
    #[arg(long, hide = true)]
    sim_proxies: Option<usize>,
    /// Internal: the control plane's gRPC URL, with --sim-proxies.
    #[arg(long, hide = true, default_value = "")]
    grpc: String,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    // STRAIT_LOG=strait_control=debug shows the control plane's own timings (recompilations).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("STRAIT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if a.sim_proxies.is_none() {
        // As `strait control-plane` does, before the runtime's threads exist.
        strait_control::malloc::use_one_malloc_arena();
    }
    let size = MeshSize {
        services: a.mesh_services,
        ..MeshSize::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(n) = a.sim_proxies {
        return rt.block_on(run_proxies(n, size, a.grpc));
    }
    let opts = CpOptions {
        size,
        proxies: a.proxies.unwrap_or(if a.quick { 100 } else { 1000 }),
        compile_iterations: if a.quick { 3 } else { 10 },
        rounds: if a.quick { 3 } else { 10 },
        timeout: Duration::from_secs(a.timeout),
        rss_limit_kb: a.rss_limit_mb * 1024,
        program: std::env::current_exe()?,
    };
    let result = rt.block_on(run(&opts))?;
    write(&a.out, &result)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
