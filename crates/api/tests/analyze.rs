//! `analyze` against Istio's own analyzer test data and expected findings
//! (`pkg/config/analysis/analyzers/analyzer-expectations.yaml`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use strait_api::analyze::{analyze_with_services, kubernetes_services};
use strait_api::{Document, Kind, KubernetesObject, Resource};

fn analyzers_dir() -> PathBuf {
    let shared = match std::env::var_os("STRAIT_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let dir = shared.join("istio-samples/pkg/config/analysis/analyzers");
    assert!(
        dir.is_dir(),
        "Istio analyzer test data not found at {} (set STRAIT_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Typed documents without webhook validation: analyzer inputs are often deliberately invalid.
fn documents(path: &Path) -> (Vec<Resource>, Vec<Document>) {
    let (mut resources, mut docs) = (Vec::new(), Vec::new());
    for v in yaml(path).into_iter().filter(Value::is_object) {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let ours = Kind::from_kind_field(kind).filter(|k| api.starts_with(k.group()));
        if ours.is_some() {
            match serde_json::from_value::<Resource>(v) {
                Ok(r) => resources.push(r),
                Err(e) => panic!("{}: {e}", path.display()),
            }
        } else if let Ok(mut k) = serde_json::from_value::<KubernetesObject>(v.clone()) {
            k.body = v;
            docs.push(Document::Kubernetes(k));
        }
    }
    (resources, docs)
}

/// Expected `(code, resource)` pairs of one named case, resources as `Kind ns/name`.
fn expected(name: &str, code: &str) -> (String, Vec<String>) {
    let all = yaml(&analyzers_dir().join("analyzer-expectations.yaml"));
    let cases = all
        .first()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| all.clone());
    let case = cases
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no expectation named {name}"));
    let file = case
        .pointer("/inputFiles/0")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut resources: Vec<String> = case
        .get("expected")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("code").and_then(Value::as_str) == Some(code))
        .filter_map(|e| e.get("resource").and_then(Value::as_str))
        .map(|r| match r.split_once(' ') {
            Some((kind, n)) if !n.contains('/') => format!("{kind} default/{n}"),
            _ => r.to_string(),
        })
        .collect();
    resources.sort();
    (file, resources)
}

fn check(name: &str, code: &str, message_filter: &dyn Fn(&str) -> bool) {
    let (file, want) = expected(name, code);
    let (resources, docs) = documents(&analyzers_dir().join(&file));
    let found = analyze_with_services(&resources, &kubernetes_services(&docs));
    let mut got: Vec<String> = found
        .iter()
        .filter(|d| d.code == code && message_filter(&d.message))
        .map(|d| d.resource.clone())
        .collect();
    got.sort();
    assert_eq!(
        got,
        want,
        "{name} ({file}); all findings:\n{}",
        found.iter().map(|d| format!("{d}\n")).collect::<String>()
    );
}

#[test]
fn conflicting_mesh_gateway_hosts() {
    check("virtualServiceConflictingMeshGatewayHosts", "IST0109", &|_| true);
}

#[test]
fn conflicting_mesh_gateway_hosts_with_export_to() {
    check(
        "virtualServiceConflictingMeshGatewayHostsWithExportTo",
        "IST0109",
        &|_| true,
    );
}

#[test]
fn destination_rule_subsets() {
    check("virtualServiceDestinationRules", "IST0101", &|m| {
        m.contains("host+subset")
    });
}

#[test]
fn gateway_references() {
    check("virtualServiceGateways", "IST0101", &|m| m.contains("gateway"));
    check("virtualServiceInternalGatewayRef", "IST0101", &|m| {
        m.contains("gateway")
    });
}

#[test]
fn port_selector_required() {
    check("virtualServiceDestinationHosts", "IST0112", &|_| true);
}

#[test]
fn destination_hosts() {
    check("virtualServiceDestinationHosts", "IST0101", &|m| {
        m.starts_with("Referenced host not found") || m.starts_with("Referenced host:port")
    });
}

/// Bookinfo as Istio ships it: the services, gateway, destination rules and each routing task's
/// VirtualService analyze clean.
#[test]
fn bookinfo_tasks_analyze_clean() {
    let bookinfo = analyzers_dir().join("../../../../samples/bookinfo");
    let read =
        |rel: &str| std::fs::read_to_string(bookinfo.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let base = [
        read("platform/kube/bookinfo.yaml"),
        read("networking/bookinfo-gateway.yaml"),
        read("networking/destination-rule-all.yaml"),
    ]
    .join("\n---\n");
    for task in [
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-50-v3.yaml",
        "virtual-service-reviews-80-20.yaml",
        "virtual-service-reviews-90-10.yaml",
        "virtual-service-reviews-jason-v2-v3.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-reviews-v2-v3.yaml",
        "virtual-service-reviews-v3.yaml",
        "virtual-service-ratings-test-abort.yaml",
        "virtual-service-ratings-test-delay.yaml",
    ] {
        let text = format!("{base}\n---\n{}", read(&format!("networking/{task}")));
        let docs = strait_api::parse_documents(&text, task).unwrap_or_else(|e| panic!("{task}: {e:?}"));
        let found = strait_api::analyze::analyze_documents(&docs);
        assert!(
            found.is_empty(),
            "{task}: {}",
            found.iter().map(|d| format!("{d}\n")).collect::<String>()
        );
    }
    // And the classic mistake is caught: routing to a subset no rule defines.
    let text = format!(
        "{}\n---\n{}",
        read("platform/kube/bookinfo.yaml"),
        read("networking/virtual-service-all-v1.yaml")
    );
    let docs = strait_api::parse_documents(&text, "no rules").unwrap_or_else(|e| panic!("{e:?}"));
    let found: Vec<String> = strait_api::analyze::analyze_documents(&docs)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(found.contains(&"Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: \"reviews+v1\"".to_string()), "{found:#?}");
}

/// Every resource of our kinds in Istio's analyzer test data has a shape our types accept
/// (those files are deliberately semantically wrong, never syntactically).
#[test]
fn analyzer_inputs_type_check() {
    let mut count = 0;
    let mut failures = Vec::new();
    let dir = analyzers_dir().join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let Ok(values) = serde_saphyr::from_multiple::<Value>(&text) else {
            continue;
        };
        for v in values.into_iter().filter(Value::is_object) {
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
            let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            if Kind::from_kind_field(kind).is_some_and(|k| api.starts_with(k.group())) {
                count += 1;
                if let Err(e) = serde_json::from_value::<Resource>(v) {
                    failures.push(format!("{}: {e}", f.display()));
                }
            }
        }
    }
    println!("{count} analyzer resources typed");
    assert!(count > 100, "{count}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
