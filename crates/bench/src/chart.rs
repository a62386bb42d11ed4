//! A dependency-free SVG chart for `docs/benchmarks.md`: added latency (p50 and p99 at the
//! fixed rate) and maximum throughput, one bar group per candidate.

use std::fmt::Write;

use crate::results::Results;

const WIDTH: f64 = 900.0;
const LABEL: f64 = 130.0;
const ROW: f64 = 22.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One horizontal bar chart panel; returns the panel height.
fn panel(o: &mut String, top: f64, title: &str, rows: &[(String, Vec<(f64, &str)>)], unit: &str) -> f64 {
    let max = rows
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|(v, _)| *v))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let scale = (WIDTH - LABEL - 90.0) / max;
    let _ = writeln!(
        o,
        r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
        top + 16.0,
        escape(title)
    );
    let mut y = top + 28.0;
    for (name, bars) in rows {
        let group_h = ROW * bars.len() as f64;
        let _ = writeln!(
            o,
            r#"<text x="10" y="{:.0}">{}</text>"#,
            y + group_h / 2.0 + 4.0,
            escape(name)
        );
        for (value, color) in bars {
            let w = (value.max(0.0) * scale).max(1.0);
            let _ = writeln!(
                o,
                r#"<rect x="{LABEL}" y="{:.0}" width="{w:.1}" height="{:.0}" fill="{color}"/><text x="{:.1}" y="{:.0}">{value:.0} {unit}</text>"#,
                y + 2.0,
                ROW - 4.0,
                LABEL + w + 5.0,
                y + ROW - 6.0
            );
            y += ROW;
        }
        y += 6.0;
    }
    y - top
}

/// The chart, or `None` when no cell has figures.
pub fn svg(r: &Results) -> Option<String> {
    let latency: Vec<(String, Vec<(f64, &str)>)> = r
        .cells
        .iter()
        .filter(|c| c.hops > 0)
        .filter_map(|c| {
            let p50 = r.added(&c.name, |c| c.p50_us)?;
            let p99 = r.added(&c.name, |c| c.p99_us)?;
            Some((c.name.clone(), vec![(p50, "#4e79a7"), (p99, "#f28e2b")]))
        })
        .collect();
    let throughput: Vec<(String, Vec<(f64, &str)>)> = r
        .cells
        .iter()
        .filter_map(|c| Some((c.name.clone(), vec![(c.max_rps?, "#59a14f")])))
        .collect();
    if latency.is_empty() && throughput.is_empty() {
        return None;
    }
    let mut body = String::new();
    let h1 = panel(
        &mut body,
        0.0,
        &format!(
            "Added latency at {:.0} rps vs direct (blue p50, orange p99)",
            r.fixed_rps
        ),
        &latency,
        "µs",
    );
    let h2 = panel(
        &mut body,
        h1 + 10.0,
        "Maximum throughput, proxy pinned to one core (64 connections)",
        &throughput,
        "rps",
    );
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n",
        h1 + h2 + 20.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CellResult, RatePoint};

    #[test]
    fn chart_has_a_bar_per_candidate_and_escapes_names() {
        let mut r = Results {
            fixed_rps: 1000.0,
            ..Results::default()
        };
        for (name, hops, p50) in [("direct", 0, 80.0), ("nginx<1>", 1, 200.0)] {
            let mut c = CellResult::empty(name, hops, "http1");
            c.set_fixed(&RatePoint {
                p50_us: p50,
                p99_us: p50 * 3.0,
                rate_rps: 1000.0,
                target_rps: 1000.0,
                valid: true,
                ..RatePoint::default()
            });
            c.max_rps = Some(30000.0);
            r.cells.push(c);
        }
        let out = svg(&r).unwrap();
        assert!(out.starts_with("<svg"));
        assert!(out.contains("nginx&lt;1&gt;"));
        assert!(out.contains("120 µs"), "{out}");
        assert_eq!(out.matches("<rect").count(), 1 + 2 + 2);
        assert!(svg(&Results::default()).is_none());
    }
}
