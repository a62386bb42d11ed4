//! Table-driven tests: one row per Istio validation rule, each naming the field path it reports.

use crate::parse_documents;

/// Parses one resource whose spec is written in YAML flow style; returns `path: message` lines.
fn errors(kind: &str, spec: &str) -> Vec<String> {
    let group = match kind {
        "PeerAuthentication" | "AuthorizationPolicy" | "RequestAuthentication" => "security.istio.io",
        _ => "networking.istio.io",
    };
    let text = format!(
        "apiVersion: {group}/v1\nkind: {kind}\nmetadata:\n  name: t\n  namespace: ns\nspec: {spec}\n"
    );
    match parse_documents(&text, "test") {
        Ok(_) => Vec::new(),
        Err(errs) => errs
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    }
}

/// `(kind, spec, expected)`: `None` = valid; `Some((path, words))` = an error at exactly `path`
/// whose message contains `words`.
type Case = (&'static str, &'static str, Option<(&'static str, &'static str)>);

fn run(cases: &[Case]) {
    for (kind, spec, want) in cases {
        let got = errors(kind, spec);
        match want {
            None => assert!(got.is_empty(), "{kind} {spec}: expected valid, got {got:#?}"),
            Some((path, words)) => assert!(
                got.iter()
                    .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(words)),
                "{kind} {spec}: expected `{path}: ...{words}...`, got {got:#?}"
            ),
        }
    }
}

const VS: &str = "VirtualService";

