//! kubectl-style tables: columns padded to the widest cell plus three spaces, kubectl's AGE
//! format, and the printer columns Istio's CRDs declare for each kind.

use std::time::SystemTime;

use serde_json::Value;
use strait_api::Kind;

/// Renders rows under headers, columns separated by at least three spaces (kubectl's tabwriter
/// settings); no trailing spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let width = widths.get(i).copied().unwrap_or(0);
                line.push_str(&" ".repeat(width.saturating_sub(cell.chars().count()) + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's `HumanDuration`: `5s`, `3m12s`, `45m`, `5h3m`, `20h`, `3d4h`, `40d`, `2y10d`.
pub fn human_age(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// AGE of a resource from `metadata.creationTimestamp`; `<unknown>` when absent, as kubectl.
pub fn age_of(resource: &Value, now: SystemTime) -> String {
    let Some(created) = resource
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339(t).ok())
    else {
        return "<unknown>".into();
    };
    let seconds = match now.duration_since(created) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    human_age(seconds)
}

/// The printer columns Istio's CRD declares for `kind` (after NAME; AGE is where the CRD puts
/// it): `(header, JSON pointer into the resource)`, the pointer empty for AGE.
pub fn printer_columns(kind: Kind) -> &'static [(&'static str, &'static str)] {
    const AGE: (&str, &str) = ("AGE", "");
    match kind {
        Kind::VirtualService => &[("GATEWAYS", "/spec/gateways"), ("HOSTS", "/spec/hosts"), AGE],
        Kind::DestinationRule => &[("HOST", "/spec/host"), AGE],
        Kind::ServiceEntry => &[
            ("HOSTS", "/spec/hosts"),
            ("LOCATION", "/spec/location"),
            ("RESOLUTION", "/spec/resolution"),
            AGE,
        ],
        Kind::WorkloadEntry => &[AGE, ("ADDRESS", "/spec/address")],
        Kind::AuthorizationPolicy => &[("ACTION", "/spec/action"), AGE],
        Kind::PeerAuthentication => &[("MODE", "/spec/mtls/mode"), AGE],
        Kind::Gateway | Kind::RequestAuthentication => &[AGE],
    }
}

/// One cell: strings as they are, lists as compact JSON (`["bookinfo-gateway"]`, as kubectl
/// prints CRD list columns), absent values empty.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// The `get` table for resources of one kind. `namespace_column` is `-A`; `qualified` prefixes
/// names with `virtualservice.networking.istio.io/`, as `kubectl get all` does.
pub fn resource_table(
    kind: Kind,
    items: &[Value],
    namespace_column: bool,
    qualified: bool,
    now: SystemTime,
) -> String {
    let columns = printer_columns(kind);
    let mut headers: Vec<&str> = Vec::new();
    if namespace_column {
        headers.push("NAMESPACE");
    }
    headers.push("NAME");
    headers.extend(columns.iter().map(|(h, _)| *h));
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut row = Vec::new();
            if namespace_column {
                row.push(cell(item.pointer("/metadata/namespace")));
            }
            let name = cell(item.pointer("/metadata/name"));
            row.push(if qualified {
                format!("{}/{name}", kind.qualified())
            } else {
                name
            });
            for (_, pointer) in columns {
                row.push(if pointer.is_empty() {
                    age_of(item, now)
                } else {
                    cell(item.pointer(pointer))
                });
            }
            row
        })
        .collect();
    render(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ages_like_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (10_799, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (20 * 3600, "20h"),
            (48 * 3600, "2d"),
            (3 * 86_400 + 4 * 3600, "3d4h"),
            (40 * 86_400, "40d"),
            (2 * 365 * 86_400, "2y"),
            (2 * 365 * 86_400 + 10 * 86_400, "2y10d"),
            (9 * 365 * 86_400, "9y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_age(seconds), want, "{seconds}s");
        }
    }

    #[test]
    fn render_pads_three_spaces() {
        let rows = vec![
            vec![
                "bookinfo".to_string(),
                "[\"bookinfo-gateway\"]".to_string(),
                "5s".to_string(),
            ],
            vec!["reviews".to_string(), String::new(), "3m12s".to_string()],
        ];
        let table = render(&["NAME", "GATEWAYS", "AGE"], &rows);
        assert_eq!(
            table,
            "NAME       GATEWAYS               AGE\n\
             bookinfo   [\"bookinfo-gateway\"]   5s\n\
             reviews                           3m12s\n"
        );
    }

    fn item(ns: &str, name: &str, spec: Value, created: &str) -> Value {
        serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": spec,
        })
    }

    #[test]
    fn virtual_service_columns() {
        let now = humantime::parse_rfc3339("2026-11-26T12:00:00Z").expect("time");
        let items = [
            item(
                "default",
                "bookinfo",
                serde_json::json!({"gateways": ["bookinfo-gateway"], "hosts": ["*"]}),
                "2026-11-26T11:59:55Z",
            ),
            item(
                "default",
                "reviews",
                serde_json::json!({"hosts": ["reviews"]}),
                "2026-11-24T12:00:00Z",
            ),
        ];
        assert_eq!(
            resource_table(Kind::VirtualService, &items, false, false, now),
            "NAME       GATEWAYS               HOSTS         AGE\n\
             bookinfo   [\"bookinfo-gateway\"]   [\"*\"]         5s\n\
             reviews                           [\"reviews\"]   2d\n"
        );
        assert_eq!(
            resource_table(Kind::VirtualService, &items[..1], true, true, now),
            "NAMESPACE   NAME                                          GATEWAYS               HOSTS   AGE\n\
             default     virtualservice.networking.istio.io/bookinfo   [\"bookinfo-gateway\"]   [\"*\"]   5s\n"
        );
    }

    #[test]
    fn other_kinds_columns() {
        let now = humantime::parse_rfc3339("2026-11-26T12:00:00Z").expect("time");
        let created = "2026-11-26T11:00:00Z";
        let we = item(
            "default",
            "reviews-v1",
            serde_json::json!({"address": "127.10.0.7"}),
            created,
        );
        assert_eq!(
            resource_table(Kind::WorkloadEntry, &[we], false, false, now),
            "NAME         AGE   ADDRESS\nreviews-v1   60m   127.10.0.7\n"
        );
        let pa = item(
            "istio-system",
            "default",
            serde_json::json!({"mtls": {"mode": "STRICT"}}),
            created,
        );
        assert_eq!(
            resource_table(Kind::PeerAuthentication, &[pa], false, false, now),
            "NAME      MODE     AGE\ndefault   STRICT   60m\n"
        );
        let se = item(
            "default",
            "httpbin-ext",
            serde_json::json!({"hosts": ["httpbin.org"], "location": "MESH_EXTERNAL", "resolution": "DNS"}),
            created,
        );
        assert!(
            resource_table(Kind::ServiceEntry, &[se], false, false, now)
                .ends_with("httpbin-ext   [\"httpbin.org\"]   MESH_EXTERNAL   DNS          60m\n")
        );
        let no_time = serde_json::json!({"metadata": {"name": "x"}});
        assert_eq!(age_of(&no_time, now), "<unknown>");
        let future = item("default", "x", Value::Null, "2026-11-26T12:00:30Z");
        assert_eq!(age_of(&future, now + Duration::from_secs(0)), "<invalid>");
    }
}
