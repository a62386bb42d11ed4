//! Reading only the identity (kind, namespace, name) of each document, for `delete -f`.
//!
//! kubectl deletes by the file that created a resource even when that file would no longer pass
//! validation (e.g. after an upgrade made validation stricter), so delete must not validate specs.

use serde_json::Value;
use strait_api::parse::read_values;
use strait_api::{ApiError, Kind};

use super::ResourceKey;

/// The Istio resources named in `text`, and notes for the other objects it holds.
pub fn identify_documents(
    text: &str,
    source: &str,
) -> Result<(Vec<ResourceKey>, Vec<String>), Vec<ApiError>> {
    let error = |document: usize, path: &str, message: String| ApiError {
        source: source.to_string(),
        document,
        resource: None,
        path: path.to_string(),
        message,
    };
    let values = read_values(text).map_err(|m| vec![error(1, "", m)])?;
    let mut keys = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
        let meta = |name: &str| {
            value
                .get("metadata")
                .and_then(|m| m.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (kind, api_version, name) = (field("kind"), field("apiVersion"), meta("name"));
        if kind.is_empty() {
            errors.push(error(i + 1, "kind", "missing or not a string".into()));
            continue;
        }
        let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or_default();
        match Kind::from_kind_field(kind).filter(|k| k.group() == group) {
            Some(_) if name.is_empty() => errors.push(error(i + 1, "metadata.name", "required".into())),
            Some(k) => {
                let namespace = Some(meta("namespace"))
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or("default");
                keys.push(ResourceKey::new(k, namespace, name));
            }
            None => notes.push(format!(
                "{}/{name} skipped: Kubernetes {kind} objects are not stored by the control plane",
                kind.to_ascii_lowercase()
            )),
        }
    }
    if errors.is_empty() {
        Ok((keys, notes))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_identity_without_validating_specs() {
        let text = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: ingress}\n\
                    spec: {nonsense: true}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n---\n\
                    apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: k8s}\n";
        let (keys, notes) = identify_documents(text, "f.yaml").expect("identified");
        assert_eq!(keys, [ResourceKey::new(Kind::Gateway, "ingress", "gw")]);
        assert_eq!(notes.len(), 2);
        let errors = identify_documents(
            "kind: VirtualService\napiVersion: networking.istio.io/v1\n",
            "f.yaml",
        )
        .expect_err("no name");
        assert_eq!(errors[0].path, "metadata.name");
        assert!(identify_documents("{oops", "f.json").is_err());
    }
}
