//! Compiled request matchers: Istio `HTTPMatchRequest` turned into data that a request can be
//! checked against without allocating or compiling anything.

use http::HeaderMap;
use http::header::HeaderName;
use regex::Regex;
use strait_mesh::{HeaderMatch, QueryParamMatch, RequestMatch, StringMatch};

use crate::error::ApplyError;
use crate::http1::raw::{RawFields, visible};

/// A compiled Istio `StringMatch`.
#[derive(Debug, Clone)]
pub(crate) enum StrMatcher {
    /// Equal to.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Istio: regexes are RE2 and must match the *whole* string, so they are compiled anchored.
    Regex(Regex),
}

impl StrMatcher {
    /// Compiles one matcher; `route` names the owner for error messages.
    pub(crate) fn compile(m: &StringMatch, route: &str) -> Result<Self, ApplyError> {
        Ok(match m {
            StringMatch::Exact(s) => StrMatcher::Exact(s.clone()),
            StringMatch::Prefix(s) => StrMatcher::Prefix(s.clone()),
            StringMatch::Regex(re) => StrMatcher::Regex(full_regex(re, route)?),
        })
    }

    /// Case-sensitive match.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            StrMatcher::Exact(s) => value == s,
            StrMatcher::Prefix(p) => value.starts_with(p.as_str()),
            StrMatcher::Regex(re) => re.is_match(value),
        }
    }

    /// Istio `ignoreUriCase`: exact and prefix compare ASCII case-insensitively, regex is unaffected.
    fn matches_ignore_case(&self, value: &str) -> bool {
        match self {
            StrMatcher::Exact(s) => value.eq_ignore_ascii_case(s),
            StrMatcher::Prefix(p) => {
                value.len() >= p.len()
                    && value.is_char_boundary(p.len())
                    && value[..p.len()].eq_ignore_ascii_case(p)
            }
            StrMatcher::Regex(re) => re.is_match(value),
        }
    }
}

/// Compiles `re` so that it only matches whole strings, as Envoy's `safe_regex` does.
pub(crate) fn full_regex(re: &str, route: &str) -> Result<Regex, ApplyError> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| ApplyError::Regex {
        route: route.to_string(),
        pattern: re.to_string(),
        reason: e.to_string(),
    })
}

/// A condition on one header; `None` value means "present".
#[derive(Debug, Clone)]
pub(crate) struct HeaderMatcher {
    name: HeaderName,
    value: Option<StrMatcher>,
    /// The field is `x-forwarded-proto`: Envoy's connection manager sets it (to the
    /// downstream's scheme) before routing when the request has none, so a route sees it
    /// there. The proxy writes it only when it encodes the request upstream (a hashed insert
    /// per request saved, NOTES round 7); the matcher reads the scheme in its place.
    forwarded_proto: bool,
}

impl HeaderMatcher {
    fn compile(h: &HeaderMatch, route: &str) -> Result<Self, ApplyError> {
        let name = HeaderName::from_bytes(h.name.to_ascii_lowercase().as_bytes()).map_err(|_| {
            ApplyError::HeaderName {
                route: route.to_string(),
                name: h.name.clone(),
            }
        })?;
        let value = h
            .value
            .as_ref()
            .map(|v| StrMatcher::compile(v, route))
            .transpose()?;
        let forwarded_proto = name.as_str() == "x-forwarded-proto";
        Ok(HeaderMatcher {
            name,
            value,
            forwarded_proto,
        })
    }

    /// `missing_as_empty`: Istio `withoutHeaders` treats an absent header as `""` for value matchers.
    fn matches(&self, r: &RequestView<'_>, missing_as_empty: bool) -> bool {
        let (mut first, mut more) = (None, false);
        r.for_each_value(&self.name, |v| match first {
            None => first = Some(v),
            Some(_) => more = true,
        });
        let Some(first) = first else {
            if self.forwarded_proto {
                return self.value.as_ref().is_none_or(|m| m.matches(r.scheme));
            }
            return match &self.value {
                None => false,
                Some(m) => missing_as_empty && m.matches(""),
            };
        };
        let Some(m) = &self.value else { return true };
        if !more {
            // Common case: one value, no allocation. Non-UTF-8 bytes never equal a UTF-8 pattern.
            return visible(first).is_some_and(|v| m.matches(v));
        }
        // Envoy matches repeated headers against their values joined with ','.
        let mut joined: Vec<&str> = Vec::new();
        r.for_each_value(&self.name, |v| joined.extend(visible(v)));
        m.matches(&joined.join(","))
    }
}

