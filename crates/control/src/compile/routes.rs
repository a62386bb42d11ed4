//! VirtualService `http` rules -> compiled routes.
//!
//! `sourceLabels`, `sourceNamespace`, `gateways` and `port` in a match block are not request
//! conditions in Istio: they decide which proxies (and which listener ports) get the block at all.
//! They are resolved here, so the proxy only ever sees conditions it can test on a request.

use std::collections::BTreeMap;

use strait_api::networking::{self as api, HttpMatchRequest, HttpRoute};
use strait_mesh as mesh;

use crate::registry::{Registry, resolve_host};

/// Everything route translation needs to know about where the routes will run.
pub(crate) struct RouteContext<'a> {
    /// Namespace of the VirtualService (short hosts resolve against it).
    pub vs_namespace: &'a str,
    /// `<vs name>.<vs ns>` for route names.
    pub vs_name: String,
    /// The service/listener port of the virtual host being built.
    pub port: Option<u16>,
    /// `mesh` for sidecars, `<ns>/<name>` of the gateway for gateways.
    pub gateway: &'a str,
    /// Labels of the proxy's workload (for `sourceLabels`).
    pub node_labels: &'a BTreeMap<String, String>,
    /// Namespace of the proxy's workload (for `sourceNamespace`).
    pub node_namespace: &'a str,
    /// The registry, to find destination ports.
    pub registry: &'a Registry,
}

/// Istio's mesh-wide default retry policy, used when a route says nothing about retries:
/// 2 attempts on connection-level failures only (no status codes listed, so not on 503).
pub(crate) fn default_retry_policy() -> mesh::RetryPolicy {
    mesh::RetryPolicy {
        attempts: 2,
        per_try_timeout_ms: None,
        retry_on: DEFAULT_RETRY_ON.iter().map(|s| s.to_string()).collect(),
        retriable_status_codes: Vec::new(),
    }
}

const DEFAULT_RETRY_ON: [&str; 5] = [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
];

