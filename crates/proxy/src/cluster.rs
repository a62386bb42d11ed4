//! Upstream clusters at runtime: endpoints, load-balancer state, circuit-breaker counters and the
//! pooled HTTP client that talks to them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::uri::Authority;
use strait_mesh::{Cluster, LbPolicy, UpstreamProtocol};

use crate::error::ApplyError;
use crate::outlier::{Detector, HostHealth};
use crate::pool::{PoolCache, PoolKey, Upstream};
use crate::tls;

/// The cluster name that means "send where the request says", as Istio names it for
/// `outboundTrafficPolicy: ALLOW_ANY`. It needs no endpoints.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

/// One endpoint with its in-flight request count (for LEAST_REQUEST).
#[derive(Debug)]
pub(crate) struct EndpointRt {
    pub(crate) addr: SocketAddr,
    pub(crate) authority: Authority,
    pub(crate) version: Option<Arc<str>>,
    pub(crate) app: Option<Arc<str>>,
    active: Arc<AtomicUsize>,
}

/// A cluster ready for requests.
#[derive(Debug)]
pub(crate) struct ClusterRt {
    pub(crate) service: Arc<str>,
    pub(crate) endpoints: Vec<EndpointRt>,
    lb: LbPolicy,
    rr: AtomicUsize,
    pub(crate) upstream: Upstream,
    /// The key of `upstream` in the pool cache, so that an apply can drop the pools no cluster
    /// uses any more.
    pub(crate) pool_key: PoolKey,
    /// Envoy circuit breaker: in-flight requests above this get 503 UO.
    limit: Option<usize>,
    active: Arc<AtomicUsize>,
    outlier: Option<Detector>,
    health: Vec<HostHealth>,
    /// Istio's `PassthroughCluster`: forward to the request's own authority (DNS-resolved).
    pub(crate) passthrough: bool,
    /// Cumulative endpoint weights; `None` when all weights are equal (the common case).
    cumulative: Option<Vec<u64>>,
}

/// Decrements an in-flight counter when the request (and its response body) is done.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn enter(counter: &Arc<AtomicUsize>) -> ActiveGuard {
    counter.fetch_add(1, Ordering::Relaxed);
    ActiveGuard(counter.clone())
}

