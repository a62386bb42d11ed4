//! A request's header fields kept as the bytes they came in, instead of a `HeaderMap`.
//!
//! On the common path nothing edits a request's fields between the client and the upstream: the
//! router looks up a few of them (Host, the names its matches test), and the proxy adds its own
//! (`x-request-id`, the attempt count, `x-forwarded-proto`). Building the map (a name parse, a
//! value check, a hash and an insert per field) cost ~1,000 of ~18,400 instructions for a
//! two-field request, and writing it out again field by field a few hundred more. Here the
//! head's field lines are lowercased in place, looked up where each line starts (a request has
//! few fields), and written upstream as one slice (`benches/NOTES.md`, round 12).
//!
//! Anything unusual gets the map as before: a field not written as `name: value` on its own CRLF
//! line; a field the proxy cuts, replaces or frames by (hop-by-hop fields, `Transfer-Encoding`,
//! `Expect`, `x-envoy-upstream-rq-timeout-ms`, a repeated `x-envoy-attempt-count` or
//! `Content-Length`, one that is not plain digits); and, later, a route
//! that edits, rewrites or reads more than its matches ([`RawFields::into_map`]). This is a fast
//! path, not a second parser: `httparse` checked every name and value already.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::fields::{self, Span};

/// The header fields of a request, as the `name: value\r\n` lines of its head (names lowercased).
#[derive(Debug, Clone)]
pub(crate) struct RawFields {
    pub(super) head: Bytes,
    /// The field lines: `head[start..end]`.
    start: u32,
    end: u32,
    /// Where the first [`LINES`] field lines start in `head`, for lookups that compare a name
    /// where a line starts instead of looking for each line's end.
    lines: [u16; LINES],
    /// How many fields there are.
    count: usize,
    /// The first `host` field's value, when there is one.
    host: Option<(u32, u32)>,
    /// The client sent `x-request-id` (the proxy adds one otherwise).
    pub(crate) has_request_id: bool,
    /// The client sent `x-forwarded-proto` (the proxy adds one otherwise).
    pub(crate) has_forwarded_proto: bool,
    /// The line of the client's `x-envoy-attempt-count` (a sidecar's request to another always
    /// has one), which the proxy replaces with its own: left out when the fields are written
    /// upstream.
    attempt_count: Option<(u32, u32)>,
    /// The request's one plain `Content-Length` (digits only) and its line: the framing reads
    /// the length, and the encoder writes the length of the body it sends instead of the line.
    length: Option<(u64, (u32, u32))>,
    /// The `x-request-id` the proxy made for a request that came without one: a field after
    /// the client's. Kept here rather than in the request's map, which then stays empty, so a
    /// lookup never hashes a name.
    request_id: Option<HeaderValue>,
}

/// Field lines whose starts are noted; a request with more is looked up by a scan.
const LINES: usize = 16;

/// What a request field is to the fast path, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The proxy cuts, replaces or frames by it: the map path handles the request.
    Special,
    Host,
    RequestId,
    ForwardedProto,
    AttemptCount,
    ContentLength,
    Other,
}

/// Classifies a field name without allocating: by length first, then one case-insensitive
/// comparison.
fn kind(name: &[u8]) -> Kind {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Kind::Special,
        4 if is("host") => Kind::Host,
        6 if is("expect") => Kind::Special,
        7 if is("upgrade") => Kind::Special,
        10 if is("connection") || is("keep-alive") => Kind::Special,
        12 if is("x-request-id") => Kind::RequestId,
        14 if is("content-length") => Kind::ContentLength,
        16 if is("proxy-connection") => Kind::Special,
        17 if is("transfer-encoding") => Kind::Special,
        17 if is("x-forwarded-proto") => Kind::ForwardedProto,
        18 if is("proxy-authenticate") => Kind::Special,
        19 if is("proxy-authorization") => Kind::Special,
        21 if is("x-envoy-attempt-count") => Kind::AttemptCount,
        30 if is("x-envoy-upstream-rq-timeout-ms") => Kind::Special,
        _ => Kind::Other,
    }
}