/// Translates one HTTP rule, or `None` when none of its match blocks applies to this proxy/port.
pub(crate) fn translate(ctx: &RouteContext<'_>, index: usize, rule: &HttpRoute) -> Option<mesh::Route> {
    let matches = if rule.r#match.is_empty() {
        Vec::new()
    } else {
        let kept: Vec<mesh::RequestMatch> = rule
            .r#match
            .iter()
            .filter(|m| applies(ctx, m))
            .filter_map(request_match)
            .collect();
        if kept.is_empty() {
            return None;
        }
        kept
    };
    let action = if let Some(r) = &rule.redirect {
        mesh::RouteAction::Redirect(redirect(r))
    } else if let Some(d) = &rule.direct_response {
        mesh::RouteAction::DirectResponse(direct_response(d))
    } else {
        mesh::RouteAction::Forward(
            rule.route
                .iter()
                .map(|d| mesh::WeightedCluster {
                    cluster: cluster_for(ctx, &d.destination),
                    // Istio: a lone destination takes everything whatever its weight.
                    weight: if rule.route.len() == 1 {
                        100
                    } else {
                        d.weight.max(0) as u32
                    },
                    headers: header_ops(d.headers.as_ref()),
                })
                .collect(),
        )
    };
    let name = if rule.name.is_empty() {
        format!("{}.{index}", ctx.vs_name)
    } else {
        rule.name.clone()
    };
    Some(mesh::Route {
        name,
        matches,
        action,
        timeout_ms: rule
            .timeout
            .as_ref()
            .map(|t| t.as_std().as_millis() as u64)
            .filter(|ms| *ms > 0),
        retries: retries(rule.retries.as_ref()),
        fault: rule.fault.as_ref().and_then(fault),
        headers: header_ops(rule.headers.as_ref()),
        rewrite: rule.rewrite.as_ref().map(|r| mesh::Rewrite {
            uri: non_empty(&r.uri),
            uri_regex: r
                .uri_regex_rewrite
                .as_ref()
                .map(|x| (x.r#match.clone(), x.rewrite.clone())),
            authority: non_empty(&r.authority),
        }),
        mirrors: mirrors(ctx, rule),
        cors: rule.cors_policy.as_ref().map(cors),
    })
}

/// Whether a match block is meant for this proxy and port.
fn applies(ctx: &RouteContext<'_>, m: &HttpMatchRequest) -> bool {
    if m.port != 0 && ctx.port.is_some_and(|p| u32::from(p) != m.port) {
        return false;
    }
    if !crate::registry::labels_match(&m.source_labels, ctx.node_labels) {
        return false;
    }
    if !m.source_namespace.is_empty() && m.source_namespace != ctx.node_namespace {
        return false;
    }
    if !m.gateways.is_empty() {
        return m
            .gateways
            .iter()
            .any(|g| gateway_ref_matches(g, ctx.vs_namespace, ctx.gateway));
    }
    true
}

/// Istio: a gateway reference is `<ns>/<name>` or `<name>` (in the VirtualService's namespace);
/// `mesh` means the sidecars.
pub(crate) fn gateway_ref_matches(reference: &str, vs_namespace: &str, gateway: &str) -> bool {
    if reference == "mesh" || gateway == "mesh" {
        return reference == gateway;
    }
    match reference.split_once('/') {
        Some(_) => reference == gateway,
        None => format!("{vs_namespace}/{reference}") == gateway,
    }
}

/// The request conditions of a match block, or `None` when the block can never match here.
fn request_match(m: &HttpMatchRequest) -> Option<mesh::RequestMatch> {
    let mut headers = Vec::new();
    for (name, value) in &m.headers {
        let name = name.to_ascii_lowercase();
        // Istio ignores these keys in `headers`: they have their own fields.
        if matches!(name.as_str(), "uri" | "scheme" | "method" | "authority") {
            continue;
        }
        // JWT claim routing needs RequestAuthentication, which this proxy does not run yet; a
        // condition it cannot test must not turn into "match everything".
        if name.starts_with("@request.auth.claims") {
            return None;
        }
        headers.push(mesh::HeaderMatch {
            name,
            value: string_match(value),
        });
    }
    let without_headers = m
        .without_headers
        .iter()
        .map(|(name, value)| mesh::HeaderMatch {
            name: name.to_ascii_lowercase(),
            value: string_match(value),
        })
        .collect();
    let query_params = m
        .query_params
        .iter()
        .map(|(name, value)| mesh::QueryParamMatch {
            name: name.clone(),
            value: string_match(value),
        })
        .collect();
    Some(mesh::RequestMatch {
        uri: m.uri.as_ref().and_then(string_match),
        scheme: m.scheme.as_ref().and_then(string_match),
        method: m.method.as_ref().and_then(string_match),
        authority: m.authority.as_ref().and_then(string_match),
        headers,
        without_headers,
        query_params,
        port: u16::try_from(m.port).ok().filter(|p| *p != 0),
        ignore_uri_case: m.ignore_uri_case,
    })
}

/// `None` for an empty match (`{}`), which means presence for headers and "anything" elsewhere.
fn string_match(m: &api::StringMatch) -> Option<mesh::StringMatch> {
    match m {
        api::StringMatch::Exact(s) => Some(mesh::StringMatch::Exact(s.clone())),
        api::StringMatch::Prefix(s) => Some(mesh::StringMatch::Prefix(s.clone())),
        api::StringMatch::Regex(s) => Some(mesh::StringMatch::Regex(s.clone())),
        api::StringMatch::Any => None,
    }
}

/// Istio's cluster name for a destination: `outbound|<port>|<subset>|<fqdn>`. A subset no
/// DestinationRule defines yields a name with no cluster behind it: 503 NC, as in Istio.
pub(crate) fn cluster_for(ctx: &RouteContext<'_>, d: &api::Destination) -> String {
    let host = resolve_host(&d.host, ctx.vs_namespace);
    let port = d
        .port
        .as_ref()
        .and_then(|p| u16::try_from(p.number).ok())
        .or_else(|| {
            let svc = ctx.registry.services.get(&host)?;
            match svc.ports.as_slice() {
                [only] => Some(only.number),
                ports => ctx
                    .port
                    .filter(|p| ports.iter().any(|sp| sp.number == *p))
                    .or(ports.first().map(|p| p.number)),
            }
        })
        .or(ctx.port)
        .unwrap_or(80);
    cluster_name(port, &d.subset, &host)
}

/// `outbound|<port>|<subset>|<fqdn>`.
pub(crate) fn cluster_name(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

fn retries(r: Option<&api::HttpRetry>) -> Option<mesh::RetryPolicy> {
    let Some(r) = r else {
        return Some(default_retry_policy());
    };
    if r.attempts <= 0 {
        return None;
    }
    let mut policy = mesh::RetryPolicy {
        attempts: r.attempts as u32,
        per_try_timeout_ms: r
            .per_try_timeout
            .as_ref()
            .map(|d| d.as_std().as_millis() as u64)
            .filter(|ms| *ms > 0),
        retry_on: Vec::new(),
        retriable_status_codes: Vec::new(),
    };
    if r.retry_on.trim().is_empty() {
        policy.retry_on = DEFAULT_RETRY_ON.iter().map(|s| s.to_string()).collect();
        return Some(policy);
    }
    for item in r.retry_on.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // Istio: integers in retryOn become retriable status codes.
        match item.parse::<u16>() {
            Ok(code) => policy.retriable_status_codes.push(code),
            Err(_) => policy.retry_on.push(item.to_string()),
        }
    }
    if !policy.retriable_status_codes.is_empty()
        && !policy.retry_on.iter().any(|s| s == "retriable-status-codes")
    {
        policy.retry_on.push("retriable-status-codes".to_string());
    }
    Some(policy)
}

/// Istio: a fault whose percentage is absent injects nothing.
fn fault(f: &api::HttpFaultInjection) -> Option<mesh::Fault> {
    let delay = f.delay.as_ref().and_then(|d| {
        let ms = d.fixed_delay.as_ref()?.as_std().as_millis() as u64;
        let percentage = d
            .percentage
            .map(|p| p.value)
            .or(d.percent.map(f64::from))
            .unwrap_or(0.0);
        Some(mesh::FaultDelay {
            fixed_delay_ms: ms,
            percentage,
        })
    });
    let abort = f.abort.as_ref().and_then(|a| {
        let status = match (a.http_status, a.grpc_status.as_deref()) {
            (Some(s), _) => u16::try_from(s).ok()?,
            // gRPC aborts answer 200 with grpc-status in Envoy; without gRPC support, UNAVAILABLE's
            // HTTP equivalent is the closest honest answer.
            (None, Some(_)) => 503,
            (None, None) => return None,
        };
        Some(mesh::FaultAbort {
            http_status: status,
            percentage: a.percentage.map(|p| p.value).unwrap_or(0.0),
        })
    });
    (delay.is_some() || abort.is_some()).then_some(mesh::Fault { delay, abort })
}

fn mirrors(ctx: &RouteContext<'_>, rule: &HttpRoute) -> Vec<mesh::Mirror> {
    let mut out = Vec::new();
    if let Some(m) = &rule.mirror {
        // Istio: mirrorPercentage absent means 100%.
        let percentage = rule
            .mirror_percentage
            .map(|p| p.value)
            .or(rule.mirror_percent.map(f64::from))
            .unwrap_or(100.0);
        out.push(mesh::Mirror {
            cluster: cluster_for(ctx, m),
            percentage,
        });
    }
    for m in &rule.mirrors {
        out.push(mesh::Mirror {
            cluster: cluster_for(ctx, &m.destination),
            percentage: m.percentage.map(|p| p.value).unwrap_or(100.0),
        });
    }
    out.retain(|m| m.percentage > 0.0);
    out
}

fn redirect(r: &api::HttpRedirect) -> mesh::Redirect {
    mesh::Redirect {
        uri: non_empty(&r.uri),
        prefix_rewrite: non_empty(&r.prefix_rewrite),
        authority: non_empty(&r.authority),
        scheme: non_empty(&r.scheme),
        port: r.port.and_then(|p| u16::try_from(p).ok()),
        code: if r.redirect_code == 0 {
            301
        } else {
            u16::try_from(r.redirect_code).unwrap_or(301)
        },
    }
}

fn direct_response(d: &api::HttpDirectResponse) -> mesh::DirectResponse {
    let body = d.body.as_ref().and_then(|b| {
        b.string.clone().or_else(|| {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.bytes.as_deref()?)
                .ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        })
    });
    mesh::DirectResponse {
        status: u16::try_from(d.status).unwrap_or(500),
        body,
    }
}

fn cors(c: &api::CorsPolicy) -> mesh::CorsPolicy {
    let mut allow_origins: Vec<mesh::StringMatch> = c.allow_origins.iter().filter_map(string_match).collect();
    allow_origins.extend(c.allow_origin.iter().map(|o| mesh::StringMatch::Exact(o.clone())));
    mesh::CorsPolicy {
        allow_origins,
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        max_age_s: c.max_age.as_ref().map(|d| d.as_std().as_secs()),
        allow_credentials: c.allow_credentials,
    }
}

/// Route- or destination-level header operations.
pub(crate) fn header_ops(h: Option<&api::Headers>) -> mesh::HeaderOps {
    let edit = |ops: Option<&api::HeaderOperations>| {
        ops.map(|o| mesh::HeaderEdit {
            set: lower_keys(&o.set),
            add: lower_keys(&o.add),
            remove: o.remove.iter().map(|s| s.to_ascii_lowercase()).collect(),
        })
        .unwrap_or_default()
    };
    mesh::HeaderOps {
        request: edit(h.and_then(|h| h.request.as_ref())),
        response: edit(h.and_then(|h| h.response.as_ref())),
    }
}

fn lower_keys(m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}
