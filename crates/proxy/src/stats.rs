//! `istio_requests_total` and `istio_request_duration_milliseconds` with Istio's label names,
//! rendered in Prometheus text format.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::reply::Flags;

/// The label values of one series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RequestLabels {
    /// `source` (outbound, gateway) or `destination` (inbound).
    pub(crate) reporter: &'static str,
    /// Proxy id, standing in for the workload name.
    pub(crate) source_workload: Arc<str>,
    /// Destination service FQDN or `unknown`.
    pub(crate) destination_service: Arc<str>,
    /// Endpoint `app` label or `unknown`.
    pub(crate) destination_app: Option<Arc<str>>,
    /// Endpoint `version` label or `unknown`.
    pub(crate) destination_version: Option<Arc<str>>,
    /// Envoy cluster name (handy to tell subsets apart).
    pub(crate) destination_cluster: Option<Arc<str>>,
    /// HTTP status.
    pub(crate) response_code: u16,
    /// Envoy response flags.
    pub(crate) response_flags: Flags,
}

/// The label values of one request, borrowed from the snapshot it ran on: counting a request
/// whose series the thread counted recently needs no owned copy (five reference counts taken
/// and dropped again, ~150 instructions a request).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelsRef<'a> {
    pub(crate) reporter: &'static str,
    pub(crate) source_workload: &'a Arc<str>,
    /// `None`: `unknown`.
    pub(crate) destination_service: Option<&'a Arc<str>>,
    pub(crate) destination_app: Option<&'a Arc<str>>,
    pub(crate) destination_version: Option<&'a Arc<str>>,
    pub(crate) destination_cluster: Option<&'a Arc<str>>,
    pub(crate) response_code: u16,
    pub(crate) response_flags: Flags,
}

impl LabelsRef<'_> {
    /// The same labels, owned (for the map of all series).
    fn to_owned(self) -> RequestLabels {
        RequestLabels {
            reporter: self.reporter,
            source_workload: self.source_workload.clone(),
            destination_service: self
                .destination_service
                .cloned()
                .unwrap_or_else(|| Arc::from("unknown")),
            destination_app: self.destination_app.cloned(),
            destination_version: self.destination_version.cloned(),
            destination_cluster: self.destination_cluster.cloned(),
            response_code: self.response_code,
            response_flags: self.response_flags,
        }
    }

    /// Equal to `owned` (`Arc<str>` comparisons look at the pointers first).
    fn matches(&self, owned: &RequestLabels) -> bool {
        self.response_code == owned.response_code
            && self.response_flags == owned.response_flags
            && self.reporter == owned.reporter
            && *self.source_workload == owned.source_workload
            && match self.destination_service {
                Some(s) => *s == owned.destination_service,
                None => &*owned.destination_service == "unknown",
            }
            && self.destination_app == owned.destination_app.as_ref()
            && self.destination_version == owned.destination_version.as_ref()
            && self.destination_cluster == owned.destination_cluster.as_ref()
    }
}

/// Envoy's default histogram buckets, in milliseconds.
const BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
    300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Counters of one label set.
#[derive(Debug, Default)]
struct Series {
    requests: AtomicU64,
    /// Non-cumulative bucket counts; rendered cumulatively.
    buckets: [AtomicU64; BUCKETS_MS.len()],
    sum_us: AtomicU64,
}

impl Series {
    fn record(&self, duration: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let ms = duration.as_secs_f64() * 1000.0;
        if let Some(i) = BUCKETS_MS.iter().position(|b| ms <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us
            .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Request counters, one per label set.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Tells this instance's entries in [`RECENT`] from other proxies' in the same process.
    id: u64,
    requests: RwLock<HashMap<RequestLabels, Arc<Series>, FxBuildHasher>>,
}

impl Default for Stats {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Stats {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            requests: RwLock::default(),
        }
    }
}

/// The series a thread counted last: steady traffic goes to a few label sets, and comparing
/// labels (their names are shared `Arc`s: pointer comparisons) is ~10× cheaper than hashing
/// their strings for the map (~350 instructions a request, callgrind).
struct Recent {
    entries: [Option<(u64, RequestLabels, Arc<Series>)>; 4],
    next: usize,
}

thread_local! {
    static RECENT: std::cell::RefCell<Recent> = const {
        std::cell::RefCell::new(Recent {
            entries: [None, None, None, None],
            next: 0,
        })
    };
}

impl Recent {
    fn find(&self, id: u64, labels: &LabelsRef<'_>) -> Option<&Series> {
        self.entries
            .iter()
            .flatten()
            .find_map(|(i, l, s)| (*i == id && labels.matches(l)).then_some(&**s))
    }

