//! The results of a run: one object per cell, the control-plane figures, and the goals of issue
//! #3 as ratios, serialized to `target/bench/results.json` and rendered as markdown.

use serde::{Deserialize, Serialize};

/// Whether a cell's figures can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellStatus {
    /// Reached its rate without errors.
    Valid,
    /// Ran, but missed its rate or had errors: the latency figures are not comparable.
    Invalid,
    /// Could not run (e.g. the proxy did not start); figures are absent.
    Failed,
}

/// Latency and rate at one fixed request rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// The rate asked for.
    pub target_rps: f64,
    /// The rate achieved (successful responses per second).
    pub rate_rps: f64,
    /// Failed requests.
    pub errors: u64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Proxy CPU-seconds per 10,000 requests at this rate.
    pub cpu_s_per_10k: Option<f64>,
    /// True when the rate was reached (within [`RATE_TOLERANCE`]) with no errors.
    pub valid: bool,
    /// Min–max over the runs when the point is the median of several (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// Min–max over the runs of a repeated cell (performance.md §7.1: "report median of runs and
/// min–max"), for the figures that move between runs. Each pair is `[min, max]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// p50 range, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<(f64, f64)>,
    /// p90 range, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_us: Option<(f64, f64)>,
    /// p99 range, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<(f64, f64)>,
    /// p99.9 range, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_us: Option<(f64, f64)>,
    /// Maximum-throughput range, requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rps: Option<(f64, f64)>,
    /// CPU-seconds per 10,000 requests at the fixed rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s_per_10k: Option<(f64, f64)>,
    /// CPU-seconds per 10,000 requests at the maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s_per_10k_max: Option<(f64, f64)>,
}

/// How far below its target a run may fall and still be valid.
pub const RATE_TOLERANCE: f64 = 0.02;

/// True when `achieved` is within [`RATE_TOLERANCE`] of `target` and there were no errors.
pub fn rate_ok(target: f64, achieved: f64, errors: u64) -> bool {
    errors == 0 && achieved >= target * (1.0 - RATE_TOLERANCE)
}

/// One cell of the side-by-side table. The field names are the ones issue #3 asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Cell name (`direct`, `nginx`, `strait-2hop`, ...).
    pub name: String,
    /// Proxy hops between load generator and backend.
    pub hops: u32,
    /// `http1` or `h2` (as spoken by the load generator).
    pub protocol: String,
    /// Usable or not.
    pub status: CellStatus,
    /// Why a cell is invalid or failed, and caveats (plaintext hops, access log).
    pub note: String,
    /// p50 at 1,000 rps, µs.
    pub p50_us: Option<f64>,
    /// p90 at 1,000 rps, µs.
    pub p90_us: Option<f64>,
    /// p99 at 1,000 rps, µs.
    pub p99_us: Option<f64>,
    /// p99.9 at 1,000 rps, µs.
    pub p999_us: Option<f64>,
    /// Achieved rate of the 1,000 rps run.
    pub rate_rps: Option<f64>,
    /// Errors in the 1,000 rps run.
    pub errors: Option<u64>,
    /// Maximum throughput (closed loop, 64 connections), requests per second.
    pub max_rps: Option<f64>,
    /// Proxy CPU-seconds per 10,000 requests at 1,000 rps.
    pub cpu_s_per_10k: Option<f64>,
    /// Proxy CPU-seconds per 10,000 requests at the maximum.
    pub cpu_s_per_10k_max: Option<f64>,
    /// Proxy RSS before any load, KiB (all processes of the cell summed).
    pub rss_idle_kb: Option<u64>,
    /// Highest proxy RSS sampled under load, KiB.
    pub rss_load_kb: Option<u64>,
    /// The run at 50% of the weakest candidate's maximum.
    pub half_max: Option<RatePoint>,
    /// How many runs the figures are the median of (absent in files written before repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
    /// Min–max over those runs, when there were several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

