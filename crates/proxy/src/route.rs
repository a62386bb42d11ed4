//! Route tables compiled for lookup: virtual host by authority (Envoy's exact > suffix wildcard >
//! prefix wildcard > `*` order), then the first route whose match blocks accept the request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::stats::FxBuildHasher;

use strait_mesh::{Route, RouteAction, RouteTable, VirtualHost};

use crate::error::ApplyError;
use crate::headers::CompiledOps;
use crate::matcher::{MatchBlock, RequestView, StrMatcher, first_match};
use crate::policy::{Cors, FaultPolicy, MirrorPolicy, RedirectPolicy, RetryPolicy, Rewrite};

/// A route table ready for lookups.
#[derive(Debug)]
pub(crate) struct Table {
    vhosts: Vec<VHost>,
    /// Keyed with [`FxBuildHasher`]: the keys are the configuration's domains (a lookup cannot
    /// add entries), so SipHash's flood resistance buys nothing on this per-request lookup.
    exact: HashMap<String, Vec<usize>, FxBuildHasher>,
    /// `*.example.com` stored as `.example.com`, longest first (Envoy: longest wildcard wins).
    suffix: Vec<(String, usize)>,
    /// `foo.*` stored as `foo.`, longest first.
    prefix: Vec<(String, usize)>,
    catch_all: Vec<usize>,
}

/// One virtual host.
#[derive(Debug)]
pub(crate) struct VHost {
    port: Option<u16>,
    pub(crate) routes: Vec<Arc<CRoute>>,
}

/// A compiled route.
#[derive(Debug)]
pub(crate) struct CRoute {
    pub(crate) name: Arc<str>,
    matches: Vec<MatchBlock>,
    pub(crate) action: Action,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: Option<RetryPolicy>,
    pub(crate) fault: Option<FaultPolicy>,
    pub(crate) headers: CompiledOps,
    pub(crate) rewrite: Option<Rewrite>,
    pub(crate) mirrors: Vec<MirrorPolicy>,
    pub(crate) cors: Option<Cors>,
}

/// What a matched route does.
#[derive(Debug)]
pub(crate) enum Action {
    /// Forward to a destination picked by weight.
    Forward(Weighted),
    /// Answer with a redirect.
    Redirect(RedirectPolicy),
    /// Answer directly.
    Direct {
        status: http::StatusCode,
        body: Option<bytes::Bytes>,
    },
}

/// Destinations with a cumulative weight table.
#[derive(Debug)]
pub(crate) struct Weighted {
    pub(crate) dests: Vec<Dest>,
    cumulative: Vec<u64>,
}

/// One destination of a route.
#[derive(Debug)]
pub(crate) struct Dest {
    pub(crate) cluster_name: Arc<str>,
    /// Index into the snapshot's clusters; `None` = not in config (503 NC at request time).
    pub(crate) cluster: Option<usize>,
    pub(crate) headers: CompiledOps,
}

/// The route chosen for a request, with the prefix that matched (for prefix rewrites).
pub(crate) struct Selected<'a> {
    pub(crate) route: &'a Arc<CRoute>,
    pub(crate) matched_prefix: Option<&'a str>,
}

impl Table {
    /// Compiles a table; `cluster_index` resolves cluster names once.
    pub(crate) fn compile(t: &RouteTable, cluster_index: &HashMap<&str, usize>) -> Result<Self, ApplyError> {
        let mut table = Table {
            vhosts: Vec::with_capacity(t.virtual_hosts.len()),
            exact: HashMap::default(),
            suffix: Vec::new(),
            prefix: Vec::new(),
            catch_all: Vec::new(),
        };
        for (i, vh) in t.virtual_hosts.iter().enumerate() {
            table.vhosts.push(compile_vhost(vh, cluster_index)?);
            for d in &vh.domains {
                let d = d.to_ascii_lowercase();
                if d == "*" {
                    table.catch_all.push(i);
                } else if let Some(s) = d.strip_prefix('*') {
                    table.suffix.push((s.to_string(), i));
                } else if let Some(p) = d.strip_suffix('*') {
                    table.prefix.push((p.to_string(), i));
                } else {
                    table.exact.entry(d).or_default().push(i);
                }
            }
        }
        // Stable sorts keep declaration order among equally long patterns.
        table.suffix.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table.prefix.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(table)
    }

