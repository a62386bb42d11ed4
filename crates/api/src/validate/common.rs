//! Checks shared by several kinds: host names, ports, durations, regexes, percentages, exportTo.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::networking::{Destination, HeaderOperations, Headers, StringMatch};
use crate::proto::{Duration, Percent};

/// Collects errors with their paths.
#[derive(Debug, Default)]
pub(crate) struct Errs(Vec<super::FieldError>);

impl Errs {
    /// Records that `path` is wrong.
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(super::FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records `result`'s error, if any.
    pub(crate) fn check(&mut self, path: &str, result: Result<(), String>) {
        if let Err(m) = result {
            self.add(path, m);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<super::FieldError> {
        self.0
    }
}

/// Istio's `dns1123LabelFmt` (it accepts upper case) plus the 63-character limit.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Istio checks namespaces with the same (case-insensitive) label format.
pub(crate) fn is_k8s_label(s: &str) -> bool {
    is_dns1123_label(s)
}

/// Dotted DNS-1123 labels; a trailing dot is allowed (absolute name).
pub(crate) fn validate_dns1123_labels(domain: &str) -> Result<(), String> {
    let labels: Vec<&str> = domain.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if i == labels.len() - 1 && label.is_empty() && i > 0 {
            break;
        }
        if !is_dns1123_label(label) {
            return Err(format!(
                "domain name {domain:?} invalid (label {label:?} invalid)"
            ));
        }
    }
    Ok(())
}

/// Istio's `ValidateWildcardDomain`: a wildcard only in the first label (`*`, `*.x`, `*x`, `*-x`).
pub(crate) fn validate_wildcard_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("domain name cannot be empty".into());
    }
    if domain.len() > 255 {
        return Err(format!("domain name {domain:?} too long (max 255)"));
    }
    let (first, rest) = match domain.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (domain, None),
    };
    let first_ok = first == "*"
        || is_dns1123_label(first)
        || first.strip_prefix("*-").is_some_and(is_dns1123_label)
        || first.strip_prefix('*').is_some_and(is_dns1123_label);
    if !first_ok || first.len() > 63 {
        return Err(format!(
            "domain name {domain:?} invalid (label {first:?} invalid); a wildcard is allowed only as the left-most label"
        ));
    }
    match rest {
        Some(r) if r.contains('*') => Err(format!(
            "domain name {domain:?} invalid: a wildcard is allowed only as the left-most label"
        )),
        Some(r) => validate_dns1123_labels(r).map_err(|e| format!("{e} in {domain:?}")),
        None => Ok(()),
    }
}

/// A port number in 1..=65535.
pub(crate) fn validate_port(port: u32) -> Result<(), String> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(format!("port must be between 1-65535, got {port}"))
    }
}

/// Istio's `ValidateDuration`: at least 1ms, millisecond precision.
pub(crate) fn validate_duration_ms(d: &Duration) -> Result<(), String> {
    let v = d.as_std();
    if v < std::time::Duration::from_millis(1) {
        return Err(format!("duration {d} must be at least 1ms"));
    }
    if !v.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!("duration {d}: only millisecond precision is supported"));
    }
    Ok(())
}

/// A positive duration (JWKS timeouts, warmup windows).
pub(crate) fn validate_positive_duration(d: &Duration) -> Result<(), String> {
    if d.as_std().is_zero() {
        Err(format!("must be a valid duration greater than 0, got {d}"))
    } else {
        Ok(())
    }
}

/// Percentages are 0-100.
pub(crate) fn validate_percent(p: &Percent) -> Result<(), String> {
    if (0.0..=100.0).contains(&p.value) {
        Ok(())
    } else {
        Err(format!(
            "percentage must be in the range [0, 100], got {}",
            p.value
        ))
    }
}

/// Regexes Istio hands to Envoy: must compile (RE2 syntax, as the `regex` crate) and be at most
/// 1024 characters (Envoy's program-size limit).
pub(crate) fn validate_regex(re: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err("regex string match should not be empty".into());
    }
    if re.len() > 1024 {
        return Err(format!(
            "regex is too large ({} characters), max length allowed is 1024",
            re.len()
        ));
    }
    regex::Regex::new(re)
        .map(|_| ())
        .map_err(|e| format!("invalid regex {re:?}: {e}"))
}

/// A StringMatch: its regex, if any, must be valid.
pub(crate) fn string_match(errs: &mut Errs, path: &str, m: &StringMatch) {
    if let StringMatch::Regex(re) = m {
        errs.check(&format!("{path}.regex"), validate_regex(re));
    }
}

/// An IP address or CIDR block.
pub(crate) fn validate_ip_or_cidr(s: &str) -> Result<(), String> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("{s:?} is not a valid IP address or CIDR block"))?;
    if let Some(p) = prefix {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(format!("{s:?} has an invalid CIDR prefix length")),
        }
    }
    Ok(())
}

