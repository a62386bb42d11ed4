//! The settings each original image reads from its environment, parsed once at start-up.

use std::fmt;

/// Settings of a sample, read from the environment as the original images do.
///
/// Kept as one plain struct so that tests can run several differently configured samples in one
/// process (see [`Env::from_pairs`]).
#[derive(Debug, Clone)]
pub struct Env {
    /// `"" ` or `".<SERVICES_DOMAIN>"`, appended to every upstream host name.
    pub(crate) services_domain: String,
    pub(crate) details: Upstream,
    pub(crate) reviews: Upstream,
    pub(crate) ratings: Upstream,
    /// reviews: `STAR_COLOR`, `black` when unset.
    pub(crate) star_color: String,
    /// reviews: `ENABLE_RATINGS` (Java's `Boolean.parseBoolean`).
    pub(crate) enable_ratings: bool,
    /// ratings: `SERVICE_VERSION`, `v1` when unset.
    pub(crate) service_version: String,
    /// reviews: `HOSTNAME` (the pod name), printed as `null` when unset like Java string concatenation.
    pub(crate) hostname: Option<String>,
    /// reviews: `CLUSTER_NAME`.
    pub(crate) cluster_name: Option<String>,
    /// productpage: `FLOOD_FACTOR` extra reviews calls per page.
    pub(crate) flood_factor: usize,
    /// `HTTP_PROXY` / `http_proxy`: the sidecar's explicit outbound proxy.
    pub(crate) http_proxy: Option<String>,
    /// details v2: `ENABLE_EXTERNAL_BOOK_SERVICE=true` fetches the book from Google Books.
    pub(crate) external_book_service: bool,
    /// details v2: `DO_NOT_ENCRYPT=true` calls Google Books over plain HTTP on port 80.
    pub(crate) do_not_encrypt: bool,
}

/// Host and port of one Bookinfo service as seen by its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub(crate) host: String,
    pub(crate) port: String,
}

impl Env {
    /// Reads the settings from the process environment.
    pub fn from_process() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the settings from explicit `(name, value)` pairs, as if they were the environment.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_lookup(|k| {
            pairs
                .iter()
                .rev()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let upstream = |svc: &str| Upstream {
            host: get(&format!("{}_HOSTNAME", svc.to_uppercase())).unwrap_or_else(|| svc.to_string()),
            port: get(&format!("{}_SERVICE_PORT", svc.to_uppercase())).unwrap_or_else(|| "9080".to_string()),
        };
        let flood_factor = match get("FLOOD_FACTOR") {
            None => 0,
            Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(value = %raw, "FLOOD_FACTOR is not a non-negative integer; using 0");
                0
            }),
        };
        Env {
            services_domain: get("SERVICES_DOMAIN")
                .map(|d| format!(".{d}"))
                .unwrap_or_default(),
            details: upstream("details"),
            reviews: upstream("reviews"),
            ratings: upstream("ratings"),
            star_color: get("STAR_COLOR").unwrap_or_else(|| "black".to_string()),
            enable_ratings: get("ENABLE_RATINGS").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            service_version: get("SERVICE_VERSION").unwrap_or_else(|| "v1".to_string()),
            hostname: get("HOSTNAME"),
            cluster_name: get("CLUSTER_NAME"),
            flood_factor,
            http_proxy: get("HTTP_PROXY")
                .or_else(|| get("http_proxy"))
                .filter(|p| !p.trim().is_empty()),
            external_book_service: get("ENABLE_EXTERNAL_BOOK_SERVICE").as_deref() == Some("true"),
            do_not_encrypt: get("DO_NOT_ENCRYPT").as_deref() == Some("true"),
        }
    }

    /// The upstream host with the services domain, as the originals build their URLs.
    pub(crate) fn host_of(&self, upstream: &Upstream) -> String {
        format!("{}{}", upstream.host, self.services_domain)
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "details={}:{} reviews={}:{} ratings={}:{} domain={:?} star_color={} enable_ratings={} \
             service_version={} http_proxy={}",
            self.details.host,
            self.details.port,
            self.reviews.host,
            self.reviews.port,
            self.ratings.host,
            self.ratings.port,
            self.services_domain,
            self.star_color,
            self.enable_ratings,
            self.service_version,
            self.http_proxy.as_deref().unwrap_or("-"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_images() {
        let env = Env::from_pairs(&[]);
        assert_eq!(env.host_of(&env.reviews), "reviews");
        assert_eq!(env.reviews.port, "9080");
        assert_eq!(env.star_color, "black");
        assert!(!env.enable_ratings);
        assert_eq!(env.service_version, "v1");
        assert_eq!(env.flood_factor, 0);
        assert!(env.http_proxy.is_none());
    }

    #[test]
    fn reads_overrides() {
        let env = Env::from_pairs(&[
            ("SERVICES_DOMAIN", "svc.cluster.local"),
            ("RATINGS_HOSTNAME", "r"),
            ("RATINGS_SERVICE_PORT", "1234"),
            ("ENABLE_RATINGS", "TRUE"),
            ("http_proxy", "http://127.0.0.1:15001"),
        ]);
        assert_eq!(env.host_of(&env.ratings), "r.svc.cluster.local");
        assert_eq!(env.ratings.port, "1234");
        assert!(env.enable_ratings);
        assert_eq!(env.http_proxy.as_deref(), Some("http://127.0.0.1:15001"));
    }
}
