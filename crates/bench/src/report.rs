//! Markdown rendering of [`Results`]: what `bench/run` prints and what `docs/benchmarks.md`
//! embeds.

use std::fmt::Write;

use crate::results::{CellStatus, Results};

fn us(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "–".into())
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "–".into())
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
            us(c.p50_us),
            us(c.p90_us),
            us(c.p99_us),
            us(c.p999_us),
            added,
            num(c.rate_rps, 0),
            c.errors.map(|e| e.to_string()).unwrap_or_else(|| "–".into()),
            num(c.max_rps, 0),
            num(c.cpu_s_per_10k, 3),
            num(c.cpu_s_per_10k_max, 3),
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
            let _ = writeln!(
                o,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
                c.name,
                h.p50_us,
                h.p90_us,
                h.p99_us,
                h.p999_us,
                h.rate_rps,
                h.errors,
                num(h.cpu_s_per_10k, 3),
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
        let _ = writeln!(o, "| goal | value | bound | ratio | met |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for g in &r.goals {
            let met = match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "unknown",
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                g.goal,
                num(g.value, 3),
                num(g.target, 3),
                num(g.ratio, 2),
                met
            );
        }
    }
    o
}
