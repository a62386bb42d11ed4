//! One line per request in Envoy's default text access-log format, so Istio users can read it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::reply::Flags;

/// What the access log records about one request.
#[derive(Debug, Default)]
pub(crate) struct LogEntry {
    pub(crate) start: Option<SystemTime>,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) protocol: &'static str,
    pub(crate) status: u16,
    pub(crate) flags: Flags,
    pub(crate) details: &'static str,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) duration: Duration,
    pub(crate) upstream_time: Option<Duration>,
    pub(crate) xff: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) authority: String,
    pub(crate) upstream_host: Option<SocketAddr>,
    pub(crate) upstream_cluster: Option<Arc<str>>,
    pub(crate) downstream_local: Option<SocketAddr>,
    pub(crate) downstream_remote: Option<SocketAddr>,
    pub(crate) route_name: Option<Arc<str>>,
}

fn dash(s: Option<&str>) -> &str {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

impl LogEntry {
    /// Renders the Envoy default format (empty values print as `-`).
    pub(crate) fn line(&self) -> String {
        let mut out = String::with_capacity(256);
        let up_time = self.upstream_time.map(|d| d.as_millis().to_string());
        let up_host = self.upstream_host.map(|a| a.to_string());
        let local = self.downstream_local.map(|a| a.to_string());
        let remote = self.downstream_remote.map(|a| a.to_string());
        let _ = write!(
            out,
            "[{}] \"{} {} {}\" {} {} {} - \"-\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} - {} {} - {}",
            self.start.map(rfc3339_millis).unwrap_or_else(|| "-".into()),
            dash(Some(&self.method)),
            dash(Some(&self.path)),
            self.protocol,
            self.status,
            self.flags,
            dash(Some(self.details)),
            self.bytes_received,
            self.bytes_sent,
            self.duration.as_millis(),
            dash(up_time.as_deref()),
            dash(self.xff.as_deref()),
            dash(self.user_agent.as_deref()),
            dash(self.request_id.as_deref()),
            dash(Some(&self.authority)),
            dash(up_host.as_deref()),
            dash(self.upstream_cluster.as_deref()),
            dash(local.as_deref()),
            dash(remote.as_deref()),
            dash(self.route_name.as_deref()),
        );
        out
    }

    /// Writes the line to stdout; a closed stdout must not break request handling.
    pub(crate) fn write(&self) {
        let mut line = self.line();
        line.push('\n');
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

/// `2026-11-26T11:22:33.123Z`, Envoy's START_TIME format.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_156_153_123);
        assert_eq!(rfc3339_millis(t), "2025-11-26T11:22:33.123Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn line_uses_dashes_for_missing_values() {
        let e = LogEntry {
            method: "GET".into(),
            path: "/x".into(),
            protocol: "HTTP/1.1",
            status: 404,
            flags: Flags::NR,
            details: "route_not_found",
            authority: "a".into(),
            ..Default::default()
        };
        let l = e.line();
        assert!(
            l.starts_with("[-] \"GET /x HTTP/1.1\" 404 NR route_not_found - \"-\" 0 0 0 - \"-\""),
            "{l}"
        );
        assert!(l.ends_with(" - -"), "{l}");
    }
}
