//! Protobuf-JSON conventions Istio's API uses: Go-style duration strings, integers that may be
//! written as numbers or numeric strings, and percentages.
//!
//! Istio unmarshals its CRDs with protobuf-JSON rules, so `attempts: "3"` and `attempts: 3` are the
//! same thing, and a duration is a string such as `1.5s`, `300ms` or `1h30m`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration as written in Istio YAML (`1.5s`, `300ms`, `1h`), kept with its original text so a
/// round trip prints what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    text: String,
    value: std::time::Duration,
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("a duration cannot be empty; write e.g. \"1s\" or \"300ms\"")]
    Empty,
    /// Negative durations mean nothing for timeouts and intervals.
    #[error("duration {0:?} is negative; durations must be zero or positive")]
    Negative(String),
    /// Not of the form `<number><unit>`.
    #[error("invalid duration {0:?}: write a number followed by a unit (ns, us, ms, s, m, h), e.g. \"1.5s\"")]
    Syntax(String),
    /// Larger than any timer can hold.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

impl Duration {
    /// Parses a Go/Istio duration string such as `1.5s`, `300ms`, `1h30m` or `0`.
    pub fn parse(text: &str) -> Result<Duration, DurationError> {
        let value = parse_go_duration(text)?;
        Ok(Duration {
            text: text.to_string(),
            value,
        })
    }

    /// Builds a duration from a value (printed in milliseconds or seconds).
    pub fn from_std(value: std::time::Duration) -> Duration {
        let text = if value.subsec_nanos() == 0 {
            format!("{}s", value.as_secs())
        } else if value.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ms", value.as_millis())
        } else {
            format!("{}ns", value.as_nanos())
        };
        Duration { text, value }
    }

    /// The value.
    pub fn as_std(&self) -> std::time::Duration {
        self.value
    }

    /// Whole milliseconds, what Envoy-style timers use.
    pub fn as_millis(&self) -> u128 {
        self.value.as_millis()
    }

    /// The text the user wrote.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.value
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).map_err(de::Error::custom)
    }
}

/// Go's `time.ParseDuration` grammar, which Istio accepts: `[-+]?(<decimal><unit>)+` or `0`.
fn parse_go_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    // Indexing is safe: `s` is not empty (checked above).
    let (negative, mut rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::Syntax(text.to_string()));
        }
        let n: f64 = number
            .parse()
            .map_err(|_| DurationError::Syntax(text.to_string()))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(DurationError::Syntax(text.to_string())),
        };
        rest = &rest[unit_len..];
        total_nanos += n * scale;
    }
    if negative && total_nanos > 0.0 {
        return Err(DurationError::Negative(text.to_string()));
    }
    // Go limits durations to int64 nanoseconds (~292 years).
    if !total_nanos.is_finite() || total_nanos > i64::MAX as f64 {
        return Err(DurationError::Overflow(text.to_string()));
    }
    Ok(std::time::Duration::from_nanos(total_nanos.round() as u64))
}

/// `google.protobuf.Percent`-style `{value: 0..100}` (a double).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percent {
    /// Percentage in `[0, 100]`, fractions allowed.
    #[serde(default)]
    pub value: f64,
}

/// Integers in protobuf JSON may be numbers or numeric strings (`3` or `"3"`).
pub(crate) mod int {
    use super::*;

    struct IntVisitor;

    impl<'de> Visitor<'de> for IntVisitor {
        type Value = i128;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer (a number or a numeric string)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
            Ok(v.into())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
            Ok(v.into())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
            if v.fract() == 0.0 && v.abs() < 1e30 {
                Ok(v as i128)
            } else {
                Err(E::custom(format!("expected an integer, found {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
            v.trim()
                .parse::<i128>()
                .map_err(|_| E::custom(format!("expected an integer, found {v:?}")))
        }
    }

    fn narrow<T: TryFrom<i128>, E: de::Error>(v: i128) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range for this field")))
    }

    /// Deserializes an integer field.
    pub fn req<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        narrow(d.deserialize_any(IntVisitor)?)
    }

    /// Deserializes an optional integer field (`null` is absent).
    pub fn opt<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
        struct OptVisitor;
        impl<'de> Visitor<'de> for OptVisitor {
            type Value = Option<i128>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer (a number or a numeric string)")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(IntVisitor).map(Some)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                IntVisitor.visit_i64(v).map(Some)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                IntVisitor.visit_u64(v).map(Some)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                IntVisitor.visit_f64(v).map(Some)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                IntVisitor.visit_str(v).map(Some)
            }
        }
        match d.deserialize_any(OptVisitor)? {
            Some(v) => narrow(v).map(Some),
            None => Ok(None),
        }
    }
}

/// `false` is the protobuf default: skipped on output so a round trip prints what was written.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let cases: &[(&str, Option<u128>)] = &[
            ("1.5s", Some(1500)),
            ("300ms", Some(300)),
            ("1h30m", Some(5_400_000)),
            ("0", Some(0)),
            ("0s", Some(0)),
            ("2m", Some(120_000)),
            ("10us", Some(0)),
            ("", None),
            ("apple", None),
            ("5", None),
            ("-1s", None),
            ("1.2.3s", None),
            ("s", None),
        ];
        for (text, want) in cases {
            let got = Duration::parse(text).ok().map(|d| d.as_millis());
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn duration_keeps_its_text() {
        let d: Duration = serde_json::from_str("\"1.5s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1.5s\"");
        assert_eq!(d.as_std(), std::time::Duration::from_millis(1500));
        assert_eq!(
            Duration::from_std(std::time::Duration::from_millis(250)).as_str(),
            "250ms"
        );
    }

    proptest::proptest! {
        #[test]
        fn duration_parse_never_panics(text in "\\PC{0,24}") {
            let _ = Duration::parse(&text);
        }

        #[test]
        fn durations_round_trip_through_text(nanos in 0u64..10_000_000_000_000) {
            let d = Duration::from_std(std::time::Duration::from_nanos(nanos));
            let back = Duration::parse(d.as_str()).map(|b| b.as_std());
            proptest::prop_assert_eq!(back, Ok(d.as_std()));
        }
    }

    #[derive(Deserialize)]
    struct Ints {
        #[serde(deserialize_with = "int::req")]
        a: u32,
        #[serde(default, deserialize_with = "int::opt")]
        b: Option<i64>,
    }

    #[test]
    fn integers_accept_numeric_strings() {
        let v: Ints = serde_json::from_str(r#"{"a":"3","b":"-4"}"#).unwrap();
        assert_eq!((v.a, v.b), (3, Some(-4)));
        let v: Ints = serde_json::from_str(r#"{"a":3}"#).unwrap();
        assert_eq!((v.a, v.b), (3, None));
        assert!(serde_json::from_str::<Ints>(r#"{"a":"x"}"#).is_err());
        assert!(serde_json::from_str::<Ints>(r#"{"a":-1}"#).is_err());
    }
}