/// A condition on one query parameter (name case-sensitive, value not percent-decoded, as Envoy).
#[derive(Debug, Clone)]
pub(crate) struct QueryMatcher {
    name: String,
    value: Option<StrMatcher>,
}

impl QueryMatcher {
    fn compile(q: &QueryParamMatch, route: &str) -> Result<Self, ApplyError> {
        let value = q
            .value
            .as_ref()
            .map(|v| StrMatcher::compile(v, route))
            .transpose()?;
        Ok(QueryMatcher {
            name: q.name.clone(),
            value,
        })
    }

    fn matches(&self, query: Option<&str>) -> bool {
        let Some(query) = query else { return false };
        // The first occurrence of the parameter decides, as in Envoy.
        let found = query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == self.name).then_some(v)
        });
        match (found, &self.value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(m)) => m.matches(v),
        }
    }
}

/// What a request looks like to the matchers, computed once per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a> {
    /// Path without the query.
    pub path: &'a str,
    /// Query string without `?`.
    pub query: Option<&'a str>,
    /// Method.
    pub method: &'a str,
    /// Full authority as received (host and optional port).
    pub authority: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Port of the listener the request arrived on.
    pub port: u16,
    /// Request headers (with `raw`, only those the proxy added).
    pub headers: &'a HeaderMap,
    /// The client's fields as they came, when they were not put into `headers`.
    pub raw: Option<&'a RawFields>,
}

impl<'a> RequestView<'a> {
    /// Calls `f` with the value of every field named `name`, in the order the map would hold
    /// them: the client's first.
    fn for_each_value(&self, name: &HeaderName, mut f: impl FnMut(&'a [u8])) {
        if let Some(raw) = self.raw {
            raw.get_all(name).for_each(&mut f);
        }
        // Empty whenever the fields are raw, unless a route put something in: no hashing then.
        if !self.headers.is_empty() {
            self.headers.get_all(name).iter().for_each(|v| f(v.as_bytes()));
        }
    }
}

/// One compiled match block; every present condition must hold.
#[derive(Debug, Clone)]
pub(crate) struct MatchBlock {
    pub(crate) uri: Option<StrMatcher>,
    scheme: Option<StrMatcher>,
    method: Option<StrMatcher>,
    authority: Option<StrMatcher>,
    headers: Vec<HeaderMatcher>,
    without_headers: Vec<HeaderMatcher>,
    query: Vec<QueryMatcher>,
    port: Option<u16>,
    ignore_uri_case: bool,
}

impl MatchBlock {
    /// Compiles one Istio match block.
    pub(crate) fn compile(m: &RequestMatch, route: &str) -> Result<Self, ApplyError> {
        let one = |s: &Option<StringMatch>| s.as_ref().map(|s| StrMatcher::compile(s, route)).transpose();
        Ok(MatchBlock {
            uri: one(&m.uri)?,
            scheme: one(&m.scheme)?,
            method: one(&m.method)?,
            authority: one(&m.authority)?,
            headers: m
                .headers
                .iter()
                .map(|h| HeaderMatcher::compile(h, route))
                .collect::<Result<_, _>>()?,
            without_headers: m
                .without_headers
                .iter()
                .map(|h| HeaderMatcher::compile(h, route))
                .collect::<Result<_, _>>()?,
            query: m
                .query_params
                .iter()
                .map(|q| QueryMatcher::compile(q, route))
                .collect::<Result<_, _>>()?,
            port: m.port,
            ignore_uri_case: m.ignore_uri_case,
        })
    }

