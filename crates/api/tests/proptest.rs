//! Property tests: the parser never panics, whatever it is given, and valid resources survive a
//! serialize -> parse round trip unchanged (JSON and YAML).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use strait_api::networking::{
    Abort, Destination, DestinationRule, HeaderOperations, Headers, HttpFaultInjection, HttpMatchRequest,
    HttpRetry, HttpRoute, HttpRouteDestination, LoadBalancerSettings, OutlierDetection, PortSelector,
    SimpleLb, StringMatch, Subset, TrafficPolicy, VirtualService,
};
use strait_api::networking::{Gateway, Port, Resolution, Server, ServiceEntry, ServicePort, WorkloadEntry};
use strait_api::proto::Percent;
use strait_api::security::{
    Action, AuthorizationPolicy, MtlsMode, MutualTls, Operation, PeerAuthentication, Rule, RuleFrom, RuleTo,
    Source, WorkloadSelector,
};
use strait_api::{Document, Duration, Kind, ObjectMeta, Resource, Spec, parse_documents, validate};

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}[a-z0-9]"
}

fn string_match() -> impl Strategy<Value = StringMatch> {
    prop_oneof![
        name().prop_map(|s| StringMatch::Exact(format!("/{s}"))),
        name().prop_map(|s| StringMatch::Prefix(format!("/{s}"))),
        prop::sample::select(vec!["/api/v[0-9]+/.*", "^/a(b|c)*$", "\\d+"])
            .prop_map(|s| StringMatch::Regex(s.into())),
        Just(StringMatch::Any),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    (1u64..100_000).prop_map(|ms| Duration::from_std(std::time::Duration::from_millis(ms)))
}

fn percent() -> impl Strategy<Value = Percent> {
    (0u32..=400).prop_map(|q| Percent {
        value: f64::from(q) / 4.0,
    })
}

fn destination() -> impl Strategy<Value = Destination> {
    (name(), prop::option::of(name()), prop::option::of(1u32..=65535)).prop_map(|(host, subset, port)| {
        Destination {
            host,
            subset: subset.unwrap_or_default(),
            port: port.map(|number| PortSelector { number }),
        }
    })
}

fn header_ops() -> impl Strategy<Value = Option<Headers>> {
    prop::option::of(
        (
            prop::collection::btree_map(name(), name(), 0..3),
            prop::collection::vec(name(), 0..2),
        )
            .prop_map(|(set, remove)| Headers {
                request: Some(HeaderOperations {
                    set,
                    add: BTreeMap::new(),
                    remove,
                }),
                response: None,
            }),
    )
}

fn http_route() -> impl Strategy<Value = HttpRoute> {
    (
        prop::collection::vec((destination(), 0i32..100, header_ops()), 1..4),
        prop::collection::vec(
            (
                prop::option::of(string_match()),
                prop::collection::btree_map(name(), string_match(), 0..2),
            ),
            0..3,
        ),
        prop::option::of(duration()),
        prop::option::of((0i32..5, prop::option::of(duration()))),
        prop::option::of((200i32..600, prop::option::of(percent()))),
        header_ops(),
        name(),
    )
        .prop_map(|(dests, matches, timeout, retries, abort, headers, route_name)| {
            let mut route: Vec<HttpRouteDestination> = dests
                .into_iter()
                .map(|(destination, weight, headers)| HttpRouteDestination {
                    destination,
                    weight,
                    headers,
                })
                .collect();
            if route.len() > 1 {
                route[0].weight += 1; // Istio rejects several destinations that all weigh 0.
            }
            HttpRoute {
                name: route_name,
                r#match: matches
                    .into_iter()
                    .map(|(uri, headers)| HttpMatchRequest {
                        uri,
                        headers,
                        ..Default::default()
                    })
                    .collect(),
                route,
                timeout,
                retries: retries.map(|(attempts, per_try_timeout)| HttpRetry {
                    attempts,
                    per_try_timeout,
                    ..Default::default()
                }),
                fault: abort.map(|(status, percentage)| HttpFaultInjection {
                    delay: None,
                    abort: Some(Abort {
                        http_status: Some(status),
                        percentage,
                        ..Default::default()
                    }),
                }),
                headers,
                ..Default::default()
            }
        })
}

fn virtual_service() -> impl Strategy<Value = Spec> {
    (
        prop::collection::btree_set(name(), 1..4),
        any::<bool>(),
        prop::collection::vec(http_route(), 1..4),
    )
        .prop_map(|(hosts, gw, http)| {
            Spec::VirtualService(VirtualService {
                hosts: hosts.into_iter().collect(),
                gateways: if gw {
                    vec!["istio-system/gw".into()]
                } else {
                    Vec::new()
                },
                http,
                ..Default::default()
            })
        })
}

fn destination_rule() -> impl Strategy<Value = Spec> {
    (
        name(),
        prop::collection::btree_map(name(), prop::collection::btree_map(name(), name(), 1..3), 0..4),
        prop::option::of(prop::sample::select(vec![
            SimpleLb::RoundRobin,
            SimpleLb::Random,
            SimpleLb::LeastRequest,
        ])),
        prop::option::of((0u32..10, duration(), 0i32..=100)),
    )
        .prop_map(|(host, subsets, simple, outlier)| {
            Spec::DestinationRule(DestinationRule {
                host,
                subsets: subsets
                    .into_iter()
                    .map(|(name, labels)| Subset {
                        name,
                        labels,
                        traffic_policy: None,
                    })
                    .collect(),
                traffic_policy: Some(TrafficPolicy {
                    load_balancer: simple.map(|s| LoadBalancerSettings {
                        simple: Some(s),
                        ..Default::default()
                    }),
                    outlier_detection: outlier.map(|(c, interval, max)| OutlierDetection {
                        consecutive_5xx_errors: Some(c),
                        interval: Some(interval),
                        max_ejection_percent: Some(max),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
}

fn gateway() -> impl Strategy<Value = Spec> {
    (
        prop::collection::btree_map(name(), name(), 0..3),
        prop::collection::btree_map(
            1u32..=65535,
            (
                prop::sample::select(vec!["HTTP", "TCP", "GRPC", "http2"]),
                prop::collection::vec(name(), 1..3),
            ),
            1..4,
        ),
    )
        .prop_map(|(selector, servers)| {
            Spec::Gateway(Gateway {
                selector,
                servers: servers
                    .into_iter()
                    .map(|(number, (protocol, hosts))| Server {
                        port: Port {
                            number,
                            protocol: protocol.into(),
                            name: format!("p{number}"),
                            target_port: 0,
                        },
                        hosts: hosts.into_iter().map(|h| format!("{h}.example.com")).collect(),
                        ..Default::default()
                    })
                    .collect(),
            })
        })
}

fn service_entry() -> impl Strategy<Value = Spec> {
    (
        prop::collection::btree_set(name(), 1..3),
        prop::collection::btree_map(1u32..=65535, name(), 1..3),
        prop::collection::vec(
            (
                0u8..=255,
                0u8..=255,
                prop::collection::btree_map(name(), name(), 0..2),
            ),
            0..3,
        ),
        0u32..100,
    )
        .prop_map(|(hosts, ports, endpoints, weight)| {
            let ports: Vec<ServicePort> = ports
                .into_iter()
                .enumerate()
                .map(|(i, (number, n))| ServicePort {
                    number,
                    protocol: "HTTP".into(),
                    name: format!("{n}-{i}"),
                    target_port: 0,
                })
                .collect();
            Spec::ServiceEntry(ServiceEntry {
                hosts: hosts.into_iter().map(|h| format!("{h}.example.com")).collect(),
                resolution: Some(Resolution::Static),
                endpoints: endpoints
                    .into_iter()
                    .map(|(a, b, labels)| WorkloadEntry {
                        address: format!("10.{a}.{b}.1"),
                        labels,
                        weight,
                        ports: ports
                            .first()
                            .map(|p| (p.name.clone(), 8080))
                            .into_iter()
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ports,
                ..Default::default()
            })
        })
}

fn security() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (
            prop::collection::btree_map(name(), name(), 1..3),
            prop::sample::select(vec![MtlsMode::Strict, MtlsMode::Permissive, MtlsMode::Disable]),
            prop::collection::btree_map(
                1u32..=65535,
                Just(MutualTls {
                    mode: Some(MtlsMode::Disable)
                }),
                0..2
            ),
        )
            .prop_map(
                |(labels, mode, ports)| Spec::PeerAuthentication(PeerAuthentication {
                    selector: Some(WorkloadSelector { match_labels: labels }),
                    mtls: Some(MutualTls { mode: Some(mode) }),
                    port_level_mtls: (!ports.is_empty()).then_some(ports),
                })
            ),
        (
            prop::sample::select(vec![Action::Allow, Action::Deny, Action::Audit]),
            prop::collection::vec(
                (
                    prop::collection::vec(name(), 1..3),
                    prop::collection::vec(name(), 0..2),
                    1u16..=65535
                ),
                0..3
            ),
        )
            .prop_map(|(action, rules)| Spec::AuthorizationPolicy(AuthorizationPolicy {
                action: Some(action),
                rules: rules
                    .into_iter()
                    .map(|(ns, paths, port)| Rule {
                        from: vec![RuleFrom {
                            source: Source {
                                namespaces: ns,
                                ..Default::default()
                            }
                        }],
                        to: vec![RuleTo {
                            operation: Operation {
                                paths: paths.into_iter().map(|p| format!("/{p}")).collect(),
                                ports: vec![port.to_string()],
                                ..Default::default()
                            },
                        }],
                        when: Vec::new(),
                    })
                    .collect(),
                ..Default::default()
            })),
    ]
}

fn resource() -> impl Strategy<Value = Resource> {
    (
        prop_oneof![
            virtual_service(),
            destination_rule(),
            gateway(),
            service_entry(),
            security()
        ],
        name(),
        name(),
    )
        .prop_map(|(spec, n, ns)| Resource {
            api_version: format!("{}/v1", spec.kind().group()),
            kind: spec.kind(),
            metadata: ObjectMeta {
                name: n,
                namespace: Some(ns),
                ..Default::default()
            },
            spec,
        })
}

fn parse_one(text: &str) -> Resource {
    match parse_documents(text, "roundtrip") {
        Ok(mut docs) if docs.len() == 1 => match docs.remove(0) {
            Document::Istio(r) => r,
            other => panic!("not an Istio document: {other:?}"),
        },
        other => panic!("round trip failed for\n{text}\n{other:?}"),
    }
}

/// Arbitrary JSON shaped like a spec, with keys Istio specs actually use.
fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "hosts",
        "http",
        "route",
        "destination",
        "host",
        "weight",
        "match",
        "uri",
        "prefix",
        "regex",
        "exact",
        "timeout",
        "subsets",
        "name",
        "labels",
        "port",
        "number",
        "servers",
        "mtls",
        "mode",
        "rules",
        "from",
        "source",
        "jwtRules",
        "issuer",
        "fault",
        "abort",
        "percentage",
        "value",
        "endpoints",
        "address",
        "ports",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["1s", "0", "-1s", "STRICT", "*", "a.b", "(", "65536"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_documents_never_panics_on_text(text in ".{0,400}") {
        let _ = parse_documents(&text, "fuzz");
    }

    #[test]
    fn parse_documents_never_panics_on_yamlish_text(
        parts in prop::collection::vec(prop::sample::select(vec![
            "apiVersion: networking.istio.io/v1\n", "kind: VirtualService\n", "kind: Gateway\n", "metadata:\n",
            "  name: x\n", "spec:\n", "  hosts: [a]\n", "  http:\n", "  - route:\n", "    - destination: {host: a}\n",
            "---\n", "- ", "  ", ": ", "{", "}", "[", "]", "'", "\"", "&a ", "*a ", "!!str ", "\t", "#", "\n",
        ]), 0..40)
    ) {
        let _ = parse_documents(&parts.concat(), "fuzz");
    }

    #[test]
    fn parse_documents_never_panics_on_arbitrary_specs(
        kind in prop::sample::select(Kind::ALL.to_vec()),
        spec in json_value(),
    ) {
        let doc = json!({
            "apiVersion": format!("{}/v1", kind.group()),
            "kind": kind.as_str(),
            "metadata": {"name": "x"},
            "spec": spec,
        });
        let _ = parse_documents(&doc.to_string(), "fuzz");
    }

    #[test]
    fn valid_resources_round_trip(r in resource()) {
        let errs = validate(&r);
        prop_assert!(errs.is_empty(), "generated resource should be valid: {errs:?}");
        let json = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(&parse_one(&json), &r);
        let yaml = serde_saphyr::to_string(&r).unwrap();
        prop_assert_eq!(&parse_one(&yaml), &r);
        // `Resource`'s own Deserialize agrees with the parser.
        let back: Resource = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &r);
    }
}

#[test]
fn yaml_round_trip_keeps_ambiguous_strings() {
    // Strings a YAML 1.1 reader would take for booleans or numbers must come back as strings.
    let spec = Spec::VirtualService(VirtualService {
        hosts: vec!["no".into(), "on".into(), "1e3".into(), "0x10".into()],
        http: vec![HttpRoute {
            route: vec![HttpRouteDestination {
                destination: Destination {
                    host: "yes".into(),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let r = Resource {
        api_version: "networking.istio.io/v1".into(),
        kind: Kind::VirtualService,
        metadata: ObjectMeta {
            name: "off".into(),
            ..Default::default()
        },
        spec,
    };
    let yaml = serde_saphyr::to_string(&r).unwrap();
    assert_eq!(parse_one(&yaml), r, "{yaml}");
}
