//! `strait proxy-status|proxy-config`: istioctl's views of what every proxy was sent and runs.

use std::process::ExitCode;

use serde_json::Value;
use strait_control::push::ProxyStatus;
use strait_mesh::{Direction, ProxyConfig, RequestMatch, StringMatch};

use super::client::{Client, ServerArgs, encode};
use super::table::render;

/// `proxy-status` arguments.
#[derive(clap::Args, Debug)]
pub struct ProxyStatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What part of a proxy's configuration to show.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Route tables, virtual hosts and routes.
    Routes,
    /// Upstream clusters.
    Clusters,
    /// Endpoints of every cluster.
    Endpoints,
    /// Listeners.
    Listeners,
    /// Everything.
    All,
}

/// Output formats of `proxy-config`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOutput {
    /// The section as JSON, exactly as the proxy received it.
    Json,
}

/// `proxy-config` arguments.
#[derive(clap::Args, Debug)]
pub struct ProxyConfigArgs {
    /// What to show.
    #[arg(value_enum)]
    pub section: Section,
    /// Proxy id as listed by `strait proxy-status` (`<workload>.<namespace>`).
    pub proxy: String,
    /// Output format (a table when absent).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ConfigOutput>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `SYNCED`, `STALE` (sent but not acknowledged), `NOT SENT`, or `NACK: <reason>` when the
/// proxy rejected the newest version it was sent.
pub fn sync_state(status: &ProxyStatus) -> String {
    if let (Some(reason), Some(nacked)) = (&status.nack_reason, &status.nack_version)
        && status.sent_version.as_ref() == Some(nacked)
    {
        return format!("NACK: {reason}");
    }
    match (&status.sent_version, &status.acked_version) {
        (None, _) => "NOT SENT".into(),
        (Some(sent), Some(acked)) if sent == acked => "SYNCED".into(),
        _ => "STALE".into(),
    }
}

/// The `proxy-status` table.
pub fn status_table(proxies: &[ProxyStatus]) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = proxies
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.role.clone(),
                dash(&p.acked_version),
                dash(&p.sent_version),
                sync_state(p),
            ]
        })
        .collect();
    render(&["NAME", "ROLE", "VERSION(acked)", "SENT", "STATUS"], &rows)
}