    /// True when the request satisfies every condition of this block.
    pub(crate) fn matches(&self, r: &RequestView<'_>) -> bool {
        if let Some(uri) = &self.uri {
            let ok = if self.ignore_uri_case {
                uri.matches_ignore_case(r.path)
            } else {
                uri.matches(r.path)
            };
            if !ok {
                return false;
            }
        }
        if self.port.is_some_and(|p| p != r.port) {
            return false;
        }
        let checks = [
            (&self.method, r.method),
            (&self.scheme, r.scheme),
            (&self.authority, r.authority),
        ];
        if checks
            .iter()
            .any(|(m, v)| m.as_ref().is_some_and(|m| !m.matches(v)))
        {
            return false;
        }
        self.headers.iter().all(|h| h.matches(r, false))
            && !self.without_headers.iter().any(|h| h.matches(r, true))
            && self.query.iter().all(|q| q.matches(r.query))
    }
}

/// Index of the first matching block; an empty list matches everything (block index 0 = none).
pub(crate) fn first_match(blocks: &[MatchBlock], r: &RequestView<'_>) -> Option<Option<usize>> {
    if blocks.is_empty() {
        return Some(None);
    }
    blocks.iter().position(|b| b.matches(r)).map(Some)
}

#[cfg(test)]
// The property oracles are deliberately the naive lowercase-and-compare forms.
#[allow(clippy::manual_ignore_case_cmp)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn view<'a>(path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            path,
            query: None,
            method: "GET",
            authority: "reviews:9080",
            scheme: "http",
            port: 9080,
            headers,
            raw: None,
        }
    }

    #[test]
    fn regex_is_full_match() {
        let m = StrMatcher::compile(&StringMatch::Regex(r"\d+$".into()), "r").unwrap();
        assert!(m.matches("123"));
        assert!(!m.matches("a123"));
        let alt = StrMatcher::compile(&StringMatch::Regex("a|b".into()), "r").unwrap();
        assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab"));
    }

    #[test]
    fn invalid_regex_is_an_apply_error() {
        let err = StrMatcher::compile(&StringMatch::Regex("(".into()), "r1").unwrap_err();
        assert!(err.to_string().contains("r1"), "{err}");
    }

    #[test]
    fn ignore_uri_case_only_affects_exact_and_prefix() {
        let m = RequestMatch {
            uri: Some(StringMatch::Prefix("/Reviews".into())),
            ignore_uri_case: true,
            ..Default::default()
        };
        let b = MatchBlock::compile(&m, "r").unwrap();
        let h = HeaderMap::new();
        assert!(b.matches(&view("/reviews/1", &h)));
        let re = RequestMatch {
            uri: Some(StringMatch::Regex("/Reviews".into())),
            ignore_uri_case: true,
            ..Default::default()
        };
        let b = MatchBlock::compile(&re, "r").unwrap();
        assert!(!b.matches(&view("/reviews", &h)));
        assert!(b.matches(&view("/Reviews", &h)));
    }

    #[test]
    fn x_forwarded_proto_is_the_scheme_when_the_request_has_none() {
        // Envoy sets it before routing: Istio routes on it even when no client sent it.
        let on = |value: &str| {
            MatchBlock::compile(
                &RequestMatch {
                    headers: vec![HeaderMatch {
                        name: "X-Forwarded-Proto".into(),
                        value: Some(StringMatch::Exact(value.into())),
                    }],
                    ..Default::default()
                },
                "r",
            )
            .unwrap()
        };
        let none = HeaderMap::new();
        assert!(on("http").matches(&view("/", &none)));
        assert!(!on("https").matches(&view("/", &none)));
        let mut tls = view("/", &none);
        tls.scheme = "https";
        assert!(on("https").matches(&tls));
        // One the client sent is kept, and matched as it is.
        let mut sent = HeaderMap::new();
        sent.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(on("https").matches(&view("/", &sent)));
        assert!(!on("http").matches(&view("/", &sent)));
        // Present, so `withoutHeaders` of any value excludes the request; other names still
        // count as absent.
        let without = |name: &str| {
            MatchBlock::compile(
                &RequestMatch {
                    without_headers: vec![HeaderMatch {
                        name: name.into(),
                        value: None,
                    }],
                    ..Default::default()
                },
                "r",
            )
            .unwrap()
        };
        assert!(!without("x-forwarded-proto").matches(&view("/", &none)));
        assert!(without("x-forwarded-host").matches(&view("/", &none)));
    }

    #[test]
    fn header_presence_and_without_headers() {
        let present = HeaderMatch {
            name: "x-canary".into(),
            value: None,
        };
        let m = RequestMatch {
            headers: vec![present.clone()],
            ..Default::default()
        };
        let b = MatchBlock::compile(&m, "r").unwrap();
        let mut h = HeaderMap::new();
        assert!(!b.matches(&view("/", &h)));
        h.insert("x-canary", HeaderValue::from_static(""));
        assert!(b.matches(&view("/", &h)));

        let without = RequestMatch {
            without_headers: vec![HeaderMatch {
                name: "end-user".into(),
                value: Some(StringMatch::Exact("jason".into())),
            }],
            ..Default::default()
        };
        let b = MatchBlock::compile(&without, "r").unwrap();
        let mut h = HeaderMap::new();
        assert!(
            b.matches(&view("/", &h)),
            "missing header is empty, which is not jason"
        );
        h.insert("end-user", HeaderValue::from_static("jason"));
        assert!(!b.matches(&view("/", &h)));
        h.insert("end-user", HeaderValue::from_static("mary"));
        assert!(b.matches(&view("/", &h)));
    }

    #[test]
    fn query_params() {
        let m = RequestMatch {
            query_params: vec![
                QueryParamMatch {
                    name: "id".into(),
                    value: Some(StringMatch::Regex(r"\d+".into())),
                },
                QueryParamMatch {
                    name: "debug".into(),
                    value: None,
                },
            ],
            ..Default::default()
        };
        let b = MatchBlock::compile(&m, "r").unwrap();
        let h = HeaderMap::new();
        let mut v = view("/", &h);
        v.query = Some("id=42&debug");
        assert!(b.matches(&v));
        v.query = Some("id=a42&debug=1");
        assert!(!b.matches(&v));
        v.query = Some("id=42");
        assert!(!b.matches(&v));
        v.query = None;
        assert!(!b.matches(&v));
    }

    #[test]
    fn port_method_authority() {
        let m = RequestMatch {
            port: Some(9080),
            method: Some(StringMatch::Exact("GET".into())),
            authority: Some(StringMatch::Prefix("reviews".into())),
            ..Default::default()
        };
        let b = MatchBlock::compile(&m, "r").unwrap();
        let h = HeaderMap::new();
        let mut v = view("/", &h);
        assert!(b.matches(&v));
        v.port = 80;
        assert!(!b.matches(&v));
        v.port = 9080;
        v.method = "POST";
        assert!(!b.matches(&v));
    }

    proptest! {
        #[test]
        fn exact_and_prefix_agree_with_std(pat in ".{0,8}", value in ".{0,12}") {
            let exact = StrMatcher::compile(&StringMatch::Exact(pat.clone()), "r").unwrap();
            let prefix = StrMatcher::compile(&StringMatch::Prefix(pat.clone()), "r").unwrap();
            prop_assert_eq!(exact.matches(&value), value == pat);
            prop_assert_eq!(prefix.matches(&value), value.starts_with(&pat));
            prop_assert_eq!(
                exact.matches_ignore_case(&value),
                value.to_ascii_lowercase() == pat.to_ascii_lowercase()
            );
            prop_assert_eq!(
                prefix.matches_ignore_case(&value),
                value.to_ascii_lowercase().starts_with(&pat.to_ascii_lowercase())
            );
        }

        #[test]
        fn regex_matches_are_full_string(lit in "[a-z0-9]{1,6}", pre in "[a-z]{0,3}", post in "[a-z]{0,3}") {
            let m = StrMatcher::compile(&StringMatch::Regex(regex::escape(&lit)), "r").unwrap();
            let s = format!("{pre}{lit}{post}");
            prop_assert_eq!(m.matches(&s), pre.is_empty() && post.is_empty());
        }

        #[test]
        fn never_panics_on_arbitrary_headers_and_paths(
            name in "[a-z-]{1,10}",
            value in proptest::collection::vec(any::<u8>(), 0..32),
            path in any::<String>(),
            query in proptest::option::of(any::<String>()),
        ) {
            let m = RequestMatch {
                uri: Some(StringMatch::Prefix("/a".into())),
                headers: vec![HeaderMatch { name: name.clone(), value: Some(StringMatch::Regex(".*x".into())) }],
                without_headers: vec![HeaderMatch { name: name.clone(), value: Some(StringMatch::Exact("".into())) }],
                query_params: vec![QueryParamMatch { name: "q".into(), value: Some(StringMatch::Prefix("1".into())) }],
                ignore_uri_case: true,
                ..Default::default()
            };
            let b = MatchBlock::compile(&m, "r").unwrap();
            let mut h = HeaderMap::new();
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) {
                h.append(n.clone(), v.clone());
                h.append(n, v);
            }
            let mut v = view(&path, &h);
            v.query = query.as_deref();
            let _ = b.matches(&v);
        }
    }
}