impl CellResult {
    /// A cell with no figures yet.
    pub fn empty(name: &str, hops: u32, protocol: &str) -> Self {
        CellResult {
            name: name.into(),
            hops,
            protocol: protocol.into(),
            status: CellStatus::Failed,
            note: String::new(),
            p50_us: None,
            p90_us: None,
            p99_us: None,
            p999_us: None,
            rate_rps: None,
            errors: None,
            max_rps: None,
            cpu_s_per_10k: None,
            cpu_s_per_10k_max: None,
            rss_idle_kb: None,
            rss_load_kb: None,
            half_max: None,
            runs: None,
            spread: None,
        }
    }

    /// Stores the fixed 1,000 rps run.
    pub fn set_fixed(&mut self, p: &RatePoint) {
        self.p50_us = Some(p.p50_us);
        self.p90_us = Some(p.p90_us);
        self.p99_us = Some(p.p99_us);
        self.p999_us = Some(p.p999_us);
        self.rate_rps = Some(p.rate_rps);
        self.errors = Some(p.errors);
        self.cpu_s_per_10k = p.cpu_s_per_10k;
        self.status = if p.valid {
            CellStatus::Valid
        } else {
            CellStatus::Invalid
        };
    }

    /// Appends a sentence to the note (on one line, so that it fits a table).
    pub fn add_note(&mut self, text: &str) {
        let text: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if text.is_empty() {
            return;
        }
        if !self.note.is_empty() {
            self.note.push_str("; ");
        }
        self.note.push_str(&text.join(" | "));
    }
}

/// The control-plane benchmark's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlPlaneResult {
    /// Services (ServiceEntries) in the generated mesh.
    pub services: usize,
    /// Workloads (WorkloadEntries).
    pub workloads: usize,
    /// VirtualServices.
    pub virtual_services: usize,
    /// DestinationRules.
    pub destination_rules: usize,
    /// Time to parse the generated YAML, ms.
    pub parse_ms: f64,
    /// Median time to compile one sidecar's configuration, ms.
    pub compile_ms_p50: f64,
    /// Slowest compile, ms.
    pub compile_ms_max: f64,
    /// Compile iterations measured.
    pub compile_iterations: usize,
    /// Size of one compiled sidecar configuration as JSON, bytes.
    pub config_json_bytes: usize,
    /// Time of the initial `apply_text` of the whole mesh, ms.
    pub initial_apply_ms: f64,
    /// Connected simulated proxies (real gRPC streams that ACK).
    pub proxies: usize,
    /// Time until every proxy had its first configuration, ms.
    pub connect_all_acked_ms: Option<f64>,
    /// Apply rounds measured.
    pub rounds: usize,
    /// Apply-to-all-acked time of each round, ms (`None` for a round that timed out).
    pub apply_to_all_acked_ms: Vec<Option<f64>>,
    /// Per round: until the REST apply returned (store write and analysis), and until the first
    /// proxy acknowledged (plus recompilation and one push), ms: where a round's time goes.
    #[serde(default)]
    pub apply_returned_ms: Vec<f64>,
    /// See `apply_returned_ms`.
    #[serde(default)]
    pub apply_to_first_acked_ms: Vec<Option<f64>>,
    /// p99 (nearest rank) of the rounds' apply-to-all-acked times, ms; `None` if any timed out.
    pub apply_to_all_acked_p99_ms: Option<f64>,
    /// p50 / p99 of the per-proxy apply-to-acked times over all rounds, ms.
    pub per_proxy_ack_p50_ms: Option<f64>,
    /// See `per_proxy_ack_p50_ms`.
    pub per_proxy_ack_p99_ms: Option<f64>,
    /// Control-plane process RSS with all proxies connected, KiB.
    pub rss_kb: u64,
    /// Peak RSS of the control-plane process, KiB.
    pub rss_peak_kb: u64,
    /// Median bytes of a round's push as the proxies received it (`config_json`, gzip when the
    /// proxies accept it); `None` in results written before it was measured.
    #[serde(default)]
    pub push_bytes_p50: Option<u64>,
    /// Caveats.
    pub note: String,
}

