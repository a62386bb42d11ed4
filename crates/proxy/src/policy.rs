//! Per-route policies compiled at apply time: fault, retry, mirror, redirect, rewrite, CORS.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use regex::Regex;
use strait_mesh::{CorsPolicy, Fault, Redirect, RetryPolicy as MeshRetry};

use crate::error::ApplyError;
use crate::matcher::StrMatcher;

/// True with probability `pct`/100. Istio: 0 (or an absent percentage) injects nothing.
pub(crate) fn chance(pct: f64) -> bool {
    pct >= 100.0 || (pct > 0.0 && rand::random::<f64>() * 100.0 < pct)
}

/// Fault injection.
#[derive(Debug)]
pub(crate) struct FaultPolicy {
    pub(crate) delay: Option<(Duration, f64)>,
    pub(crate) abort: Option<(StatusCode, f64)>,
}

impl FaultPolicy {
    /// `None` when the fault can never fire.
    pub(crate) fn compile(f: &Fault, route: &str) -> Result<Option<Self>, ApplyError> {
        let delay = f
            .delay
            .as_ref()
            .filter(|d| d.percentage > 0.0)
            .map(|d| (Duration::from_millis(d.fixed_delay_ms), d.percentage));
        let abort = match f.abort.as_ref().filter(|a| a.percentage > 0.0) {
            None => None,
            Some(a) => Some((
                StatusCode::from_u16(a.http_status).map_err(|_| ApplyError::Status {
                    route: route.to_string(),
                    status: a.http_status,
                })?,
                a.percentage,
            )),
        };
        Ok((delay.is_some() || abort.is_some()).then_some(FaultPolicy { delay, abort }))
    }
}

/// Envoy `retry_on` conditions.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RetryOn {
    pub(crate) five_xx: bool,
    pub(crate) gateway_error: bool,
    pub(crate) connect_failure: bool,
    pub(crate) refused_stream: bool,
    pub(crate) reset: bool,
    pub(crate) status_codes: bool,
}

/// Retry policy.
#[derive(Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) per_try_timeout: Option<Duration>,
    pub(crate) on: RetryOn,
    pub(crate) codes: Vec<u16>,
}

impl RetryPolicy {
    /// Unknown conditions (gRPC ones such as `unavailable`) are ignored for HTTP.
    pub(crate) fn compile(r: &MeshRetry) -> Self {
        let mut on = RetryOn::default();
        for cond in r.retry_on.iter().flat_map(|s| s.split(',')).map(str::trim) {
            match cond {
                "5xx" => on.five_xx = true,
                "gateway-error" => on.gateway_error = true,
                "connect-failure" => on.connect_failure = true,
                "refused-stream" => on.refused_stream = true,
                "reset" | "reset-before-request" => on.reset = true,
                "retriable-status-codes" => on.status_codes = true,
                _ => {}
            }
        }
        if !r.retriable_status_codes.is_empty() {
            on.status_codes = true;
        }
        RetryPolicy {
            attempts: r.attempts,
            per_try_timeout: r.per_try_timeout_ms.filter(|t| *t > 0).map(Duration::from_millis),
            on,
            codes: r.retriable_status_codes.clone(),
        }
    }

    /// Whether a response with this status is retried.
    pub(crate) fn retries_status(&self, status: u16) -> bool {
        (self.on.five_xx && status >= 500)
            || (self.on.gateway_error && matches!(status, 502..=504))
            || (self.on.status_codes && self.codes.contains(&status))
    }
}

/// Shadow traffic target.
#[derive(Debug)]
pub(crate) struct MirrorPolicy {
    pub(crate) cluster: Option<usize>,
    pub(crate) percentage: f64,
}

/// A redirect answer.
#[derive(Debug)]
pub(crate) struct RedirectPolicy {
    uri: Option<String>,
    prefix_rewrite: Option<String>,
    authority: Option<String>,
    scheme: Option<String>,
    port: Option<u16>,
    pub(crate) code: StatusCode,
}

