//! The control-plane benchmark: compile time at 1,000 services / 2,000 workloads / 500
//! VirtualServices, and the time from one `apply` until every connected proxy has ACKed the
//! resulting configuration.
//!
//! The control plane runs in this process (`start_with_store` with an in-memory store); the
//! simulated proxies run in a child process (`bench-control-plane --sim-proxies N`) so that the
//! RSS we report is the control plane's, not the proxies'. Each simulated proxy is a real gRPC
//! stream that sends a Hello and ACKs every push; the child prints one line per ACK with the
//! wall-clock time it was sent, which the parent compares with the time it started the apply
//! (same machine, same clock).

mod mesh;
mod sim;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strait_api::{Document, Resource, parse_documents};
use strait_control::Store;
use strait_control::compile::compile;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::procfs;
use crate::results::ControlPlaneResult;
use crate::stats::nearest_rank;

pub use mesh::{MeshSize, generate, mutation, node_for};
pub use sim::{AckLine, run_proxies};

/// How big and how long.
#[derive(Debug, Clone)]
pub struct CpOptions {
    /// The mesh.
    pub size: MeshSize,
    /// Simulated proxies.
    pub proxies: usize,
    /// Compile iterations.
    pub compile_iterations: usize,
    /// Apply rounds.
    pub rounds: usize,
    /// Give up waiting for ACKs after this long (per round).
    pub timeout: Duration,
    /// Stop when this process's RSS passes this many KiB.
    pub rss_limit_kb: u64,
    /// This program (started again with `--sim-proxies`).
    pub program: std::path::PathBuf,
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Parses generated YAML chunks into resources (shared, as the control plane's store holds them).
pub fn parse(chunks: &[String]) -> anyhow::Result<Vec<Arc<Resource>>> {
    let mut out = Vec::new();
    for yaml in chunks {
        let docs = parse_documents(yaml, "bench").map_err(|errors| {
            let first: Vec<String> = errors.iter().take(3).map(ToString::to_string).collect();
            anyhow::anyhow!("the generated mesh does not parse: {}", first.join("; "))
        })?;
        out.extend(docs.into_iter().filter_map(|d| match d {
            Document::Istio(r) => Some(Arc::new(r)),
            Document::Kubernetes(_) => None,
        }));
    }
    Ok(out)
}

/// How waiting for ACKs ended.
enum Waited {
    /// Every proxy acked: each one's ACK time (µs since the epoch).
    All(HashMap<usize, u64>),
    /// The deadline passed with this many acked.
    TimedOut(usize),
    /// The control plane's RSS passed the limit (KiB) with this many acked.
    OverMemory(usize, u64),
}

impl Waited {
    fn why(&self, want: usize, timeout: Duration) -> Option<String> {
        match self {
            Waited::All(_) => None,
            Waited::TimedOut(n) => Some(format!("only {n} of {want} proxies acked within {timeout:?}")),
            Waited::OverMemory(n, kb) => Some(format!(
                "stopped at {n} of {want} acked: the control plane's RSS reached {} MB (limit set to protect \
                 the shared machine)",
                kb / 1024
            )),
        }
    }
}

/// Collects ACK lines until `want` proxies have acked `version`, the deadline passes, or this
/// process's RSS passes `rss_limit_kb` (a control plane that keeps every proxy's configuration can
/// exhaust a shared machine at 1,000 proxies).
async fn wait_acks<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    version: &str,
    want: usize,
    timeout: Duration,
    rss_limit_kb: u64,
    bytes: &mut Vec<u32>,
) -> anyhow::Result<Waited> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut acked = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while acked.len() < want {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tokio::time::sleep_until(deadline) => return Ok(Waited::TimedOut(acked.len())),
            _ = tick.tick() => {
                let rss = procfs::memory(&[std::process::id()]).map(|m| m.rss_kb).unwrap_or(0);
                if rss > rss_limit_kb {
                    return Ok(Waited::OverMemory(acked.len(), rss));
                }
                continue;
            }
        };
        let Some(line) = line else {
            anyhow::bail!(
                "the simulated proxies exited early ({} of {want} acked)",
                acked.len()
            );
        };
        match AckLine::parse(&line) {
            Some(a) if a.version == version => {
                if let std::collections::hash_map::Entry::Vacant(e) = acked.entry(a.proxy) {
                    e.insert(a.micros);
                    bytes.push(u32::try_from(a.bytes).unwrap_or(u32::MAX));
                }
            }
            Some(_) => {}
            None => anyhow::bail!("simulated proxies: {line}"),
        }
    }
    Ok(Waited::All(acked))
}

