//! Parsing multi-document YAML or JSON into typed resources.
//!
//! Each document is first read into a generic JSON value (so that `apiVersion` and `kind` can be
//! inspected), then into the typed spec. Errors say which file, which document, which resource and
//! which field, because a user applying forty documents needs to know which one is wrong.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Kind, ObjectMeta, Resource};

/// A parsed document: an Istio resource, or a Kubernetes object the local runner may use.
// Same reasoning as `Spec`: documents are parsed once, not moved in a hot loop.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// An Istio resource of a kind Strait understands.
    Istio(Resource),
    /// Any other object (Service, Deployment, ServiceAccount, ...): kept, never an error.
    Kubernetes(KubernetesObject),
}

/// A non-Istio object, kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesObject {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The whole object.
    #[serde(skip)]
    pub body: Value,
}

/// A problem in the input, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// File name, `-` for standard input, or `request` for the REST API.
    pub source: String,
    /// 1-based document index within the source.
    pub document: usize,
    /// `VirtualService default/reviews` when known.
    pub resource: Option<String>,
    /// Field path such as `spec.http[0].route[1].weight`; empty for whole-document errors.
    pub path: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.source, self.document)?;
        if let Some(r) = &self.resource {
            write!(f, ": {r}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// Parses YAML (one or more `---`-separated documents) or JSON (an object, an array, or a
/// Kubernetes `List`) into documents. All errors are collected, not just the first.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Document>, Vec<ApiError>> {
    let values = read_values(text).map_err(|message| {
        vec![ApiError {
            source: source.to_string(),
            document: 1,
            resource: None,
            path: String::new(),
            message,
        }]
    })?;
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match parse_value(value, source, i + 1) {
            Ok(Some(d)) => docs.push(d),
            Ok(None) => {}
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(docs) } else { Err(errors) }
}

/// Most documents one YAML input may hold. serde-saphyr's default (1,024) is meant for a
/// config file; `strait apply` of a 1,000-service mesh is ~4,000 documents. Inputs are bounded
/// anyway (the REST API takes at most 64 MiB), so this only stops separator storms.
pub const MAX_YAML_DOCUMENTS: usize = 100_000;

/// Most YAML nodes (scalars, sequences, maps) in one input: a 64 MiB manifest of ordinary
/// resources has a few million, so this is generous while still bounding memory.
pub const MAX_YAML_NODES: usize = 8_000_000;

/// The parser's budgets, raised for mesh-sized inputs. Alias/anchor limits (the defence against
/// "billion laughs" expansion), nesting depth and scalar-byte caps keep their defaults.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_documents = MAX_YAML_DOCUMENTS;
    budget.max_nodes = MAX_YAML_NODES;
    // A node is one to three parser events (start/end of collections, scalars).
    budget.max_events = 3 * MAX_YAML_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Reads the raw documents (YAML with mesh-sized budgets, or JSON), flattening JSON arrays and
/// `List` objects. Shared with `delete -f`, which reads identities without validating specs.
pub fn read_values(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start();
    let raw: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            Ok(v) => vec![v],
            Err(e) => return Err(format!("invalid JSON: {e}")),
        }
    } else {
        serde_saphyr::from_multiple_with_options::<Value>(text, yaml_options())
            .map_err(|e| format!("invalid YAML: {e}"))?
    };
    let mut out = Vec::new();
    for v in raw {
        match v {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(Value::Array(items)) = m.get("items") {
                    out.extend(items.iter().cloned());
                }
            }
            v => out.push(v),
        }
    }
    Ok(out)
}