#[test]
fn virtual_service_rules() {
    run(&[
        (
            VS,
            "{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}",
            None,
        ),
        (
            VS,
            "{hosts: [reviews], http: [{name: x}]}",
            Some(("spec.http[0]", "is required")),
        ),
        (
            VS,
            "{hosts: [reviews]}",
            Some(("spec", "http, tcp or tls must be provided")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], redirect: {uri: /x}}]}",
            Some(("spec.http[0]", "only one of")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], delegate: {name: d}}]}",
            Some(("spec.http[0]", "only one of")),
        ),
        (
            VS,
            "{hosts: [r], http: [{directResponse: {status: 200}, redirect: {uri: /x}}]}",
            Some(("spec.http[0]", "only one of")),
        ),
        (
            VS,
            "{hosts: [r], http: [{redirect: {uri: /x}, rewrite: {uri: /y}}]}",
            Some(("spec.http[0].rewrite", "redirect")),
        ),
        (
            VS,
            "{hosts: [r], http: [{redirect: {uri: /x}, fault: {abort: {httpStatus: 500, percentage: {value: 1}}}}]}",
            Some(("spec.http[0].fault", "redirect")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], mirror: {host: m}, mirrors: [{destination: {host: mm}}]}]}",
            Some(("spec.http[0].mirrors", "mirror and mirrors")),
        ),
        // Weights: relative, need not sum to 100; only several destinations all at 0 is an error.
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r, subset: a}}, {destination: {host: r, subset: b}}]}]}",
            Some(("spec.http[0].route", "total destination weight = 0")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}, weight: 0}]}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r, subset: a}, weight: 30}, {destination: {host: r, subset: b}, weight: 30}]}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}, weight: -1}, {destination: {host: r}, weight: 2}]}]}",
            Some(("spec.http[0].route[0].weight", "< 0")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}, weight: \"50\"}]}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}, weight: abc}]}]}",
            Some(("spec.http[0].route[0].weight", "expected an integer")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {hostt: r}}]}]}",
            Some(("spec.http[0].route[0].destination.hostt", "unknown field")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r, port: {number: 70000}}}]}]}",
            Some(("spec.http[0].route[0].destination.port.number", "1-65535")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {}}]}]}",
            Some(("spec.http[0].route[0].destination.host", "required")),
        ),
        (
            VS,
            "{hosts: [r], http: [{match: [{uri: {regex: \"(\"}}], route: [{destination: {host: r}}]}]}",
            Some(("spec.http[0].match[0].uri.regex", "invalid regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{match: [{uri: {exact: /a, prefix: /b}}], route: [{destination: {host: r}}]}]}",
            Some(("spec.http[0].match[0].uri", "only one of exact, prefix or regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{match: [{headers: {x-a: {regex: \"[\"}}}], route: [{destination: {host: r}}]}]}",
            Some(("spec.http[0].match[0].headers.x-a.regex", "invalid regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{match: [{queryParams: {q: {regex: \"a{2,1}\"}}}], route: [{destination: {host: r}}]}]}",
            Some(("spec.http[0].match[0].queryParams.q.regex", "invalid regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{match: [{authority: {regex: \"(\"}}], route: [{destination: {host: r}}]}]}",
            Some(("spec.http[0].match[0].authority.regex", "invalid regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{match: [{headers: {end-user: {}}}], route: [{destination: {host: r}}]}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], corsPolicy: {allowOrigins: [{regex: \"(\"}]}}]}",
            Some(("spec.http[0].corsPolicy.allowOrigins[0].regex", "invalid regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], rewrite: {uriRegexRewrite: {match: \"(\", rewrite: x}}}]}",
            Some(("spec.http[0].rewrite.uriRegexRewrite.match", "invalid regex")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], timeout: abc}]}",
            Some(("spec.http[0].timeout", "invalid duration")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], timeout: 500us}]}",
            Some(("spec.http[0].timeout", "at least 1ms")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], timeout: 1500us}]}",
            Some(("spec.http[0].timeout", "millisecond precision")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], timeout: 0s}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], timeout: 1.5s}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], retries: {attempts: 3, perTryTimeout: 0s}}]}",
            Some(("spec.http[0].retries.perTryTimeout", "at least 1ms")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], retries: {attempts: 3, retryOn: \"5xx,bogus\"}}]}",
            Some(("spec.http[0].retries.retryOn", "bogus")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], retries: {attempts: 3, retryOn: \"503,reset\"}}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], fault: {abort: {httpStatus: 500, percentage: {value: 150}}}}]}",
            Some(("spec.http[0].fault.abort.percentage.value", "[0, 100]")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], fault: {abort: {httpStatus: 600}}}]}",
            Some(("spec.http[0].fault.abort.httpStatus", "200-599")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], fault: {abort: {httpStatus: 500, percent: 10}}}]}",
            Some(("spec.http[0].fault.abort.percent", "unknown field")),
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}}]}",
            None,
        ),
        (
            VS,
            "{hosts: [r], http: [{route: [{destination: {host: r}}], mirror: {host: m}, mirrorPercentage: {value: 101}}]}",
            Some(("spec.http[0].mirrorPercentage.value", "[0, 100]")),
        ),
        (
            VS,
            "{hosts: [r], http: [{redirect: {uri: /x, redirectCode: 305}}]}",
            Some(("spec.http[0].redirect.redirectCode", "305")),
        ),
        (
            VS,
            "{hosts: [r], http: [{directResponse: {status: 100}}]}",
            Some(("spec.http[0].directResponse.status", "200-599")),
        ),
        (
            VS,
            "{hosts: [\"foo.*.com\"], http: [{directResponse: {status: 200}}]}",
            Some(("spec.hosts[0]", "left-most")),
        ),
        (
            VS,
            "{hosts: [\"*.foo.com\"], http: [{directResponse: {status: 200}}]}",
            None,
        ),
        (
            VS,
            "{hosts: [\"*\"], http: [{directResponse: {status: 200}}]}",
            Some(("spec.hosts[0]", "mesh gateway")),
        ),
        (
            VS,
            "{hosts: [\"*\"], gateways: [gw], http: [{directResponse: {status: 200}}]}",
            None,
        ),
        (
            VS,
            "{hosts: [a, b, a], http: [{directResponse: {status: 200}}]}",
            Some(("spec.hosts[2]", "duplicate host")),
        ),
        (
            VS,
            "{gateways: [gw], http: [{directResponse: {status: 200}}]}",
            Some(("spec.gateways", "delegate")),
        ),
        (VS, "{http: [{route: [{destination: {host: r}}]}]}", None),
        (
            VS,
            "{http: [{delegate: {name: x}}]}",
            Some(("spec.http[0].delegate", "cannot delegate again")),
        ),
        (
            VS,
            "{hosts: [r], gateways: [\"a/b/c\"], http: [{directResponse: {status: 200}}]}",
            Some(("spec.gateways[0]", "gateway")),
        ),
        (
            VS,
            "{hosts: [a.com], tls: [{match: [{sniHosts: [b.com]}], route: [{destination: {host: a.com}}]}]}",
            Some(("spec.tls[0].match[0].sniHosts[0]", "not a match")),
        ),
        (
            VS,
            "{hosts: [a.com], tcp: [{route: []}]}",
            Some(("spec.tcp[0].route", "required")),
        ),
        (
            VS,
            "{hosts: [r], exportTo: [\"*\", ns1], http: [{directResponse: {status: 200}}]}",
            Some(("spec.exportTo", "public")),
        ),
    ]);
}

