//! Path canonicalization done once, before routing: Istio's default `BASE` normalization
//! (Envoy `normalize_path`, RFC 3986 §5.2.4 dot-segment removal). Routing and any later policy
//! see the same path the upstream receives, so `/public/../admin` cannot dodge a `/admin` rule.

use std::borrow::Cow;

/// Strips one leading `.` or its percent-encoded form `%2e`, which Envoy's canonicalizer
/// treats alike. No allocation: this runs on every segment of every request.
fn strip_dot(seg: &str) -> Option<&str> {
    if let Some(rest) = seg.strip_prefix('.') {
        return Some(rest);
    }
    match seg.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("%2e") => seg.get(3..),
        _ => None,
    }
}

fn is_dot(seg: &str) -> bool {
    strip_dot(seg) == Some("")
}

fn is_dot_dot(seg: &str) -> bool {
    strip_dot(seg).and_then(strip_dot) == Some("")
}

/// Removes `.` and `..` segments from an absolute path; borrowed when nothing changes.
pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') {
        return Cow::Borrowed(path);
    }
    let needs = path[1..].split('/').any(|s| is_dot(s) || is_dot_dot(s));
    if !needs {
        return Cow::Borrowed(path);
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        if is_dot(seg) {
            trailing_slash = i == last;
        } else if is_dot_dot(seg) {
            out.pop();
            trailing_slash = i == last;
        } else {
            out.push(seg);
            trailing_slash = false;
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if trailing_slash || s.is_empty() {
        s.push('/');
    }
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3986_examples() {
        for (input, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/public/../admin", "/admin"),
            ("/a/%2E%2e/b", "/b"),
            ("/..", "/"),
            ("/a/.", "/a/"),
            ("/a/..", "/"),
            ("/a//b", "/a//b"),
            ("/plain/path", "/plain/path"),
            ("*", "*"),
        ] {
            assert_eq!(normalize_path(input), want, "{input}");
        }
        assert!(matches!(normalize_path("/unchanged"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn normalized_paths_have_no_dot_segments_and_are_stable(path in "(/(\\.|\\.\\.|%2e|[a-z]{1,3})){0,8}/?") {
            let p = if path.is_empty() { "/".to_string() } else { path };
            let once = normalize_path(&p).into_owned();
            prop_assert!(once.starts_with('/'));
            prop_assert!(!once[1..].split('/').any(|s| is_dot(s) || is_dot_dot(s)), "{once}");
            prop_assert_eq!(normalize_path(&once).into_owned(), once.clone());
        }

        #[test]
        fn never_panics(path in any::<String>()) {
            let _ = normalize_path(&path);
        }
    }
}