    fn put(&mut self, id: u64, labels: RequestLabels, series: Arc<Series>) {
        let slot = self.next % self.entries.len();
        self.next = self.next.wrapping_add(1);
        if let Some(e) = self.entries.get_mut(slot) {
            *e = Some((id, labels, series));
        }
    }
}

/// Builds [`FxHasher`]s: for maps keyed by the proxy's own values (labels, endpoint addresses).
pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// The Firefox/rustc multiply-rotate hash. The label sets are the proxy's own values (cluster,
/// service and workload names from its configuration, status codes), not attacker-chosen keys,
/// so SipHash's flood resistance buys nothing here, and SipHash over the label strings was
/// ~2% of a request's instructions (callgrind).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Stats {
    /// Counts one request. The read lock is the common path; a new label set takes the write lock once.
    pub(crate) fn record(&self, labels: LabelsRef<'_>, duration: Duration) {
        let counted = RECENT.with_borrow(|recent| {
            recent
                .find(self.id, &labels)
                .map(|series| series.record(duration))
                .is_some()
        });
        if counted {
            return;
        }
        let labels = labels.to_owned();
        let found = {
            let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
            map.get(&labels).cloned()
        };
        let series = match found {
            Some(series) => series,
            None => {
                let mut map = self.requests.write().unwrap_or_else(|e| e.into_inner());
                map.entry(labels.clone()).or_default().clone()
            }
        };
        series.record(duration);
        RECENT.with_borrow_mut(|recent| recent.put(self.id, labels, series));
    }