/// One goal of issue #3, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// What is measured.
    pub goal: String,
    /// Strait's (or the control plane's) value.
    pub value: Option<f64>,
    /// The bound it must stay under.
    pub target: Option<f64>,
    /// value / target (≤ 1 means met).
    pub ratio: Option<f64>,
    /// Met, missed, or unknown (`None`) when a figure is missing.
    pub met: Option<bool>,
}

impl Goal {
    fn new(goal: &str, value: Option<f64>, target: Option<f64>) -> Goal {
        let ratio = match (value, target) {
            (Some(v), Some(t)) if t > 0.0 => Some(v / t),
            _ => None,
        };
        Goal {
            goal: goal.into(),
            value,
            target,
            ratio,
            met: ratio.map(|r| r <= 1.0),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// `quick` or `full`.
    pub mode: String,
    /// The command that produced this.
    pub command: String,
    /// When (UTC, RFC 3339).
    pub finished_at: String,
    /// Machine description (CPU, kernel, tool versions).
    pub machine: Vec<String>,
    /// Fixed rate of the main latency run.
    pub fixed_rps: f64,
    /// Rate of the second latency run (50% of the weakest candidate's maximum).
    pub half_max_rps: Option<f64>,
    /// Every cell.
    pub cells: Vec<CellResult>,
    /// Control-plane benchmark, when it ran.
    pub control_plane: Option<ControlPlaneResult>,
    /// Goals of issue #3.
    pub goals: Vec<Goal>,
    /// Runs per cell (`--repeat`); absent in files written before repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// Seed of the cell-order shuffles (`--seed` reproduces the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The order the cells ran in, one line per pass and round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// The goals evaluated on each round's own cells (see [`crate::paired`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paired: Vec<crate::paired::PairedGoal>,
}

impl Results {
    /// The named cell.
    pub fn cell(&self, name: &str) -> Option<&CellResult> {
        self.cells.iter().find(|c| c.name == name)
    }

    /// A valid cell's figure, by name.
    fn valid<T>(&self, name: &str, f: impl Fn(&CellResult) -> Option<T>) -> Option<T> {
        self.cell(name)
            .filter(|c| c.status == CellStatus::Valid)
            .and_then(f)
    }

    /// Latency the named cell adds over `direct` of the same protocol, at 1,000 rps.
    pub fn added(&self, name: &str, f: impl Fn(&CellResult) -> Option<f64>) -> Option<f64> {
        let cell = self.cell(name)?;
        let direct = if cell.protocol == "h2" {
            "direct-h2"
        } else {
            "direct"
        };
        Some(self.valid(name, &f)? - self.valid(direct, &f)?)
    }

    /// Evaluates the goals of issue #3 from the cells and control-plane figures.
    pub fn evaluate_goals(&mut self) {
        let min_of = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let cpu = |n: &str| self.valid(n, |c| c.cpu_s_per_10k);
        let cpu_max = |n: &str| self.cell(n).and_then(|c| c.cpu_s_per_10k_max);
        let p50 = |n: &str| self.added(n, |c| c.p50_us);
        let p99 = |n: &str| self.added(n, |c| c.p99_us);
        let kb_to_mb = |v: Option<u64>| v.map(|kb| kb as f64 / 1024.0);
        let strait = self.cell("strait");
        let mut goals = vec![
            Goal::new(
                "strait CPU-s per 10k req at 1,000 rps <= min(nginx, haproxy)",
                cpu("strait"),
                min_of(cpu("nginx"), cpu("haproxy")),
            ),
            Goal::new(
                "strait CPU-s per 10k req at max <= min(nginx, haproxy)",
                cpu_max("strait"),
                min_of(cpu_max("nginx"), cpu_max("haproxy")),
            ),
            Goal::new(
                "strait added p50 at 1,000 rps (us) <= min(nginx, haproxy)",
                p50("strait"),
                min_of(p50("nginx"), p50("haproxy")),
            ),
            Goal::new(
                "strait added p99 at 1,000 rps (us) <= min(nginx, haproxy)",
                p99("strait"),
                min_of(p99("nginx"), p99("haproxy")),
            ),
            // Both with mTLS between the hops (the same certificates).
            Goal::new(
                "strait-2hop added p50 at 1,000 rps (us) <= nginx-2hop",
                p50("strait-2hop"),
                p50("nginx-2hop"),
            ),
            Goal::new(
                "strait-2hop added p99 at 1,000 rps (us) <= nginx-2hop",
                p99("strait-2hop"),
                p99("nginx-2hop"),
            ),
            Goal::new(
                "strait RSS idle (MB) <= 8",
                kb_to_mb(strait.and_then(|c| c.rss_idle_kb)),
                Some(8.0),
            ),
            Goal::new(
                "strait RSS under load (MB) <= 16",
                kb_to_mb(strait.and_then(|c| c.rss_load_kb)),
                Some(16.0),
            ),
        ];
        let cp = self.control_plane.as_ref();
        // The goals are stated for 1,000 proxies; a quick run connects fewer, so say how many.
        let proxies = cp.map(|c| c.proxies).unwrap_or(0);
        let scale = if proxies == 1000 {
            String::new()
        } else {
            format!(", {proxies} proxies, goal is for 1,000")
        };
        goals.push(Goal::new(
            &format!("control plane apply-to-all-acked p99 (ms{scale}) <= 100"),
            cp.and_then(|c| c.apply_to_all_acked_p99_ms),
            Some(100.0),
        ));
        goals.push(Goal::new(
            "control plane compile of one sidecar (ms, max) <= 1000",
            cp.map(|c| c.compile_ms_max),
            Some(1000.0),
        ));
        goals.push(Goal::new(
            &format!("control plane RSS (MB{scale}) <= 200"),
            cp.map(|c| c.rss_kb as f64 / 1024.0),
            Some(200.0),
        ));
        self.goals = goals;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(name: &str, protocol: &str, p50: f64, cpu: f64) -> CellResult {
        let mut c = CellResult::empty(name, 1, protocol);
        c.set_fixed(&RatePoint {
            target_rps: 1000.0,
            rate_rps: 1000.0,
            errors: 0,
            p50_us: p50,
            p90_us: p50 * 2.0,
            p99_us: p50 * 4.0,
            p999_us: p50 * 8.0,
            cpu_s_per_10k: Some(cpu),
            valid: true,
            spread: None,
        });
        c
    }

    #[test]
    fn results_json_has_the_fields_the_issue_names() {
        let r = Results {
            cells: vec![cell("direct", "http1", 80.0, 0.0)],
            ..Results::default()
        };
        let json = serde_json::to_value(&r).unwrap();
        let c = &json["cells"][0];
        for field in [
            "name",
            "hops",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "rate_rps",
            "errors",
            "max_rps",
            "cpu_s_per_10k",
            "cpu_s_per_10k_max",
            "rss_idle_kb",
            "rss_load_kb",
        ] {
            assert!(c.get(field).is_some(), "missing {field} in {c}");
        }
        assert_eq!(c["name"], "direct");
        assert_eq!(c["status"], "valid");
        let back: Results = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn results_json_round_trips_with_runs_spread_and_seed() {
        let mut c = cell("strait", "http1", 120.0, 0.4);
        c.runs = Some(3);
        c.spread = Some(Spread {
            p50_us: Some((110.0, 130.0)),
            cpu_s_per_10k: Some((0.3, 0.5)),
            ..Spread::default()
        });
        c.half_max = Some(RatePoint {
            spread: Some(Spread {
                p99_us: Some((400.0, 450.0)),
                ..Spread::default()
            }),
            ..RatePoint::default()
        });
        let r = Results {
            cells: vec![c],
            repeat: Some(3),
            seed: Some(u64::MAX),
            order: vec!["pass 1, round 1/3: strait".into()],
            ..Results::default()
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["seed"], serde_json::json!(u64::MAX));
        assert_eq!(json["cells"][0]["runs"], 3);
        assert_eq!(
            json["cells"][0]["spread"]["p50_us"],
            serde_json::json!([110.0, 130.0])
        );
        assert!(
            json["cells"][0]["spread"].get("p99_us").is_none(),
            "absent ranges are omitted"
        );
        let back: Results = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn results_json_from_before_repeats_still_parses() {
        // A cell and a half-max point as results.json held them before `--repeat`.
        let old = r#"{"mode":"quick","command":"bench/run --quick","finished_at":"2026-11-26T10:00:00Z",
            "machine":[],"fixed_rps":1000.0,"half_max_rps":9000.0,"control_plane":null,"goals":[],
            "cells":[{"name":"nginx","hops":1,"protocol":"http1","status":"valid","note":"",
            "p50_us":150.0,"p90_us":200.0,"p99_us":300.0,"p999_us":900.0,"rate_rps":1000.0,
            "errors":0,"max_rps":18000.0,"cpu_s_per_10k":0.5,"cpu_s_per_10k_max":0.4,
            "rss_idle_kb":3000,"rss_load_kb":4000,"half_max":{"target_rps":9000.0,"rate_rps":9000.0,
            "errors":0,"p50_us":160.0,"p90_us":210.0,"p99_us":320.0,"p999_us":950.0,
            "cpu_s_per_10k":0.45,"valid":true}}]}"#;
        let r: Results = serde_json::from_str(old).unwrap();
        let c = &r.cells[0];
        assert_eq!((c.runs, c.spread.clone()), (None, None));
        assert_eq!(c.half_max.as_ref().map(|h| h.spread.is_none()), Some(true));
        assert_eq!((r.repeat, r.seed, r.order.len()), (None, None, 0));
        assert_eq!(c.p99_us, Some(300.0));
        // Written again, it has no new keys.
        let json = serde_json::to_value(&r).unwrap();
        for key in ["repeat", "seed", "order"] {
            assert!(json.get(key).is_none(), "{key}");
        }
        assert!(json["cells"][0].get("runs").is_none());
        assert!(json["cells"][0].get("spread").is_none());
    }

    #[test]
    fn a_missed_rate_or_an_error_is_invalid() {
        assert!(rate_ok(1000.0, 995.0, 0));
        assert!(!rate_ok(1000.0, 900.0, 0));
        assert!(!rate_ok(1000.0, 1000.0, 1));
    }

    #[test]
    fn goals_compare_strait_with_the_best_of_nginx_and_haproxy() {
        let mut r = Results {
            cells: vec![
                cell("direct", "http1", 100.0, 0.0),
                cell("nginx", "http1", 200.0, 1.0),
                cell("haproxy", "http1", 250.0, 0.8),
                cell("strait", "http1", 150.0, 0.4),
                cell("nginx-2hop", "http1", 400.0, 2.0),
                cell("strait-2hop", "http1", 350.0, 1.5),
            ],
            ..Results::default()
        };
        r.evaluate_goals();
        let two_hop = r
            .goals
            .iter()
            .find(|g| g.goal.starts_with("strait-2hop added p50"))
            .unwrap();
        assert_eq!(
            (two_hop.value, two_hop.target, two_hop.met),
            (Some(250.0), Some(300.0), Some(true))
        );
        let cpu = &r.goals[0];
        assert_eq!(
            (cpu.value, cpu.target, cpu.met),
            (Some(0.4), Some(0.8), Some(true))
        );
        let p50 = &r.goals[2];
        assert_eq!(
            (p50.value, p50.target, p50.ratio),
            (Some(50.0), Some(100.0), Some(0.5))
        );
        // No control-plane figures: unknown, not met.
        assert!(
            r.goals
                .iter()
                .any(|g| g.goal.starts_with("control plane") && g.met.is_none())
        );
    }

    #[test]
    fn a_failed_strait_cell_leaves_its_goals_unknown() {
        let mut r = Results {
            cells: vec![
                cell("direct", "http1", 100.0, 0.0),
                cell("nginx", "http1", 200.0, 1.0),
                CellResult::empty("strait", 1, "http1"),
            ],
            ..Results::default()
        };
        r.evaluate_goals();
        assert_eq!(r.goals[0].met, None);
        assert_eq!(r.goals[2].value, None);
    }
}