#[test]
fn unknown_top_level_fields_are_reported() {
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: t}\nspecs: {hosts: [a]}\n";
    let errs = parse_documents(text, "test").err().unwrap_or_default();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "specs");
    assert!(errs[0].message.starts_with("unknown field"), "{}", errs[0]);
}

#[test]
fn metadata_names_follow_kubernetes_rules() {
    for (name, ok) in [
        ("reviews", true),
        ("reviews.v1", true),
        ("Reviews", false),
        ("bad_name", false),
        ("-a", false),
    ] {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name:?}}}\n\
             spec: {{servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [\"*\"]}}]}}\n"
        );
        let result = parse_documents(&text, "test");
        assert_eq!(result.is_ok(), ok, "{name}: {result:?}");
    }
}

#[test]
fn destination_rule_rules() {
    const DR: &str = "DestinationRule";
    run(&[
        (
            DR,
            "{host: reviews, subsets: [{name: v1, labels: {version: v1}}]}",
            None,
        ),
        (DR, "{subsets: []}", Some(("spec.host", "required"))),
        (
            DR,
            "{host: r, subsets: [{labels: {a: b}}]}",
            Some(("spec.subsets[0].name", "required")),
        ),
        (
            DR,
            "{host: r, subsets: [{name: v1}, {name: v1}]}",
            Some(("spec.subsets[1].name", "duplicate")),
        ),
        (
            DR,
            "{host: r, trafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}}",
            Some(("spec.trafficPolicy.loadBalancer", "only one of")),
        ),
        (
            DR,
            "{host: r, trafficPolicy: {loadBalancer: {simple: FASTEST}}}",
            Some(("spec.trafficPolicy.loadBalancer.simple", "unknown variant")),
        ),
        (
            DR,
            "{host: r, trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}}",
            Some((
                "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
                "[0, 100]",
            )),
        ),
        (
            DR,
            "{host: r, trafficPolicy: {outlierDetection: {consecutive5xxErrors: \"7\", interval: 1s, baseEjectionTime: 3m}}}",
            None,
        ),
        (
            DR,
            "{host: r, trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}}",
            Some((
                "spec.trafficPolicy.connectionPool.tcp.maxConnections",
                "non-negative",
            )),
        ),
        (
            DR,
            "{host: r, trafficPolicy: {portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}}",
            Some(("spec.trafficPolicy.portLevelSettings[0].port", "must be set")),
        ),
        (
            DR,
            "{host: r, trafficPolicy: {tls: {mode: MUTUAL}}}",
            Some(("spec.trafficPolicy.tls.clientCertificate", "mutual tls")),
        ),
        (DR, "{host: r, workloadSelector: {matchLabels: {app: a}}}", None),
    ]);
}

#[test]
fn gateway_rules() {
    const GW: &str = "Gateway";
    run(&[
        (
            GW,
            "{selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]}",
            None,
        ),
        (
            GW,
            "{selector: {istio: ingressgateway}}",
            Some(("spec.servers", "at least one server")),
        ),
        (
            GW,
            "{servers: [{port: {number: 0, name: http, protocol: HTTP}, hosts: [\"*\"]}]}",
            Some(("spec.servers[0].port.number", "1-65535")),
        ),
        (
            GW,
            "{servers: [{port: {number: 80, name: x, protocol: FOO}, hosts: [\"*\"]}]}",
            Some(("spec.servers[0].port.protocol", "invalid protocol")),
        ),
        (
            GW,
            "{servers: [{port: {number: 80, name: x, protocol: HTTP}}]}",
            Some(("spec.servers[0].hosts", "at least one host")),
        ),
        (
            GW,
            "{servers: [{port: {number: 80, name: x, protocol: HTTP}, hosts: [\"prod/*.example.com\", \"./a.com\"]}]}",
            None,
        ),
        (
            GW,
            "{servers: [{port: {number: 80, name: x, protocol: HTTP}, hosts: [\"a/b/c\"]}]}",
            Some(("spec.servers[0].hosts[0]", "[namespace/]dnsName")),
        ),
        (
            GW,
            "{servers: [{port: {number: 443, name: x, protocol: HTTPS}, hosts: [a.com]}]}",
            Some(("spec.servers[0].tls", "TLS settings")),
        ),
        (
            GW,
            "{servers: [{port: {number: 443, name: x, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE}}]}",
            Some(("spec.servers[0].tls", "credentialName")),
        ),
        (
            GW,
            "{servers: [{port: {number: 443, name: x, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE, credentialName: c}}]}",
            None,
        ),
    ]);
}

