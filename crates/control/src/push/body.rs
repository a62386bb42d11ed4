//! A configuration's JSON body kept in shared pieces.
//!
//! At 1,000 services a sidecar's configuration is ~2.3 MB of JSON, ~all of it the outbound route
//! table and the clusters that every sidecar with the same [`ShareKey`](crate::compile::ShareKey)
//! shares. Keeping one full body per proxy (and per pending version) cost ~33 MB per proxy; a
//! [`Body`] instead holds the shared JSON once (`Arc`) and only the proxy's own bytes (its
//! listeners and inbound side, ~1 KB), and renders the exact bytes `ProxyConfig::to_json` would
//! give only when a push is written to the stream or a status is asked for.

use std::sync::Arc;

use strait_mesh::{Cluster, ProxyConfig, RouteTable};

use crate::compile::SharedSidecarJson;

/// Placeholder version, serialized where the real version goes.
const VERSION_MARK: &str = "\u{0}strait:version\u{0}";
/// Placeholder route table, replaced by the shared outbound table.
const OUTBOUND_MARK: &str = "\u{0}strait:shared-outbound\u{0}";
/// Placeholder cluster, replaced by the shared clusters.
const CLUSTERS_MARK: &str = "\u{0}strait:shared-clusters\u{0}";

/// The serialized shared part of sidecar configurations (one per share key and snapshot).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SharedJson {
    /// The outbound route table, one JSON object.
    outbound: Arc<[u8]>,
    /// The clusters, comma-separated JSON objects without the brackets (never empty: the
    /// PassthroughCluster is always there).
    clusters: Arc<[u8]>,
}

impl SharedJson {
    /// Takes the shared part serialized by [`SnapshotCompiler::shared_sidecar_json`](crate::compile::SnapshotCompiler::shared_sidecar_json).
    pub fn from_json(json: SharedSidecarJson) -> SharedJson {
        SharedJson {
            outbound: json.outbound.into(),
            clusters: json.clusters.into(),
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.outbound.len() + self.clusters.len()
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain data structs with string keys always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

#[derive(Debug, Clone)]
enum Segment {
    Bytes(Arc<[u8]>),
    /// The version, as a JSON string.
    Version,
}

/// One configuration body, version left open.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    segments: Vec<Segment>,
    len: usize,
}

impl Body {
    /// A whole configuration (gateways, custom compilers): one piece of its own.
    pub fn whole(mut config: ProxyConfig) -> Body {
        config.version = VERSION_MARK.into();
        let json = to_json(&config);
        // The version mark is always there; a body without it would only lose the version.
        Self::split(&json, &[]).unwrap_or_else(|| Body::from_segments(vec![Segment::Bytes(json.into())]))
    }

    /// A sidecar's configuration: its own parts (`own`: listeners, inbound route tables and
    /// clusters) around the shared JSON.
    pub fn sidecar(shared: &Arc<SharedJson>, own: ProxyConfig) -> Option<Body> {
        let skeleton = ProxyConfig {
            version: VERSION_MARK.into(),
            listeners: own.listeners,
            route_tables: std::iter::once(RouteTable {
                name: OUTBOUND_MARK.into(),
                virtual_hosts: Vec::new(),
            })
            .chain(own.route_tables)
            .collect(),
            clusters: std::iter::once(Cluster {
                name: CLUSTERS_MARK.into(),
                ..Cluster::default()
            })
            .chain(own.clusters)
            .collect(),
        };
        let outbound_mark = to_json(&RouteTable {
            name: OUTBOUND_MARK.into(),
            virtual_hosts: Vec::new(),
        });
        let clusters_mark = to_json(&Cluster {
            name: CLUSTERS_MARK.into(),
            ..Cluster::default()
        });
        Self::split(
            &to_json(&skeleton),
            &[
                (outbound_mark, shared.outbound.clone()),
                (clusters_mark, shared.clusters.clone()),
            ],
        )
    }

    /// Cuts `json` at the version mark and at each `(mark, replacement)`, in that order of
    /// appearance; `None` if a mark is missing.
    fn split(json: &[u8], replacements: &[(Vec<u8>, Arc<[u8]>)]) -> Option<Body> {
        let version_mark = to_json(&VERSION_MARK);
        let mut segments = Vec::new();
        let mut rest: &[u8] = json;
        // (mark, what replaces it: shared bytes, or the version when `None`).
        type Mark<'m> = (&'m [u8], Option<&'m Arc<[u8]>>);
        let mut marks: Vec<Mark<'_>> = vec![(&version_mark, None)];
        marks.extend(replacements.iter().map(|(m, r)| (m.as_slice(), Some(r))));
        for (mark, replacement) in marks {
            let at = find(rest, mark)?;
            segments.push(Segment::Bytes(rest[..at].into()));
            segments.push(match replacement {
                Some(r) => Segment::Bytes(r.clone()),
                None => Segment::Version,
            });
            rest = &rest[at + mark.len()..];
        }
        segments.push(Segment::Bytes(rest.into()));
        Some(Body::from_segments(segments))
    }

    fn from_segments(segments: Vec<Segment>) -> Body {
        let len = segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len(),
                Segment::Version => 2,
            })
            .sum();
        Body { segments, len }
    }

    /// The bytes `ProxyConfig::to_json` gives for this configuration with `version`.
    pub fn render(&self, version: u64) -> Vec<u8> {
        let version = format!("\"{version}\"");
        let mut out = Vec::with_capacity(self.len + version.len());
        for s in &self.segments {
            match s {
                Segment::Bytes(b) => out.extend_from_slice(b),
                Segment::Version => out.extend_from_slice(version.as_bytes()),
            }
        }
        out
    }

    /// The same bytes as [`Body::render`], as chunks that share this body's pieces instead of
    /// copying them: what the stream writes.
    pub fn chunks(&self, version: u64) -> (Vec<bytes::Bytes>, usize) {
        let version = bytes::Bytes::from(format!("\"{version}\""));
        let len = self.len - 2 + version.len();
        let chunks = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => bytes::Bytes::from_owner(b.clone()),
                Segment::Version => version.clone(),
            })
            .filter(|b| !b.is_empty())
            .collect();
        (chunks, len)
    }

    /// Whether both render the same bytes for any version. Shared pieces compare by pointer
    /// first (the push server reuses the previous snapshot's piece when it did not change).
    pub fn same_as(&self, other: &Body) -> bool {
        self.len == other.len
            && self.segments.len() == other.segments.len()
            && self.segments.iter().zip(&other.segments).all(|pair| match pair {
                (Segment::Version, Segment::Version) => true,
                (Segment::Bytes(a), Segment::Bytes(b)) => Arc::ptr_eq(a, b) || a == b,
                _ => false,
            })
    }
}

/// First position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_body_renders_like_to_json() {
        let mut config = ProxyConfig {
            clusters: vec![Cluster {
                name: "c".into(),
                ..Cluster::default()
            }],
            ..ProxyConfig::default()
        };
        let body = Body::whole(config.clone());
        assert!(body.same_as(&Body::whole(config.clone())));
        config.version = "42".into();
        assert_eq!(body.render(42), config.to_json());
        let (chunks, len) = body.chunks(42);
        assert_eq!(chunks.concat(), config.to_json());
        assert_eq!(len, config.to_json().len());
    }

    #[test]
    fn different_configs_are_not_the_same() {
        let a = Body::whole(ProxyConfig::default());
        let b = Body::whole(ProxyConfig {
            clusters: vec![Cluster::default()],
            ..ProxyConfig::default()
        });
        assert!(!a.same_as(&b));
    }
}
