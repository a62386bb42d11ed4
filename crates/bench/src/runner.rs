//! `bench-runner`: starts the backend and every cell pinned per performance.md §7.2 (load
//! generator and backend on CPU 0, the system under test on CPU 1), measures, and writes
//! `results.json`, `results.md`, `chart.svg` (and optionally `docs/benchmarks.md`).

mod cells;
mod docs;
mod measure;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::loadgen::{self, LoadSpec};
use crate::process::{Managed, accepts, available};
use crate::results::{CellResult, CellStatus, ControlPlaneResult, Results};
use crate::{chart, paired, procfs, repeat, report};
use cells::{CellDef, Layout, Programs};
use measure::Load;

/// How a run is done.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Short durations (about 3 minutes in all) instead of the full protocol.
    pub quick: bool,
    /// Output directory (`target/bench`).
    pub out: PathBuf,
    /// Where `bench-backend`, `bench-load` and `bench-control-plane` are.
    pub bin_dir: PathBuf,
    /// The `strait` binary (or `strait-proxy`).
    pub strait: PathBuf,
    /// Run the Strait cells with the `strait-proxy` beside `strait` when it is there and fresh.
    pub lean_proxy: bool,
    /// Keep the kernel's DAMON sampler on the load core for the run (`--move-kdamond`,
    /// [`crate::kthreads`]).
    pub move_kdamond: bool,
    /// Only these cells (all when empty).
    pub only: Vec<String>,
    /// Run the control-plane benchmark too.
    pub control_plane: bool,
    /// Rewrite the results section of this markdown file.
    pub docs: Option<PathBuf>,
    /// First port of the range the harness uses (backend at +80, cells from +101).
    pub port_base: u16,
    /// The command line, for the report.
    pub command: String,
    /// Rounds per pass: every cell is measured this many times and reported as the median.
    pub repeat: u32,
    /// Seed of the per-round cell-order shuffles (recorded in the results).
    pub seed: u64,
}

struct Timing {
    warmup: f64,
    fixed: f64,
    max: f64,
    half: f64,
}

impl Timing {
    fn of(quick: bool) -> Timing {
        if quick {
            Timing {
                warmup: 1.0,
                fixed: 5.0,
                max: 4.0,
                half: 4.0,
            }
        } else {
            Timing {
                warmup: 3.0,
                fixed: 30.0,
                max: 15.0,
                half: 20.0,
            }
        }
    }
}

/// The fixed rate of issue #3 (Istio's benchmark point).
pub const FIXED_RPS: f64 = 1000.0;
/// Connections for the fixed-rate runs.
pub const CONNECTIONS: usize = 16;

struct Running {
    def: CellDef,
    /// Name, protocol and the notes that hold for every run.
    base: CellResult,
    /// One result per round: pass 1 creates it, pass 2 adds `half_max`.
    runs: Vec<CellResult>,
    procs: Vec<Managed>,
    /// Did not start, or broke during a run: skipped from then on.
    dead: bool,
}

impl Running {
    fn pids(&self) -> Vec<u32> {
        self.procs.iter().flat_map(Managed::tree).collect()
    }

    /// Stops the cell's processes; it is not measured again.
    fn stop(&mut self) {
        self.procs.clear();
        self.dead = true;
    }
}