/// The fields of a request head (`head`, split off the read buffer; `spans` its fields'
/// offsets) as [`RawFields`], names lowercased in place; the head back when it needs the map.
pub(super) fn request_fields(head: BytesMut, spans: &[Span]) -> Result<RawFields, BytesMut> {
    let mut head = head;
    // The first field line, else the blank line that ends the head. (How the request line
    // ended does not matter: only field lines are kept.)
    let start = spans
        .first()
        .map_or(head.len().saturating_sub(2), |f| f.0 as usize);
    let mut at = start;
    let mut host = None;
    let (mut has_request_id, mut has_forwarded_proto) = (false, false);
    let mut attempt_count = None;
    let mut length = None;
    let mut lines = [0u16; LINES];
    for (i, &(ns, ne, vs, ve)) in spans.iter().enumerate() {
        if let Some(line) = lines.get_mut(i) {
            // Within MAX_HEAD (64 KiB): a head's offsets fit.
            *line = u16::try_from(ns).unwrap_or(u16::MAX);
        }
        let (ns, ne, vs, ve) = (ns as usize, ne as usize, vs as usize, ve as usize);
        // Exactly `name: value\r\n`, right after the previous line.
        if ns != at
            || vs != ne + 2
            || head.get(ne..vs) != Some(b": ")
            || head.get(ve..ve + 2) != Some(b"\r\n")
        {
            return Err(head);
        }
        at = ve + 2;
        match kind(&head[ns..ne]) {
            Kind::Special => return Err(head),
            Kind::Host => host = host.or(Some((vs as u32, ve as u32))),
            Kind::RequestId => has_request_id = true,
            Kind::ForwardedProto => has_forwarded_proto = true,
            // One line is cut out when written; more than one is left to the map.
            Kind::AttemptCount if attempt_count.is_some() => return Err(head),
            Kind::AttemptCount => attempt_count = Some((ns as u32, at as u32)),
            // One length of digits; a list, a repeat or anything odd is the map's to check.
            Kind::ContentLength => match (length, fields::parse_decimal(&head[vs..ve])) {
                (None, Some(n)) => length = Some((n, (ns as u32, at as u32))),
                _ => return Err(head),
            },
            Kind::Other => {}
        }
        // Harmless if a later field sends the head to the map: its names are parsed into
        // lowercase `HeaderName`s there anyway.
        head[ns..ne].make_ascii_lowercase();
    }
    // The blank line ends the head right after the last field.
    if head.get(at..) != Some(b"\r\n") {
        return Err(head);
    }
    Ok(RawFields {
        head: head.freeze(),
        // Within MAX_HEAD.
        start: start as u32,
        end: at as u32,
        lines,
        count: spans.len(),
        host,
        has_request_id,
        has_forwarded_proto,
        attempt_count,
        length,
        request_id: None,
    })
}

