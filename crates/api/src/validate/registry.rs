//! ServiceEntry and WorkloadEntry rules.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::common::{
    Errs, export_to, selector_labels, validate_ip_or_cidr, validate_port, validate_wildcard_domain,
};
use super::gateway::PROTOCOLS;
use crate::networking::{Resolution, ServiceEntry, WorkloadEntry};

/// Validates a ServiceEntry spec.
pub(crate) fn service_entry(errs: &mut Errs, se: &ServiceEntry) {
    if se.hosts.is_empty() {
        errs.add(
            "spec.hosts",
            "Required value: a service entry needs at least one host",
        );
    }
    let resolution = se.resolution();
    let mut seen_hosts = BTreeSet::new();
    for (i, h) in se.hosts.iter().enumerate() {
        let p = format!("spec.hosts[{i}]");
        if h == "*" {
            errs.add(&p, "hostname cannot be wildcard \"*\"");
            continue;
        }
        if !seen_hosts.insert(h.as_str()) {
            errs.add(&p, format!("duplicate host {h:?}"));
        }
        errs.check(&p, validate_wildcard_domain(h));
        // Istio: with DNS resolution and no endpoints the hosts themselves are resolved.
        if matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
            && se.endpoints.is_empty()
            && h.starts_with('*')
        {
            errs.add(
                &p,
                format!("wildcard host {h:?} cannot be resolved with DNS when no endpoints are given"),
            );
        }
    }
    for (i, a) in se.addresses.iter().enumerate() {
        let p = format!("spec.addresses[{i}]");
        errs.check(&p, validate_ip_or_cidr(a));
        if a.contains('/') && !matches!(resolution, Resolution::None | Resolution::Static) {
            errs.add(
                &p,
                "CIDR addresses are allowed only for NONE/STATIC resolution types",
            );
        }
    }
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in se.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        errs.check(&format!("{p}.number"), validate_port(port.number));
        if port.target_port != 0 {
            errs.check(&format!("{p}.targetPort"), validate_port(port.target_port));
        }
        if !port.name.is_empty() && !names.insert(port.name.as_str()) {
            errs.add(
                format!("{p}.name"),
                format!("Duplicate value: port name {:?}", port.name),
            );
        }
        if !numbers.insert(port.number) {
            errs.add(
                format!("{p}.number"),
                format!("port number cannot be duplicated: {}", port.number),
            );
        }
        if !port.protocol.is_empty() && !PROTOCOLS.contains(&port.protocol.to_ascii_uppercase().as_str()) {
            errs.add(
                format!("{p}.protocol"),
                format!("unsupported protocol {:?}", port.protocol),
            );
        }
    }
    if se.workload_selector.is_some() && !se.endpoints.is_empty() {
        errs.add("spec", "only one of WorkloadSelector or Endpoints can be set");
    }
    if let Some(ws) = &se.workload_selector {
        selector_labels(errs, "spec.workloadSelector.labels", &ws.labels);
    }
    match resolution {
        Resolution::None if !se.endpoints.is_empty() => {
            errs.add("spec.endpoints", "NONE mode cannot set endpoints");
        }
        Resolution::DnsRoundRobin if se.endpoints.len() > 1 => {
            errs.add(
                "spec.endpoints",
                "DNS_ROUND_ROBIN mode cannot have multiple endpoints",
            );
        }
        Resolution::DynamicDns if !se.endpoints.is_empty() => {
            errs.add("spec.endpoints", "DYNAMIC_DNS mode cannot set endpoints");
        }
        _ => {}
    }
    for (i, ep) in se.endpoints.iter().enumerate() {
        let p = format!("spec.endpoints[{i}]");
        workload_entry(errs, &p, ep);
        if ep.address.is_empty() {
            errs.add(format!("{p}.address"), "endpoint address is required");
        } else if resolution == Resolution::Static
            && !ep.address.starts_with("unix://")
            && ep.address.parse::<IpAddr>().is_err()
        {
            errs.add(
                format!("{p}.address"),
                format!(
                    "endpoint address {:?} is not a valid IP address (STATIC resolution)",
                    ep.address
                ),
            );
        }
        for name in ep.ports.keys() {
            if !se.ports.is_empty() && !se.ports.iter().any(|sp| &sp.name == name) {
                errs.add(
                    format!("{p}.ports.{name}"),
                    format!("endpoint port {name:?} is not defined by the service entry"),
                );
            }
        }
    }
    for (i, san) in se.subject_alt_names.iter().enumerate() {
        if san.is_empty() {
            errs.add(
                format!("spec.subjectAltNames[{i}]"),
                "subject alt name cannot be empty",
            );
        }
    }
    export_to(errs, "spec.exportTo", &se.export_to);
}

/// Validates a WorkloadEntry (a resource's spec, or an inline ServiceEntry endpoint) at `path`.
pub(crate) fn workload_entry(errs: &mut Errs, path: &str, we: &WorkloadEntry) {
    // Istio: an address is required unless a network is set (the gateway of that network is used).
    if we.address.is_empty() && we.network.is_empty() && path == "spec" {
        errs.add(format!("{path}.address"), "Address is required");
    }
    if let Some(uds) = we.address.strip_prefix("unix://") {
        if !(uds.starts_with('/') || uds.starts_with('@')) {
            errs.add(
                format!("{path}.address"),
                "UDS must be an absolute path or abstract socket",
            );
        } else if uds.ends_with('/') {
            errs.add(format!("{path}.address"), "UDS may not be a dir");
        }
        if !we.ports.is_empty() {
            errs.add(format!("{path}.ports"), "UDS may not include ports");
        }
    } else if !we.address.is_empty() && we.address.parse::<IpAddr>().is_err() {
        errs.check(
            &format!("{path}.address"),
            super::common::validate_dns1123_labels(&we.address),
        );
    }
    for (name, port) in &we.ports {
        let p = format!("{path}.ports.{name}");
        if !is_port_name(name) {
            errs.add(
                &p,
                format!("Invalid value: port name {name:?} must be alphanumeric, '-' or '_'"),
            );
        }
        errs.check(&p, validate_port(*port));
    }
    selector_labels(errs, &format!("{path}.labels"), &we.labels);
    if !we.locality.is_empty() && we.locality.split('/').count() > 3 {
        errs.add(format!("{path}.locality"), "locality is region/zone/subzone");
    }
}

/// Port names in a WorkloadEntry: CEL rule `^[a-zA-Z0-9](?:[-_a-zA-Z0-9]*[a-zA-Z0-9])?$`.
fn is_port_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}
