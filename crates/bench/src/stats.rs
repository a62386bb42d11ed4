//! Percentiles over recorded latencies.
//!
//! We keep every sample (a 30 s run at 1,000 rps is 30,000 `u32`s; a max-throughput run a few
//! hundred thousand) and sort once, so percentiles are exact nearest-rank values rather than
//! histogram buckets: no extra dependency and nothing to tune.

use serde::{Deserialize, Serialize};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

/// Nearest-rank percentile of an ascending slice: the smallest sample such that at least `q`
/// (0..=1) of the samples are less than or equal to it. `None` for an empty slice.
pub fn nearest_rank(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let index = rank.saturating_sub(1).min(sorted.len() - 1);
    sorted.get(index).copied()
}

/// Sorts `samples` (µs) in place and returns their percentiles; all zero when there are none.
pub fn percentiles(samples: &mut [u32]) -> Percentiles {
    samples.sort_unstable();
    let at = |q| nearest_rank(samples, q).map(f64::from).unwrap_or(0.0);
    Percentiles {
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        p999_us: at(0.999),
        max_us: at(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 0.5), Some(50));
        assert_eq!(nearest_rank(&v, 0.9), Some(90));
        assert_eq!(nearest_rank(&v, 0.99), Some(99));
        assert_eq!(nearest_rank(&v, 0.999), Some(100));
        assert_eq!(nearest_rank(&v, 1.0), Some(100));
        assert_eq!(nearest_rank(&v, 0.0), Some(1));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn percentiles_sort_their_input() {
        let mut v = vec![900, 100, 500, 300, 700];
        let p = percentiles(&mut v);
        assert_eq!(p.p50_us, 500.0);
        assert_eq!(p.p90_us, 900.0);
        assert_eq!(p.max_us, 900.0);
        assert_eq!(percentiles(&mut []), Percentiles::default());
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_samples(mut v in proptest::collection::vec(0u32..1_000_000, 1..500)) {
            let p = percentiles(&mut v);
            prop_assert!(p.p50_us <= p.p90_us && p.p90_us <= p.p99_us);
            prop_assert!(p.p99_us <= p.p999_us && p.p999_us <= p.max_us);
            prop_assert!(v.contains(&(p.p50_us as u32)));
            // At least half of the samples are <= the median.
            let below = v.iter().filter(|s| f64::from(**s) <= p.p50_us).count();
            prop_assert!(below * 2 >= v.len());
        }
    }
}