/// Runs the benchmark and returns (and writes) the results.
pub async fn run(opts: &RunnerOptions) -> anyhow::Result<Results> {
    std::fs::create_dir_all(opts.out.join("logs"))?;
    // nginx resolves relative paths against its prefix: give every tool absolute paths.
    let out = &std::fs::canonicalize(&opts.out)?;
    let logs = out.join("logs");
    let timing = Timing::of(opts.quick);
    let ticks = procfs::clock_ticks();
    let bench_load = opts.bin_dir.join("bench-load");
    let use_wrk = available("wrk");
    let mut machine = docs::machine_description();
    // Held to the end of the run: dropping it gives the threads their CPUs back.
    let kdamond = if opts.move_kdamond {
        crate::kthreads::move_kdamond(0)
    } else {
        crate::kthreads::Moved::default()
    };
    machine.extend(kdamond.notes.iter().cloned());
    if !opts.move_kdamond {
        machine.extend(crate::kthreads::describe_kdamond());
    }
    for tool in ["nginx", "haproxy", "taskset", "openssl"] {
        anyhow::ensure!(
            available(tool),
            "{tool} is not installed; run bench/run, which installs it"
        );
    }

    let backend_addr = SocketAddr::from(([127, 0, 0, 1], opts.port_base + 80));
    anyhow::ensure!(
        !accepts(backend_addr),
        "something already listens on {backend_addr}; stop it or pass --port-base"
    );
    let mut backend = Managed::spawn(
        "bench-backend",
        0,
        &opts.bin_dir.join("bench-backend"),
        &["--address".into(), backend_addr.to_string()],
        &[],
        &logs.join("backend.log"),
        false,
    )?;
    backend.wait_ready(Duration::from_secs(10), "accepting", || accepts(backend_addr))?;

    let layout = Layout {
        out,
        port_base: opts.port_base,
        backend: backend_addr,
    };
    let defs: Vec<CellDef> = cells::define(&layout)?
        .into_iter()
        .filter(|d| opts.only.is_empty() || opts.only.contains(&d.name))
        .collect();
    let (strait, strait_prefix) = cells::proxy_program(&opts.strait, opts.lean_proxy);
    let programs = Programs {
        strait_args: docs::strait_access_log_args(&strait, &strait_prefix),
        strait,
        strait_prefix,
        logs: logs.clone(),
    };
    let mut cells: Vec<Running> = Vec::new();
    for def in defs {
        let mut base = CellResult::empty(&def.name, def.hops, if def.http2 { "h2" } else { "http1" });
        base.add_note(&def.note);
        if def.is_strait() && programs.strait.exists() {
            base.add_note(if programs.strait_args.is_empty() {
                "Strait's access log is ON (this build has no --no-access-log; lines go to /dev/null)"
            } else {
                "access log off (--no-access-log), like nginx and HAProxy"
            });
            base.add_note(if programs.strait_prefix.is_empty() {
                "proxy binary: strait-proxy (proxy only)"
            } else {
                "proxy binary: strait proxy (the all-in-one CLI)"
            });
        }
        eprintln!("[bench] starting {}", def.name);
        let procs = match cells::start(&def, &programs) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("[bench] {}: {e}", def.name);
                base.add_note(&e);
                Vec::new()
            }
        };
        let dead = procs.is_empty() && !def.procs.is_empty();
        cells.push(Running {
            def,
            base,
            runs: Vec::new(),
            procs,
            dead,
        });
    }

    // §7.1: every pass runs `repeat` rounds, each in a fresh random order (drawn up front from
    // the seed, so `--seed` reproduces it even when a cell drops out).
    let rounds = opts.repeat.max(1) as usize;
    let all_orders = repeat::orders(opts.seed, 2 * rounds, cells.len());
    let (first, second) = all_orders.split_at(rounds);
    eprintln!(
        "[bench] {rounds} round(s) per pass, cell order seed {}",
        opts.seed
    );
    let ctx = Ctx {
        bench_load: &bench_load,
        timing: &timing,
        ticks,
        use_wrk,
    };
    let mut order_lines = Vec::new();

    // Pass 1: idle RSS, smoke request, 1,000 rps, maximum.
    for (round, order) in first.iter().enumerate() {
        let line = order_line(1, round, rounds, order, &cells);
        eprintln!("[bench] {line}");
        order_lines.push(line);
        for &i in order {
            let Some(cell) = cells.get_mut(i).filter(|c| !c.dead) else {
                continue;
            };
            let run = pass_one(cell, &ctx).await;
            cell.runs.push(run);
        }
    }

    // Pass 2: 50% of the weakest candidate's maximum, the median over the pass-1 rounds.
    let weakest = cells
        .iter()
        .filter(|c| c.def.hops > 0 && !c.dead)
        .filter_map(|c| {
            let measured = c.runs.iter().filter(|r| r.status != CellStatus::Failed);
            repeat::median(&measured.filter_map(|r| r.max_rps).collect::<Vec<_>>())
        })
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
    let half = weakest.map(|w| (w * 0.5).floor());
    if let Some(rate) = half {
        for (round, order) in second.iter().enumerate() {
            let line = order_line(2, round, rounds, order, &cells);
            eprintln!("[bench] {line}");
            order_lines.push(line);
            for &i in order {
                let Some(cell) = cells.get_mut(i).filter(|c| !c.dead) else {
                    continue;
                };
                pass_two(cell, round, rate, &ctx).await;
            }
        }
    }
    let cell_results: Vec<CellResult> = cells
        .iter()
        .map(|c| repeat::aggregate(&c.base, &c.runs))
        .collect();
    // A cell's runs are its rounds in order (a cell that died runs in no later round).
    let by_round: Vec<Vec<CellResult>> = (0..rounds)
        .map(|r| cells.iter().filter_map(|c| c.runs.get(r).cloned()).collect())
        .collect();
    let paired = paired::pair(&by_round);
    drop(cells);
    drop(backend);

    let control_plane = if opts.control_plane {
        eprintln!("[bench] control-plane benchmark");
        match control_plane(opts, &logs).await {
            Ok(cp) => Some(cp),
            Err(e) => {
                eprintln!("[bench] control-plane benchmark failed: {e}");
                Some(ControlPlaneResult {
                    note: format!("FAILED: {e}"),
                    ..ControlPlaneResult::default()
                })
            }
        }
    } else {
        None
    };

    let mut results = Results {
        mode: if opts.quick { "quick" } else { "full" }.into(),
        command: opts.command.clone(),
        finished_at: docs::now_utc(),
        machine,
        fixed_rps: FIXED_RPS,
        half_max_rps: half,
        cells: cell_results,
        control_plane,
        goals: Vec::new(),
        repeat: Some(rounds as u32),
        seed: Some(opts.seed),
        order: order_lines,
        paired,
    };
    results.evaluate_goals();
    write_outputs(&results, out, opts.docs.as_deref())?;
    Ok(results)
}

