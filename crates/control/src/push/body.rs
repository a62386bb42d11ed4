//! A configuration's JSON body kept in shared pieces.
//!
//! At 1,000 services a sidecar's configuration is ~2.3 MB of JSON, ~all of it the outbound route
//! table and the clusters that every sidecar with the same [`ShareKey`](crate::compile::ShareKey)
//! shares. Keeping one full body per proxy (and per pending version) cost ~33 MB per proxy; a
//! [`Body`] instead holds the shared JSON once (`Arc`) and only the proxy's own bytes (its
//! listeners and inbound side, ~1 KB), and renders the exact bytes `ProxyConfig::to_json` would
//! give only when a push is written to the stream or a status is asked for.
//!
//! For proxies that accept gzip, each shared piece is also kept compressed (once, on the first
//! whole push that needs it) and a push is the concatenation of gzip members: the shared pieces'
//! cached members and, between them, the proxy's own bytes (~1 KB, stored). A multi-member gzip
//! decoder reads the concatenation as the one JSON document [`Body::render`] gives. Most pushes
//! after the first are deltas (see [`super::delta`]), which need neither.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use strait_mesh::{Cluster, ProxyConfig, RouteTable};

use crate::compile::snapshot::{join, joined_len};
use crate::compile::{JsonItems, SharedSidecarJson};

/// Placeholder version, serialized where the real version goes.
const VERSION_MARK: &str = "\u{0}strait:version\u{0}";
/// Placeholder route table, replaced by the shared outbound table.
const OUTBOUND_MARK: &str = "\u{0}strait:shared-outbound\u{0}";
/// Placeholder cluster, replaced by the shared clusters.
const CLUSTERS_MARK: &str = "\u{0}strait:shared-clusters\u{0}";

/// The serialized shared part of sidecar configurations (one per share key and snapshot).
#[derive(Debug)]
pub(crate) struct SharedJson {
    /// The outbound route table, one JSON object.
    outbound: Piece,
    /// The clusters, comma-separated JSON objects without the brackets (never empty: the
    /// PassthroughCluster is always there).
    clusters: Piece,
    /// Deltas from older shared parts of the same key to this one, computed once for every
    /// proxy that needs them (see [`super::delta`]).
    pub deltas: super::delta::DeltaCache,
}

impl PartialEq for SharedJson {
    fn eq(&self, other: &SharedJson) -> bool {
        self.outbound == other.outbound && self.clusters == other.clusters
    }
}

impl Eq for SharedJson {}

/// A shared piece of JSON (the outbound table, or the clusters), kept as its per-service groups
/// between two fixed ends. Its bytes are put together, and compressed into a gzip member, only
/// when a whole push or a status needs them, once for every proxy: with change-sized pushes a
/// snapshot's pieces are mostly never sent whole.
#[derive(Debug, Clone)]
struct Piece(Arc<PieceInner>);

#[derive(Debug)]
struct PieceInner {
    before: Arc<[u8]>,
    groups: Vec<JsonItems>,
    after: Arc<[u8]>,
    len: usize,
    plain: OnceLock<Arc<[u8]>>,
    gzip: OnceLock<Arc<[u8]>>,
}

impl PartialEq for Piece {
    fn eq(&self, other: &Piece) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        Arc::ptr_eq(&self.0, &other.0)
            || (a.len == b.len
                && a.before == b.before
                && a.after == b.after
                && a.groups.len() == b.groups.len()
                && a.groups.iter().zip(&b.groups).all(|(x, y)| x.same_as(y)))
    }
}

impl Eq for Piece {}

impl Piece {
    fn new(before: Arc<[u8]>, groups: Vec<JsonItems>, after: Arc<[u8]>) -> Piece {
        let len = before.len() + joined_len(&groups) + after.len();
        Piece(Arc::new(PieceInner {
            before,
            groups,
            after,
            len,
            plain: OnceLock::new(),
            gzip: OnceLock::new(),
        }))
    }

    fn len(&self) -> usize {
        self.0.len
    }

    fn plain(&self) -> Arc<[u8]> {
        let p = &self.0;
        p.plain
            .get_or_init(|| [&p.before[..], &join(&p.groups), &p.after[..]].concat().into())
            .clone()
    }

    fn gzip(&self) -> Arc<[u8]> {
        self.0
            .gzip
            .get_or_init(|| gzip_member(&self.plain()).into())
            .clone()
    }
}

impl SharedJson {
    /// Takes the shared part serialized by [`SnapshotCompiler::shared_sidecar_json`](crate::compile::SnapshotCompiler::shared_sidecar_json).
    /// A piece equal to `previous`'s is taken from it (same `Arc`s: bodies compare equal by
    /// pointer, and bytes or gzip already made are not made again).
    pub fn from_json(json: SharedSidecarJson, previous: Option<&SharedJson>) -> SharedJson {
        let reuse = |piece: Piece, prev: Option<&Piece>| match prev {
            Some(p) if *p == piece => p.clone(),
            _ => piece,
        };
        let (before, after) = json.outbound_around.clone();
        let nothing: Arc<[u8]> = Arc::from(&b""[..]);
        SharedJson {
            outbound: reuse(
                Piece::new(before, json.vhost_groups, after),
                previous.map(|p| &p.outbound),
            ),
            clusters: reuse(
                Piece::new(nothing.clone(), json.cluster_groups, nothing),
                previous.map(|p| &p.clusters),
            ),
            deltas: Default::default(),
        }
    }