impl ClusterRt {
    /// Builds runtime state, reusing a connection pool from `cache` when one fits. Fails only
    /// when the cluster's TLS files are missing or unusable.
    pub(crate) fn compile(c: &Cluster, cache: &mut PoolCache) -> Result<Self, ApplyError> {
        let tls = match &c.tls {
            Some(t) => Some(tls::client(&c.name, t, c.protocol == UpstreamProtocol::Http2)?),
            None => None,
        };
        let key = PoolKey::of(c, tls.as_ref());
        let upstream = cache.entry(key).or_insert_with(|| key.build(tls)).clone();
        let endpoints = c
            .endpoints
            .iter()
            .filter_map(|e| {
                // A SocketAddr always renders as a valid authority; skip defensively otherwise.
                let authority = Authority::try_from(e.address.to_string()).ok()?;
                Some(EndpointRt {
                    addr: e.address,
                    authority,
                    version: e.labels.get("version").map(|v| Arc::from(v.as_str())),
                    app: e.labels.get("app").map(|v| Arc::from(v.as_str())),
                    active: Arc::new(AtomicUsize::new(0)),
                })
            })
            .collect();
        let limit = c.connection_pool.as_ref().and_then(|p| {
            let per_conn = match (c.protocol, p.max_connections, p.max_pending_requests) {
                // HTTP/1 carries one request per connection: the rest wait in the pending queue.
                (UpstreamProtocol::Http1, Some(conns), Some(pending)) => {
                    Some(conns as usize + pending as usize)
                }
                _ => None,
            };
            match (p.max_requests.map(|r| r as usize), per_conn) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
        Ok(ClusterRt {
            service: Arc::from(c.service.as_str()),
            endpoints,
            lb: c.lb_policy,
            rr: AtomicUsize::new(0),
            upstream,
            limit,
            active: Arc::new(AtomicUsize::new(0)),
            outlier: c.outlier_detection.as_ref().and_then(Detector::new),
            health: c.endpoints.iter().map(|_| HostHealth::default()).collect(),
            cumulative: cumulative_weights(c),
            passthrough: c.name == PASSTHROUGH_CLUSTER,
            pool_key: key,
        })
    }

    /// Admits a request under the circuit breaker, or `None` for 503 UO.
    pub(crate) fn admit(&self) -> Option<ActiveGuard> {
        let guard = enter(&self.active);
        match self.limit {
            Some(limit) if self.active.load(Ordering::Relaxed) > limit => None,
            _ => Some(guard),
        }
    }

    /// Picks an endpoint, avoiding `tried` when possible (Istio `retryIgnorePreviousHosts`).
    pub(crate) fn pick(&self, tried: &[usize]) -> Option<(usize, ActiveGuard)> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let ok = |i: usize| {
            self.outlier
                .as_ref()
                .is_none_or(|d| self.health.get(i).is_some_and(|h| d.available(h)))
        };
        let mut choice = None;
        // Envoy makes a few host-selection attempts before settling for a previous host.
        for _ in 0..5 {
            let c = self.pick_once(n);
            if ok(c) {
                choice = Some(c);
                if !tried.contains(&c) {
                    break;
                }
            }
        }
        // Rare path (many ejected hosts): scan. All ejected => `None`, i.e. 503 UH, since Istio
        // disables Envoy's panic mode.
        let choice = choice
            .or_else(|| (0..n).find(|i| ok(*i) && !tried.contains(i)))
            .or_else(|| (0..n).find(|i| ok(*i)))?;
        let ep = self.endpoints.get(choice)?;
        Some((choice, enter(&ep.active)))
    }

    /// Feeds outlier detection with a try's result (`None` = connect failure, reset or timeout).
    pub(crate) fn report(&self, idx: usize, status: Option<u16>) {
        if let Some(d) = &self.outlier {
            d.report(&self.health, idx, status);
        }
    }

    fn pick_once(&self, n: usize) -> usize {
        if n == 1 {
            return 0;
        }
        if let Some(cum) = &self.cumulative {
            return self.pick_weighted(cum);
        }
        match self.lb {
            LbPolicy::RoundRobin => self.rr.fetch_add(1, Ordering::Relaxed) % n,
            LbPolicy::Random => rand::random_range(0..n),
            LbPolicy::LeastRequest => {
                // Power of two choices over in-flight requests, as Envoy's default LEAST_REQUEST.
                let a = rand::random_range(0..n);
                let b = (a + rand::random_range(1..n)) % n;
                let load = |i: usize| {
                    self.endpoints
                        .get(i)
                        .map_or(usize::MAX, |e| e.active.load(Ordering::Relaxed))
                };
                if load(b) < load(a) { b } else { a }
            }
        }
    }
}

impl ClusterRt {
    /// Endpoint weights (WorkloadEntry `weight`): each policy draws in proportion to weight.
    fn pick_weighted(&self, cum: &[u64]) -> usize {
        let total = cum.last().copied().unwrap_or(1).max(1);
        let at = |x: u64| cum.partition_point(|c| *c <= x).min(cum.len().saturating_sub(1));
        match self.lb {
            LbPolicy::RoundRobin => at(self.rr.fetch_add(1, Ordering::Relaxed) as u64 % total),
            LbPolicy::Random => at(rand::random_range(0..total)),
            LbPolicy::LeastRequest => {
                let (a, b) = (at(rand::random_range(0..total)), at(rand::random_range(0..total)));
                let load = |i: usize| {
                    self.endpoints
                        .get(i)
                        .map_or(usize::MAX, |e| e.active.load(Ordering::Relaxed))
                };
                if load(b) < load(a) { b } else { a }
            }
        }
    }
}

/// Cumulative weights when endpoints differ in weight (0 counts as 1, as Envoy requires >= 1).
fn cumulative_weights(c: &Cluster) -> Option<Vec<u64>> {
    let first = c.endpoints.first()?.weight.max(1);
    if c.endpoints.iter().all(|e| e.weight.max(1) == first) {
        return None;
    }
    let mut sum = 0u64;
    Some(
        c.endpoints
            .iter()
            .map(|e| {
                sum += u64::from(e.weight.max(1));
                sum
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_mesh::{ConnectionPool, Endpoint};

    fn cluster(lb: LbPolicy, n: u16) -> Cluster {
        Cluster {
            name: "c".into(),
            lb_policy: lb,
            endpoints: (0..n)
                .map(|i| Endpoint {
                    address: SocketAddr::from(([127, 0, 0, 1], 1000 + i)),
                    labels: Default::default(),
                    weight: 1,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn round_robin_rotates_and_retries_avoid_previous_hosts() {
        let c = ClusterRt::compile(&cluster(LbPolicy::RoundRobin, 3), &mut PoolCache::new()).unwrap();
        let picks: Vec<usize> = (0..6).map(|_| c.pick(&[]).map(|p| p.0).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        for _ in 0..20 {
            assert_ne!(c.pick(&[0]).unwrap().0, 0);
        }
    }

    #[tokio::test]
    async fn endpoint_weights_shape_round_robin() {
        let mut def = cluster(LbPolicy::RoundRobin, 2);
        def.endpoints[1].weight = 3;
        let c = ClusterRt::compile(&def, &mut PoolCache::new()).unwrap();
        let picks: Vec<usize> = (0..8).map(|_| c.pick(&[]).map(|p| p.0).unwrap()).collect();
        assert_eq!(picks.iter().filter(|i| **i == 1).count(), 6, "{picks:?}");
    }

    #[tokio::test]
    async fn least_request_prefers_idle_endpoints() {
        let c = ClusterRt::compile(&cluster(LbPolicy::LeastRequest, 2), &mut PoolCache::new()).unwrap();
        let (busy, _g) = c.pick(&[]).unwrap();
        for _ in 0..50 {
            let (i, _g2) = c.pick(&[]).unwrap();
            assert_ne!(
                i, busy,
                "with two endpoints both are sampled, the idle one must win"
            );
        }
    }

    #[tokio::test]
    async fn circuit_breaker_limits_in_flight_requests() {
        let mut def = cluster(LbPolicy::Random, 1);
        def.connection_pool = Some(ConnectionPool {
            max_connections: Some(1),
            max_pending_requests: Some(1),
            ..Default::default()
        });
        let c = ClusterRt::compile(&def, &mut PoolCache::new()).unwrap();
        let a = c.admit();
        let b = c.admit();
        assert!(a.is_some() && b.is_some());
        assert!(c.admit().is_none());
        drop(a);
        assert!(c.admit().is_some());
    }
}