#[test]
fn service_entry_and_workload_entry_rules() {
    const SE: &str = "ServiceEntry";
    const WE: &str = "WorkloadEntry";
    run(&[
        (
            SE,
            "{hosts: [a.com], ports: [{number: 443, name: https, protocol: TLS}], resolution: DNS}",
            None,
        ),
        (SE, "{ports: []}", Some(("spec.hosts", "Required"))),
        (SE, "{hosts: [\"*\"]}", Some(("spec.hosts[0]", "wildcard"))),
        (
            SE,
            "{hosts: [a.com], workloadSelector: {labels: {app: a}}, endpoints: [{address: 1.1.1.1}]}",
            Some(("spec", "only one of")),
        ),
        (
            SE,
            "{hosts: [a.com], ports: [{number: 1, name: a}, {number: 1, name: b}]}",
            Some(("spec.ports[1].number", "duplicated")),
        ),
        (
            SE,
            "{hosts: [a.com], resolution: STATIC, endpoints: [{address: foo.com}]}",
            Some(("spec.endpoints[0].address", "IP")),
        ),
        (
            SE,
            "{hosts: [a.com], ports: [{number: 80, name: http}], resolution: STATIC, endpoints: [{address: 1.1.1.1, ports: {grpc: 81}}]}",
            Some(("spec.endpoints[0].ports.grpc", "not defined")),
        ),
        (
            WE,
            "{address: 10.0.0.1, ports: {http: 8080}, labels: {app: a}, serviceAccount: sa}",
            None,
        ),
        (WE, "{labels: {app: a}}", Some(("spec.address", "required"))),
        (
            WE,
            "{address: 10.0.0.1, ports: {http: 0}}",
            Some(("spec.ports.http", "1-65535")),
        ),
    ]);
}

#[test]
fn security_rules() {
    const PA: &str = "PeerAuthentication";
    const AP: &str = "AuthorizationPolicy";
    const RA: &str = "RequestAuthentication";
    run(&[
        (PA, "{mtls: {mode: STRICT}}", None),
        (
            PA,
            "{portLevelMtls: {\"80\": {mode: DISABLE}}}",
            Some(("spec.portLevelMtls", "requires selector")),
        ),
        (
            PA,
            "{selector: {matchLabels: {app: a}}, portLevelMtls: {\"80\": {mode: DISABLE}}}",
            None,
        ),
        (
            PA,
            "{selector: {matchLabels: {app: a}}, portLevelMtls: {acd: {mode: STRICT}}}",
            Some(("spec.portLevelMtls", "\"acd\" is not a number")),
        ),
        (AP, "{}", None),
        (
            AP,
            "{action: CUSTOM, rules: [{}]}",
            Some(("spec.provider", "requires a provider")),
        ),
        (AP, "{action: CUSTOM, provider: {name: ext}, rules: [{}]}", None),
        (
            AP,
            "{action: DENY, provider: {name: ext}}",
            Some(("spec.provider", "CUSTOM")),
        ),
        (
            AP,
            "{rules: [{from: [{source: {serviceAccounts: [ns/sa], principals: [p]}}]}]}",
            Some(("spec.rules[0].from[0].source", "serviceAccounts")),
        ),
        (
            AP,
            "{rules: [{when: [{key: request.bogus, values: [a]}]}]}",
            Some(("spec.rules[0].when[0].key", "unknown attribute")),
        ),
        (
            AP,
            "{rules: [{when: [{key: \"request.headers[x]\"}]}]}",
            Some(("spec.rules[0].when[0]", "values")),
        ),
        (
            AP,
            "{rules: [{to: [{operation: {ports: [http]}}]}]}",
            Some(("spec.rules[0].to[0].operation.ports", "number")),
        ),
        (
            RA,
            "{jwtRules: [{issuer: a, jwksUri: \"https://x/jwks.json\"}]}",
            None,
        ),
        (
            RA,
            "{jwtRules: [{jwksUri: \"https://x/jwks.json\"}]}",
            Some(("spec.jwtRules[0].issuer", "issuer")),
        ),
        (
            RA,
            "{jwtRules: [{issuer: a, jwks: \"{}\", jwksUri: \"https://x\"}]}",
            Some(("spec.jwtRules[0]", "only one of jwks and jwksUri")),
        ),
        (
            RA,
            "{jwtRules: [{issuer: a, jwksUri: example.com/jwks}]}",
            Some(("spec.jwtRules[0].jwksUri", "scheme")),
        ),
        (
            RA,
            "{selector: {matchLabels: {a: b}}, targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g}]}",
            Some(("spec", "only one of targetRefs or selector")),
        ),
    ]);
}