    /// Picks the virtual host for a lowercase `authority`, split into `host` and `port`.
    /// A domain written with a port (`reviews:9080`, as Envoy configs often list) matches the full
    /// authority; other domains match the host alone.
    pub(crate) fn vhost(&self, authority: &str, host: &str, port: u16) -> Option<&VHost> {
        let ok = |i: &usize| self.vhosts.get(*i).filter(|v| v.port.is_none_or(|p| p == port));
        if authority.len() != host.len()
            && let Some(v) = self.exact.get(authority).and_then(|ids| ids.iter().find_map(ok))
        {
            return Some(v);
        }
        if let Some(v) = self.exact.get(host).and_then(|ids| ids.iter().find_map(ok)) {
            return Some(v);
        }
        // A wildcard must cover at least one character, as in Envoy.
        let suffix = self
            .suffix
            .iter()
            .filter(|(s, _)| host.len() > s.len() && host.ends_with(s.as_str()));
        if let Some(v) = suffix.map(|(_, i)| i).find_map(ok) {
            return Some(v);
        }
        let prefix = self
            .prefix
            .iter()
            .filter(|(p, _)| host.len() > p.len() && host.starts_with(p.as_str()));
        if let Some(v) = prefix.map(|(_, i)| i).find_map(ok) {
            return Some(v);
        }
        self.catch_all.iter().find_map(ok)
    }
}

impl VHost {
    /// First route that matches; Istio appends no default, so `None` means 404 NR.
    pub(crate) fn route(&self, req: &RequestView<'_>) -> Option<Selected<'_>> {
        self.routes.iter().find_map(|r| {
            let block = first_match(&r.matches, req)?;
            let matched_prefix = match block {
                // Istio compiles a route without match blocks as prefix `/`.
                None => Some("/"),
                Some(i) => match r.matches.get(i).and_then(|b| b.uri.as_ref()) {
                    Some(StrMatcher::Prefix(p)) => Some(p.as_str()),
                    Some(_) => None,
                    None => Some("/"),
                },
            };
            Some(Selected {
                route: r,
                matched_prefix,
            })
        })
    }
}

fn compile_vhost(vh: &VirtualHost, cluster_index: &HashMap<&str, usize>) -> Result<VHost, ApplyError> {
    let routes = vh
        .routes
        .iter()
        .map(|r| compile_route(r, cluster_index).map(Arc::new))
        .collect::<Result<_, _>>()?;
    Ok(VHost {
        port: vh.port,
        routes,
    })
}

fn compile_route(r: &Route, cluster_index: &HashMap<&str, usize>) -> Result<CRoute, ApplyError> {
    let name = r.name.as_str();
    let action = match &r.action {
        RouteAction::Forward(dests) => Action::Forward(Weighted::compile(dests, cluster_index, name)?),
        RouteAction::Redirect(rd) => Action::Redirect(RedirectPolicy::compile(rd, name)?),
        RouteAction::DirectResponse(d) => Action::Direct {
            status: http::StatusCode::from_u16(d.status).map_err(|_| ApplyError::Status {
                route: name.to_string(),
                status: d.status,
            })?,
            body: d.body.clone().map(bytes::Bytes::from),
        },
    };
    Ok(CRoute {
        name: Arc::from(name),
        matches: r
            .matches
            .iter()
            .map(|m| MatchBlock::compile(m, name))
            .collect::<Result<_, _>>()?,
        action,
        // Istio: a zero timeout means "disabled".
        timeout: r.timeout_ms.filter(|t| *t > 0).map(Duration::from_millis),
        retries: r
            .retries
            .as_ref()
            .map(RetryPolicy::compile)
            .filter(|p| p.attempts > 0),
        fault: r
            .fault
            .as_ref()
            .map(|f| FaultPolicy::compile(f, name))
            .transpose()?
            .flatten(),
        headers: CompiledOps::compile(&r.headers, name)?,
        rewrite: r
            .rewrite
            .as_ref()
            .map(|rw| Rewrite::compile(rw, name))
            .transpose()?,
        mirrors: r
            .mirrors
            .iter()
            .filter(|m| m.percentage > 0.0)
            .map(|m| MirrorPolicy {
                cluster: cluster_index.get(m.cluster.as_str()).copied(),
                percentage: m.percentage,
            })
            .collect(),
        cors: r.cors.as_ref().map(|c| Cors::compile(c, name)).transpose()?,
    })
}

impl Weighted {
    fn compile(
        dests: &[strait_mesh::WeightedCluster],
        cluster_index: &HashMap<&str, usize>,
        route: &str,
    ) -> Result<Self, ApplyError> {
        let any_weight = dests.iter().any(|d| d.weight > 0);
        let mut out = Weighted {
            dests: Vec::new(),
            cumulative: Vec::new(),
        };
        let mut sum = 0u64;
        for d in dests {
            // Istio: a single destination gets 100%; zero-weight entries are dropped when others
            // have weight; when all are zero they share equally.
            let w = if !any_weight { 1 } else { u64::from(d.weight) };
            if w == 0 {
                continue;
            }
            sum += w;
            out.cumulative.push(sum);
            out.dests.push(Dest {
                cluster_name: Arc::from(d.cluster.as_str()),
                cluster: cluster_index.get(d.cluster.as_str()).copied(),
                headers: CompiledOps::compile(&d.headers, route)?,
            });
        }
        Ok(out)
    }

