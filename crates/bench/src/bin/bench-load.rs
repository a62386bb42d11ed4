//! `bench-load`: the open-loop (or closed-loop) load generator; prints a JSON `LoadReport`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use strait_bench::loadgen::{LoadSpec, run_sampled};

/// Arguments.
#[derive(Parser)]
#[command(about = "Fixed-rate HTTP load with coordinated-omission correction; --rate 0 = closed loop")]
struct Args {
    /// Address to connect to.
    #[arg(long)]
    addr: SocketAddr,
    /// Host header / :authority.
    #[arg(long, default_value = "bench-backend")]
    host: String,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// HTTP/1.1 connections (or HTTP/2 streams on one connection).
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    /// Requests per second in total; 0 = as fast as possible.
    #[arg(long, short = 'q', default_value_t = 1000.0)]
    rate: f64,
    /// Measured seconds.
    #[arg(long, short = 'z', default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Use HTTP/2 (h2c prior knowledge).
    #[arg(long)]
    http2: bool,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Also write every measured response to this file, one `slot at_us latency_us` line each
    /// (`at_us`: intended send time after the measured window opened).
    #[arg(long)]
    samples: Option<std::path::PathBuf>,
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|e| anyhow::anyhow!("--{what} {s}: {e}"))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let spec = LoadSpec {
        addr: a.addr,
        host: a.host,
        path: a.path,
        connections: a.connections,
        rate: a.rate,
        duration: secs(a.duration, "duration")?,
        warmup: secs(a.warmup, "warmup")?,
        http2: a.http2,
        timeout: secs(a.timeout, "timeout")?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (report, mut samples) = rt.block_on(run_sampled(&spec))?;
    if let Some(path) = &a.samples {
        samples.sort_by_key(|s| s.at_us);
        let file =
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("--samples {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for s in &samples {
            writeln!(out, "{} {} {}", s.slot, s.at_us, s.latency_us)?;
        }
        out.flush()?;
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
