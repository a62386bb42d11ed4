//! VirtualService rules: hosts, gateways, delegate shape, TLS and TCP routes.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::common::{
    Errs, destination, export_to, is_k8s_label, validate_ip_or_cidr, validate_port, validate_wildcard_domain,
};
use super::http_route::http_route;
use crate::networking::{RouteDestination, VirtualService};

/// Validates a VirtualService spec.
pub(crate) fn virtual_service(errs: &mut Errs, vs: &VirtualService) {
    // Istio: a VirtualService without hosts is a delegate, only usable through `delegate`.
    let is_delegate = vs.hosts.is_empty();
    let applies_to_mesh = vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh");
    if is_delegate {
        if !vs.gateways.is_empty() {
            errs.add(
                "spec.gateways",
                "a delegate virtual service (no hosts) must not specify gateways",
            );
        }
        if !vs.tls.is_empty() {
            errs.add(
                "spec.tls",
                "a delegate virtual service (no hosts) must not have tls routes",
            );
        }
        if !vs.tcp.is_empty() {
            errs.add(
                "spec.tcp",
                "a delegate virtual service (no hosts) must not have tcp routes",
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, host) in vs.hosts.iter().enumerate() {
        let p = format!("spec.hosts[{i}]");
        if !seen.insert(host.to_ascii_lowercase()) {
            errs.add(&p, format!("duplicate host {host:?} in virtual service"));
        }
        if host == "*" {
            if applies_to_mesh {
                errs.add(
                    &p,
                    "wildcard host * is not allowed for virtual services bound to the mesh gateway",
                );
            }
        } else if host.parse::<IpAddr>().is_ok() {
            if applies_to_mesh {
                errs.add(
                    &p,
                    "an IP address is allowed as host only for virtual services bound to gateways only",
                );
            }
        } else {
            errs.check(&p, validate_wildcard_domain(host));
        }
    }
    for (i, g) in vs.gateways.iter().enumerate() {
        errs.check(&format!("spec.gateways[{i}]"), validate_gateway_name(g));
    }
    if vs.http.is_empty() && vs.tls.is_empty() && vs.tcp.is_empty() {
        errs.add("spec", "http, tcp or tls must be provided in virtual service");
    }
    for (i, r) in vs.http.iter().enumerate() {
        http_route(errs, &format!("spec.http[{i}]"), r, is_delegate);
    }
    for (i, t) in vs.tls.iter().enumerate() {
        let p = format!("spec.tls[{i}]");
        if t.r#match.is_empty() {
            errs.add(
                format!("{p}.match"),
                "TLS route must have at least one match condition",
            );
        }
        for (j, m) in t.r#match.iter().enumerate() {
            let mp = format!("{p}.match[{j}]");
            if m.sni_hosts.is_empty() {
                errs.add(
                    format!("{mp}.sniHosts"),
                    "TLS match must have at least one SNI host",
                );
            }
            for (k, sni) in m.sni_hosts.iter().enumerate() {
                let sp = format!("{mp}.sniHosts[{k}]");
                if let Err(e) = validate_wildcard_domain(sni) {
                    errs.add(&sp, e);
                } else if !vs.hosts.is_empty() && !vs.hosts.iter().any(|h| sni_within(sni, h)) {
                    errs.add(
                        &sp,
                        format!("the SNI host {sni:?} is not a match for the virtual service hosts"),
                    );
                }
            }
            l4_match(errs, &mp, &m.destination_subnets, m.port, &m.gateways);
        }
        route_destinations(errs, &format!("{p}.route"), &t.route, "TLS");
    }
    for (i, t) in vs.tcp.iter().enumerate() {
        let p = format!("spec.tcp[{i}]");
        for (j, m) in t.r#match.iter().enumerate() {
            l4_match(
                errs,
                &format!("{p}.match[{j}]"),
                &m.destination_subnets,
                m.port,
                &m.gateways,
            );
        }
        route_destinations(errs, &format!("{p}.route"), &t.route, "TCP");
    }
    export_to(errs, "spec.exportTo", &vs.export_to);
}

/// `mesh`, `name`, `ns/name` (the name may be dotted, as in older configs).
pub(crate) fn validate_gateway_name(g: &str) -> Result<(), String> {
    if g == "mesh" {
        return Ok(());
    }
    let (ns, name) = match g.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, g),
    };
    if let Some(ns) = ns
        && !is_k8s_label(ns)
    {
        return Err(format!(
            "invalid gateway {g:?}: namespace {ns:?} is not a valid namespace name"
        ));
    }
    if name.is_empty() || !name.split('.').all(is_k8s_label) {
        return Err(format!(
            "invalid gateway name {g:?}: use <name> or <namespace>/<name>"
        ));
    }
    Ok(())
}

/// Whether SNI host `sni` falls within VS host `host`.
fn sni_within(sni: &str, host: &str) -> bool {
    let (sni, host) = (sni.to_ascii_lowercase(), host.to_ascii_lowercase());
    if sni == host || host == "*" {
        return true;
    }
    if let Some(suffix) = host.strip_prefix('*') {
        return sni.ends_with(suffix) || sni.strip_prefix('*').is_some_and(|s| s.ends_with(suffix));
    }
    if let Some(suffix) = sni.strip_prefix('*') {
        return host.ends_with(suffix);
    }
    false
}

fn l4_match(errs: &mut Errs, path: &str, subnets: &[String], port: u32, gateways: &[String]) {
    for (i, s) in subnets.iter().enumerate() {
        errs.check(&format!("{path}.destinationSubnets[{i}]"), validate_ip_or_cidr(s));
    }
    if port != 0 {
        errs.check(&format!("{path}.port"), validate_port(port));
    }
    for (i, g) in gateways.iter().enumerate() {
        errs.check(&format!("{path}.gateways[{i}]"), validate_gateway_name(g));
    }
}

/// L4 destinations: at least one; weights non-negative, not all zero when several.
fn route_destinations(errs: &mut Errs, path: &str, route: &[RouteDestination], what: &str) {
    if route.is_empty() {
        errs.add(path, format!("{what} route is required"));
    }
    let mut total: i64 = 0;
    for (i, d) in route.iter().enumerate() {
        let p = format!("{path}[{i}]");
        destination(errs, &format!("{p}.destination"), &d.destination);
        if d.weight < 0 {
            errs.add(format!("{p}.weight"), format!("weight {} < 0", d.weight));
        }
        total += i64::from(d.weight);
    }
    if route.len() > 1 && total == 0 {
        errs.add(
            path,
            "total destination weight = 0; give at least one destination a weight",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_names() {
        for ok in [
            "mesh",
            "bookinfo-gateway",
            "istio-system/gw",
            "gw.istio-system.svc.cluster.local",
        ] {
            assert!(validate_gateway_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ns/", "/gw", "bad_name", "a/b/c"] {
            assert!(validate_gateway_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sni_hosts() {
        assert!(sni_within("a.example.com", "*.example.com"));
        assert!(sni_within("*.example.com", "*.example.com"));
        assert!(!sni_within("a.other.com", "*.example.com"));
        assert!(sni_within("x.com", "x.com"));
    }
}
