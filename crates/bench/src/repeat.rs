//! Repeated runs. performance.md §7.1: "Repeat each cell ≥3 times, randomize order, report median
//! of runs and min–max". One run of a cell is noisy on a shared 2-core box (another engineer's
//! build, a cache warmed by the previous cell), and a fixed order charges any drift over the run
//! to the same cells every time; a fresh shuffle per round spreads it. This module holds the pure
//! parts: the per-round orders and the reduction of a cell's runs to medians and ranges.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::results::{CellResult, CellStatus, RatePoint, Spread};

/// `count` orders of the cells `0..n`, each a fresh shuffle drawn from one generator seeded with
/// `seed`: the same seed gives the same orders, so a run's order can be reproduced with `--seed`.
pub fn orders(seed: u64, count: usize, n: usize) -> Vec<Vec<usize>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            order
        })
        .collect()
}

/// Median of the values (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

/// `(min, max)` of the values; `None` when empty.
pub fn range(values: &[f64]) -> Option<(f64, f64)> {
    let first = *values.first()?;
    Some(
        values
            .iter()
            .fold((first, first), |(lo, hi), v| (lo.min(*v), hi.max(*v))),
    )
}

/// The values `f` gives for the items that have one.
fn column<T>(items: &[&T], f: impl Fn(&T) -> Option<f64>) -> Vec<f64> {
    items.iter().filter_map(|i| f(i)).collect()
}

/// Median and, when there are several values, the range.
fn median_range(values: &[f64]) -> (Option<f64>, Option<(f64, f64)>) {
    (median(values), range(values).filter(|_| values.len() > 1))
}

/// Sum of the values present; `None` when none is.
fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.fold(None, |acc, v| match (acc, v) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    })
}

/// The label that prefixes a run's notes: `run 2/3` (nothing when there was one run, so a
/// single-run report reads as it did before repeats).
fn label(i: usize, total: usize, what: &str) -> String {
    match (total > 1, what.is_empty()) {
        (true, true) => format!("run {}/{total}: ", i + 1),
        (true, false) => format!("run {}/{total} {what}: ", i + 1),
        (false, true) => String::new(),
        (false, false) => format!("{what}: "),
    }
}

/// Reduces the 50%-of-max points of several runs: medians, errors summed, valid only when every
/// run (`expected` of them) gave a valid point.
fn aggregate_points(points: &[&RatePoint], expected: usize) -> Option<RatePoint> {
    let first = points.first()?;
    let (p50, p50_r) = median_range(&column(points, |p| Some(p.p50_us)));
    let (p90, p90_r) = median_range(&column(points, |p| Some(p.p90_us)));
    let (p99, p99_r) = median_range(&column(points, |p| Some(p.p99_us)));
    let (p999, p999_r) = median_range(&column(points, |p| Some(p.p999_us)));
    let (cpu, cpu_r) = median_range(&column(points, |p| p.cpu_s_per_10k));
    Some(RatePoint {
        target_rps: first.target_rps,
        rate_rps: median(&column(points, |p| Some(p.rate_rps))).unwrap_or(0.0),
        errors: points.iter().map(|p| p.errors).sum(),
        p50_us: p50.unwrap_or(0.0),
        p90_us: p90.unwrap_or(0.0),
        p99_us: p99.unwrap_or(0.0),
        p999_us: p999.unwrap_or(0.0),
        cpu_s_per_10k: cpu,
        valid: points.len() == expected && points.iter().all(|p| p.valid),
        spread: (points.len() > 1).then_some(Spread {
            p50_us: p50_r,
            p90_us: p90_r,
            p99_us: p99_r,
            p999_us: p999_r,
            cpu_s_per_10k: cpu_r,
            ..Spread::default()
        }),
    })
}

