//! Gateway rules: servers, ports, protocols, `ns/host` hosts and TLS settings.

use std::collections::BTreeMap;

use super::common::{Errs, is_k8s_label, selector_labels, validate_port, validate_wildcard_domain};
use crate::networking::{Gateway, ServerTlsMode};

/// Protocols a gateway server (or service port) may declare.
pub(crate) const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "MYSQL", "REDIS", "TCP", "TLS", "UDP",
];

/// Validates a Gateway spec.
pub(crate) fn gateway(errs: &mut Errs, g: &Gateway) {
    if g.servers.is_empty() {
        errs.add("spec.servers", "gateway must have at least one server");
    }
    selector_labels(errs, "spec.selector", &g.selector);
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in g.servers.iter().enumerate() {
        let p = format!("spec.servers[{i}]");
        errs.check(&format!("{p}.port.number"), validate_port(s.port.number));
        let proto = s.port.protocol.to_ascii_uppercase();
        if !PROTOCOLS.contains(&proto.as_str()) {
            errs.add(
                format!("{p}.port.protocol"),
                format!(
                    "invalid protocol {:?}, supported protocols are {}",
                    s.port.protocol,
                    PROTOCOLS.join(", ")
                ),
            );
        }
        if s.port.target_port != 0 {
            errs.check(&format!("{p}.port.targetPort"), validate_port(s.port.target_port));
        }
        if s.hosts.is_empty() {
            errs.add(
                format!("{p}.hosts"),
                "server config must contain at least one host",
            );
        }
        for (j, h) in s.hosts.iter().enumerate() {
            errs.check(&format!("{p}.hosts[{j}]"), validate_namespaced_host(h));
        }
        if !s.name.is_empty()
            && let Some(prev) = names.insert(&s.name, i)
        {
            errs.add(
                format!("{p}.name"),
                format!("server name {:?} already used by servers[{prev}]", s.name),
            );
        }
        let is_tls_proto = proto == "HTTPS" || proto == "TLS";
        match &s.tls {
            None if is_tls_proto => errs.add(
                format!("{p}.tls"),
                "server must have TLS settings for HTTPS/TLS protocols",
            ),
            None => {}
            Some(tls) => {
                let tp = format!("{p}.tls");
                let has_cert = !tls.server_certificate.is_empty()
                    || !tls.credential_name.is_empty()
                    || !tls.credential_names.is_empty()
                    || !tls.tls_certificates.is_empty();
                match tls.mode {
                    Some(ServerTlsMode::Simple)
                    | Some(ServerTlsMode::Mutual)
                    | Some(ServerTlsMode::OptionalMutual)
                        if !has_cert =>
                    {
                        errs.add(&tp, "SIMPLE and MUTUAL TLS require a serverCertificate/privateKey or a credentialName");
                    }
                    Some(ServerTlsMode::Simple)
                    | Some(ServerTlsMode::Mutual)
                    | Some(ServerTlsMode::OptionalMutual)
                        if !tls.server_certificate.is_empty() && tls.private_key.is_empty() =>
                    {
                        errs.add(
                            format!("{tp}.privateKey"),
                            "a private key is required with serverCertificate",
                        );
                    }
                    Some(ServerTlsMode::IstioMutual) if has_cert || !tls.ca_certificates.is_empty() => {
                        errs.add(&tp, "ISTIO_MUTUAL must not set certificates or credentialName");
                    }
                    _ => {}
                }
                if !tls.credential_name.is_empty() && !tls.credential_names.is_empty() {
                    errs.add(&tp, "only one of credentialName and credentialNames may be set");
                }
            }
        }
    }
}

/// Gateway server hosts: `[ns/]dnsName` where ns is `*`, `.`, `~` or a namespace and dnsName
/// is `*` or a (wildcard) domain.
pub(crate) fn validate_namespaced_host(h: &str) -> Result<(), String> {
    let (ns, host) = match h.split_once('/') {
        Some((ns, host)) => (Some(ns), host),
        None => (None, h),
    };
    if let Some(ns) = ns
        && !(ns == "*" || ns == "." || ns == "~" || is_k8s_label(ns))
    {
        return Err(format!(
            "host {h:?}: namespace {ns:?} must be \"*\", \".\", \"~\" or a namespace name"
        ));
    }
    if host.contains('/') {
        return Err(format!("host {h:?} must be of the form [namespace/]dnsName"));
    }
    if host == "*" {
        Ok(())
    } else {
        validate_wildcard_domain(host).map_err(|e| format!("host {h:?}: {e}"))
    }
}
