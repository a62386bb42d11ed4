//! `bench-runner [--quick]`: the side-by-side benchmark (called by `bench/run`).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Parser;
use strait_bench::runner::{RunnerOptions, render_from, run};

/// Arguments.
#[derive(Parser)]
#[command(about = "Measures direct, nginx, haproxy and strait cells side by side (see docs/benchmarks.md)")]
struct Args {
    /// Short runs (about 3 minutes in all).
    #[arg(long)]
    quick: bool,
    /// Output directory.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Directory with bench-backend, bench-load, bench-control-plane.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The strait binary; the `strait-proxy` beside it runs the proxies when it is not older
    /// (or pass the `strait-proxy` path itself).
    #[arg(long, default_value = "target/release/strait")]
    strait: PathBuf,
    /// Run `strait proxy` even when `strait-proxy` sits beside `strait` (to compare the two).
    #[arg(long)]
    no_lean_proxy: bool,
    /// Keep the kernel's DAMON sampler (`kdamond`) on the load core (CPU 0) for the run, so it
    /// cannot preempt the proxies; its CPUs are given back at the end.
    #[arg(long)]
    move_kdamond: bool,
    /// Only these cells (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip the control-plane benchmark.
    #[arg(long)]
    no_control_plane: bool,
    /// Rewrite the results section of docs/benchmarks.md (and bench/results/).
    #[arg(long)]
    update_docs: bool,
    /// First port of the range used on 127.0.0.1.
    #[arg(long, default_value_t = 18000)]
    port_base: u16,
    /// Do not measure: re-render the report (and docs with --update-docs) from this results.json.
    #[arg(long)]
    render_from: Option<PathBuf>,
    /// Runs per cell: each pass runs this many rounds, every round in a fresh random cell order,
    /// and each figure is the median of the runs (min–max beside it) [default: 1 with --quick,
    /// 3 otherwise].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    repeat: Option<u32>,
    /// Seed of the cell-order shuffles (printed and recorded in results.json; pass it again to
    /// reproduce an order) [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// The command to print in the report (bench/run passes its own).
    #[arg(long, default_value = "")]
    command: String,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let command = if a.command.is_empty() {
        std::env::args().collect::<Vec<_>>().join(" ")
    } else {
        a.command
    };
    let opts = RunnerOptions {
        quick: a.quick,
        out: a.out,
        bin_dir: a.bin_dir,
        strait: a.strait,
        lean_proxy: !a.no_lean_proxy,
        move_kdamond: a.move_kdamond,
        only: a.only,
        control_plane: !a.no_control_plane,
        docs: a.update_docs.then(|| PathBuf::from("docs/benchmarks.md")),
        port_base: a.port_base,
        command,
        repeat: a.repeat.unwrap_or(if a.quick { 1 } else { 3 }),
        seed: a.seed.unwrap_or_else(rand::random),
    };
    if let Some(json) = &a.render_from {
        std::fs::create_dir_all(&opts.out)?;
        let results = render_from(json, &opts.out, opts.docs.as_deref())?;
        println!("{}", strait_bench::report::markdown(&results));
        return Ok(());
    }
    // One thread: the runner is pinned to CPU 0 with the load generator and mostly waits.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(run(&opts))?;
    println!("{}", strait_bench::report::markdown(&results));
    println!(
        "Written: {0}/results.json, {0}/results.md, {0}/chart.svg",
        opts.out.display()
    );
    Ok(())
}