/// `exportTo`: `.`, `*`, `~` or namespace names; no duplicates; `*`/`~` alone.
pub(crate) fn export_to(errs: &mut Errs, path: &str, list: &[String]) {
    let mut seen = BTreeSet::new();
    for (i, e) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !seen.insert(e.as_str()) {
            errs.add(&p, format!("duplicate entry {e:?} in exportTo"));
        }
        if !(e == "." || e == "*" || e == "~" || is_k8s_label(e)) {
            errs.add(
                &p,
                format!("{e:?} is not a valid namespace, \".\", \"*\" or \"~\""),
            );
        }
    }
    if list.len() > 1 && list.iter().any(|e| e == "*") {
        errs.add(path, "cannot have both public (*) and non-public exportTo values");
    }
    if list.len() > 1 && list.iter().any(|e| e == "~") {
        errs.add(
            path,
            "\"~\" (visible nowhere) cannot be combined with other exportTo values",
        );
    }
}

/// A route destination: host required and a valid name, subset a DNS label, port in range.
pub(crate) fn destination(errs: &mut Errs, path: &str, d: &Destination) {
    if d.host.is_empty() {
        errs.add(format!("{path}.host"), "destination host is required");
    } else if d.host == "*" {
        errs.add(
            format!("{path}.host"),
            "destination host cannot be the wildcard \"*\"",
        );
    } else {
        errs.check(&format!("{path}.host"), validate_wildcard_domain(&d.host));
    }
    if !d.subset.is_empty() && !is_dns1123_label(&d.subset) {
        errs.add(
            format!("{path}.subset"),
            format!("subset name {:?} is not a valid DNS-1123 label", d.subset),
        );
    }
    if let Some(p) = &d.port {
        errs.check(&format!("{path}.port.number"), validate_port(p.number));
    }
}

/// A header name: non-empty HTTP token.
fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Header edits: valid names; pseudo-headers may not be edited except `:authority`.
pub(crate) fn headers(errs: &mut Errs, path: &str, h: &Headers) {
    fn ops(errs: &mut Errs, path: &str, o: &HeaderOperations) {
        for (which, map) in [("set", &o.set), ("add", &o.add)] {
            for name in map.keys() {
                let p = format!("{path}.{which}.{name}");
                let bare = name.strip_prefix(':').unwrap_or(name);
                if !is_header_name(bare) {
                    errs.add(p, format!("invalid header name {name:?}"));
                } else if name.starts_with(':') && !name.eq_ignore_ascii_case(":authority") {
                    errs.add(p, format!("pseudo-header {name:?} cannot be set"));
                }
            }
        }
        for (i, name) in o.remove.iter().enumerate() {
            let p = format!("{path}.remove[{i}]");
            let bare = name.strip_prefix(':').unwrap_or(name);
            if !is_header_name(bare) {
                errs.add(p, format!("invalid header name {name:?}"));
            } else if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
                errs.add(p, format!("header {name:?} cannot be removed"));
            }
        }
    }
    if let Some(r) = &h.request {
        ops(errs, &format!("{path}.request"), r);
    }
    if let Some(r) = &h.response {
        ops(errs, &format!("{path}.response"), r);
    }
}

/// Label selector values cannot be wildcards; keys must be non-empty.
pub(crate) fn selector_labels<'a>(
    errs: &mut Errs,
    path: &str,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    for (k, v) in labels {
        if k.is_empty() {
            errs.add(path, "label keys cannot be empty");
        }
        if v.contains('*') || k.contains('*') {
            errs.add(format!("{path}.{k}"), "wildcard is not supported in selector");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_domains() {
        for ok in [
            "*",
            "*.example.com",
            "example.com",
            "reviews",
            "*x",
            "*-x.foo",
            "a.b.c.",
            "Foo.com",
            "1.2.3.4",
        ] {
            assert!(validate_wildcard_domain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "foo.*.com",
            "*.*.com",
            "-a.com",
            "a..com",
            "a_b.com",
            "foo*",
            "exa mple.com",
        ] {
            assert!(validate_wildcard_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regexes() {
        assert!(validate_regex("/api/v[0-9]+/.*").is_ok());
        assert!(validate_regex("(").is_err());
        assert!(validate_regex("").is_err());
        assert!(validate_regex(&"a".repeat(1025)).is_err());
        assert!(validate_regex(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn cidrs() {
        for ok in ["1.2.3.4", "10.0.0.0/8", "2001:db8::/32", "001:db8::"] {
            assert!(validate_ip_or_cidr(ok).is_ok(), "{ok}");
        }
        for bad in ["1.2.3.4/99", "foo", "1.2.3/8", "::/129"] {
            assert!(validate_ip_or_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_to_rules() {
        let cases: &[(&[&str], bool)] = &[
            (&["."], true),
            (&["*"], true),
            (&["foo", "."], true),
            (&["*", "foo"], false),
            (&["foo", "foo"], false),
            (&["foo_bar"], false),
            (&["~", "."], false),
        ];
        for (list, ok) in cases {
            let mut e = Errs::default();
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            export_to(&mut e, "spec.exportTo", &list);
            assert_eq!(e.into_vec().is_empty(), *ok, "{list:?}");
        }
    }
}