/// What every measurement of a run needs.
struct Ctx<'a> {
    bench_load: &'a Path,
    timing: &'a Timing,
    ticks: f64,
    use_wrk: bool,
}

/// `pass 1, round 2/3: strait, direct, nginx` (the cells still running, in the order they run).
fn order_line(pass: u32, round: usize, rounds: usize, order: &[usize], cells: &[Running]) -> String {
    let names: Vec<&str> = order
        .iter()
        .filter_map(|&i| cells.get(i))
        .filter(|c| !c.dead)
        .map(|c| c.def.name.as_str())
        .collect();
    format!("pass {pass}, round {}/{rounds}: {}", round + 1, names.join(", "))
}

/// One pass-1 run of a cell: idle RSS, smoke request, 1,000 rps, maximum. A cell that breaks is
/// stopped and skipped from then on.
async fn pass_one(cell: &mut Running, ctx: &Ctx<'_>) -> CellResult {
    let mut run = CellResult::empty(&cell.def.name, cell.def.hops, &cell.base.protocol);
    eprintln!(
        "[bench] {}: {FIXED_RPS} rps for {} s, then max for {} s",
        cell.def.name, ctx.timing.fixed, ctx.timing.max
    );
    let pids = cell.pids();
    if !pids.is_empty() {
        run.rss_idle_kb = procfs::memory(&pids).ok().map(|m| m.rss_kb);
    }
    if let Err(e) = smoke(&cell.def).await {
        let prefix = if cell.def.is_strait() {
            "strait proxy not ready: "
        } else {
            ""
        };
        cell.stop();
        run.add_note(&format!("{prefix}a test request failed: {e}"));
        return run;
    }
    let load = Load {
        bench_load: ctx.bench_load,
        target: cell.def.target,
        host: &cell.def.host,
        http2: cell.def.http2,
        connections: CONNECTIONS,
        rate: FIXED_RPS,
        warmup: ctx.timing.warmup,
        duration: ctx.timing.fixed,
    };
    match measure::fixed(&load, &pids, ctx.ticks).await {
        Ok((point, usage, report)) => {
            run.set_fixed(&point);
            run.rss_load_kb = usage.rss_max_kb;
            if let Some(e) = report.first_error {
                run.add_note(&format!("first error at 1,000 rps: {e}"));
            }
        }
        Err(e) => {
            cell.stop();
            run.add_note(&format!("the 1,000 rps run failed: {e}"));
            return run;
        }
    }
    let max_load = Load {
        duration: ctx.timing.max,
        ..load
    };
    match measure::max(&max_load, ctx.use_wrk, &pids, ctx.ticks).await {
        Ok((rps, cpu, usage, errors)) => {
            run.max_rps = Some(rps);
            run.cpu_s_per_10k_max = cpu;
            run.rss_load_kb = run.rss_load_kb.max(usage.rss_max_kb);
            if errors > 0 {
                run.add_note(&format!("{errors} errors in the maximum-throughput run"));
            }
        }
        Err(e) => run.add_note(&format!("maximum-throughput run failed: {e}")),
    }
    run
}

