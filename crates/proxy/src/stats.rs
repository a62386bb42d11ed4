//! `istio_requests_total` with Istio's label names, rendered in Prometheus text format.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

/// Request counters, one per label set.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: RwLock<HashMap<RequestLabels, AtomicU64>>,
}

impl Stats {
    /// Counts one request. The read lock is the common path; a new label set takes the write lock once.
    pub(crate) fn record(&self, labels: RequestLabels) {
        {
            let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = map.get(&labels) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.requests.write().unwrap_or_else(|e| e.into_inner());
        map.entry(labels).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from("# TYPE istio_requests_total counter\n");
        for (l, c) in map.iter() {
            let svc = &*l.destination_service;
            let (name, ns) = match svc.split_once('.') {
                Some((n, rest)) => (n, rest.split('.').next().unwrap_or("unknown")),
                None => (svc, "unknown"),
            };
            let opt = |o: &Option<Arc<str>>| o.as_deref().unwrap_or("unknown").to_string();
            let _ = writeln!(
                out,
                "istio_requests_total{{reporter=\"{}\",source_workload=\"{}\",destination_service=\"{}\",\
                 destination_service_name=\"{}\",destination_service_namespace=\"{}\",destination_app=\"{}\",\
                 destination_version=\"{}\",destination_cluster_name=\"{}\",request_protocol=\"http\",\
                 response_code=\"{}\",response_flags=\"{}\"}} {}",
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
                c.load(Ordering::Relaxed)
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        s.record(l.clone());
        s.record(l);
        let text = s.render();
        assert!(text.contains("destination_service_name=\"reviews\""), "{text}");
        assert!(
            text.contains("destination_service_namespace=\"default\""),
            "{text}"
        );
        assert!(text.contains("response_flags=\"-\"} 2"), "{text}");
    }
}