/// Types one document. `Ok(None)` for an empty document.
pub fn parse_value(value: Value, source: &str, document: usize) -> Result<Option<Document>, Vec<ApiError>> {
    let err = |resource: Option<String>, path: &str, message: String| {
        Err(vec![ApiError {
            source: source.to_string(),
            document,
            resource,
            path: path.to_string(),
            message,
        }])
    };
    let Value::Object(map) = &value else {
        return err(
            None,
            "",
            "a document must be a mapping with apiVersion and kind".into(),
        );
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) => k.clone(),
        _ => return err(None, "kind", "missing or not a string".into()),
    };
    let api_version = match map.get("apiVersion") {
        Some(Value::String(v)) => v.clone(),
        _ => return err(None, "apiVersion", "missing or not a string".into()),
    };
    let metadata: ObjectMeta = match map.get("metadata") {
        Some(m) => match serde_json::from_value(m.clone()) {
            Ok(m) => m,
            Err(e) => return err(None, "metadata", e.to_string()),
        },
        None => ObjectMeta::default(),
    };
    let Some(istio_kind) = Kind::from_kind_field(&kind) else {
        return Ok(Some(Document::Kubernetes(KubernetesObject {
            api_version,
            kind,
            metadata,
            body: value,
        })));
    };
    let resource_name = Some(format!(
        "{} {}/{}",
        kind,
        metadata.namespace_or_default(),
        metadata.name
    ));
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
    if group != istio_kind.group() {
        // An Istio-named kind from another group (e.g. Gateway API's Gateway) is not ours.
        return Ok(Some(Document::Kubernetes(KubernetesObject {
            api_version,
            kind,
            metadata,
            body: value,
        })));
    }
    if !istio_kind.versions().contains(&version) {
        return err(
            resource_name,
            "apiVersion",
            format!(
                "{api_version} is not served; use {}/{}",
                istio_kind.group(),
                istio_kind.versions().join(" or ")
            ),
        );
    }
    // Like kubectl's strict field validation: a misspelt top-level key (`specs:`) is an error,
    // not a silently empty spec.
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status"))
    {
        return err(
            resource_name,
            key,
            "unknown field; expected apiVersion, kind, metadata, spec or status".into(),
        );
    }
    if metadata.name.is_empty() {
        return err(resource_name, "metadata.name", "required".into());
    }
    let spec_value = match map.get("spec") {
        Some(Value::Null) | None => {
            // Istio's CRDs require `spec` for these kinds; the others accept an empty spec
            // (an AuthorizationPolicy without spec is "allow nothing").
            if matches!(istio_kind, Kind::ServiceEntry | Kind::WorkloadEntry) {
                return err(resource_name, "spec", "Required value: spec is required".into());
            }
            Value::Object(Default::default())
        }
        Some(v) => v.clone(),
    };
    let spec = match crate::validate::typed_spec(istio_kind, spec_value) {
        Ok(spec) => spec,
        Err((path, message)) => return err(resource_name, &path, message),
    };
    let resource = Resource {
        api_version,
        kind: istio_kind,
        metadata,
        spec,
    };
    let field_errors = crate::validate(&resource);
    if !field_errors.is_empty() {
        return Err(field_errors
            .into_iter()
            .map(|f| ApiError {
                source: source.to_string(),
                document,
                resource: resource_name.clone(),
                path: f.path,
                message: f.message,
            })
            .collect());
    }
    Ok(Some(Document::Istio(resource)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_entry(i: usize) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: svc-{i}\n  \
             namespace: ns-{}\nspec:\n  hosts: [svc-{i}.example.com]\n  ports:\n  - number: 80\n    \
             name: http\n    protocol: HTTP\n  resolution: STATIC\n",
            i % 10
        )
    }

    #[test]
    fn a_mesh_sized_input_of_3000_documents_parses() {
        let text: Vec<String> = (0..3000).map(service_entry).collect();
        let docs = parse_documents(&text.join("---\n"), "mesh.yaml").expect("3,000 documents parse");
        assert_eq!(docs.len(), 3000);
    }

    #[test]
    fn alias_expansion_bombs_are_still_refused() {
        // "Billion laughs": each level refers to the previous one ten times.
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for level in ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] {
            text.push_str(&format!(
                "{level}: &{level} [{}]\n",
                vec![format!("*{prev}"); 10].join(", ")
            ));
            prev = level;
        }
        let err = read_values(&text).expect_err("an alias bomb must breach the budget");
        assert!(err.contains("budget"), "{err}");
    }

    #[test]
    fn document_separator_storms_are_bounded() {
        let text = "---\n".repeat(MAX_YAML_DOCUMENTS + 10);
        let err = read_values(&text).expect_err("a separator storm must breach the budget");
        assert!(err.contains("budget"), "{err}");
    }
}