/// One pass-2 run of a cell at `rate`, stored in the run of the same round.
async fn pass_two(cell: &mut Running, round: usize, rate: f64, ctx: &Ctx<'_>) {
    eprintln!(
        "[bench] {}: {rate} rps (50% of the weakest maximum) for {} s",
        cell.def.name, ctx.timing.half
    );
    let pids = cell.pids();
    let load = Load {
        bench_load: ctx.bench_load,
        target: cell.def.target,
        host: &cell.def.host,
        http2: cell.def.http2,
        connections: CONNECTIONS,
        rate,
        warmup: ctx.timing.warmup,
        duration: ctx.timing.half,
    };
    let outcome = measure::fixed(&load, &pids, ctx.ticks).await;
    let Some(run) = cell.runs.get_mut(round) else {
        return;
    };
    match outcome {
        Ok((point, usage, _)) => {
            run.half_max = Some(point);
            run.rss_load_kb = run.rss_load_kb.max(usage.rss_max_kb);
        }
        Err(e) => run.add_note(&format!("the 50%-of-max run failed: {e}")),
    }
}

/// A few requests through the cell before measuring, so a broken cell fails with a reason.
async fn smoke(def: &CellDef) -> Result<(), String> {
    let spec = LoadSpec {
        addr: def.target,
        host: def.host.clone(),
        path: "/".into(),
        connections: 1,
        rate: 50.0,
        duration: Duration::from_millis(300),
        warmup: Duration::ZERO,
        http2: def.http2,
        timeout: Duration::from_secs(2),
    };
    let r = loadgen::run(&spec).await.map_err(|e| e.to_string())?;
    match (r.errors, r.first_error) {
        (0, _) if r.requests > 0 => Ok(()),
        (_, Some(e)) => Err(e),
        _ => Err("no response".into()),
    }
}

async fn control_plane(opts: &RunnerOptions, logs: &Path) -> anyhow::Result<ControlPlaneResult> {
    let json = opts.out.join("control_plane.json");
    let _ = std::fs::remove_file(&json);
    // The runner is pinned to CPU 0; the control plane gets every online CPU, as it would in
    // production (it is not part of the 2-core data-plane protocol).
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
    let mut cmd = tokio::process::Command::new("taskset");
    cmd.arg("-c")
        .arg(online.trim())
        .arg(opts.bin_dir.join("bench-control-plane"));
    cmd.arg("--out").arg(&json);
    if opts.quick {
        cmd.arg("--quick");
    }
    let log = std::fs::File::create(logs.join("control-plane.log"))?;
    let status = cmd
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "bench-control-plane exited with {status}; see {}/control-plane.log",
        logs.display()
    );
    Ok(serde_json::from_str(&std::fs::read_to_string(&json)?)?)
}

/// Re-renders `results.md`, `chart.svg` (and the docs section) from a saved `results.json`,
/// re-evaluating the goals: for a changed report format without measuring again.
pub fn render_from(json: &Path, out: &Path, docs_path: Option<&Path>) -> anyhow::Result<Results> {
    let text =
        std::fs::read_to_string(json).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", json.display()))?;
    let mut results: Results = serde_json::from_str(&text)?;
    results.evaluate_goals();
    write_outputs(&results, out, docs_path)?;
    Ok(results)
}

fn write_outputs(results: &Results, out: &Path, docs_path: Option<&Path>) -> anyhow::Result<()> {
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(results)?)?;
    let md = report::markdown(results);
    std::fs::write(out.join("results.md"), &md)?;
    let svg = chart::svg(results);
    if let Some(svg) = &svg {
        std::fs::write(out.join("chart.svg"), svg)?;
    }
    if let Some(path) = docs_path {
        docs::update(path, results, &md, svg.as_deref())?;
    }
    Ok(())
}
