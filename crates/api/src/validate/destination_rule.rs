//! DestinationRule rules: host, subsets, and every part of the traffic policy.

use std::collections::BTreeSet;

use super::common::{
    Errs, export_to, is_dns1123_label, selector_labels, validate_duration_ms, validate_percent,
    validate_port, validate_wildcard_domain,
};
use crate::networking::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRule, LoadBalancerSettings,
    OutlierDetection, TrafficPolicy,
};

/// Validates a DestinationRule spec.
pub(crate) fn destination_rule(errs: &mut Errs, dr: &DestinationRule) {
    if dr.host.is_empty() {
        errs.add("spec.host", "host is required");
    } else {
        errs.check("spec.host", validate_wildcard_domain(&dr.host));
    }
    if let Some(tp) = &dr.traffic_policy {
        traffic_policy(errs, "spec.trafficPolicy", tp);
    }
    let mut names = BTreeSet::new();
    for (i, s) in dr.subsets.iter().enumerate() {
        let p = format!("spec.subsets[{i}]");
        if s.name.is_empty() {
            errs.add(format!("{p}.name"), "subset name is required");
        } else if !is_dns1123_label(&s.name) {
            errs.add(
                format!("{p}.name"),
                format!("subset name {:?} is not a valid DNS-1123 label", s.name),
            );
        } else if !names.insert(s.name.as_str()) {
            errs.add(format!("{p}.name"), format!("duplicate subset name {:?}", s.name));
        }
        selector_labels(errs, &format!("{p}.labels"), &s.labels);
        if let Some(tp) = &s.traffic_policy {
            traffic_policy(errs, &format!("{p}.trafficPolicy"), tp);
        }
    }
    if let Some(ws) = &dr.workload_selector {
        selector_labels(errs, "spec.workloadSelector.matchLabels", &ws.match_labels);
    }
    export_to(errs, "spec.exportTo", &dr.export_to);
}

fn traffic_policy(errs: &mut Errs, path: &str, tp: &TrafficPolicy) {
    if let Some(lb) = &tp.load_balancer {
        load_balancer(errs, &format!("{path}.loadBalancer"), lb);
    }
    if let Some(cp) = &tp.connection_pool {
        connection_pool(errs, &format!("{path}.connectionPool"), cp);
    }
    if let Some(od) = &tp.outlier_detection {
        outlier(errs, &format!("{path}.outlierDetection"), od);
    }
    if let Some(tls) = &tp.tls {
        client_tls(errs, &format!("{path}.tls"), tls);
    }
    let mut ports = BTreeSet::new();
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let p = format!("{path}.portLevelSettings[{i}]");
        match &pl.port {
            None => errs.add(
                format!("{p}.port"),
                "port must be set for a port-level traffic policy",
            ),
            Some(port) => {
                errs.check(&format!("{p}.port.number"), validate_port(port.number));
                if !ports.insert(port.number) {
                    errs.add(
                        format!("{p}.port.number"),
                        format!("duplicate port-level settings for port {}", port.number),
                    );
                }
            }
        }
        if let Some(lb) = &pl.load_balancer {
            load_balancer(errs, &format!("{p}.loadBalancer"), lb);
        }
        if let Some(cp) = &pl.connection_pool {
            connection_pool(errs, &format!("{p}.connectionPool"), cp);
        }
        if let Some(od) = &pl.outlier_detection {
            outlier(errs, &format!("{p}.outlierDetection"), od);
        }
        if let Some(tls) = &pl.tls {
            client_tls(errs, &format!("{p}.tls"), tls);
        }
    }
    if let Some(t) = &tp.tunnel {
        let p = format!("{path}.tunnel");
        if !t.protocol.is_empty() && t.protocol != "CONNECT" && t.protocol != "POST" {
            errs.add(format!("{p}.protocol"), "tunnel protocol must be CONNECT or POST");
        }
        if t.target_host.is_empty() {
            errs.add(format!("{p}.targetHost"), "target host is required");
        }
        errs.check(&format!("{p}.targetPort"), validate_port(t.target_port));
    }
    if let Some(pp) = &tp.proxy_protocol
        && !pp.version.is_empty()
        && pp.version != "V1"
        && pp.version != "V2"
    {
        errs.add(
            format!("{path}.proxyProtocol.version"),
            "version must be V1 or V2",
        );
    }
    if let Some(rb) = &tp.retry_budget
        && let Some(pc) = &rb.percent
    {
        errs.check(&format!("{path}.retryBudget.percent.value"), validate_percent(pc));
    }
}

