//! PeerAuthentication, AuthorizationPolicy and RequestAuthentication rules.

use super::common::{Errs, validate_ip_or_cidr, validate_positive_duration};
use crate::security::{
    Action, AuthorizationPolicy, PeerAuthentication, PolicyTargetReference, RequestAuthentication, Source,
    WorkloadSelector,
};

/// Validates a PeerAuthentication spec.
pub(crate) fn peer_authentication(errs: &mut Errs, pa: &PeerAuthentication) {
    if let Some(ports) = &pa.port_level_mtls {
        let has_selector = pa.selector.as_ref().is_some_and(|s| !s.match_labels.is_empty());
        if !has_selector {
            errs.add(
                "spec.portLevelMtls",
                "portLevelMtls requires selector: mesh and namespace policies cannot set port level mTLS",
            );
        }
        if ports.is_empty() {
            errs.add(
                "spec.portLevelMtls",
                "spec.portLevelMtls in body should have at least 1 properties",
            );
        }
        for port in ports.keys() {
            if !(1..=65535).contains(port) {
                errs.add(
                    format!("spec.portLevelMtls.{port}"),
                    "port must be between 1-65535",
                );
            }
        }
    }
    if let Some(s) = &pa.selector {
        selector(errs, s);
    }
}

fn selector(errs: &mut Errs, s: &WorkloadSelector) {
    super::common::selector_labels(errs, "spec.selector.matchLabels", &s.match_labels);
}

/// selector vs targetRef/targetRefs, and each reference's shape.
fn targets(
    errs: &mut Errs,
    ns: &str,
    selector_: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) {
    let has_refs = target_ref.is_some() || !target_refs.is_empty();
    if selector_.is_some() && has_refs {
        errs.add("spec", "only one of targetRefs or selector can be set");
    }
    if target_ref.is_some() && !target_refs.is_empty() {
        errs.add("spec", "only one of targetRefs or targetRef can be set");
    }
    if let Some(s) = selector_ {
        selector(errs, s);
    }
    let refs = target_ref
        .iter()
        .map(|r| ("spec.targetRef".to_string(), r))
        .chain(
            target_refs
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("spec.targetRefs[{i}]"), r)),
        );
    for (p, r) in refs {
        if r.name.is_empty() {
            errs.add(format!("{p}.name"), "Required value: the target name is required");
        }
        if !r.namespace.is_empty() && r.namespace != ns {
            errs.add(
                format!("{p}.namespace"),
                "cross namespace referencing is not currently supported",
            );
        }
        let group_ok = r.group.is_empty() || r.group.split('.').all(super::common::is_k8s_label);
        if !group_ok {
            errs.add(
                format!("{p}.group"),
                format!(
                    "spec.targetRef.group in body should match a DNS subdomain, got {:?}",
                    r.group
                ),
            );
        }
        let kind_ok = r.kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && r.kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !kind_ok {
            errs.add(
                format!("{p}.kind"),
                format!(
                    "spec.targetRef.kind in body should match a kind name, got {:?}",
                    r.kind
                ),
            );
        } else if !matches!(
            (r.group.as_str(), r.kind.as_str()),
            ("", "Service")
                | ("core", "Service")
                | ("networking.istio.io", "ServiceEntry")
                | ("gateway.networking.k8s.io", "Gateway")
                | ("gateway.networking.k8s.io", "GatewayClass")
        ) {
            errs.add(
                format!("{p}.kind"),
                "support kinds are core/Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway and GatewayClass",
            );
        }
    }
}

/// `when` keys Istio understands.
fn known_condition_key(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "source.ip",
        "remote.ip",
        "source.namespace",
        "source.principal",
        "source.serviceAccount",
        "source.trustDomain",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "destination.ip",
        "destination.port",
        "connection.sni",
    ];
    EXACT.contains(&key)
        || (key.starts_with("request.headers[")
            && key.ends_with(']')
            && key.len() > "request.headers[]".len())
        || (key.starts_with("request.auth.claims[")
            && key.ends_with(']')
            && key.len() > "request.auth.claims[]".len())
        || key.starts_with("experimental.envoy.filters.")
}

