//! One measurement: a load run against a cell while its processes' CPU time and RSS are read.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::loadgen::LoadReport;
use crate::procfs;
use crate::results::{RatePoint, rate_ok};
use crate::wrk;

/// What the proxy processes did during one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Usage {
    /// CPU-seconds used during the run.
    pub cpu_s: Option<f64>,
    /// Highest summed RSS sampled during the run, KiB.
    pub rss_max_kb: Option<u64>,
}

/// Runs `program args` pinned to CPU 0 while sampling `pids`; returns its stdout and the usage.
async fn observe(
    program: &Path,
    args: &[String],
    pids: &[u32],
    ticks: f64,
) -> Result<(String, Usage), String> {
    let before = if pids.is_empty() {
        None
    } else {
        Some(procfs::cpu_seconds(pids, ticks).map_err(|e| e.to_string())?)
    };
    let child = tokio::process::Command::new("taskset")
        .arg("-c")
        .arg("0")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut output = Box::pin(child.wait_with_output());
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut rss_max: Option<u64> = None;
    let out = loop {
        tokio::select! {
            out = &mut output => break out.map_err(|e| format!("{} failed: {e}", program.display()))?,
            _ = tick.tick() => {
                if !pids.is_empty()
                    && let Ok(m) = procfs::memory(pids)
                {
                    rss_max = Some(rss_max.unwrap_or(0).max(m.rss_kb));
                }
            }
        }
    };
    let cpu_s = match before {
        Some(b) => Some(
            procfs::cpu_seconds(pids, ticks).map_err(|e| format!("the proxy died during the run: {e}"))? - b,
        ),
        None => None,
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "{} exited with {}: {}{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.trim()
        ));
    }
    Ok((
        stdout,
        Usage {
            cpu_s,
            rss_max_kb: rss_max,
        },
    ))
}

/// Parameters of a `bench-load` run.
pub(crate) struct Load<'a> {
    pub bench_load: &'a Path,
    pub target: SocketAddr,
    pub host: &'a str,
    pub http2: bool,
    pub connections: usize,
    pub rate: f64,
    pub warmup: f64,
    pub duration: f64,
}

impl Load<'_> {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--addr".into(),
            self.target.to_string(),
            "--host".into(),
            self.host.into(),
            "-c".into(),
            self.connections.to_string(),
            "-q".into(),
            self.rate.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "-z".into(),
            self.duration.to_string(),
        ];
        if self.http2 {
            a.push("--http2".into());
        }
        a
    }
}

/// CPU-seconds per 10,000 requests.
pub(crate) fn per_10k(cpu_s: Option<f64>, requests: u64) -> Option<f64> {
    cpu_s
        .filter(|_| requests > 0)
        .map(|c| c / requests as f64 * 10_000.0)
}

/// A fixed-rate run: latency, achieved rate, errors, CPU per 10k requests.
pub(crate) async fn fixed(
    load: &Load<'_>,
    pids: &[u32],
    ticks: f64,
) -> Result<(RatePoint, Usage, LoadReport), String> {
    let (stdout, usage) = observe(load.bench_load, &load.args(), pids, ticks).await?;
    let report: LoadReport = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("bench-load printed something unexpected ({e}): {stdout}"))?;
    let point = RatePoint {
        target_rps: load.rate,
        rate_rps: report.rate_rps,
        errors: report.errors,
        p50_us: report.latency.p50_us,
        p90_us: report.latency.p90_us,
        p99_us: report.latency.p99_us,
        p999_us: report.latency.p999_us,
        cpu_s_per_10k: per_10k(usage.cpu_s, report.total_requests),
        valid: rate_ok(load.rate, report.rate_rps, report.errors),
        spread: None,
    };
    Ok((point, usage, report))
}

/// Maximum throughput: closed loop with 64 connections. HTTP/1.1 uses wrk when it is installed;
/// HTTP/2 (and HTTP/1.1 without wrk) uses `bench-load --rate 0`.
pub(crate) async fn max(
    load: &Load<'_>,
    use_wrk: bool,
    pids: &[u32],
    ticks: f64,
) -> Result<(f64, Option<f64>, Usage, u64), String> {
    if use_wrk && !load.http2 {
        let args = vec![
            "-t1".into(),
            "-c64".into(),
            format!("-d{}s", load.duration.round().max(1.0)),
            "-H".into(),
            format!("Host: {}", load.host),
            format!("http://{}/", load.target),
        ];
        let (stdout, usage) = observe(Path::new("wrk"), &args, pids, ticks).await?;
        let s = wrk::parse(&stdout).ok_or_else(|| format!("wrk did not print a summary: {stdout}"))?;
        return Ok((s.ok_rps(), per_10k(usage.cpu_s, s.requests), usage, s.errors));
    }
    let closed = Load {
        connections: 64,
        rate: 0.0,
        ..*load
    };
    let (_, usage, report) = fixed(&closed, pids, ticks).await?;
    Ok((
        report.rate_rps,
        per_10k(usage.cpu_s, report.total_requests),
        usage,
        report.errors,
    ))
}
