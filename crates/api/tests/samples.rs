//! Istio's own sample YAML and CRD validation cases, run through `parse_documents`.
//!
//! The shared reference directory is found at `$STRAIT_SHARED_DIR`, or `<manifest>/../../../shared`
//! (the repository checked out beside `shared/`). The test fails, saying so, when it is absent.

use std::path::{Path, PathBuf};

use serde_json::Value;
use strait_api::{Document, Kind, parse_documents};

fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("STRAIT_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    assert!(
        dir.join("istio-samples").is_dir(),
        "shared reference directory not found at {} (set STRAIT_SHARED_DIR to the folder holding istio-samples/)",
        dir.display()
    );
    dir
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

/// An Istio kind (group ending in `istio.io`) that Strait does not implement.
fn foreign_istio_kind(v: &Value) -> Option<String> {
    let api = v.get("apiVersion")?.as_str()?;
    let kind = v.get("kind")?.as_str()?;
    let group = api.split('/').next()?;
    (group.ends_with("istio.io") && Kind::from_kind_field(kind).is_none_or(|k| k.group() != group))
        .then(|| format!("{group}/{kind}"))
}

#[test]
fn every_sample_with_our_kinds_validates() {
    let shared = shared_dir().join("istio-samples");
    let mut files = Vec::new();
    yaml_files(&shared.join("samples"), &mut files);
    yaml_files(&shared.join("istio-api-doc-examples"), &mut files);
    let (mut checked, mut skipped, mut istio_docs, mut failures) = (0, 0, 0, Vec::new());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let Ok(values) = serde_saphyr::from_multiple::<Value>(&text) else {
            failures.push(format!("{}: not YAML", f.display()));
            continue;
        };
        // Not Kubernetes manifests at all (e.g. bookinfo's swagger.yaml).
        if values.iter().any(|v| v.is_object() && v.get("kind").is_none()) {
            skipped += 1;
            continue;
        }
        if values.iter().any(|v| foreign_istio_kind(v).is_some()) {
            skipped += 1;
            continue;
        }
        checked += 1;
        match parse_documents(&text, &f.display().to_string()) {
            Ok(docs) => {
                for d in &docs {
                    if let Document::Istio(r) = d {
                        istio_docs += 1;
                        // What we print, we read back identically.
                        let yaml = serde_saphyr::to_string(r).unwrap_or_default();
                        match parse_documents(&yaml, "round trip") {
                            Ok(back) if back.len() == 1 && &back[0] == d => {}
                            other => failures.push(format!(
                                "{}: round trip changed {}: {other:?}",
                                f.display(),
                                r.display_name()
                            )),
                        }
                    }
                }
            }
            Err(errs) => failures.extend(errs.iter().map(ToString::to_string)),
        }
    }
    println!(
        "samples: {checked} files checked ({istio_docs} Istio resources), {skipped} skipped for other Istio kinds"
    );
    assert!(checked > 50, "expected many sample files, found {checked}");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Istio's CRD validation cases: each document carries `_err` when it must be rejected.
fn crd_case(file: &str) -> Vec<(String, Value)> {
    let path = shared_dir()
        .join("istio-samples/pkg/config/validation/testdata/crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // YAML-parser divergence, not a validation question: in a flow sequence serde-saphyr reads
    // `001:db8::` as a one-key mapping where Go's YAML reads a string. Quote it.
    let text = text.replace("[1.2.3.4, 001:db8::]", "[1.2.3.4, \"001:db8::\"]");
    let values =
        serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    values
        .into_iter()
        .filter(|v| v.is_object())
        .map(|mut v| {
            let err = v
                .as_object_mut()
                .and_then(|m| m.remove("_err"))
                .and_then(|e| e.as_str().map(String::from));
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            (format!("{file} {name} ({})", err.unwrap_or_default()), v)
        })
        .collect()
}

/// The field each invalid case is about, in file order (authz, destinationrule, peerauth,
/// reqauth, serviceentry, workloadentry).
const INVALID_PATHS: [&str; 50] = [
    "spec.rules[0].from[0].source",
    "spec.rules[0].from[0].source",
    "spec.trafficPolicy.loadBalancer.warmup.minimumPercent",
    "spec.trafficPolicy.loadBalancer.warmup.duration",
    "spec.trafficPolicy.loadBalancer.warmup.aggression",
    "spec.mtls.mode",
    "spec.portLevelMtls",
    "spec.portLevelMtls",
    "spec.portLevelMtls",
    "spec.portLevelMtls.0",
    "spec.portLevelMtls.42949672",
    "spec",
    "spec",
    "spec.targetRef.name",
    "spec.targetRef.namespace",
    "spec.targetRef.group",
    "spec.targetRef.kind",
    "spec.jwtRules[0]",
    "spec.jwtRules[0].audiences[0]",
    "spec.jwtRules[0].jwksUri",
    "spec.jwtRules[0].fromHeaders[0].name",
    "spec.jwtRules[0].fromHeaders[0].name",
    "spec.jwtRules[0].fromParams[0]",
    "spec.jwtRules[0].fromCookies[0]",
    "spec.jwtRules[0].outputClaimToHeaders[0]",
    "spec.jwtRules[0].outputClaimToHeaders[0].claim",
    "spec.jwtRules[0].outputClaimToHeaders[0].header",
    "spec.jwtRules[0].outputClaimToHeaders[0].header",
    "spec.jwtRules[0].timeout",
    "spec.jwtRules[0].spaceDelimitedClaims[0]",
    "spec.jwtRules[0].presence",
    "spec",
    "spec.hosts",
    "spec.workloadSelector.labels.val",
    "spec",
    "spec.hosts[0]",
    "spec.addresses[0]",
    "spec.ports[1].name",
    "spec.ports[1].number",
    "spec.ports[0].number",
    "spec.ports[0].targetPort",
    "spec.endpoints",
    "spec.endpoints",
    "spec",
    "spec.address",
    "spec.address",
    "spec.address",
    "spec.ports",
    "spec.ports.http",
    "spec.ports.@",
];

const CRD_KINDS: [&str; 6] = [
    "authz",
    "destinationrule",
    "peerauth",
    "reqauth",
    "serviceentry",
    "workloadentry",
];

#[test]
fn istio_crd_valid_cases_are_accepted() {
    let mut count = 0;
    for kind in CRD_KINDS {
        for (name, v) in crd_case(&format!("{kind}-valid.yaml")) {
            let text = serde_json::to_string(&v).unwrap_or_default();
            if let Err(e) = parse_documents(&text, &name) {
                panic!("{name} should be valid: {e:?}");
            }
            count += 1;
        }
    }
    println!("{count} valid CRD cases accepted");
    assert_eq!(count, 19, "the valid CRD case files changed");
}

#[test]
fn istio_crd_invalid_cases_are_rejected() {
    let mut count = 0;
    for kind in CRD_KINDS {
        for (name, v) in crd_case(&format!("{kind}-invalid.yaml")) {
            let text = serde_json::to_string(&v).unwrap_or_default();
            match parse_documents(&text, &name) {
                Ok(_) => panic!("{name} should be rejected"),
                Err(e) => {
                    // Rejected for the right reason: the field Istio names is among our errors.
                    let want = INVALID_PATHS.get(count).copied().unwrap_or("?");
                    assert!(
                        e.iter().any(|x| x.path == want),
                        "{name}: expected an error at {want}, got {e:#?}"
                    );
                }
            }
            count += 1;
        }
    }
    println!("{count} invalid CRD cases rejected");
    assert_eq!(count, INVALID_PATHS.len(), "the invalid CRD case files changed");
}