/// `strait proxy-status`.
pub async fn proxy_status(args: ProxyStatusArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server).await?;
    let answer = client.get("/api/v1/proxies").await?;
    if answer.status != 200 {
        for e in answer.errors() {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let proxies: Vec<ProxyStatus> = serde_json::from_value(
        answer
            .body
            .get("proxies")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
    )
    .map_err(|e| anyhow::anyhow!("unexpected answer from the control plane: {e}"))?;
    if proxies.is_empty() {
        eprintln!("No proxies connected");
    } else {
        print!("{}", status_table(&proxies));
    }
    Ok(ExitCode::SUCCESS)
}

/// `strait proxy-config`.
pub async fn proxy_config(args: ProxyConfigArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server).await?;
    let answer = client
        .get(&format!("/api/v1/proxies/{}/config", encode(&args.proxy)))
        .await?;
    if answer.status != 200 {
        for e in answer.errors() {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    if args.output == Some(ConfigOutput::Json) {
        let shown = match args.section {
            Section::All => answer.body,
            Section::Routes => answer.body.get("routeTables").cloned().unwrap_or_default(),
            Section::Clusters | Section::Endpoints => {
                answer.body.get("clusters").cloned().unwrap_or_default()
            }
            Section::Listeners => answer.body.get("listeners").cloned().unwrap_or_default(),
        };
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config: ProxyConfig = serde_json::from_value(answer.body)
        .map_err(|e| anyhow::anyhow!("unexpected configuration from the control plane: {e}"))?;
    print!("{}", config_tables(&config, args.section));
    Ok(ExitCode::SUCCESS)
}

/// The istioctl-style tables for `section`.
pub fn config_tables(config: &ProxyConfig, section: Section) -> String {
    match section {
        Section::Routes => routes_table(config),
        Section::Clusters => clusters_table(config),
        Section::Endpoints => endpoints_table(config),
        Section::Listeners => listeners_table(config),
        Section::All => [
            listeners_table(config),
            routes_table(config),
            clusters_table(config),
            endpoints_table(config),
        ]
        .join("\n"),
    }
}

/// `ADDRESS PORT DIRECTION ROUTE TABLE`.
pub fn listeners_table(config: &ProxyConfig) -> String {
    let rows: Vec<Vec<String>> = config
        .listeners
        .iter()
        .map(|l| {
            let direction = match l.direction {
                Direction::Outbound => "OUTBOUND",
                Direction::Inbound => "INBOUND",
                Direction::Gateway => "GATEWAY",
            };
            vec![
                l.address.ip().to_string(),
                l.address.port().to_string(),
                direction.into(),
                l.route_table.clone(),
            ]
        })
        .collect();
    render(&["ADDRESS", "PORT", "DIRECTION", "ROUTE TABLE"], &rows)
}

/// istioctl's MATCH cell: `/reviews*` for a prefix, the path for exact, the regex as is, `/*`
/// for everything; other conditions are summarised after the path.
pub fn match_cell(m: &RequestMatch) -> String {
    let mut cell = match &m.uri {
        None => "/*".to_string(),
        Some(StringMatch::Exact(p)) => p.clone(),
        Some(StringMatch::Prefix(p)) => format!("{p}*"),
        Some(StringMatch::Regex(r)) => format!("regex {r}"),
    };
    let mut extra: Vec<String> = m.headers.iter().map(|h| format!("header {}", h.name)).collect();
    extra.extend(m.without_headers.iter().map(|h| format!("!header {}", h.name)));
    extra.extend(m.query_params.iter().map(|q| format!("query {}", q.name)));
    if let Some(method) = &m.method {
        extra.push(format!("method {}", string_match(method)));
    }
    if !extra.is_empty() {
        cell.push_str(&format!(" ({})", extra.join(", ")));
    }
    cell
}

fn string_match(m: &StringMatch) -> String {
    match m {
        StringMatch::Exact(s) => s.clone(),
        StringMatch::Prefix(s) => format!("{s}*"),
        StringMatch::Regex(r) => format!("~{r}"),
    }
}

/// `NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE`, one row per route.
pub fn routes_table(config: &ProxyConfig) -> String {
    let mut rows = Vec::new();
    for table in &config.route_tables {
        for vhost in &table.virtual_hosts {
            let domains = vhost.domains.join(",");
            for route in &vhost.routes {
                let matches = if route.matches.is_empty() {
                    "/*".to_string()
                } else {
                    route
                        .matches
                        .iter()
                        .map(match_cell)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                rows.push(vec![
                    table.name.clone(),
                    vhost.name.clone(),
                    domains.clone(),
                    matches,
                    route.name.clone(),
                ]);
            }
            if vhost.routes.is_empty() {
                rows.push(vec![
                    table.name.clone(),
                    vhost.name.clone(),
                    domains.clone(),
                    String::new(),
                    String::new(),
                ]);
            }
        }
    }
    render(
        &["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
        &rows,
    )
}

/// `inbound|9080||` → `inbound`; Istio encodes the direction first in the cluster name.
fn cluster_direction(name: &str) -> String {
    name.split('|')
        .next()
        .filter(|d| matches!(*d, "inbound" | "outbound"))
        .unwrap_or("-")
        .to_string()
}

/// `SERVICE FQDN PORT SUBSET DIRECTION`.
pub fn clusters_table(config: &ProxyConfig) -> String {
    let rows: Vec<Vec<String>> = config
        .clusters
        .iter()
        .map(|c| {
            vec![
                if c.service.is_empty() {
                    c.name.clone()
                } else {
                    c.service.clone()
                },
                c.port.to_string(),
                if c.subset.is_empty() {
                    "-".into()
                } else {
                    c.subset.clone()
                },
                cluster_direction(&c.name),
            ]
        })
        .collect();
    render(&["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION"], &rows)
}

/// `ENDPOINT STATUS CLUSTER`.
pub fn endpoints_table(config: &ProxyConfig) -> String {
    let rows: Vec<Vec<String>> = config
        .clusters
        .iter()
        .flat_map(|c| {
            c.endpoints
                .iter()
                .map(|e| vec![e.address.to_string(), "HEALTHY".into(), c.name.clone()])
        })
        .collect();
    render(&["ENDPOINT", "STATUS", "CLUSTER"], &rows)
}

#[cfg(test)]
mod tests {
    use strait_mesh::{Cluster, Endpoint, HeaderMatch, Listener, Route, RouteTable, VirtualHost};

    use super::*;

    fn status(sent: Option<&str>, acked: Option<&str>, nack: Option<&str>) -> ProxyStatus {
        ProxyStatus {
            id: "productpage-v1.default".into(),
            role: "sidecar".into(),
            namespace: "default".into(),
            connected_since: "2026-11-26T12:00:00Z".into(),
            sent_version: sent.map(Into::into),
            acked_version: acked.map(Into::into),
            nack_version: nack.map(|_| "7".into()),
            nack_reason: nack.map(Into::into),
        }
    }

    #[test]
    fn sync_states() {
        assert_eq!(sync_state(&status(Some("7"), Some("7"), None)), "SYNCED");
        assert_eq!(sync_state(&status(Some("8"), Some("7"), None)), "STALE");
        assert_eq!(sync_state(&status(None, None, None)), "NOT SENT");
        assert_eq!(
            sync_state(&status(Some("7"), Some("6"), Some("bad regex"))),
            "NACK: bad regex"
        );
        // An old rejection, since superseded by an acknowledged version.
        assert_eq!(
            sync_state(&status(Some("8"), Some("8"), Some("bad regex"))),
            "SYNCED"
        );
        assert_eq!(
            status_table(&[status(Some("8"), Some("7"), None)]),
            "NAME                     ROLE      VERSION(acked)   SENT   STATUS\n\
             productpage-v1.default   sidecar   7                8      STALE\n"
        );
    }

    fn config() -> ProxyConfig {
        ProxyConfig {
            version: "3".into(),
            listeners: vec![Listener {
                name: "0.0.0.0_8080".into(),
                address: "0.0.0.0:8080".parse().expect("addr"),
                direction: Direction::Gateway,
                route_table: "http.8080".into(),
                tls: None,
            }],
            route_tables: vec![RouteTable {
                name: "http.8080".into(),
                virtual_hosts: vec![VirtualHost {
                    name: "bookinfo.example.com:8080".into(),
                    domains: vec!["bookinfo.example.com".into()],
                    port: None,
                    routes: vec![Route {
                        name: "bookinfo.default".into(),
                        matches: vec![
                            RequestMatch {
                                uri: Some(StringMatch::Exact("/productpage".into())),
                                ..Default::default()
                            },
                            RequestMatch {
                                uri: Some(StringMatch::Prefix("/api/v1/products".into())),
                                headers: vec![HeaderMatch {
                                    name: "end-user".into(),
                                    value: None,
                                }],
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }],
                }],
            }],
            clusters: vec![Cluster {
                name: "outbound|9080|v1|reviews.default.svc.cluster.local".into(),
                service: "reviews.default.svc.cluster.local".into(),
                port: 9080,
                subset: "v1".into(),
                endpoints: vec![Endpoint {
                    address: "127.10.0.7:9080".parse().expect("addr"),
                    labels: Default::default(),
                    weight: 1,
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn config_tables_like_istioctl() {
        let c = config();
        assert_eq!(
            listeners_table(&c),
            "ADDRESS   PORT   DIRECTION   ROUTE TABLE\n0.0.0.0   8080   GATEWAY     http.8080\n"
        );
        assert_eq!(
            routes_table(&c),
            "NAME        VHOST NAME                  DOMAINS                MATCH                                               VIRTUAL SERVICE\n\
             http.8080   bookinfo.example.com:8080   bookinfo.example.com   /productpage; /api/v1/products* (header end-user)   bookinfo.default\n"
        );
        assert_eq!(
            clusters_table(&c),
            "SERVICE FQDN                        PORT   SUBSET   DIRECTION\n\
             reviews.default.svc.cluster.local   9080   v1       outbound\n"
        );
        assert_eq!(
            endpoints_table(&c),
            "ENDPOINT          STATUS    CLUSTER\n\
             127.10.0.7:9080   HEALTHY   outbound|9080|v1|reviews.default.svc.cluster.local\n"
        );
        assert_eq!(config_tables(&c, Section::All).matches("\n\n").count(), 3);
    }
}
