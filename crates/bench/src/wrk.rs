//! Reading `wrk`'s summary. wrk (Debian's 4.1) is closed-loop, so the harness uses it only for
//! maximum throughput over HTTP/1.1: it is written in C and leaves more of the load generator's
//! core to the backend than a Rust client would.

/// What a wrk run reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WrkSummary {
    /// Completed requests (any status).
    pub requests: u64,
    /// Seconds the run lasted.
    pub duration_s: f64,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
}

impl WrkSummary {
    /// Successful requests per second.
    pub fn ok_rps(&self) -> f64 {
        if self.duration_s <= 0.0 {
            return 0.0;
        }
        self.requests.saturating_sub(self.errors) as f64 / self.duration_s
    }
}

fn seconds(text: &str) -> Option<f64> {
    let text = text.trim_end_matches(',');
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|v| v / 1000.0);
    }
    if let Some(m) = text.strip_suffix('m') {
        return m.parse::<f64>().ok().map(|v| v * 60.0);
    }
    text.strip_suffix('s')?.parse().ok()
}

/// Parses wrk's text output; `None` if the summary line is missing (wrk failed).
pub fn parse(text: &str) -> Option<WrkSummary> {
    let mut out = WrkSummary::default();
    let mut found = false;
    for line in text.lines().map(str::trim) {
        if let Some((count, rest)) = line.split_once(" requests in ") {
            out.requests = count.trim().parse().ok()?;
            out.duration_s = seconds(rest.split_whitespace().next()?)?;
            found = true;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            out.errors += rest
                .split(',')
                .filter_map(|kv| kv.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            out.errors += rest.trim().parse::<u64>().unwrap_or(0);
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 4s test @ http://127.0.0.1:18101/\n  1 threads and 64 connections\n  \
        Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.01ms  300.00us   9.00ms   90.00%\n  \
        126544 requests in 4.00s, 141.78MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  \
        Non-2xx or 3xx responses: 4\nRequests/sec:  31636.00\nTransfer/sec:     35.44MB\n";

    #[test]
    fn summary_with_errors() {
        let s = parse(OUT).unwrap();
        assert_eq!((s.requests, s.errors), (126544, 7));
        assert_eq!(s.duration_s, 4.0);
        assert_eq!(s.ok_rps(), (126544.0 - 7.0) / 4.0);
    }

    #[test]
    fn durations_in_ms_and_minutes() {
        assert_eq!(seconds("900.5ms"), Some(0.9005));
        assert_eq!(seconds("1.00m"), Some(60.0));
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_none());
    }
}