impl RedirectPolicy {
    /// Istio's default code is 301.
    pub(crate) fn compile(r: &Redirect, route: &str) -> Result<Self, ApplyError> {
        let code = if r.code == 0 { 301 } else { r.code };
        Ok(RedirectPolicy {
            uri: r.uri.clone(),
            prefix_rewrite: r.prefix_rewrite.clone(),
            authority: r.authority.clone(),
            scheme: r.scheme.clone(),
            port: r.port,
            code: StatusCode::from_u16(code).map_err(|_| ApplyError::Status {
                route: route.to_string(),
                status: code,
            })?,
        })
    }

    /// The `location` for a request; `:80` for http and `:443` for https are omitted as Istio does.
    pub(crate) fn location(
        &self,
        scheme: &str,
        authority: &str,
        path: &str,
        query: Option<&str>,
        matched_prefix: Option<&str>,
    ) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(scheme);
        let (req_host, req_port) = split_port(authority);
        let (host, mut port) = match &self.authority {
            Some(a) => split_port(a),
            None => (req_host, req_port),
        };
        if let Some(p) = self.port {
            port = Some(p);
        }
        let default = match scheme {
            "https" => 443,
            _ => 80,
        };
        let port = port.filter(|p| *p != default);
        let mut new_path = match (&self.uri, &self.prefix_rewrite, matched_prefix) {
            (Some(u), _, _) => u.clone(),
            (None, Some(pr), Some(mp)) if path.len() >= mp.len() && path.is_char_boundary(mp.len()) => {
                format!("{pr}{}", &path[mp.len()..])
            }
            _ => path.to_string(),
        };
        if let Some(q) = query.filter(|_| !new_path.contains('?')) {
            new_path.push('?');
            new_path.push_str(q);
        }
        match port {
            Some(p) => format!("{scheme}://{host}:{p}{new_path}"),
            None => format!("{scheme}://{host}{new_path}"),
        }
    }
}

fn split_port(authority: &str) -> (&str, Option<u16>) {
    if authority.ends_with(']') {
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (authority, None),
        },
        None => (authority, None),
    }
}

/// Path and authority rewrite.
#[derive(Debug)]
pub(crate) struct Rewrite {
    uri: Option<String>,
    uri_regex: Option<(Regex, String)>,
    pub(crate) authority: Option<String>,
}

impl Rewrite {
    /// Converts RE2-style `\1` group references to the regex crate's `${1}`.
    pub(crate) fn compile(r: &strait_mesh::Rewrite, route: &str) -> Result<Self, ApplyError> {
        let uri_regex = match &r.uri_regex {
            None => None,
            Some((pattern, replacement)) => {
                let re = Regex::new(pattern).map_err(|e| ApplyError::Regex {
                    route: route.to_string(),
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })?;
                // Escape literal `$` first, then turn `\N` into `${N}`.
                let escaped = replacement.replace('$', "$$");
                let groups = Regex::new(r"\\(\d)").map_err(|e| ApplyError::Regex {
                    route: route.to_string(),
                    pattern: replacement.clone(),
                    reason: e.to_string(),
                })?;
                Some((re, groups.replace_all(&escaped, "$${$1}").into_owned()))
            }
        };
        Ok(Rewrite {
            uri: r.uri.clone(),
            uri_regex,
            authority: r.authority.clone(),
        })
    }

    /// New path (query excluded) or `None` to keep it. Istio: `uri` replaces the matched prefix
    /// for prefix matches and the whole path otherwise.
    pub(crate) fn path(&self, path: &str, matched_prefix: Option<&str>) -> Option<String> {
        if let Some(uri) = &self.uri {
            return Some(match matched_prefix {
                Some(p) if path.len() >= p.len() && path.is_char_boundary(p.len()) => {
                    format!("{uri}{}", &path[p.len()..])
                }
                _ => uri.clone(),
            });
        }
        let (re, rep) = self.uri_regex.as_ref()?;
        Some(re.replace_all(path, rep.as_str()).into_owned())
    }
}

/// CORS policy with header values prebuilt.
#[derive(Debug)]
pub(crate) struct Cors {
    origins: Vec<StrMatcher>,
    methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
}

fn joined(items: &[String], route: &str, name: &str) -> Result<Option<HeaderValue>, ApplyError> {
    if items.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&items.join(","))
        .map(Some)
        .map_err(|_| ApplyError::HeaderValue {
            route: route.to_string(),
            name: name.to_string(),
        })
}