    /// The outbound table's virtual hosts, per service: what deltas compare.
    pub fn vhost_groups(&self) -> &[JsonItems] {
        &self.outbound.0.groups
    }

    /// The shared clusters, per service: what deltas compare.
    pub fn cluster_groups(&self) -> &[JsonItems] {
        &self.clusters.0.groups
    }

    /// Items in the shared clusters list.
    pub fn cluster_count(&self) -> u32 {
        self.cluster_groups().iter().map(|g| g.count).sum()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.outbound.len() + self.clusters.len()
    }

    /// Bytes of the gzip members made so far.
    pub fn gzip_len(&self) -> usize {
        [&self.outbound, &self.clusters]
            .iter()
            .filter_map(|p| p.0.gzip.get())
            .map(|g| g.len())
            .sum()
    }
}

/// gzip level: 1 shrinks a 2.3 MB configuration ~30× in ~3.5 ms; higher levels gain little on
/// this JSON and cost more for every shared piece of every snapshot.
const GZIP_LEVEL: u32 = 1;

/// The gzip member header (RFC 1952): deflate, no flags, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

thread_local! {
    /// One deflate state per thread, reset per member: the state is a few hundred KB, too much
    /// to allocate for each proxy's ~1 KB of own bytes.
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(GZIP_LEVEL), false));
}

/// Own bytes up to this size are sent as stored (uncompressed) deflate blocks: compressing ~1 KB
/// saves a few hundred bytes of a ~100 KB push, while resetting the deflater clears a few
/// hundred KB of tables, three times per push.
const STORE_UP_TO: usize = 16 * 1024;

/// `data` as one gzip member, compressed unless it is small (see [`STORE_UP_TO`]).
fn own_member(data: &[u8]) -> Vec<u8> {
    if data.len() > STORE_UP_TO {
        gzip_member(data)
    } else {
        stored_member(data)
    }
}

/// `data` as one gzip member of stored deflate blocks (no compression, no deflater state).
fn stored_member(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + data.len() + 5 * (data.len() / 0xffff + 1) + 8);
    out.extend_from_slice(&GZIP_HEADER);
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        // An empty final stored block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL on the last block, BTYPE 00 (stored), then LEN and its complement (RFC 1951).
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    gzip_trailer(&mut out, data);
    out
}

fn gzip_trailer(out: &mut Vec<u8>, data: &[u8]) {
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
}