/// One cell's figures from its runs (one [`CellResult`] per round, notes of that round only):
/// every figure is the median over the runs that measured, errors are summed, the load RSS is
/// the highest seen, the idle RSS is the first run's (the only one taken before any load), and
/// latency, CPU and maximum carry their min–max in `spread`. A cell that failed or went invalid
/// in any run is invalid, with the reason in its note; one that never measured is failed.
/// `base` holds the name, protocol and the notes that do not depend on a run.
pub fn aggregate(base: &CellResult, runs: &[CellResult]) -> CellResult {
    let mut out = base.clone();
    let total = runs.len();
    for (i, run) in runs.iter().enumerate() {
        match run.status {
            // One run: the cell shows as failed, and its note reads as it did before repeats.
            CellStatus::Failed if total == 1 => out.add_note(&run.note),
            CellStatus::Failed => out.add_note(&format!("{}{}", label(i, total, "failed"), run.note)),
            CellStatus::Invalid => {
                let why = format!(
                    "{}{} rps achieved, {} errors",
                    label(i, total, "invalid"),
                    run.rate_rps.map_or("no".into(), |r| format!("{r:.0}")),
                    run.errors.unwrap_or(0)
                );
                out.add_note(&why);
                for note in run.note.split("; ").filter(|n| !n.is_empty()) {
                    out.add_note(&format!("{}{note}", label(i, total, "")));
                }
            }
            CellStatus::Valid => {
                for note in run.note.split("; ").filter(|n| !n.is_empty()) {
                    out.add_note(&format!("{}{note}", label(i, total, "")));
                }
            }
        }
    }
    let measured: Vec<&CellResult> = runs.iter().filter(|r| r.status != CellStatus::Failed).collect();
    out.rss_idle_kb = runs.first().and_then(|r| r.rss_idle_kb);
    if measured.is_empty() {
        out.status = CellStatus::Failed;
        return out;
    }
    out.status = if measured.len() == total && measured.iter().all(|r| r.status == CellStatus::Valid) {
        CellStatus::Valid
    } else {
        CellStatus::Invalid
    };
    let (p50, p50_r) = median_range(&column(&measured, |r| r.p50_us));
    let (p90, p90_r) = median_range(&column(&measured, |r| r.p90_us));
    let (p99, p99_r) = median_range(&column(&measured, |r| r.p99_us));
    let (p999, p999_r) = median_range(&column(&measured, |r| r.p999_us));
    let (max, max_r) = median_range(&column(&measured, |r| r.max_rps));
    let (cpu, cpu_r) = median_range(&column(&measured, |r| r.cpu_s_per_10k));
    let (cpu_max, cpu_max_r) = median_range(&column(&measured, |r| r.cpu_s_per_10k_max));
    out.p50_us = p50;
    out.p90_us = p90;
    out.p99_us = p99;
    out.p999_us = p999;
    out.rate_rps = median(&column(&measured, |r| r.rate_rps));
    out.errors = sum(measured.iter().map(|r| r.errors));
    out.max_rps = max;
    out.cpu_s_per_10k = cpu;
    out.cpu_s_per_10k_max = cpu_max;
    out.rss_load_kb = measured.iter().filter_map(|r| r.rss_load_kb).max();
    let halves: Vec<&RatePoint> = measured.iter().filter_map(|r| r.half_max.as_ref()).collect();
    out.half_max = aggregate_points(&halves, measured.len());
    out.runs = Some(measured.len() as u32);
    out.spread = (measured.len() > 1).then_some(Spread {
        p50_us: p50_r,
        p90_us: p90_r,
        p99_us: p99_r,
        p999_us: p999_r,
        max_rps: max_r,
        cpu_s_per_10k: cpu_r,
        cpu_s_per_10k_max: cpu_max_r,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn point(p50: f64, cpu: f64, valid: bool) -> RatePoint {
        RatePoint {
            target_rps: 1000.0,
            rate_rps: if valid { 1000.0 } else { 900.0 },
            errors: 0,
            p50_us: p50,
            p90_us: p50 * 2.0,
            p99_us: p50 * 4.0,
            p999_us: p50 * 8.0,
            cpu_s_per_10k: Some(cpu),
            valid,
            spread: None,
        }
    }

    fn run(p50: f64, cpu: f64, max: f64, rss: u64) -> CellResult {
        let mut c = CellResult::empty("strait", 1, "http1");
        c.set_fixed(&point(p50, cpu, true));
        c.max_rps = Some(max);
        c.cpu_s_per_10k_max = Some(cpu / 2.0);
        c.rss_idle_kb = Some(rss);
        c.rss_load_kb = Some(rss * 2);
        c.half_max = Some(point(p50 / 2.0, cpu, true));
        c
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(range(&[3.0, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(range(&[]), None);
    }

    #[test]
    fn aggregate_takes_medians_ranges_sums_and_max_rss() {
        let base = CellResult::empty("strait", 1, "http1");
        let mut runs = vec![
            run(120.0, 0.30, 20_000.0, 4000),
            run(100.0, 0.50, 22_000.0, 4100),
            run(130.0, 0.40, 21_000.0, 3900),
        ];
        runs[1].errors = Some(0);
        runs[2].add_note("first error at 1,000 rps: reset");
        let c = aggregate(&base, &runs);
        assert_eq!(c.status, CellStatus::Valid);
        assert_eq!(c.runs, Some(3));
        assert_eq!(c.p50_us, Some(120.0));
        assert_eq!(c.p99_us, Some(480.0));
        assert_eq!(c.max_rps, Some(21_000.0));
        assert_eq!(c.cpu_s_per_10k, Some(0.40));
        assert_eq!(c.cpu_s_per_10k_max, Some(0.20));
        assert_eq!(c.errors, Some(0));
        assert_eq!(c.rss_idle_kb, Some(4000), "the idle RSS is the first run's");
        assert_eq!(c.rss_load_kb, Some(8200));
        let s = c.spread.as_ref().unwrap();
        assert_eq!(s.p50_us, Some((100.0, 130.0)));
        assert_eq!(s.max_rps, Some((20_000.0, 22_000.0)));
        assert_eq!(s.cpu_s_per_10k, Some((0.30, 0.50)));
        let h = c.half_max.as_ref().unwrap();
        assert_eq!((h.p50_us, h.valid), (60.0, true));
        assert_eq!(h.spread.as_ref().unwrap().p50_us, Some((50.0, 65.0)));
        assert!(
            c.note.contains("run 3/3: first error at 1,000 rps: reset"),
            "{}",
            c.note
        );
    }

    #[test]
    fn one_run_keeps_its_figures_and_has_no_spread() {
        let base = CellResult::empty("strait", 1, "http1");
        let r = run(120.0, 0.3, 20_000.0, 4000);
        let c = aggregate(&base, std::slice::from_ref(&r));
        assert_eq!(c.p50_us, r.p50_us);
        assert_eq!(c.half_max.as_ref().map(|h| h.p50_us), Some(60.0));
        assert_eq!((c.runs, c.spread), (Some(1), None));
        assert_eq!(c.status, CellStatus::Valid);
    }

    #[test]
    fn a_run_that_failed_or_went_invalid_makes_the_cell_invalid_with_the_reason() {
        let base = CellResult::empty("nginx", 1, "http1");
        let mut failed = CellResult::empty("nginx", 1, "http1");
        failed.add_note("the 1,000 rps run failed: connection refused");
        let runs = vec![run(100.0, 0.3, 20_000.0, 4000), failed];
        let c = aggregate(&base, &runs);
        assert_eq!(c.status, CellStatus::Invalid);
        assert_eq!(c.runs, Some(1));
        assert_eq!(c.p50_us, Some(100.0));
        assert!(
            c.note.contains("run 2/2 failed: the 1,000 rps run failed"),
            "{}",
            c.note
        );

        let mut slow = run(100.0, 0.3, 20_000.0, 4000);
        slow.set_fixed(&RatePoint {
            errors: 3,
            ..point(150.0, 0.3, false)
        });
        let c = aggregate(&base, &[run(100.0, 0.3, 20_000.0, 4000), slow]);
        assert_eq!(c.status, CellStatus::Invalid);
        assert_eq!(c.errors, Some(3));
        assert!(
            c.note.contains("run 2/2 invalid: 900 rps achieved, 3 errors"),
            "{}",
            c.note
        );
    }

    #[test]
    fn a_cell_that_never_measured_is_failed() {
        let mut base = CellResult::empty("strait", 1, "http1");
        base.add_note("strait proxy not ready");
        assert_eq!(aggregate(&base, &[]).status, CellStatus::Failed);
        let mut failed = CellResult::empty("strait", 1, "http1");
        failed.add_note("a test request failed: refused");
        let c = aggregate(&base, &[failed]);
        assert_eq!(c.status, CellStatus::Failed);
        assert_eq!(c.note, "strait proxy not ready; a test request failed: refused");
        assert_eq!(c.p50_us, None);
    }

    #[test]
    fn orders_with_a_seed_are_reproducible() {
        assert_eq!(orders(42, 4, 9), orders(42, 4, 9));
        assert_ne!(orders(42, 4, 9), orders(43, 4, 9));
        assert_eq!(orders(1, 2, 0), vec![Vec::<usize>::new(), Vec::new()]);
    }

    proptest! {
        #[test]
        fn orders_are_permutations(seed in any::<u64>(), count in 1usize..6, n in 0usize..20) {
            let o = orders(seed, count, n);
            prop_assert_eq!(o.len(), count);
            for order in o {
                let mut sorted = order.clone();
                sorted.sort_unstable();
                prop_assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            }
        }

        #[test]
        fn median_lies_within_the_range(v in proptest::collection::vec(-1e6f64..1e6, 1..40)) {
            let m = median(&v).unwrap();
            let (lo, hi) = range(&v).unwrap();
            prop_assert!(lo <= m && m <= hi);
            let below = v.iter().filter(|x| **x <= m).count();
            prop_assert!(below * 2 >= v.len());
        }
    }
}
