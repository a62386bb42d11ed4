//! HTTPRoute rules: the route/redirect/directResponse/delegate one-of, weights, regexes,
//! durations, retries, faults, mirrors and CORS.

use super::common::{
    Errs, destination, headers, string_match, validate_duration_ms, validate_percent, validate_port,
    validate_regex,
};
use super::virtual_service::validate_gateway_name;
use crate::networking::{HttpRetry, HttpRoute, StringMatch};

/// Envoy's retry conditions Istio accepts in `retryOn` (besides status codes).
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Methods a CORS policy may allow.
const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Validates one HTTP route at `path`. `in_delegate` is true inside a delegate VirtualService.
pub(crate) fn http_route(errs: &mut Errs, path: &str, r: &HttpRoute, in_delegate: bool) {
    let set = [
        ("route", !r.route.is_empty()),
        ("redirect", r.redirect.is_some()),
        ("directResponse", r.direct_response.is_some()),
        ("delegate", r.delegate.is_some()),
    ];
    let present: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    match present.len() {
        0 => errs.add(
            path,
            "HTTP route, redirect, directResponse or delegate is required",
        ),
        1 => {}
        _ => errs.add(
            path,
            format!(
                "only one of route, redirect, directResponse or delegate may be set; found {}",
                present.join(", ")
            ),
        ),
    }
    if let Some(d) = &r.delegate {
        if in_delegate {
            errs.add(
                format!("{path}.delegate"),
                "a delegate virtual service cannot delegate again",
            );
        }
        if d.name.is_empty() {
            errs.add(format!("{path}.delegate.name"), "delegate name is required");
        } else if !super::common::is_k8s_label(&d.name) && !d.name.split('.').all(super::common::is_k8s_label)
        {
            errs.add(
                format!("{path}.delegate.name"),
                format!("{:?} is not a valid name", d.name),
            );
        }
        if !d.namespace.is_empty() && !super::common::is_k8s_label(&d.namespace) {
            errs.add(
                format!("{path}.delegate.namespace"),
                format!("{:?} is not a valid namespace", d.namespace),
            );
        }
    }
    if r.redirect.is_some() {
        if r.rewrite.is_some() {
            errs.add(
                format!("{path}.rewrite"),
                "rewrite and redirect cannot be used together",
            );
        }
        if r.fault.is_some() {
            errs.add(
                format!("{path}.fault"),
                "fault cannot be used together with redirect",
            );
        }
    }
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        errs.add(format!("{path}.mirrors"), "mirror and mirrors cannot both be set");
    }
    for (i, m) in r.r#match.iter().enumerate() {
        let mp = format!("{path}.match[{i}]");
        for (name, sm) in [
            ("uri", &m.uri),
            ("scheme", &m.scheme),
            ("method", &m.method),
            ("authority", &m.authority),
        ] {
            if let Some(sm) = sm {
                string_match(errs, &format!("{mp}.{name}"), sm);
            }
        }
        for (field, map) in [
            ("headers", &m.headers),
            ("withoutHeaders", &m.without_headers),
            ("queryParams", &m.query_params),
        ] {
            for (k, sm) in map {
                if k.is_empty() {
                    errs.add(
                        format!("{mp}.{field}"),
                        "header and query parameter names cannot be empty",
                    );
                }
                string_match(errs, &format!("{mp}.{field}.{k}"), sm);
            }
        }
        if m.port != 0 {
            errs.check(&format!("{mp}.port"), validate_port(m.port));
        }
        for (j, g) in m.gateways.iter().enumerate() {
            errs.check(&format!("{mp}.gateways[{j}]"), validate_gateway_name(g));
        }
        if !m.source_namespace.is_empty() && !super::common::is_k8s_label(&m.source_namespace) {
            errs.add(format!("{mp}.sourceNamespace"), "not a valid namespace name");
        }
    }
    let mut total: i64 = 0;
    for (i, d) in r.route.iter().enumerate() {
        let p = format!("{path}.route[{i}]");
        destination(errs, &format!("{p}.destination"), &d.destination);
        if d.weight < 0 {
            errs.add(format!("{p}.weight"), format!("weight {} < 0", d.weight));
        }
        total += i64::from(d.weight);
        if let Some(h) = &d.headers {
            headers(errs, &format!("{p}.headers"), h);
        }
    }
    // Istio: weights are relative; only several destinations that all weigh 0 is an error.
    if r.route.len() > 1 && total == 0 {
        errs.add(
            format!("{path}.route"),
            "total destination weight = 0; give at least one destination a weight",
        );
    }
    if let Some(rd) = &r.redirect {
        let p = format!("{path}.redirect");
        if rd.redirect_code != 0 && ![301, 302, 303, 307, 308].contains(&rd.redirect_code) {
            errs.add(
                format!("{p}.redirectCode"),
                format!(
                    "{} is not a valid redirect code (301, 302, 303, 307, 308)",
                    rd.redirect_code
                ),
            );
        }
        if rd.port.is_some() && rd.derive_port.is_some() {
            errs.add(&p, "only one of port and derivePort may be set");
        }
        if let Some(port) = rd.port {
            errs.check(&format!("{p}.port"), validate_port(port));
        }
        if !rd.uri.is_empty() && !rd.prefix_rewrite.is_empty() {
            errs.add(&p, "only one of uri and prefixRewrite may be set");
        }
        if !rd.scheme.is_empty() && rd.scheme != "http" && rd.scheme != "https" {
            errs.add(format!("{p}.scheme"), "scheme must be http or https");
        }
    }
    if let Some(dr) = &r.direct_response {
        let p = format!("{path}.directResponse");
        if !(200..=599).contains(&dr.status) {
            errs.add(
                format!("{p}.status"),
                format!("status must be in the range 200-599, got {}", dr.status),
            );
        }
        if let Some(b) = &dr.body
            && b.string.is_some()
            && b.bytes.is_some()
        {
            errs.add(format!("{p}.body"), "only one of string and bytes may be set");
        }
    }
    if let Some(rw) = &r.rewrite {
        let p = format!("{path}.rewrite");
        if let Some(rr) = &rw.uri_regex_rewrite {
            if !rw.uri.is_empty() {
                errs.add(&p, "rewrite may only contain one of uri and uriRegexRewrite");
            }
            errs.check(&format!("{p}.uriRegexRewrite.match"), validate_regex(&rr.r#match));
        }
    }
    // Istio: `timeout: 0s` disables the route timeout, so zero is allowed here (not for retries).
    if let Some(t) = &r.timeout
        && !t.as_std().is_zero()
    {
        errs.check(&format!("{path}.timeout"), validate_duration_ms(t));
    }
    if let Some(rt) = &r.retries {
        retries(errs, &format!("{path}.retries"), rt);
    }
    if let Some(f) = &r.fault {
        let p = format!("{path}.fault");
        if f.delay.is_none() && f.abort.is_none() {
            errs.add(&p, "one of delay or abort must be specified");
        }
        if let Some(d) = &f.delay {
            if let Some(pc) = &d.percentage {
                errs.check(&format!("{p}.delay.percentage.value"), validate_percent(pc));
            }
            if let Some(pc) = d.percent
                && !(0..=100).contains(&pc)
            {
                errs.add(format!("{p}.delay.percent"), "percent must be in the range 0-100");
            }
            match (&d.fixed_delay, &d.exponential_delay) {
                (Some(x), None) => errs.check(&format!("{p}.delay.fixedDelay"), validate_duration_ms(x)),
                (None, Some(x)) => {
                    errs.check(&format!("{p}.delay.exponentialDelay"), validate_duration_ms(x))
                }
                (None, None) => errs.add(format!("{p}.delay"), "fixedDelay is required"),
                (Some(_), Some(_)) => errs.add(
                    format!("{p}.delay"),
                    "only one of fixedDelay and exponentialDelay may be set",
                ),
            }
        }
        if let Some(a) = &f.abort {
            if let Some(pc) = &a.percentage {
                errs.check(&format!("{p}.abort.percentage.value"), validate_percent(pc));
            }
            let kinds = [
                a.http_status.is_some(),
                a.grpc_status.is_some(),
                a.http2_error.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() > 1 {
                errs.add(
                    format!("{p}.abort"),
                    "only one of httpStatus, grpcStatus and http2Error may be set",
                );
            }
            if let Some(s) = a.http_status
                && !(200..=599).contains(&s)
            {
                errs.add(
                    format!("{p}.abort.httpStatus"),
                    format!("invalid abort http status {s}: must be in the range 200-599"),
                );
            }
            if let Some(g) = &a.grpc_status
                && !GRPC_CODES.contains(&g.as_str())
            {
                errs.add(
                    format!("{p}.abort.grpcStatus"),
                    format!("{g:?} is not a gRPC status name such as UNAVAILABLE"),
                );
            }
        }
    }
    if let Some(m) = &r.mirror {
        destination(errs, &format!("{path}.mirror"), m);
    }
    for (i, m) in r.mirrors.iter().enumerate() {
        let p = format!("{path}.mirrors[{i}]");
        destination(errs, &format!("{p}.destination"), &m.destination);
        if let Some(pc) = &m.percentage {
            errs.check(&format!("{p}.percentage.value"), validate_percent(pc));
        }
    }
    if let Some(pc) = &r.mirror_percentage {
        errs.check(&format!("{path}.mirrorPercentage.value"), validate_percent(pc));
    }
    if let Some(pc) = r.mirror_percent
        && pc > 100
    {
        errs.add(
            format!("{path}.mirrorPercent"),
            "mirrorPercent must be in the range 0-100",
        );
    }
    if let Some(c) = &r.cors_policy {
        let p = format!("{path}.corsPolicy");
        for (i, o) in c.allow_origins.iter().enumerate() {
            string_match(errs, &format!("{p}.allowOrigins[{i}]"), o);
            if matches!(o, StringMatch::Any) {
                errs.add(
                    format!("{p}.allowOrigins[{i}]"),
                    "an origin match needs one of exact, prefix or regex",
                );
            }
        }
        for (i, m) in c.allow_methods.iter().enumerate() {
            if !CORS_METHODS.contains(&m.as_str()) {
                errs.add(
                    format!("{p}.allowMethods[{i}]"),
                    format!("{m:?} is not a supported HTTP method"),
                );
            }
        }
        if let Some(age) = &c.max_age {
            errs.check(&format!("{p}.maxAge"), validate_duration_ms(age));
            if age.as_std().subsec_nanos() != 0 {
                errs.add(
                    format!("{p}.maxAge"),
                    "maxAge is accurate only to seconds precision",
                );
            }
        }
    }
    if let Some(h) = &r.headers {
        headers(errs, &format!("{path}.headers"), h);
    }
}

/// gRPC status names.
const GRPC_CODES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn retries(errs: &mut Errs, path: &str, r: &HttpRetry) {
    if r.attempts < 0 {
        errs.add(format!("{path}.attempts"), "attempts cannot be negative");
    }
    if let Some(t) = &r.per_try_timeout {
        errs.check(&format!("{path}.perTryTimeout"), validate_duration_ms(t));
    }
    if let Some(t) = &r.backoff {
        errs.check(&format!("{path}.backoff"), validate_duration_ms(t));
    }
    for cond in r.retry_on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let is_code = cond.parse::<u32>().is_ok_and(|c| (100..=599).contains(&c));
        if !is_code && !RETRY_ON.contains(&cond) {
            errs.add(
                format!("{path}.retryOn"),
                format!("{cond:?} is not a valid retryOn policy or status code"),
            );
        }
    }
}