    /// Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from("# TYPE istio_requests_total counter\n");
        let mut hist = String::from("# TYPE istio_request_duration_milliseconds histogram\n");
        for (l, s) in map.iter() {
            let svc = &*l.destination_service;
            let (name, ns) = match svc.split_once('.') {
                Some((n, rest)) => (n, rest.split('.').next().unwrap_or("unknown")),
                None => (svc, "unknown"),
            };
            let opt = |o: &Option<Arc<str>>| o.as_deref().unwrap_or("unknown").to_string();
            let labels = format!(
                "reporter=\"{}\",source_workload=\"{}\",destination_service=\"{}\",\
                 destination_service_name=\"{}\",destination_service_namespace=\"{}\",destination_app=\"{}\",\
                 destination_version=\"{}\",destination_cluster_name=\"{}\",request_protocol=\"http\",\
                 response_code=\"{}\",response_flags=\"{}\",connection_security_policy=\"{}\"",
                l.reporter,
                escape(&l.source_workload),
                escape(svc),
                escape(name),
                escape(ns),
                escape(&opt(&l.destination_app)),
                escape(&opt(&l.destination_version)),
                escape(&opt(&l.destination_cluster)),
                l.response_code,
                l.response_flags,
                // Istio: `unknown` on the source side; plaintext on the destination side is `none`.
                if l.reporter == "destination" {
                    "none"
                } else {
                    "unknown"
                },
            );
            let _ = writeln!(
                out,
                "istio_requests_total{{{labels}}} {}",
                s.requests.load(Ordering::Relaxed)
            );
            let mut cumulative = 0;
            for (b, c) in BUCKETS_MS.iter().zip(&s.buckets) {
                cumulative += c.load(Ordering::Relaxed);
                let _ = writeln!(
                    hist,
                    "istio_request_duration_milliseconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let count = s.requests.load(Ordering::Relaxed);
            let _ = writeln!(
                hist,
                "istio_request_duration_milliseconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = s.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
            let _ = writeln!(hist, "istio_request_duration_milliseconds_sum{{{labels}}} {sum}");
            let _ = writeln!(
                hist,
                "istio_request_duration_milliseconds_count{{{labels}}} {count}"
            );
        }
        out.push_str(&hist);
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    impl RequestLabels {
        fn borrowed(&self) -> LabelsRef<'_> {
            LabelsRef {
                reporter: self.reporter,
                source_workload: &self.source_workload,
                destination_service: Some(&self.destination_service),
                destination_app: self.destination_app.as_ref(),
                destination_version: self.destination_version.as_ref(),
                destination_cluster: self.destination_cluster.as_ref(),
                response_code: self.response_code,
                response_flags: self.response_flags,
            }
        }
    }

    #[test]
    fn borrowed_labels_match_their_owned_copy_only() {
        let service = Arc::from("reviews.default.svc.cluster.local");
        let v1: Arc<str> = Arc::from("v1");
        let r = LabelsRef {
            reporter: "source",
            source_workload: &Arc::from("p"),
            destination_service: Some(&service),
            destination_app: None,
            destination_version: Some(&v1),
            destination_cluster: None,
            response_code: 200,
            response_flags: Flags::default(),
        };
        let owned = r.to_owned();
        assert!(r.matches(&owned));
        // Equal strings in other allocations are the same labels.
        let mut copy = owned.clone();
        copy.destination_version = Some(Arc::from("v1"));
        assert!(r.matches(&copy));
        for changed in [
            RequestLabels {
                response_code: 503,
                ..owned.clone()
            },
            RequestLabels {
                destination_version: None,
                ..owned.clone()
            },
            RequestLabels {
                destination_service: Arc::from("unknown"),
                ..owned.clone()
            },
            RequestLabels {
                reporter: "destination",
                ..owned.clone()
            },
        ] {
            assert!(!r.matches(&changed), "{changed:?}");
        }
        let unknown = LabelsRef {
            destination_service: None,
            ..r
        };
        assert_eq!(&*unknown.to_owned().destination_service, "unknown");
        assert!(unknown.matches(&unknown.to_owned()));
    }

    #[test]
    fn fx_hash_tells_label_sets_apart() {
        use std::hash::BuildHasher;
        let h = |l: &RequestLabels| FxBuildHasher::default().hash_one(l);
        let a = RequestLabels {
            reporter: "source",
            source_workload: Arc::from("p"),
            destination_service: Arc::from("reviews.default.svc.cluster.local"),
            destination_app: None,
            destination_version: Some(Arc::from("v1")),
            destination_cluster: None,
            response_code: 200,
            response_flags: Flags::default(),
        };
        let mut b = a.clone();
        b.destination_version = Some(Arc::from("v2"));
        let mut c = a.clone();
        c.response_code = 503;
        assert_eq!(h(&a), h(&a.clone()));
        assert_ne!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
    }

    #[test]
    fn recent_series_are_per_instance_and_every_request_counts() {
        let label = |code: u16| RequestLabels {
            reporter: "source",
            source_workload: Arc::from("p"),
            destination_service: Arc::from("reviews.default.svc.cluster.local"),
            destination_app: None,
            destination_version: None,
            destination_cluster: None,
            response_code: code,
            response_flags: Flags::default(),
        };
        let (a, b) = (Stats::default(), Stats::default());
        // More label sets than the thread's recent entries, interleaved over two instances.
        for round in 0..3u64 {
            for code in 200..210 {
                a.record(label(code).borrowed(), Duration::from_millis(1));
                if code % 2 == 0 {
                    b.record(label(code).borrowed(), Duration::from_millis(1));
                }
            }
            let count = |s: &Stats, code| {
                let map = s.requests.read().unwrap();
                map.get(&label(code)).map(|s| s.requests.load(Ordering::Relaxed))
            };
            for code in 200..210 {
                assert_eq!(count(&a, code), Some(round + 1), "a {code}");
                let want = (code % 2 == 0).then_some(round + 1);
                assert_eq!(count(&b, code), want, "b {code}");
            }
        }
    }

    #[test]
    fn counts_and_renders() {
        let s = Stats::default();
        let l = RequestLabels {
            reporter: "source",
            source_workload: Arc::from("p"),
            destination_service: Arc::from("reviews.default.svc.cluster.local"),
            destination_app: None,
            destination_version: Some(Arc::from("v1")),
            destination_cluster: None,
            response_code: 200,
            response_flags: Flags::default(),
        };
        s.record(l.borrowed(), Duration::from_millis(3));
        s.record(l.borrowed(), Duration::from_millis(700));
        let text = s.render();
        assert!(text.contains("destination_service_name=\"reviews\""), "{text}");
        assert!(
            text.contains("destination_service_namespace=\"default\""),
            "{text}"
        );
        assert!(
            text.contains("response_flags=\"-\",connection_security_policy=\"unknown\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("connection_security_policy=\"unknown\",le=\"5\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("connection_security_policy=\"unknown\",le=\"1000\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("istio_request_duration_milliseconds_count{"),
            "{text}"
        );
    }
}
