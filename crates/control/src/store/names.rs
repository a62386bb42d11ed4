//! Kubernetes naming rules for `metadata.name` and `metadata.namespace`.
//!
//! The store uses names in file names, so it enforces the rules the Kubernetes API server would:
//! a name is a DNS-1123 subdomain, a namespace a DNS-1123 label. This also makes path traversal
//! (`../x`) impossible by construction.

/// Why `name` is not a valid DNS-1123 subdomain (the rule for Istio resource names), if it is not.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("required".into());
    }
    if name.len() > 253 {
        return Some(format!("must be no more than 253 characters, got {}", name.len()));
    }
    if name.split('.').all(is_label) {
        None
    } else {
        Some(format!(
            "{name:?} is not a valid name: use lowercase letters, digits, '-' and '.', starting and \
             ending with a letter or digit (RFC 1123 subdomain)"
        ))
    }
}

/// Why `namespace` is not a valid DNS-1123 label, if it is not.
pub fn namespace_problem(namespace: &str) -> Option<String> {
    if namespace.len() > 63 {
        return Some(format!(
            "must be no more than 63 characters, got {}",
            namespace.len()
        ));
    }
    if is_label(namespace) {
        None
    } else {
        Some(format!(
            "{namespace:?} is not a valid namespace: use lowercase letters, digits and '-', starting and \
             ending with a letter or digit (RFC 1123 label)"
        ))
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63 && alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc1123() {
        assert_eq!(name_problem("reviews"), None);
        assert_eq!(name_problem("reviews.v1-route"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("../etc").is_some());
        assert!(name_problem("Reviews").is_some());
        assert!(name_problem("a..b").is_some());
        assert!(name_problem("-a").is_some());
        assert!(name_problem(&"a".repeat(254)).is_some());
        assert_eq!(namespace_problem("istio-system"), None);
        assert!(namespace_problem("a.b").is_some());
        assert!(namespace_problem("x/y").is_some());
        assert!(namespace_problem("").is_some());
    }
}