impl Cors {
    /// Compiles origins and header values.
    pub(crate) fn compile(c: &CorsPolicy, route: &str) -> Result<Self, ApplyError> {
        Ok(Cors {
            origins: c
                .allow_origins
                .iter()
                .map(|o| StrMatcher::compile(o, route))
                .collect::<Result<_, _>>()?,
            methods: joined(&c.allow_methods, route, "access-control-allow-methods")?,
            allow_headers: joined(&c.allow_headers, route, "access-control-allow-headers")?,
            expose_headers: joined(&c.expose_headers, route, "access-control-expose-headers")?,
            max_age: c.max_age_s.map(HeaderValue::from),
            credentials: c.allow_credentials.unwrap_or(false),
        })
    }

    /// The request's origin when the policy allows it.
    pub(crate) fn allowed_origin<'a>(&self, req: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = req.get(header::ORIGIN)?;
        let s = origin.to_str().ok()?;
        self.origins.iter().any(|m| m.matches(s)).then_some(origin)
    }

    /// Headers of a preflight answer (Envoy answers matched preflights itself with 200).
    pub(crate) fn preflight(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Some(v) = &self.methods {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        if let Some(v) = &self.allow_headers {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        if let Some(v) = &self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// Headers added to an ordinary (non-preflight) response.
    pub(crate) fn simple(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Some(v) = &self.expose_headers {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(r: Redirect) -> RedirectPolicy {
        RedirectPolicy::compile(&r, "r").unwrap()
    }

    #[test]
    fn redirect_defaults_to_301_and_omits_default_ports() {
        let r = redirect(Redirect {
            uri: Some("/v2".into()),
            ..Default::default()
        });
        assert_eq!(r.code, 301);
        assert_eq!(
            r.location("http", "a.com:80", "/v1", None, None),
            "http://a.com/v2"
        );
        let r = redirect(Redirect {
            scheme: Some("https".into()),
            port: Some(443),
            ..Default::default()
        });
        assert_eq!(
            r.location("http", "a.com", "/x", Some("q=1"), None),
            "https://a.com/x?q=1"
        );
        let r = redirect(Redirect {
            authority: Some("b.com".into()),
            code: 302,
            ..Default::default()
        });
        assert_eq!(
            r.location("http", "a.com:8080", "/x", None, None),
            "http://b.com/x"
        );
        let r = redirect(Redirect {
            prefix_rewrite: Some("/new".into()),
            ..Default::default()
        });
        assert_eq!(
            r.location("http", "a.com:8080", "/old/x", None, Some("/old")),
            "http://a.com:8080/new/x"
        );
    }

    #[test]
    fn rewrite_prefix_whole_and_regex() {
        let rw = Rewrite::compile(
            &strait_mesh::Rewrite {
                uri: Some("/v2".into()),
                ..Default::default()
            },
            "r",
        )
        .unwrap();
        assert_eq!(rw.path("/v1/items", Some("/v1")).as_deref(), Some("/v2/items"));
        assert_eq!(rw.path("/exact", None).as_deref(), Some("/v2"));
        let slash = Rewrite::compile(
            &strait_mesh::Rewrite {
                uri: Some("/".into()),
                ..Default::default()
            },
            "r",
        )
        .unwrap();
        // Istio gotcha kept on purpose: prefix /foo + uri / gives //bar.
        assert_eq!(slash.path("/foo/bar", Some("/foo")).as_deref(), Some("//bar"));
        let re = Rewrite::compile(
            &strait_mesh::Rewrite {
                uri_regex: Some(("^/a/(.*)$".into(), r"/b/\1".into())),
                ..Default::default()
            },
            "r",
        )
        .unwrap();
        assert_eq!(re.path("/a/xyz", None).as_deref(), Some("/b/xyz"));
    }

    #[test]
    fn retry_conditions() {
        let p = RetryPolicy::compile(&MeshRetry {
            attempts: 2,
            retry_on: vec!["gateway-error,connect-failure".into()],
            retriable_status_codes: vec![409],
            ..Default::default()
        });
        assert!(p.retries_status(503) && p.retries_status(409) && !p.retries_status(500));
        assert!(p.on.connect_failure && p.on.status_codes && !p.on.five_xx);
    }

    #[test]
    fn chance_bounds() {
        assert!(chance(100.0));
        assert!(!chance(0.0));
        assert!(!chance(-1.0));
    }
}
