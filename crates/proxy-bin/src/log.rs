//! A small `tracing` subscriber for the proxy: level filter from `STRAIT_LOG`, one line per event
//! on stderr.
//!
//! Why not tracing-subscriber: its `EnvFilter` compiles regexes and its registry and formatter
//! bring start-up code whose pages stay resident in an idle proxy. The proxy logs a handful of
//! events (config applied, NACKs, accept errors), so a level filter by target prefix and a
//! plain line format are all it needs.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// A `STRAIT_LOG` value `strait-proxy` does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "STRAIT_LOG directive {0:?} is not understood: use a level (off, error, warn, info, debug, trace) \
     or target=level, comma-separated"
)]
pub struct FilterError(pub String);

/// Which events are printed: a default level plus per-target levels (longest prefix wins),
/// the subset of `tracing-subscriber`'s `EnvFilter` syntax that `strait proxy` users write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// (target prefix, level), longest prefix first.
    targets: Vec<(String, LevelFilter)>,
}

impl Default for Filter {
    /// `warn`, as `strait proxy` without `STRAIT_LOG`.
    fn default() -> Self {
        Filter {
            default: LevelFilter::WARN,
            targets: Vec::new(),
        }
    }
}

impl Filter {
    /// Parses `level` / `target=level` directives separated by commas; empty parts are skipped.
    pub fn parse(spec: &str) -> Result<Filter, FilterError> {
        // EnvFilter's default when only targets are given: everything else off.
        let mut filter = Filter {
            default: LevelFilter::OFF,
            targets: Vec::new(),
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || FilterError(part.to_string());
            match part.split_once('=') {
                Some((target, level)) => {
                    let target = target.trim();
                    if target.is_empty() || target.contains(['[', ']', '{', '}']) {
                        return Err(bad());
                    }
                    let level = level.trim().parse::<LevelFilter>().map_err(|_| bad())?;
                    filter.targets.retain(|(t, _)| t != target);
                    filter.targets.push((target.to_string(), level));
                }
                None => match part.parse::<LevelFilter>() {
                    Ok(level) => filter.default = level,
                    // A bare target means "everything from it" (EnvFilter: trace).
                    Err(_) if !part.contains(['[', ']', '{', '}', ' ']) => {
                        filter.targets.retain(|(t, _)| t != part);
                        filter.targets.push((part.to_string(), LevelFilter::TRACE));
                    }
                    Err(_) => return Err(bad()),
                },
            }
        }
        filter.targets.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        Ok(filter)
    }

    /// The level that applies to `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(t, _)| target.starts_with(t.as_str()))
            .map_or(self.default, |(_, l)| *l)
    }

    /// Whether an event at `level` from `target` is printed.
    pub fn allows(&self, target: &str, level: &Level) -> bool {
        self.level_for(target) >= *level
    }

    /// The most verbose level any target gets (lets `tracing` skip everything above it cheaply).
    pub fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, LevelFilter::max)
    }
}

/// Installs the subscriber for `STRAIT_LOG` (unset: `warn`). An unparsable value is reported on
/// stderr and `warn` is used, so a typo never stops a proxy.
pub fn init(strait_log: Option<&str>) {
    let filter = match strait_log {
        None => Filter::default(),
        Some(spec) => Filter::parse(spec).unwrap_or_else(|e| {
            eprintln!("warning: {e}; logging at warn");
            Filter::default()
        }),
    };
    // Err: a subscriber was installed already (only in tests); keep it.
    let _ = tracing::subscriber::set_global_default(Logger {
        filter,
        next_span: AtomicU64::new(1),
    });
}

/// Prints events as `2026-11-26T13:40:16.123456Z  WARN target: message key=value`.
struct Logger {
    filter: Filter,
    next_span: AtomicU64,
}

impl Subscriber for Logger {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.filter.allows(meta.target(), meta.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max())
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Spans are not printed; ids only need to be unique and non-zero.
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = format_event(SystemTime::now(), event);
        // One write per line so lines of concurrent threads do not interleave; a closed stderr
        // must not take the proxy down.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn format_event(now: SystemTime, event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut line = String::with_capacity(128);
    write_timestamp(&mut line, now);
    let _ = write!(line, " {:>5} {}: ", meta.level().as_str(), meta.target());
    let mut fields = Fields {
        message: String::new(),
        rest: String::new(),
    };
    event.record(&mut fields);
    line.push_str(&fields.message);
    if !fields.rest.is_empty() {
        if !fields.message.is_empty() {
            line.push(' ');
        }
        line.push_str(&fields.rest);
    }
    line.push('\n');
    line
}

struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.rest.is_empty() {
                self.rest.push(' ');
            }
            let _ = write!(self.rest, "{}={value:?}", field.name());
        }
    }
}

