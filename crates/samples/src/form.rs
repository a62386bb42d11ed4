//! `application/x-www-form-urlencoded` decoding, used for query strings and posted forms.

/// Decodes `%XX` escapes and `+`; `None` if an escape is malformed.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let text = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(text, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Pairs in order, leniently (a malformed escape is kept as written), as Werkzeug decodes forms.
pub(crate) fn pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let decode = |x: &str| unescape(x).unwrap_or_else(|| x.to_string());
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value for `key`.
pub(crate) fn first(s: &str, key: &str) -> Option<String> {
    pairs(s).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Go's `url.ParseQuery`: keys sorted, values in order; pairs with a `;` in the key or a bad escape
/// are dropped.
pub(crate) fn go_values(s: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for part in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if k.contains(';') {
            continue;
        }
        let (Some(k), Some(v)) = (unescape(k), unescape(v)) else {
            continue;
        };
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v),
            None => out.push((k, vec![v])),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        assert_eq!(
            first("username=jason&passwd=password", "username").as_deref(),
            Some("jason")
        );
        assert_eq!(first("u=a+b%21", "u").as_deref(), Some("a b!"));
        assert_eq!(first("u=%zz", "u").as_deref(), Some("%zz"));
    }

    #[test]
    fn go_values_sort_and_group() {
        let got = go_values("b=2&a=1&b=3&bad=%z&x;y=1&flag");
        assert_eq!(
            got,
            vec![
                ("a".into(), vec!["1".into()]),
                ("b".into(), vec!["2".into(), "3".into()]),
                ("flag".into(), vec!["".into()])
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(s in ".{0,64}") {
            let _ = pairs(&s);
            let _ = go_values(&s);
        }
    }
}
