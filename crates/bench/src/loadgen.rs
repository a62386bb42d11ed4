//! An open-loop HTTP load generator with coordinated-omission correction.
//!
//! Why our own instead of `oha`: `cargo install oha` compiles ~300 crates (several minutes on
//! this shared 2-core box), and we want to control exactly when latency starts counting. Each
//! connection (HTTP/1.1) or stream slot (HTTP/2) has a fixed schedule of *intended* send times
//! (rate / connections apart). A request's latency is measured from its intended time when the
//! connection was still busy with the previous response at that moment (the server's slowness
//! delayed it: that wait is the server's fault and is counted, which is the coordinated-omission
//! correction), and from the actual send time otherwise (the generator's own timer slack, ~1 ms
//! with tokio, is not the server's fault and is not counted).
//!
//! With `rate == 0` the generator runs closed-loop (every slot sends as soon as its previous
//! response arrived): that is the maximum-throughput mode.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::stats::{Percentiles, percentiles};

/// What to send, how fast and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Address to connect to.
    pub addr: std::net::SocketAddr,
    /// `Host` / `:authority` to send.
    pub host: String,
    /// Request path.
    pub path: String,
    /// HTTP/1.1 connections, or concurrent HTTP/2 streams on one connection.
    pub connections: usize,
    /// Requests per second over all connections; 0 = closed loop (as fast as possible).
    pub rate: f64,
    /// Measured time.
    pub duration: Duration,
    /// Time before the measurement whose results are discarded (connections warm up).
    pub warmup: Duration,
    /// Speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
    /// A request that takes longer is an error.
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Target rate (0 = closed loop).
    pub target_rps: f64,
    /// Successful responses in the measured window.
    pub requests: u64,
    /// Successful responses including the warm-up (for CPU per request over the whole run).
    pub total_requests: u64,
    /// Failed requests (connect errors, resets, timeouts, non-2xx) in the measured window.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Successful responses per second in the window.
    pub rate_rps: f64,
    /// Latency of the successful responses.
    pub latency: Percentiles,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No connection could be opened.
    #[error("cannot connect to {addr}: {message}; is the server under test running?")]
    Connect {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        message: String,
    },
    /// Nonsensical parameters.
    #[error("invalid load parameters: {0}")]
    Spec(String),
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

async fn connect(spec: &LoadSpec) -> Result<Sender, String> {
    let stream = TcpStream::connect(spec.addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let io = TokioIo::new(stream);
    if spec.http2 {
        let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Sender::H2(send))
    } else {
        let (send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Sender::H1(send))
    }
}

impl Sender {
    fn clone_h2(&self) -> Option<Sender> {
        match self {
            Sender::H2(s) => Some(Sender::H2(s.clone())),
            Sender::H1(_) => None,
        }
    }

    async fn get(&mut self, spec: &LoadSpec) -> Result<(), String> {
        let response = match self {
            Sender::H1(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                let req = Request::get(spec.path.as_str())
                    .header(header::HOST, spec.host.as_str())
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                let uri = format!("http://{}{}", spec.host, spec.path);
                let req = Request::get(uri).body(Empty::new()).map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {status}: {:?}",
                String::from_utf8_lossy(&body.to_bytes())
            ));
        }
        Ok(())
    }
}

/// One measured response, for looking at the tail (`bench-load --samples`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The connection (or HTTP/2 stream slot) that sent it.
    pub slot: u32,
    /// Its intended send time, microseconds after the measured window opened.
    pub at_us: u64,
    /// Its latency, microseconds.
    pub latency_us: u32,
}