fn load_balancer(errs: &mut Errs, path: &str, lb: &LoadBalancerSettings) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        errs.add(path, "only one of simple and consistentHash may be set");
    }
    if let Some(ch) = &lb.consistent_hash {
        let p = format!("{path}.consistentHash");
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip.is_some(),
            ch.http_query_parameter_name.is_some(),
        ];
        match keys.iter().filter(|k| **k).count() {
            0 => errs.add(
                &p,
                "one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName is required",
            ),
            1 => {}
            _ => errs.add(
                &p,
                "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName may be set",
            ),
        }
        if let Some(c) = &ch.http_cookie
            && c.name.is_empty()
        {
            errs.add(format!("{p}.httpCookie.name"), "cookie name is required");
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            errs.add(&p, "only one of ringHash and maglev may be set");
        }
    }
    if let Some(l) = &lb.locality_lb_setting {
        let p = format!("{path}.localityLbSetting");
        if !l.distribute.is_empty() && !l.failover.is_empty() {
            errs.add(&p, "can not simultaneously specify 'distribute' and 'failover'");
        }
        for (i, d) in l.distribute.iter().enumerate() {
            let total: u64 = d.to.values().map(|v| u64::from(*v)).sum();
            if total != 100 {
                errs.add(
                    format!("{p}.distribute[{i}].to"),
                    format!("total locality weight {total} != 100"),
                );
            }
            if d.from.is_empty() {
                errs.add(format!("{p}.distribute[{i}].from"), "from is required");
            }
        }
        for (i, f) in l.failover.iter().enumerate() {
            if f.from == f.to {
                errs.add(
                    format!("{p}.failover[{i}]"),
                    "locality lb failover settings must specify different regions",
                );
            }
            if f.from.contains('/') || f.to.contains('/') {
                errs.add(
                    format!("{p}.failover[{i}]"),
                    "locality lb failover only specifies regions",
                );
            }
        }
    }
    if let Some(w) = &lb.warmup_duration_secs {
        errs.check(&format!("{path}.warmupDurationSecs"), validate_duration_ms(w));
    }
    if let Some(w) = &lb.warmup {
        let p = format!("{path}.warmup");
        match &w.duration {
            None => errs.add(
                format!("{p}.duration"),
                "Required value: the warmup duration is required",
            ),
            Some(d) => errs.check(&format!("{p}.duration"), validate_duration_ms(d)),
        }
        if let Some(m) = w.minimum_percent
            && !(0.0..=100.0).contains(&m)
        {
            errs.add(
                format!("{p}.minimumPercent"),
                format!("Invalid value: {m}: must be in the range [0, 100]"),
            );
        }
        if let Some(a) = w.aggression
            && a < 1.0
        {
            errs.add(
                format!("{p}.aggression"),
                format!("Invalid value: {a}: must be at least 1.0"),
            );
        }
    }
}

fn connection_pool(errs: &mut Errs, path: &str, cp: &ConnectionPoolSettings) {
    if let Some(t) = &cp.tcp {
        let p = format!("{path}.tcp");
        if t.max_connections < 0 {
            errs.add(
                format!("{p}.maxConnections"),
                "max connections must be non-negative",
            );
        }
        for (name, d) in [
            ("connectTimeout", &t.connect_timeout),
            ("maxConnectionDuration", &t.max_connection_duration),
            ("idleTimeout", &t.idle_timeout),
        ] {
            if let Some(d) = d {
                errs.check(&format!("{p}.{name}"), validate_duration_ms(d));
            }
        }
        if let Some(k) = &t.tcp_keepalive {
            for (name, d) in [("time", &k.time), ("interval", &k.interval)] {
                if let Some(d) = d {
                    errs.check(&format!("{p}.tcpKeepalive.{name}"), validate_duration_ms(d));
                }
            }
        }
    }
    if let Some(h) = &cp.http {
        let p = format!("{path}.http");
        for (name, v) in [
            ("http1MaxPendingRequests", h.http1_max_pending_requests),
            ("http2MaxRequests", h.http2_max_requests),
            ("maxRequestsPerConnection", h.max_requests_per_connection),
            ("maxRetries", h.max_retries),
            ("maxConcurrentStreams", h.max_concurrent_streams),
        ] {
            if v < 0 {
                errs.add(format!("{p}.{name}"), format!("{name} must be non-negative"));
            }
        }
        if let Some(d) = &h.idle_timeout {
            errs.check(&format!("{p}.idleTimeout"), validate_duration_ms(d));
        }
        if let Some(k) = &h.http2_keep_alive {
            for (name, d) in [("interval", &k.interval), ("timeout", &k.timeout)] {
                if let Some(d) = d {
                    errs.check(&format!("{p}.http2KeepAlive.{name}"), validate_duration_ms(d));
                }
            }
        }
    }
}

fn outlier(errs: &mut Errs, path: &str, od: &OutlierDetection) {
    if od.consecutive_errors.is_some_and(|v| v < 0) {
        errs.add(
            format!("{path}.consecutiveErrors"),
            "consecutive errors must be non-negative",
        );
    }
    for (name, d) in [
        ("interval", &od.interval),
        ("baseEjectionTime", &od.base_ejection_time),
    ] {
        if let Some(d) = d {
            errs.check(&format!("{path}.{name}"), validate_duration_ms(d));
        }
    }
    for (name, v) in [
        ("maxEjectionPercent", od.max_ejection_percent),
        ("minHealthPercent", od.min_health_percent),
    ] {
        if let Some(v) = v
            && !(0..=100).contains(&v)
        {
            errs.add(
                format!("{path}.{name}"),
                format!("{name} must be in the range [0, 100]"),
            );
        }
    }
}

fn client_tls(errs: &mut Errs, path: &str, tls: &ClientTlsSettings) {
    if tls.mode == Some(ClientTlsMode::Mutual) && tls.credential_name.is_empty() {
        if tls.client_certificate.is_empty() {
            errs.add(
                format!("{path}.clientCertificate"),
                "client certificate required for mutual tls",
            );
        }
        if tls.private_key.is_empty() {
            errs.add(
                format!("{path}.privateKey"),
                "private key required for mutual tls",
            );
        }
    }
    if tls.mode == Some(ClientTlsMode::IstioMutual)
        && (!tls.client_certificate.is_empty()
            || !tls.private_key.is_empty()
            || !tls.ca_certificates.is_empty()
            || !tls.credential_name.is_empty())
    {
        errs.add(
            path,
            "cannot specify certificates or credentialName with ISTIO_MUTUAL; the mesh provides them",
        );
    }
}
