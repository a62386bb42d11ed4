//! Markdown rendering of [`Results`]: what `bench/run` prints and what `docs/benchmarks.md`
//! embeds.

use std::fmt::Write;

use crate::results::{CellStatus, Results, Spread};

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "–".into())
}

/// `123 (118–130)`: a median with the min–max of its runs, when there were several.
fn ranged(v: Option<f64>, range: Option<(f64, f64)>, digits: usize) -> String {
    match (v, range) {
        (Some(v), Some((lo, hi))) => format!("{v:.digits$} ({lo:.digits$}–{hi:.digits$})"),
        _ => num(v, digits),
    }
}

fn mb(v: Option<u64>) -> String {
    v.map(|kb| format!("{:.1}", kb as f64 / 1024.0))
        .unwrap_or_else(|| "–".into())
}

fn status(s: CellStatus) -> &'static str {
    match s {
        CellStatus::Valid => "valid",
        CellStatus::Invalid => "**INVALID**",
        CellStatus::Failed => "**FAILED**",
    }
}

/// The cells table, the 50%-of-max table, the goals and the control-plane figures.
pub fn markdown(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Latency at {:.0} rps, 16 connections, 1 KB responses (µs, coordinated-omission corrected); \
         added = cell − direct of the same protocol. CPU = proxy CPU-seconds per 10,000 requests. \
         RSS in MB, all processes of the cell.\n",
        r.fixed_rps
    );
    if let Some(n) = r.repeat.filter(|n| *n > 1) {
        let seed = r.seed.map(|s| format!(", order seed {s}")).unwrap_or_default();
        let _ = writeln!(
            o,
            "Each figure is the median of {n} runs per cell, cells in a fresh random order every round \
             (min–max of the runs in brackets; errors summed; RSS load = highest; RSS idle = before any \
             load){seed}.\n"
        );
    }
    let _ = writeln!(
        o,
        "| cell | hops | proto | p50 | p90 | p99 | p99.9 | added p50 / p99 | rate | errors | max rps | \
         CPU @1k | CPU @max | RSS idle | RSS load | status |"
    );
    let _ = writeln!(
        o,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &r.cells {
        let s = c.spread.clone().unwrap_or_default();
        let added = match (r.added(&c.name, |c| c.p50_us), r.added(&c.name, |c| c.p99_us)) {
            (Some(a), Some(b)) if c.hops > 0 => format!("{a:+.0} / {b:+.0}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            c.hops,
            c.protocol,
            ranged(c.p50_us, s.p50_us, 0),
            ranged(c.p90_us, s.p90_us, 0),
            ranged(c.p99_us, s.p99_us, 0),
            ranged(c.p999_us, s.p999_us, 0),
            added,
            num(c.rate_rps, 0),
            c.errors.map(|e| e.to_string()).unwrap_or_else(|| "–".into()),
            ranged(c.max_rps, s.max_rps, 0),
            ranged(c.cpu_s_per_10k, s.cpu_s_per_10k, 3),
            ranged(c.cpu_s_per_10k_max, s.cpu_s_per_10k_max, 3),
            mb(c.rss_idle_kb),
            mb(c.rss_load_kb),
            status(c.status),
        );
    }
    let notes: Vec<String> = r
        .cells
        .iter()
        .filter(|c| !c.note.is_empty())
        .map(|c| format!("- `{}`: {}", c.name, c.note))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(o, "\n{}", notes.join("\n"));
    }
    if r.repeat.is_some_and(|n| n > 1) && !r.order.is_empty() {
        let _ = writeln!(
            o,
            "\nOrder:\n\n{}",
            r.order
                .iter()
                .map(|l| format!("- {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    if let Some(rate) = r.half_max_rps {
        let _ = writeln!(
            o,
            "\nLatency at 50% of the weakest candidate's maximum ({rate:.0} rps, 16 connections):\n"
        );
        let _ = writeln!(
            o,
            "| cell | p50 | p90 | p99 | p99.9 | rate | errors | CPU | valid |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
        for c in &r.cells {
            let Some(h) = &c.half_max else { continue };
            let s: Spread = h.spread.clone().unwrap_or_default();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                c.name,
                ranged(Some(h.p50_us), s.p50_us, 0),
                ranged(Some(h.p90_us), s.p90_us, 0),
                ranged(Some(h.p99_us), s.p99_us, 0),
                ranged(Some(h.p999_us), s.p999_us, 0),
                h.rate_rps,
                h.errors,
                ranged(h.cpu_s_per_10k, s.cpu_s_per_10k, 3),
                if h.valid { "yes" } else { "**no**" }
            );
        }
    }
    if let Some(cp) = &r.control_plane {
        let _ = writeln!(
            o,
            "\nControl plane: {} services, {} workloads, {} VirtualServices, {} DestinationRules; {} proxies.\n",
            cp.services, cp.workloads, cp.virtual_services, cp.destination_rules, cp.proxies
        );
        let _ = writeln!(o, "| figure | value |");
        let _ = writeln!(o, "|---|---|");
        let rounds: Vec<String> = cp
            .apply_to_all_acked_ms
            .iter()
            .map(|v| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "timeout".into()))
            .collect();
        for (k, v) in [
            ("parse YAML (ms)", format!("{:.1}", cp.parse_ms)),
            (
                "compile one sidecar (ms, p50 / max)",
                format!(
                    "{:.1} / {:.1} over {} runs",
                    cp.compile_ms_p50, cp.compile_ms_max, cp.compile_iterations
                ),
            ),
            (
                "one sidecar's config (JSON bytes)",
                cp.config_json_bytes.to_string(),
            ),
            (
                "initial apply of the whole mesh (ms)",
                format!("{:.1}", cp.initial_apply_ms),
            ),
            (
                "connect → all proxies acked first config (ms)",
                num(cp.connect_all_acked_ms, 1),
            ),
            ("apply → all proxies acked, per round (ms)", rounds.join(", ")),
            (
                "of which: REST apply returned / first proxy acked, per round (ms)",
                cp.apply_returned_ms
                    .iter()
                    .zip(&cp.apply_to_first_acked_ms)
                    .map(|(r, f)| format!("{r:.1} / {}", num(*f, 1)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "apply → all acked, p99 of rounds (ms)",
                num(cp.apply_to_all_acked_p99_ms, 1),
            ),
            (
                "apply → one proxy acked, p50 / p99 (ms)",
                format!(
                    "{} / {}",
                    num(cp.per_proxy_ack_p50_ms, 1),
                    num(cp.per_proxy_ack_p99_ms, 1)
                ),
            ),
            (
                "control-plane RSS, now / peak (MB)",
                format!(
                    "{:.1} / {:.1}",
                    cp.rss_kb as f64 / 1024.0,
                    cp.rss_peak_kb as f64 / 1024.0
                ),
            ),
        ] {
            let _ = writeln!(o, "| {k} | {v} |");
        }
        if !cp.note.is_empty() {
            let _ = writeln!(o, "\n{}", cp.note);
        }
    }
    if !r.goals.is_empty() {
        let _ = writeln!(o, "\nGoals (issue #3):\n");
        let _ = writeln!(
            o,
            "| goal | value | bound | ratio | met | met in rounds | ratio per round: median (min–max) |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for g in &r.goals {
            let met = match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "unknown",
            };
            // Each round's cells against each other (crate::paired): how robust the ratio is.
            let (rounds, per_round) = match r.paired.iter().find(|p| p.goal == g.goal) {
                Some(p) => {
                    let (met, of) = p.met();
                    let (median, range) = p.median();
                    (format!("{met}/{of}"), ranged(median, range, 2))
                }
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                g.goal,
                num(g.value, 3),
                num(g.target, 3),
                num(g.ratio, 2),
                met,
                rounds,
                per_round
            );
        }
        if !r.paired.is_empty() {
            let _ = writeln!(
                o,
                "\n\"Met in rounds\" evaluates each goal on the cells of one round alone (cells of a round \
                 run minutes apart, rounds further apart): k of n rounds met, and the median and range of \
                 the per-round ratios. The other columns divide medians over all rounds."
            );
        }
    }
    o
}