#[derive(Default)]
struct SlotResult {
    latencies: Vec<u32>,
    samples: Vec<Sample>,
    total_ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl SlotResult {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Runs the load and reports. Must run inside a Tokio runtime (a current-thread one is enough and
/// keeps the generator on the one core it is pinned to).
pub async fn run(spec: &LoadSpec) -> Result<LoadReport, LoadError> {
    run_sampled(spec).await.map(|(report, _)| report)
}

/// [`run`], also returning every measured response in send order per slot: where the tail of a
/// distribution sits in time and across connections says more than its percentiles.
pub async fn run_sampled(spec: &LoadSpec) -> Result<(LoadReport, Vec<Sample>), LoadError> {
    if spec.connections == 0 || spec.rate < 0.0 || spec.duration.is_zero() {
        return Err(LoadError::Spec(
            "need at least one connection, a rate >= 0 and a non-zero duration".into(),
        ));
    }
    let conn_err = |message| LoadError::Connect {
        addr: spec.addr,
        message,
    };
    let mut senders = Vec::with_capacity(spec.connections);
    if spec.http2 {
        let first = connect(spec).await.map_err(conn_err)?;
        for _ in 1..spec.connections {
            senders.extend(first.clone_h2());
        }
        senders.push(first);
    } else {
        for _ in 0..spec.connections {
            senders.push(connect(spec).await.map_err(conn_err)?);
        }
    }
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let slots = spec.connections;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let spec = spec.clone();
        tasks.spawn(async move { slot(spec, sender, i, slots, start, measure_from, end).await });
    }
    let mut all = SlotResult::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => {
                all.latencies.extend(r.latencies);
                all.samples.extend(r.samples);
                all.errors += r.errors;
                all.total_ok += r.total_ok;
                if all.first_error.is_none() {
                    all.first_error = r.first_error;
                }
            }
            Err(e) => all.error(format!("load task failed: {e}")),
        }
    }
    let requests = all.latencies.len() as u64;
    let duration_s = spec.duration.as_secs_f64();
    let report = LoadReport {
        target_rps: spec.rate,
        requests,
        total_requests: all.total_ok,
        errors: all.errors,
        first_error: all.first_error,
        duration_s,
        rate_rps: requests as f64 / duration_s,
        latency: percentiles(&mut all.latencies),
    };
    Ok((report, all.samples))
}

async fn slot(
    spec: LoadSpec,
    mut sender: Sender,
    index: usize,
    slots: usize,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> SlotResult {
    let mut out = SlotResult::default();
    // Open loop: this slot's share of the rate, its first send offset so slots interleave.
    let period = (spec.rate > 0.0).then(|| Duration::from_secs_f64(slots as f64 / spec.rate));
    let offset = period
        .map(|p| p.mul_f64(index as f64 / slots as f64))
        .unwrap_or_default();
    let mut previous_done = start;
    let mut n: u32 = 0;
    loop {
        let intended = match period {
            Some(p) => start + offset + p * n,
            None => Instant::now().max(start),
        };
        n = n.saturating_add(1);
        if intended >= end {
            break;
        }
        tokio::time::sleep_until(intended.into()).await;
        let sent = Instant::now();
        // Coordinated-omission correction: count from the intended time only when the previous
        // response had not arrived by then.
        let origin = if previous_done > intended { intended } else { sent };
        let outcome = tokio::time::timeout(spec.timeout, sender.get(&spec)).await;
        let done = Instant::now();
        previous_done = done;
        let measured = intended >= measure_from;
        if matches!(outcome, Ok(Ok(()))) {
            out.total_ok += 1;
        }
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("no response within {:?}", spec.timeout)),
        };
        match failure {
            None if measured => {
                let us = done.duration_since(origin).as_micros();
                let latency_us = u32::try_from(us).unwrap_or(u32::MAX);
                out.latencies.push(latency_us);
                out.samples.push(Sample {
                    slot: u32::try_from(index).unwrap_or(u32::MAX),
                    at_us: u64::try_from(intended.duration_since(measure_from).as_micros())
                        .unwrap_or(u64::MAX),
                    latency_us,
                });
            }
            None => {}
            Some(e) => {
                if measured {
                    out.error(e);
                }
                // An HTTP/1.1 connection is unusable after a transport error: open a new one.
                // HTTP/2 slots share one connection; back off so a dead one is not spun on.
                if spec.http2 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                } else {
                    match connect(&spec).await {
                        Ok(s) => sender = s,
                        Err(e) => {
                            out.error(format!("reconnect failed: {e}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
        }
    }
    out
}
