//! Outlier detection (Istio `outlierDetection`): endpoints that fail consecutively are ejected
//! for `baseEjectionTime × number of ejections`, never more than `maxEjectionPercent` of them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strait_mesh::OutlierDetection;

/// Istio's defaults for fields a DestinationRule leaves unset.
const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(30);
const DEFAULT_MAX_EJECTION_PERCENT: u32 = 10;

/// The cluster-wide thresholds.
#[derive(Debug)]
pub(crate) struct Detector {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    base: Duration,
    max_percent: u32,
    epoch: Instant,
}

/// Counts one more consecutive error, or ends the streak.
fn bump(c: &AtomicU32, hit: bool) -> u32 {
    if hit {
        c.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        c.store(0, Ordering::Relaxed);
        0
    }
}

/// Per-endpoint counters.
#[derive(Debug, Default)]
pub(crate) struct HostHealth {
    c5xx: AtomicU32,
    gateway: AtomicU32,
    ejections: AtomicU32,
    /// Milliseconds since the detector's epoch; 0 = never ejected.
    ejected_until: AtomicU64,
}

impl Detector {
    /// `None` when the policy can never eject (both thresholds 0).
    pub(crate) fn new(o: &OutlierDetection) -> Option<Self> {
        if o.consecutive_5xx == 0 && o.consecutive_gateway_errors == 0 {
            return None;
        }
        Some(Detector {
            consecutive_5xx: o.consecutive_5xx,
            consecutive_gateway: o.consecutive_gateway_errors,
            base: match o.base_ejection_ms {
                0 => DEFAULT_BASE_EJECTION,
                ms => Duration::from_millis(ms),
            },
            max_percent: match o.max_ejection_percent {
                0 => DEFAULT_MAX_EJECTION_PERCENT,
                p => p.min(100),
            },
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether the endpoint may receive traffic now.
    pub(crate) fn available(&self, h: &HostHealth) -> bool {
        h.ejected_until.load(Ordering::Relaxed) <= self.now_ms()
    }

    /// Records a try's result: `Some(status)` or `None` for a connect failure, reset or timeout
    /// (Envoy counts local-origin errors as 5xx when they are not split out, Istio's default).
    pub(crate) fn report(&self, hosts: &[HostHealth], idx: usize, status: Option<u16>) {
        let Some(h) = hosts.get(idx) else { return };
        let five_xx = status.is_none_or(|s| s >= 500);
        let gateway = status.is_none_or(|s| matches!(s, 502..=504));
        let n5 = bump(&h.c5xx, five_xx);
        let ngw = bump(&h.gateway, gateway);
        let tripped = (self.consecutive_5xx > 0 && n5 >= self.consecutive_5xx)
            || (self.consecutive_gateway > 0 && ngw >= self.consecutive_gateway);
        if !tripped || !self.available(h) {
            return;
        }
        let now = self.now_ms();
        let ejected = hosts
            .iter()
            .filter(|o| o.ejected_until.load(Ordering::Relaxed) > now)
            .count();
        if ejected * 100 >= hosts.len() * self.max_percent as usize {
            return;
        }
        let times = h.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let until = now + self.base.as_millis() as u64 * u64::from(times);
        h.ejected_until.store(until, Ordering::Relaxed);
        h.c5xx.store(0, Ordering::Relaxed);
        h.gateway.store(0, Ordering::Relaxed);
        tracing::info!(
            endpoint = idx,
            ejections = times,
            "outlier detection ejected an endpoint"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(c5xx: u32, max: u32) -> Detector {
        Detector::new(&OutlierDetection {
            consecutive_5xx: c5xx,
            base_ejection_ms: 60_000,
            max_ejection_percent: max,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn consecutive_errors_eject_and_successes_reset() {
        let d = detector(2, 100);
        let hosts: Vec<HostHealth> = (0..2).map(|_| HostHealth::default()).collect();
        d.report(&hosts, 0, Some(503));
        d.report(&hosts, 0, Some(200));
        d.report(&hosts, 0, Some(503));
        assert!(d.available(&hosts[0]), "a success in between resets the streak");
        d.report(&hosts, 0, None);
        assert!(!d.available(&hosts[0]));
        assert!(d.available(&hosts[1]));
    }

    #[test]
    fn max_ejection_percent_caps_ejections() {
        let d = detector(1, 50);
        let hosts: Vec<HostHealth> = (0..2).map(|_| HostHealth::default()).collect();
        d.report(&hosts, 0, Some(500));
        d.report(&hosts, 1, Some(500));
        assert!(!d.available(&hosts[0]));
        assert!(d.available(&hosts[1]), "only half of the hosts may be ejected");
    }

    #[test]
    fn disabled_when_no_threshold() {
        assert!(Detector::new(&OutlierDetection::default()).is_none());
    }
}
