//! The goals judged round by round.
//!
//! Why: every round runs each cell once, in a fresh random order, within a few minutes; a shared
//! machine drifts more than that between rounds (other tenants, the host's load). The headline
//! ratios divide a median over all rounds by another median over all rounds, so a slow round of
//! one cell and a fast round of another never meet. A goal evaluated on one round's own cells
//! compares figures taken minutes apart, and "met in k of n rounds" says how far a median
//! ratio near 1 can be trusted: 5 of 5 is a result, 3 of 5 is a tie.

use serde::{Deserialize, Serialize};

use crate::repeat;
use crate::results::{CellResult, Results};

/// One goal, evaluated on each round's cells alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedGoal {
    /// The goal's text, as in [`Results::goals`].
    pub goal: String,
    /// value / bound in each round; `None` where a figure of that round was missing or invalid.
    pub ratios: Vec<Option<f64>>,
}

impl PairedGoal {
    /// (rounds in which the goal was met, rounds with a ratio).
    pub fn met(&self) -> (usize, usize) {
        let known = self.ratios.iter().flatten();
        (known.clone().filter(|r| **r <= 1.0).count(), known.count())
    }

    /// The median of the rounds' ratios, and their range.
    pub fn median(&self) -> (Option<f64>, Option<(f64, f64)>) {
        let known: Vec<f64> = self.ratios.iter().flatten().copied().collect();
        (repeat::median(&known), repeat::range(&known))
    }
}

/// The goals of issue #3 per round: `rounds[r]` holds every cell's run of round `r`. Only the
/// goals that compare cells are paired: the control plane is measured once, and RSS is a figure
/// of a process's life, not of a round (a cell's processes serve every round, so only the
/// first round's idle RSS is idle). With fewer than two rounds there is nothing to pair.
pub fn pair(rounds: &[Vec<CellResult>]) -> Vec<PairedGoal> {
    if rounds.len() < 2 {
        return Vec::new();
    }
    let mut paired: Vec<PairedGoal> = Vec::new();
    for (r, cells) in rounds.iter().enumerate() {
        let cells = cells
            .iter()
            .map(|c| CellResult {
                rss_idle_kb: None,
                rss_load_kb: None,
                ..c.clone()
            })
            .collect();
        let mut round = Results {
            cells,
            ..Results::default()
        };
        round.evaluate_goals();
        for goal in round.goals {
            let i = match paired.iter().position(|p| p.goal == goal.goal) {
                Some(i) => i,
                None => {
                    paired.push(PairedGoal {
                        goal: goal.goal.clone(),
                        ratios: Vec::new(),
                    });
                    paired.len() - 1
                }
            };
            // A goal first seen in a later round has no ratio in the earlier ones.
            paired[i].ratios.resize(r, None);
            paired[i].ratios.push(goal.ratio);
        }
    }
    paired.retain(|p| p.ratios.iter().any(Option::is_some));
    paired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CellStatus, RatePoint};

    fn cell(name: &str, p50: f64, cpu: f64) -> CellResult {
        let mut c = CellResult::empty(name, u32::from(name != "direct"), "http1");
        c.rss_idle_kb = Some(4096);
        c.rss_load_kb = Some(8192);
        c.set_fixed(&RatePoint {
            target_rps: 1000.0,
            rate_rps: 1000.0,
            p50_us: p50,
            p99_us: p50 * 2.0,
            cpu_s_per_10k: (cpu > 0.0).then_some(cpu),
            valid: true,
            ..RatePoint::default()
        });
        assert_eq!(c.status, CellStatus::Valid);
        c
    }

    fn round(nginx_cpu: f64, strait_cpu: f64) -> Vec<CellResult> {
        vec![
            cell("direct", 100.0, 0.0),
            cell("nginx", 200.0, nginx_cpu),
            cell("strait", 190.0, strait_cpu),
        ]
    }

    #[test]
    fn each_round_is_judged_on_its_own_cells() {
        // Strait is cheaper than nginx in every round, but the machine drifted: its slow round
        // costs more than nginx's fast one. The medians over rounds would say "not met".
        let paired = pair(&[round(0.60, 0.58), round(0.80, 0.78), round(0.70, 0.72)]);
        let cpu = paired
            .iter()
            .find(|p| p.goal.starts_with("strait CPU-s per 10k req at 1,000 rps"))
            .unwrap();
        assert_eq!(cpu.met(), (2, 3));
        let (median, range) = cpu.median();
        assert!((median.unwrap() - 0.78 / 0.80).abs() < 1e-9);
        let (lo, hi) = range.unwrap();
        assert!(lo < 1.0 && hi > 1.0);
        // The control plane is measured once, RSS over the processes' life: not paired.
        assert!(!paired.iter().any(|p| p.goal.starts_with("control plane")));
        assert!(!paired.iter().any(|p| p.goal.contains("RSS")));
    }

    #[test]
    fn a_missing_figure_is_a_gap_not_a_miss() {
        let mut second = round(0.8, 0.7);
        second.retain(|c| c.name != "strait");
        let paired = pair(&[round(0.6, 0.5), second, round(0.6, 0.9)]);
        let cpu = &paired[0];
        assert_eq!(cpu.ratios.len(), 3);
        assert_eq!(cpu.ratios[1], None);
        assert_eq!(cpu.met(), (1, 2));
    }

    #[test]
    fn one_round_pairs_nothing() {
        assert!(pair(&[round(0.6, 0.5)]).is_empty());
    }
}
