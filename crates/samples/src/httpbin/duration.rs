//! Go's `time.ParseDuration` and `Duration.String`, which `/delay` uses for input and errors.

/// Nanoseconds per unit, longest suffix first so `ms` wins over `m`.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parses a Go duration string (`1.5s`, `500ms`, `1h2m`, `0`) into nanoseconds.
pub(crate) fn parse_go(input: &str) -> Option<i64> {
    let (negative, mut rest) = match input.as_bytes().first()? {
        b'-' => (true, &input[1..]),
        b'+' => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let (unit, scale) = UNITS
            .iter()
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())?;
        rest = &rest[unit.len()..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

/// Go's `strconv.ParseFloat` accepted syntax, for the "seconds" fallback.
pub(crate) fn parse_seconds(input: &str) -> Option<f64> {
    let ok = !input.is_empty()
        && input
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if ok { input.parse().ok() } else { None }
}

/// Go's `Duration.String()`.
pub(crate) fn format_go(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let negative = nanos < 0;
    let u = nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    let frac = |value: u64, digits: u32| -> String {
        let scale = 10u64.pow(digits);
        let whole = value / scale;
        let part = value % scale;
        if part == 0 {
            whole.to_string()
        } else {
            let s = format!("{part:0width$}", width = digits as usize);
            format!("{whole}.{}", s.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 6));
    }
    let total_secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let secs = frac((total_secs % 60) * 1_000_000_000 + sub, 9);
    let mins = total_secs / 60;
    if mins == 0 {
        return format!("{sign}{secs}s");
    }
    let hours = mins / 60;
    if hours == 0 {
        return format!("{sign}{mins}m{secs}s");
    }
    format!("{sign}{hours}h{}m{secs}s", mins % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go("5s"), Some(5_000_000_000));
        assert_eq!(parse_go("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go("500ms"), Some(500_000_000));
        assert_eq!(parse_go("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go("0"), Some(0));
        assert_eq!(parse_go("5"), None);
        assert_eq!(parse_go("abc"), None);
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go(11_000_000_000), "11s");
        assert_eq!(format_go(10_000_000_000), "10s");
        assert_eq!(format_go(10_500_000_000), "10.5s");
        assert_eq!(format_go(90_000_000_000), "1m30s");
        assert_eq!(format_go(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go(1_500_000), "1.5ms");
        assert_eq!(format_go(-1_000_000_000), "-1s");
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(n in 0i64..1_000_000_000_000_000i64 / 1000) {
            let s = format_go(n);
            proptest::prop_assert_eq!(parse_go(&s), Some(n), "{}", s);
        }

        #[test]
        fn parse_never_panics(s in ".{0,16}") {
            let _ = parse_go(&s);
            let _ = parse_seconds(&s);
        }
    }
}