    /// Picks a destination by relative weight; `None` only for a route with no destinations.
    pub(crate) fn pick(&self) -> Option<&Dest> {
        let total = *self.cumulative.last()?;
        if self.dests.len() == 1 {
            return self.dests.first();
        }
        let r = rand::random_range(0..total);
        let i = self.cumulative.partition_point(|c| *c <= r);
        self.dests.get(i)
    }
}

/// Splits an authority into lowercase-able host and port (default 80).
pub(crate) fn split_authority(authority: &str) -> (&str, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: `[::1]:8080`.
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(80);
            return (host, port);
        }
        return (authority, 80);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(p) => (host, p),
            Err(_) => (authority, 80),
        },
        None => (authority, 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_mesh::WeightedCluster;

    fn vh(name: &str, domains: &[&str], port: Option<u16>) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            port,
            routes: vec![Route {
                name: name.into(),
                ..Default::default()
            }],
        }
    }

    fn picked(t: &Table, authority: &str, port: u16) -> Option<String> {
        let (host, _) = split_authority(authority);
        t.vhost(authority, host, port)
            .map(|v| v.routes[0].name.to_string())
    }

    #[test]
    fn vhost_precedence_exact_suffix_prefix_any() {
        let rt = RouteTable {
            name: "t".into(),
            virtual_hosts: vec![
                vh("any", &["*"], None),
                vh("short", &["*.com"], None),
                vh("long", &["*.example.com"], None),
                vh("pre", &["api.*"], None),
                vh("exact", &["www.example.com"], None),
                vh("ported", &["reviews"], Some(9080)),
                vh("with-port", &["ratings:9080"], None),
            ],
        };
        let t = Table::compile(&rt, &HashMap::new()).unwrap();
        assert_eq!(picked(&t, "www.example.com", 80).as_deref(), Some("exact"));
        assert_eq!(picked(&t, "a.example.com", 80).as_deref(), Some("long"));
        assert_eq!(picked(&t, "a.other.com", 80).as_deref(), Some("short"));
        assert_eq!(picked(&t, "api.internal", 80).as_deref(), Some("pre"));
        assert_eq!(picked(&t, "example.org", 80).as_deref(), Some("any"));
        assert_eq!(picked(&t, "reviews", 9080).as_deref(), Some("ported"));
        assert_eq!(picked(&t, "reviews", 80).as_deref(), Some("any"));
        assert_eq!(picked(&t, "ratings:9080", 9080).as_deref(), Some("with-port"));
        assert_eq!(picked(&t, "ratings", 80).as_deref(), Some("any"));
    }

    proptest::proptest! {
        #[test]
        fn authority_split_never_panics_and_round_trips(s in ".{0,40}", host in "[a-z0-9.-]{1,20}", port: u16) {
            let _ = split_authority(&s);
            let a = format!("{host}:{port}");
            proptest::prop_assert_eq!(split_authority(&a), (host.as_str(), port));
        }

        #[test]
        fn exact_beats_suffix_beats_catch_all(label in "[a-z]{1,8}", domain in "[a-z]{1,8}\\.[a-z]{2,3}") {
            let host = format!("{label}.{domain}");
            let wild = format!("*.{domain}");
            let rt = RouteTable {
                name: "t".into(),
                virtual_hosts: vec![
                    vh("any", &["*"], None),
                    vh("wild", &[wild.as_str()], None),
                    vh("exact", &[host.as_str()], None),
                ],
            };
            let t = Table::compile(&rt, &HashMap::new()).unwrap();
            proptest::prop_assert_eq!(picked(&t, &host, 80), Some("exact".to_string()));
            let sibling = format!("x{label}.{domain}");
            proptest::prop_assert_eq!(picked(&t, &sibling, 80), Some("wild".to_string()));
            proptest::prop_assert_eq!(picked(&t, &domain, 80), Some("any".to_string()));
        }
    }

    #[test]
    fn authority_split() {
        assert_eq!(split_authority("reviews:9080"), ("reviews", 9080));
        assert_eq!(split_authority("reviews"), ("reviews", 80));
        assert_eq!(split_authority("[::1]:81"), ("::1", 81));
        assert_eq!(split_authority("[::1]"), ("::1", 80));
        assert_eq!(split_authority("a:b"), ("a:b", 80));
    }

    #[test]
    fn weights_drop_zero_and_single_gets_all() {
        let d = |c: &str, w| WeightedCluster {
            cluster: c.into(),
            weight: w,
            ..Default::default()
        };
        let w = Weighted::compile(&[d("a", 0), d("b", 5)], &HashMap::new(), "r").unwrap();
        for _ in 0..100 {
            assert_eq!(&*w.pick().unwrap().cluster_name, "b");
        }
        let single = Weighted::compile(&[d("a", 0)], &HashMap::new(), "r").unwrap();
        assert_eq!(&*single.pick().unwrap().cluster_name, "a");
        let none = Weighted::compile(&[], &HashMap::new(), "r").unwrap();
        assert!(none.pick().is_none());
    }
}