/// `data` as one complete, compressed gzip member.
pub(crate) fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + data.len() / 8 + 64);
    out.extend_from_slice(&GZIP_HEADER);
    DEFLATE.with(|deflate| {
        let mut deflate = deflate.borrow_mut();
        deflate.reset();
        loop {
            // `compress_vec` only writes into spare capacity: make some on every round.
            out.reserve(data.len() / 8 + 64);
            let consumed = usize::try_from(deflate.total_in())
                .unwrap_or(data.len())
                .min(data.len());
            match deflate.compress_vec(&data[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => break,
                Ok(Status::Ok | Status::BufError) => {}
                // The in-memory deflater has no failure mode for well-formed calls; if one
                // appeared, the proxy would NACK the truncated member rather than misread it.
                Err(e) => {
                    tracing::error!(error = %e, "gzip compression failed");
                    break;
                }
            }
        }
    });
    gzip_trailer(&mut out, data);
    out
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain data structs with string keys always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `items` as a [`JsonItems`] (comma-separated, no brackets).
fn json_items<T: serde::Serialize>(items: &[T]) -> JsonItems {
    let json = to_json(&items);
    JsonItems {
        json: json
            .get(1..json.len().saturating_sub(1))
            .unwrap_or_default()
            .into(),
        count: u32::try_from(items.len()).unwrap_or(u32::MAX),
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Bytes(Arc<[u8]>),
    /// A shared piece (with its cached gzip member).
    Shared(Piece),
    /// The version, as a JSON string.
    Version,
}

/// One configuration body, version left open.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    segments: Vec<Segment>,
    len: usize,
    /// A sidecar's body in its parts, for deltas; `None` for whole bodies (gateways, custom
    /// compilers), which are always pushed whole.
    pub parts: Option<Parts>,
}

/// A sidecar body's lists: the shared part, and its own items around it.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub shared: Arc<SharedJson>,
    /// The proxy's own parts, to tell whether the next body can reuse this one's bytes.
    pub own: Arc<ProxyConfig>,
    /// Own listeners (all of the config's).
    pub listeners: JsonItems,
    /// Own route tables (after the shared outbound table).
    pub route_tables: JsonItems,
    /// Own clusters (after the shared ones).
    pub clusters: JsonItems,
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
        let parts = Parts {
            shared: shared.clone(),
            listeners: json_items(&own.listeners),
            route_tables: json_items(&own.route_tables),
            clusters: json_items(&own.clusters),
            own: Arc::new(own.clone()),
        };
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
        let mut body = Self::split(
            &to_json(&skeleton),
            &[
                (outbound_mark, shared.outbound.clone()),
                (clusters_mark, shared.clusters.clone()),
            ],
        )?;
        body.parts = Some(parts);
        Some(body)
    }

    /// Cuts `json` at the version mark and at each `(mark, replacement)`, in that order of
    /// appearance; `None` if a mark is missing.
    fn split(json: &[u8], replacements: &[(Vec<u8>, Piece)]) -> Option<Body> {
        let version_mark = to_json(&VERSION_MARK);
        let mut segments = Vec::new();
        let mut rest: &[u8] = json;
        // (mark, what replaces it: shared bytes, or the version when `None`).
        type Mark<'m> = (&'m [u8], Option<&'m Piece>);
        let mut marks: Vec<Mark<'_>> = vec![(&version_mark, None)];
        marks.extend(replacements.iter().map(|(m, r)| (m.as_slice(), Some(r))));
        for (mark, replacement) in marks {
            let at = find(rest, mark)?;
            segments.push(Segment::Bytes(rest[..at].into()));
            segments.push(match replacement {
                Some(r) => Segment::Shared(r.clone()),
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
                Segment::Shared(p) => p.len(),
                Segment::Version => 2,
            })
            .sum();
        Body {
            segments,
            len,
            parts: None,
        }
    }

    /// This sidecar body with another shared part: the same own bytes around `shared`'s pieces.
    /// `None` for a body that is not a sidecar's.
    pub fn with_shared(&self, shared: &Arc<SharedJson>) -> Option<Body> {
        let parts = self.parts.as_ref()?;
        let mut replacements = [&shared.outbound, &shared.clusters].into_iter();
        let segments: Vec<Segment> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Shared(_) => replacements.next().map(|p| Segment::Shared(p.clone())),
                other => Some(other.clone()),
            })
            .collect::<Option<_>>()?;
        let mut body = Body::from_segments(segments);
        body.parts = Some(Parts {
            shared: shared.clone(),
            ..parts.clone()
        });
        Some(body)
    }

    /// Bytes of the whole plain JSON (without the version).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes `ProxyConfig::to_json` gives for this configuration with `version`.
    pub fn render(&self, version: u64) -> Vec<u8> {
        let version = format!("\"{version}\"");
        let mut out = Vec::with_capacity(self.len + version.len());
        for s in &self.segments {
            match s {
                Segment::Bytes(b) => out.extend_from_slice(b),
                Segment::Shared(p) => out.extend_from_slice(&p.plain()),
                Segment::Version => out.extend_from_slice(version.as_bytes()),
            }
        }
        out
    }

    /// The same JSON as [`Body::render`] as concatenated gzip members: each shared piece's
    /// cached member (shared, not copied) and the bytes between them compressed now. Returns
    /// the chunks and their total length.
    pub fn gzip_chunks(&self, version: u64) -> (Vec<bytes::Bytes>, usize) {
        let version = format!("\"{version}\"");
        let mut chunks = Vec::new();
        let mut own = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Bytes(b) => own.extend_from_slice(b),
                Segment::Version => own.extend_from_slice(version.as_bytes()),
                Segment::Shared(p) => {
                    if !own.is_empty() {
                        chunks.push(bytes::Bytes::from(own_member(&own)));
                        own.clear();
                    }
                    chunks.push(bytes::Bytes::from_owner(p.gzip()));
                }
            }
        }
        if !own.is_empty() || chunks.is_empty() {
            chunks.push(bytes::Bytes::from(own_member(&own)));
        }
        let len = chunks.iter().map(|c| c.len()).sum();
        (chunks, len)
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
                Segment::Shared(p) => bytes::Bytes::from_owner(p.plain()),
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
                (Segment::Shared(a), Segment::Shared(b)) => a == b,
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
        let (gz, gz_len) = body.gzip_chunks(42);
        assert_eq!(gz_len, gz.iter().map(|c| c.len()).sum::<usize>());
        assert_eq!(gunzip(&gz.concat()), config.to_json());
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn gzip_members_decode_alone_and_concatenated() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let stored_blocks = vec![7u8; 0xffff * 2 + 3];
        for data in [&b""[..], b"{}", &big, &big[..STORE_UP_TO], &stored_blocks] {
            assert_eq!(gunzip(&gzip_member(data)), data);
            assert_eq!(gunzip(&own_member(data)), data);
            assert_eq!(gunzip(&stored_member(data)), data);
        }
        let mut both = gzip_member(b"{\"a\":");
        both.extend(gzip_member(&big));
        let mut expected = b"{\"a\":".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(gunzip(&both), expected);
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