/// RFC 3339 UTC with microseconds, like tracing-subscriber's default format.
fn write_timestamp(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_micros()
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn default_is_warn() {
        let f = Filter::default();
        assert!(f.allows("strait_proxy::xds", &Level::WARN));
        assert!(!f.allows("strait_proxy::xds", &Level::INFO));
        assert_eq!(f.max(), LevelFilter::WARN);
    }

    #[test]
    fn directives_table() {
        // (spec, target, level, printed?)
        let cases = [
            ("info", "h2::codec", Level::INFO, true),
            ("info", "h2::codec", Level::DEBUG, false),
            ("strait_proxy=debug", "strait_proxy::pool", Level::DEBUG, true),
            ("strait_proxy=debug", "hyper::proto", Level::ERROR, false),
            ("strait_proxy=debug,warn", "hyper::proto", Level::WARN, true),
            (
                "warn,strait_proxy::xds=info",
                "strait_proxy::xds",
                Level::INFO,
                true,
            ),
            (
                "warn,strait_proxy::xds=info",
                "strait_proxy::pool",
                Level::INFO,
                false,
            ),
            (
                "debug,strait_proxy=error",
                "strait_proxy::xds",
                Level::WARN,
                false,
            ),
            ("off", "strait_proxy", Level::ERROR, false),
            ("strait_proxy", "strait_proxy::xds", Level::TRACE, true),
            (" INFO ", "x", Level::INFO, true),
            ("", "x", Level::ERROR, false),
        ];
        for (spec, target, level, want) in cases {
            let f = Filter::parse(spec).unwrap();
            assert_eq!(f.allows(target, &level), want, "{spec:?} {target} {level}");
        }
    }

    #[test]
    fn the_most_specific_target_wins_whatever_the_order() {
        for spec in ["a=error,a::b=trace", "a::b=trace,a=error"] {
            let f = Filter::parse(spec).unwrap();
            assert_eq!(f.level_for("a::b::c"), LevelFilter::TRACE, "{spec}");
            assert_eq!(f.level_for("a::x"), LevelFilter::ERROR, "{spec}");
            assert_eq!(f.max(), LevelFilter::TRACE);
        }
    }

    #[test]
    fn span_filters_are_refused() {
        for spec in ["a[span]=info", "x=loud", "=info", "a{f=1}"] {
            assert!(Filter::parse(spec).is_err(), "{spec}");
        }
        let msg = Filter::parse("x=loud").unwrap_err().to_string();
        assert!(msg.contains("x=loud") && msg.contains("target=level"), "{msg}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut s = String::new();
        write_timestamp(&mut s, UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        let mut s = String::new();
        // 2026-11-26T13:40:16.123456Z
        write_timestamp(&mut s, UNIX_EPOCH + Duration::new(1_795_700_416, 123_456_000));
        assert_eq!(s, "2026-11-26T13:40:16.123456Z");
        let mut s = String::new();
        // 2024-02-29T23:59:59Z, a leap day.
        write_timestamp(&mut s, UNIX_EPOCH + Duration::from_secs(1_709_251_199));
        assert_eq!(s, "2024-02-29T23:59:59.000000Z");
    }

    #[test]
    fn events_are_one_line_with_fields() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl Subscriber for Capture {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, e: &Event<'_>) {
                if let Ok(mut l) = self.0.lock() {
                    l.push(format_event(UNIX_EPOCH, e));
                }
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        tracing::subscriber::with_default(Capture(lines.clone()), || {
            let version = "v7";
            tracing::warn!(target: "strait_proxy::xds", %version, reason = "bad", "rejecting pushed config (NACK)");
            tracing::info!(target: "t", n = 3);
        });
        let lines = lines.lock().unwrap();
        assert_eq!(
            lines[0],
            "1970-01-01T00:00:00.000000Z  WARN strait_proxy::xds: rejecting pushed config (NACK) \
             version=v7 reason=\"bad\"\n"
        );
        assert_eq!(lines[1], "1970-01-01T00:00:00.000000Z  INFO t: n=3\n");
    }

    proptest! {
        /// Any STRAIT_LOG value parses or is refused: never a panic, and a parsed filter's
        /// max level bounds every target's level.
        #[test]
        fn parse_never_panics(spec in "[a-z:_=,\\[\\]{} ]{0,30}", target in "[a-z:_]{0,12}") {
            if let Ok(f) = Filter::parse(&spec) {
                prop_assert!(f.level_for(&target) <= f.max());
            }
        }

        /// civil_from_days agrees with counting days forward one at a time.
        #[test]
        fn calendar_steps_by_one_day(days in 0i64..200_000) {
            let (y, m, d) = civil_from_days(days);
            let (y2, m2, d2) = civil_from_days(days + 1);
            let next = if d2 == 1 {
                (m2 == 1 && y2 == y + 1 && m == 12) || (m2 == m + 1 && y2 == y)
            } else {
                y2 == y && m2 == m && d2 == d + 1
            };
            prop_assert!(next, "{:?} -> {:?}", (y, m, d), (y2, m2, d2));
            prop_assert!((1..=31).contains(&d));
        }
    }
}