/// Runs the whole benchmark.
pub async fn run(opts: &CpOptions) -> anyhow::Result<ControlPlaneResult> {
    let yaml = generate(&opts.size);
    let t = Instant::now();
    let resources = parse(&yaml)?;
    let parse_ms = ms(t.elapsed());
    let node = node_for(&opts.size, 0);
    let mut compile_ms = Vec::new();
    let mut config_json_bytes = 0;
    for _ in 0..opts.compile_iterations.max(1) {
        let t = Instant::now();
        let cfg = compile(&resources, &node);
        compile_ms.push(ms(t.elapsed()));
        config_json_bytes = cfg.to_json().len();
    }
    anyhow::ensure!(
        config_json_bytes > 100,
        "the compiled configuration is empty: the generated mesh is wrong"
    );
    drop(resources);
    let mut sorted: Vec<u32> = compile_ms.iter().map(|m| (m * 1000.0) as u32).collect();
    sorted.sort_unstable();
    let compile_ms_p50 = nearest_rank(&sorted, 0.5)
        .map(|v| f64::from(v) / 1000.0)
        .unwrap_or(0.0);
    let compile_ms_max = compile_ms.iter().copied().fold(0.0, f64::max);

    // Last resort: the control plane compiles on its async runtime, so when it is saturated the
    // RSS check in `wait_acks` may not get to run; an OS thread stops the process 2 GB later.
    let hard_limit_kb = opts.rss_limit_kb + 2 * 1024 * 1024;
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let rss = procfs::memory(&[std::process::id()])
                .map(|m| m.rss_kb)
                .unwrap_or(0);
            if rss > hard_limit_kb {
                eprintln!(
                    "bench-control-plane: RSS {} MB passed the hard limit of {} MB; stopping to protect the machine",
                    rss / 1024,
                    hard_limit_kb / 1024
                );
                std::process::exit(3);
            }
        }
    });
    let store = Arc::new(Store::in_memory());
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let cp = strait_control::start_with_store(store.clone(), any, any).await?;
    let t = Instant::now();
    let s = store.clone();
    let y = yaml.clone();
    tokio::task::spawn_blocking(move || {
        y.iter()
            .try_for_each(|chunk| s.apply_text(chunk, "bench", false).map(|_| ()))
    })
    .await??;
    let initial_apply_ms = ms(t.elapsed());

    let t = Instant::now();
    let mut child = tokio::process::Command::new(&opts.program)
        .arg("--sim-proxies")
        .arg(opts.proxies.to_string())
        .arg("--grpc")
        .arg(format!("http://{}", cp.grpc_addr))
        .arg("--mesh-services")
        .arg(opts.size.services.to_string())
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout from the simulated proxies"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = store.revision().to_string();
    let mut push_bytes: Vec<u32> = Vec::new();
    let connected = wait_acks(
        &mut lines,
        &first,
        opts.proxies,
        opts.timeout,
        opts.rss_limit_kb,
        &mut Vec::new(),
    )
    .await?;
    let mut problem = connected.why(opts.proxies, opts.timeout);
    let connect_all_acked_ms = problem.is_none().then(|| ms(t.elapsed()));
    let mut rounds = Vec::new();
    let (mut returned, mut first_acks) = (Vec::new(), Vec::new());
    let mut per_proxy_us: Vec<u32> = Vec::new();
    if connect_all_acked_ms.is_some() {
        for k in 0..opts.rounds {
            let text = mutation(&opts.size, k);
            let started = micros_now();
            // What `strait apply -f` sends: one POST to the REST API (store write, analyzer).
            rest_apply(cp.rest_addr, text).await?;
            returned.push(micros_now().saturating_sub(started) as f64 / 1000.0);
            let version = store.revision().to_string();
            match wait_acks(
                &mut lines,
                &version,
                opts.proxies,
                opts.timeout,
                opts.rss_limit_kb,
                &mut push_bytes,
            )
            .await?
            {
                Waited::All(acks) => {
                    let latest = acks.values().copied().max().unwrap_or(started);
                    let earliest = acks.values().copied().min().unwrap_or(started);
                    first_acks.push(Some(earliest.saturating_sub(started) as f64 / 1000.0));
                    rounds.push(Some(latest.saturating_sub(started) as f64 / 1000.0));
                    per_proxy_us.extend(acks.values().map(|a| a.saturating_sub(started) as u32));
                }
                other => {
                    problem = other.why(opts.proxies, opts.timeout);
                    rounds.push(None);
                    first_acks.push(None);
                    break;
                }
            }
        }
    }
    let mem = procfs::memory(&[std::process::id()])?;
    let _ = child.kill().await;
    let _ = cp.shutdown().await;

    per_proxy_us.sort_unstable();
    push_bytes.sort_unstable();
    let pct = |q| nearest_rank(&per_proxy_us, q).map(|v| f64::from(v) / 1000.0);
    let p99_rounds = if rounds.iter().all(Option::is_some) && !rounds.is_empty() {
        let mut r: Vec<u32> = rounds.iter().flatten().map(|v| (v * 1000.0) as u32).collect();
        r.sort_unstable();
        nearest_rank(&r, 0.99).map(|v| f64::from(v) / 1000.0)
    } else {
        None
    };
    let mut note = String::from(
        "Simulated proxies ACK without decoding the JSON (the control plane's cost only); control plane \
         and simulated proxies share the machine's cores. RSS is the benchmark process (control plane + \
         the generated YAML), not the proxies. The mesh is parsed and applied in chunks of 100 services, \
         as a user applying a directory file by file would.",
    );
    match (&problem, connect_all_acked_ms) {
        (Some(p), None) => note.push_str(&format!(" INCOMPLETE: connecting the proxies: {p}.")),
        (Some(p), Some(_)) => note.push_str(&format!(" INCOMPLETE: round {}: {p}.", rounds.len())),
        (None, _) => {}
    }
    Ok(ControlPlaneResult {
        services: opts.size.services,
        workloads: opts.size.services * opts.size.workloads_per_service,
        virtual_services: opts.size.virtual_services.min(opts.size.services),
        destination_rules: opts.size.virtual_services.min(opts.size.services),
        parse_ms,
        compile_ms_p50,
        compile_ms_max,
        compile_iterations: compile_ms.len(),
        config_json_bytes,
        initial_apply_ms,
        proxies: opts.proxies,
        connect_all_acked_ms,
        rounds: rounds.len(),
        apply_to_all_acked_p99_ms: p99_rounds,
        apply_to_all_acked_ms: rounds,
        apply_returned_ms: returned,
        apply_to_first_acked_ms: first_acks,
        per_proxy_ack_p50_ms: pct(0.5),
        per_proxy_ack_p99_ms: pct(0.99),
        rss_kb: mem.rss_kb,
        rss_peak_kb: mem.hwm_kb,
        push_bytes_p50: nearest_rank(&push_bytes, 0.5).map(u64::from),
        note,
    })
}

/// Writes `result` as JSON to `path`.
pub fn write(path: &Path, result: &ControlPlaneResult) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(result)?)?;
    Ok(())
}

/// `POST /api/v1/apply` with `yaml`, as `strait apply -f` does; an error unless 200.
async fn rest_apply(addr: SocketAddr, yaml: String) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let request = http::Request::post("/api/v1/apply")
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/yaml")
        .body(Full::new(bytes::Bytes::from(yaml)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    anyhow::ensure!(
        status == http::StatusCode::OK,
        "apply through the REST API answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}
