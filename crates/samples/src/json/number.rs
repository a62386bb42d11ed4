//! Shortest round-trip float formatting in the styles of Python's `repr`, JavaScript's
//! `Number.prototype.toString` and Go's `encoding/json`.

/// The shortest decimal digits of `|f|` and its scientific exponent: `|f| = d.ddd × 10^exp`.
fn decompose(f: f64) -> (bool, String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    (f.is_sign_negative(), digits, exp.parse().unwrap_or(0))
}

/// `digits × 10^(exp - len + 1)` written without an exponent; `point_zero` adds ".0" to integers.
fn positional(digits: &str, exp: i32, point_zero: bool) -> String {
    let len = digits.len() as i32;
    if exp < 0 {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    } else if exp + 1 >= len {
        let zeros = "0".repeat((exp + 1 - len) as usize);
        if point_zero {
            format!("{digits}{zeros}.0")
        } else {
            format!("{digits}{zeros}")
        }
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{int}.{frac}")
    }
}

fn scientific(digits: &str, exp: i32, min_exp_digits: usize) -> String {
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let sign = if exp < 0 { '-' } else { '+' };
    let mantissa = if rest.is_empty() {
        first.to_string()
    } else {
        format!("{first}.{rest}")
    };
    format!(
        "{mantissa}e{sign}{:0width$}",
        exp.unsigned_abs(),
        width = min_exp_digits
    )
}

fn with_sign(negative: bool, body: String) -> String {
    if negative { format!("-{body}") } else { body }
}

/// Python's `repr(float)`, used by `json.dumps`.
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let (neg, digits, exp) = decompose(f);
    let body = if (-4..16).contains(&exp) {
        positional(&digits, exp, true)
    } else {
        scientific(&digits, exp, 2)
    };
    with_sign(neg, body)
}

/// JavaScript's number formatting, used by `JSON.stringify`.
pub(crate) fn js_number(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_string();
    }
    if f == 0.0 {
        return "0".to_string();
    }
    let (neg, digits, exp) = decompose(f);
    let body = if (-6..21).contains(&exp) {
        positional(&digits, exp, false)
    } else {
        scientific(&digits, exp, 1)
    };
    with_sign(neg, body)
}

/// Go's `encoding/json` formatting of a float64.
pub(crate) fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_string();
    }
    let abs = f.abs();
    let (neg, digits, exp) = decompose(f);
    let body = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = scientific(&digits, exp, 2);
        // Go: "clean up e-09 to e-9".
        match s.find("e-0") {
            Some(i) if s.len() - i == 4 => format!("{}e-{}", &s[..i], &s[i + 3..]),
            _ => s,
        }
    } else {
        positional(&digits, exp, false)
    };
    with_sign(neg, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_cases() {
        let cases = [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (1e15, "1000000000000000.0"),
            (0.0, "0.0"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float(f), want, "{f}");
        }
    }

    #[test]
    fn js_cases() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
        ];
        for (f, want) in cases {
            assert_eq!(js_number(f), want, "{f}");
        }
    }

    #[test]
    fn go_cases() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (1.5e-10, "1.5e-10"),
            (0.0, "0"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    proptest::proptest! {
        #[test]
        fn formats_round_trip(f in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            for s in [python_float(f), js_number(f), go_float(f)] {
                let back: f64 = s.parse().map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{s}: {e}")))?;
                proptest::prop_assert!(back == f || (back == 0.0 && f == 0.0), "{} -> {}", f, s);
            }
        }
    }
}