/// Validates an AuthorizationPolicy spec.
pub(crate) fn authorization_policy(errs: &mut Errs, ns: &str, ap: &AuthorizationPolicy) {
    targets(errs, ns, &ap.selector, &ap.target_ref, &ap.target_refs);
    match (ap.action(), &ap.provider) {
        (Action::Custom, None) => errs.add("spec.provider", "CUSTOM action requires a provider"),
        (Action::Custom, Some(p)) if p.name.is_empty() => {
            errs.add("spec.provider.name", "provider name is required")
        }
        (Action::Custom, Some(_)) => {}
        (_, Some(_)) => errs.add(
            "spec.provider",
            "provider can only be used with the CUSTOM action",
        ),
        (_, None) => {}
    }
    for (i, rule) in ap.rules.iter().enumerate() {
        let rp = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            let p = format!("{rp}.from[{j}].source");
            source(errs, &p, &from.source);
        }
        for (j, to) in rule.to.iter().enumerate() {
            let p = format!("{rp}.to[{j}].operation");
            let op = &to.operation;
            if op == &Default::default() {
                errs.add(&p, "`to.operation` must not be empty");
            }
            for (k, port) in op.ports.iter().chain(&op.not_ports).enumerate() {
                if port.parse::<u16>().is_err() {
                    errs.add(
                        format!("{p}.ports"),
                        format!("port {port:?} (entry {k}) must be a number in 0-65535"),
                    );
                }
            }
            for path in op.paths.iter().chain(&op.not_paths) {
                if let Err(e) = path_template(path) {
                    errs.add(format!("{p}.paths"), e);
                }
            }
            empty_values(
                errs,
                &p,
                [
                    &op.hosts,
                    &op.not_hosts,
                    &op.methods,
                    &op.not_methods,
                    &op.paths,
                    &op.not_paths,
                ],
            );
        }
        for (j, c) in rule.when.iter().enumerate() {
            let p = format!("{rp}.when[{j}]");
            if c.key.is_empty() {
                errs.add(format!("{p}.key"), "key is required");
            } else if !known_condition_key(&c.key) {
                errs.add(format!("{p}.key"), format!("unknown attribute {:?}", c.key));
            }
            if c.values.is_empty() && c.not_values.is_empty() {
                errs.add(
                    &p,
                    format!(
                        "at least one of values or notValues must be set for key {:?}",
                        c.key
                    ),
                );
            }
            let all = c.values.iter().chain(&c.not_values);
            match c.key.as_str() {
                "source.ip" | "remote.ip" | "destination.ip" => {
                    for v in all {
                        errs.check(&format!("{p}.values"), validate_ip_or_cidr(v));
                    }
                }
                "destination.port" => {
                    for v in all {
                        if v.parse::<u16>().is_err() {
                            errs.add(format!("{p}.values"), format!("{v:?} is not a port number"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn source(errs: &mut Errs, p: &str, s: &Source) {
    if s == &Source::default() {
        errs.add(p, "`from.source` must not be empty");
    }
    if !s.service_accounts.is_empty() && (!s.principals.is_empty() || !s.namespaces.is_empty()) {
        errs.add(p, "Cannot set serviceAccounts with namespaces or principals");
    }
    if !s.not_service_accounts.is_empty() && (!s.not_principals.is_empty() || !s.not_namespaces.is_empty()) {
        errs.add(
            p,
            "Cannot set notServiceAccounts with notNamespaces or notPrincipals",
        );
    }
    for (i, sa) in s
        .service_accounts
        .iter()
        .chain(&s.not_service_accounts)
        .enumerate()
    {
        if sa.contains('*') || sa.is_empty() || sa.matches('/').count() > 1 {
            errs.add(
                format!("{p}.serviceAccounts"),
                format!("service account {sa:?} (entry {i}) must be <ns>/<sa> or <sa>, no wildcards"),
            );
        }
    }
    for ip in s
        .ip_blocks
        .iter()
        .chain(&s.not_ip_blocks)
        .chain(&s.remote_ip_blocks)
        .chain(&s.not_remote_ip_blocks)
    {
        errs.check(&format!("{p}.ipBlocks"), validate_ip_or_cidr(ip));
    }
    empty_values(
        errs,
        p,
        [
            &s.principals,
            &s.not_principals,
            &s.request_principals,
            &s.not_request_principals,
            &s.namespaces,
            &s.not_namespaces,
        ],
    );
}

fn empty_values<const N: usize>(errs: &mut Errs, p: &str, lists: [&Vec<String>; N]) {
    if lists.iter().any(|l| l.iter().any(String::is_empty)) {
        errs.add(p, "values cannot be empty strings");
    }
}

/// Path templates: `{*}` and `{**}` only as whole segments.
fn path_template(path: &str) -> Result<(), String> {
    if !path.contains('{') && !path.contains('}') {
        return Ok(());
    }
    for seg in path.split('/') {
        if (seg.contains('{') || seg.contains('}')) && seg != "{*}" && seg != "{**}" {
            return Err(format!(
                "invalid path template {path:?}: only whole segments {{*}} and {{**}} are allowed"
            ));
        }
    }
    Ok(())
}

/// Validates a RequestAuthentication spec.
pub(crate) fn request_authentication(errs: &mut Errs, ns: &str, ra: &RequestAuthentication) {
    targets(errs, ns, &ra.selector, &ra.target_ref, &ra.target_refs);
    for (i, r) in ra.jwt_rules.iter().enumerate() {
        let p = format!("spec.jwtRules[{i}]");
        if r.issuer.is_empty() {
            errs.add(format!("{p}.issuer"), "issuer must be set");
        }
        for (j, a) in r.audiences.iter().enumerate() {
            if a.is_empty() {
                errs.add(
                    format!("{p}.audiences[{j}]"),
                    "audiences[] in body should be at least 1 chars long",
                );
            }
        }
        if !r.jwks.is_empty() && !r.jwks_uri.is_empty() {
            errs.add(&p, "only one of jwks and jwksUri may be set");
        }
        if !r.jwks_uri.is_empty() {
            errs.check(&format!("{p}.jwksUri"), validate_url(&r.jwks_uri));
        }
        if !r.jwks.is_empty() && serde_json::from_str::<serde_json::Value>(&r.jwks).is_err() {
            errs.add(format!("{p}.jwks"), "jwks must be a JSON Web Key Set (JSON)");
        }
        for (j, h) in r.from_headers.iter().enumerate() {
            if h.name.is_empty() {
                errs.add(
                    format!("{p}.fromHeaders[{j}].name"),
                    "Required value: header name must be set",
                );
            }
        }
        for (field, list) in [
            ("fromParams", &r.from_params),
            ("fromCookies", &r.from_cookies),
            ("spaceDelimitedClaims", &r.space_delimited_claims),
        ] {
            for (j, v) in list.iter().enumerate() {
                if v.is_empty() {
                    errs.add(
                        format!("{p}.{field}[{j}]"),
                        format!("{field}[{j}] in body should be at least 1 chars long"),
                    );
                }
            }
        }
        for (j, c) in r.output_claim_to_headers.iter().enumerate() {
            let cp = format!("{p}.outputClaimToHeaders[{j}]");
            if c.claim.is_empty() {
                errs.add(format!("{cp}.claim"), "claim should be at least 1 chars long");
            }
            if c.header.is_empty() {
                errs.add(
                    format!("{cp}.header"),
                    "header in body should be at least 1 chars long",
                );
            } else if !c
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errs.add(
                    format!("{cp}.header"),
                    "header in body should match '^[-_A-Za-z0-9]+$'",
                );
            }
        }
        if !r.output_payload_to_header.is_empty()
            && !r
                .output_payload_to_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            errs.add(
                format!("{p}.outputPayloadToHeader"),
                "header name must match '^[-_A-Za-z0-9]+$'",
            );
        }
        if let Some(t) = &r.timeout {
            errs.check(&format!("{p}.timeout"), validate_positive_duration(t));
        }
    }
}

/// `http(s)://host[...]`.
fn validate_url(u: &str) -> Result<(), String> {
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err(format!("url {u:?} must have scheme http:// or https://"));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "url must have scheme http:// or https://, got {scheme:?}"
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('\\') || host.contains(' ') {
        return Err(format!("url {u:?} has an invalid host"));
    }
    Ok(())
}