/// A header value as `HeaderValue::to_str` gives it: visible ASCII only.
pub(crate) fn visible(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

impl RawFields {
    /// The field lines, `name: value\r\n` each, names lowercase.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.head[self.start as usize..self.end as usize]
    }

    /// Appends the field lines to `out` for the upstream: without `Content-Length` (the encoder
    /// writes the length of the body it sends), and without the client's
    /// `x-envoy-attempt-count` when `replaced` is that name (the encoder writes the proxy's).
    pub(crate) fn write_upstream(&self, replaced: Option<&HeaderName>, out: &mut Vec<u8>) {
        let attempt = self
            .attempt_count
            .filter(|_| replaced.is_some_and(|r| r.as_str() == "x-envoy-attempt-count"));
        let mut cuts = [attempt, self.length.map(|(_, line)| line)];
        if let [Some(a), Some(b)] = cuts
            && b.0 < a.0
        {
            cuts.swap(0, 1);
        }
        let mut at = self.start as usize;
        for (s, e) in cuts.into_iter().flatten() {
            out.extend_from_slice(&self.head[at..s as usize]);
            at = e as usize;
        }
        out.extend_from_slice(&self.head[at..self.end as usize]);
    }

    /// The request's `Content-Length`, when it has one.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.length.map(|(n, _)| n)
    }

    /// Every field as (lowercase name, value), in the order they came.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.bytes().split_inclusive(|b| *b == b'\n').filter_map(|line| {
            let line = line.strip_suffix(b"\r\n")?;
            let colon = line.iter().position(|b| *b == b':')?;
            Some((&line[..colon], line.get(colon + 2..).unwrap_or_default()))
        })
    }

    /// The values of the fields named `name`, in order (the request id the proxy made last).
    pub(crate) fn get_all<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
        let name = name.as_str().as_bytes();
        let own = self
            .request_id
            .as_ref()
            .filter(|_| name == b"x-request-id")
            .map(HeaderValue::as_bytes);
        // Every line is `name: value\r\n` (see `request_fields`): a name is compared where a
        // line starts, and only a matching line is looked into.
        let value = move |line: &'a [u8]| {
            (line.len() >= name.len() + 4 && line[name.len()] == b':' && line.starts_with(name))
                .then(|| &line[name.len() + 2..line.len() - 2])
        };
        let noted = (self.count <= LINES).then(|| {
            let starts = &self.lines[..self.count];
            starts.iter().enumerate().filter_map(move |(i, &s)| {
                let e = starts.get(i + 1).map_or(self.end as usize, |&e| usize::from(e));
                value(self.head.get(usize::from(s)..e)?)
            })
        });
        let scanned =
            (self.count > LINES).then(|| self.bytes().split_inclusive(|b| *b == b'\n').filter_map(value));
        noted
            .into_iter()
            .flatten()
            .chain(scanned.into_iter().flatten())
            .chain(own)
    }

    /// Adds the proxy's `x-request-id` (for a request that came without one).
    pub(crate) fn set_request_id(&mut self, id: HeaderValue) {
        self.request_id = Some(id);
    }

    /// The proxy's own `x-request-id`, when it made one.
    pub(crate) fn request_id(&self) -> Option<&HeaderValue> {
        self.request_id.as_ref()
    }

    /// The first `host` field's value.
    pub(crate) fn host_bytes(&self) -> Option<&[u8]> {
        let (s, e) = self.host?;
        self.head.get(s as usize..e as usize)
    }

    /// The first `host` field's value, as `HeaderValue::to_str` gives it (`Err` for bytes it
    /// refuses).
    pub(crate) fn host(&self) -> Option<Result<&str, ()>> {
        self.host_bytes().map(|h| visible(h).ok_or(()))
    }

    /// Whether a field named `name` is among them.
    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        match name.as_str() {
            "host" => self.host.is_some(),
            "x-request-id" => self.has_request_id || self.request_id.is_some(),
            "x-forwarded-proto" => self.has_forwarded_proto,
            _ => self.get_all(name).next().is_some(),
        }
    }

    /// The same fields in a header map (the proxy's request id after the client's fields),
    /// before `extra`'s, as the map path would have built them: for a route that edits or
    /// reads the fields.
    pub(crate) fn into_map(self, extra: HeaderMap) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(fields::map_room(self.iter().count() + extra.len()));
        let base = self.head.as_ptr() as usize;
        for (name, value) in self.iter() {
            // `httparse` checked both; the map path's checks accept what it accepts.
            let at = value.as_ptr() as usize - base;
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_maybe_shared(self.head.slice(at..at + value.len())),
            ) else {
                continue;
            };
            map.append(name, value);
        }
        if let Some(id) = self.request_id {
            map.append(HeaderName::from_static("x-request-id"), id);
        }
        let mut last = None;
        for (name, value) in extra {
            if let Some(name) = name {
                last = Some(name);
            }
            if let Some(name) = &last {
                map.append(name.clone(), value);
            }
        }
        map
    }
}

#[cfg(test)]
#[path = "raw/tests.rs"]
mod tests;
