//! Header sections: the parser's fields turned into a `HeaderMap` whose values share the head's
//! bytes, and the fields that decide framing and persistence, noted on the way.

use std::cell::RefCell;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::{MAX_HEAD, WireError};

/// Where one header field's name and value sit in the head.
pub(super) type Span = (u32, u32, u32, u32);

/// Header fields looked for on the stack first; a head with more is parsed again with room for
/// [`super::MAX_HEADERS`]. Small, because the span table is initialised on every parse.
pub(super) const INLINE_HEADERS: usize = 24;

/// Records the offsets of the parser's fields in `buf` into `spans`: the values are cut out of
/// the head once it is split off the read buffer, which the parser's borrow forbids while it
/// lives. Written into the caller's table: one returned by value was copied twice more on its
/// way to [`header_map`] (~400 bytes each time; a thread's reused `Vec` instead cost more than
/// the copies).
pub(super) fn record_spans(buf: &[u8], fields: &[httparse::Header<'_>], spans: &mut [Span]) {
    let base = buf.as_ptr() as usize;
    // Offsets fit: a head longer than MAX_HEAD (64 KiB) is refused before its spans are used.
    let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
    for (span, f) in spans.iter_mut().zip(fields) {
        let name = offset(f.name.as_bytes());
        let value = offset(f.value);
        *span = (
            name,
            name + f.name.len() as u32,
            value,
            value + f.value.len() as u32,
        );
    }
}

/// The result of a scan: `Ok(None)` is an incomplete head; errors say which limit or rule broke.
pub(super) fn check_scan(
    complete: Option<usize>,
    buffered: usize,
    err: Option<httparse::Error>,
) -> Result<Option<usize>, WireError> {
    match (err, complete) {
        (Some(httparse::Error::TooManyHeaders), _) => Err(WireError::TooLarge("too many header fields")),
        (Some(_), _) => Err(WireError::Head("not an HTTP/1.x message")),
        (None, Some(len)) if len <= MAX_HEAD => Ok(Some(len)),
        (None, None) if buffered <= MAX_HEAD => Ok(None),
        (None, _) => Err(WireError::TooLarge("head longer than 64 KiB")),
    }
}

/// Room left in a parsed header map for the fields the proxy adds (request id, forwarding and
/// attempt headers on requests; server, service time, CORS on responses). A full map grows on the
/// next insert: a reallocation and a rehash of every field (~2,600 instructions a request).
const ROOM_TO_ADD: usize = 8;

/// The smallest header map made: a typical request's fields and the proxy's additions.
const MIN_MAP: usize = 24;

/// Builds the header map from the spans of `head`, noting the framing fields. A `spare` map
/// (emptied, with room enough) is filled instead of allocating one: a connection hands back the
/// map of the response it just wrote, which saves two allocations per request.
pub(super) fn header_map(
    head: &Bytes,
    spans: &[Span],
    spare: &mut Option<HeaderMap>,
) -> Result<(HeaderMap, FramingFields), WireError> {
    let room = spans.len() + ROOM_TO_ADD;
    let reused = spare
        .take()
        .map(|mut map| {
            map.clear();
            map
        })
        .or_else(recycled);
    let mut headers = match reused {
        Some(mut map) => {
            // Grows only for a head with more fields than the map was made for.
            map.reserve(room);
            map
        }
        // Room for a typical request's fields too, so that a response's map can be reused
        // for the next request on the connection.
        None => HeaderMap::with_capacity(room.max(MIN_MAP)),
    };
    let mut fields = FramingFields::default();
    for &(ns, ne, vs, ve) in spans {
        let name = field_name(&head[ns as usize..ne as usize])?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
            .map_err(|_| WireError::Head("invalid header value"))?;
        fields.note(&name, &value)?;
        headers.append(name, value);
    }
    Ok((headers, fields))
}

/// The capacity for a new map of `fields` fields and the proxy's additions.
pub(super) fn map_room(fields: usize) -> usize {
    (fields + ROOM_TO_ADD).max(MIN_MAP)
}

/// A field's name. Every HTTP/1.1 request has `Host`: matched here in a few instructions,
/// where the general parse (a lowercased copy, then a lookup among the standard names) costs
/// ~120.
fn field_name(name: &[u8]) -> Result<HeaderName, WireError> {
    if name.len() == 4 && name.eq_ignore_ascii_case(b"host") {
        return Ok(header::HOST);
    }
    HeaderName::from_bytes(name).map_err(|_| WireError::Head("invalid header name"))
}

/// Maps kept per thread at most: one per request in flight on the thread is plenty, since a
/// map comes back as soon as its request is done with it.
const RECYCLED_MAX: usize = 8;
/// A map grown past this (a head with very many fields) is freed rather than kept.
const RECYCLED_CAPACITY_MAX: usize = 64;

thread_local! {
    /// Emptied header maps of finished requests, for heads parsed on this thread without a spare
    /// of their own (upstream responses): two allocations and two frees fewer per request.
    static RECYCLED: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// Hands a header map that is no longer needed to the next head parsed on this thread.
pub(crate) fn recycle(mut map: HeaderMap) {
    if !(MIN_MAP..=RECYCLED_CAPACITY_MAX).contains(&map.capacity()) {
        return;
    }
    map.clear();
    // `try_with`: a map dropped while the thread's locals are being destroyed is simply freed.
    let _ = RECYCLED.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut()
            && kept.len() < RECYCLED_MAX
        {
            kept.push(map);
        }
    });
}

/// An emptied map from [`recycle`], if this thread has one.
fn recycled() -> Option<HeaderMap> {
    RECYCLED
        .try_with(|kept| kept.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

/// Header fields the framing and the connection's persistence depend on.
#[derive(Debug, Default)]
pub(super) struct FramingFields {
    pub(super) content_length: Option<u64>,
    pub(super) transfer_encoding: bool,
    pub(super) chunked_last: bool,
    pub(super) close: bool,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
}

impl FramingFields {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), WireError> {
        if name == header::CONTENT_LENGTH {
            self.note_length(value.as_bytes())?;
        } else if name == header::TRANSFER_ENCODING {
            self.note_transfer_encoding(value.as_bytes());
        } else if name == header::CONNECTION {
            self.note_connection(value.as_bytes());
        } else if name == header::EXPECT {
            self.expect_continue |= value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue");
        }
        Ok(())
    }

    /// A `Content-Length` field. `Content-Length: 5, 5` and repeated equal fields are one
    /// length; anything else is not a length.
    pub(super) fn note_length(&mut self, value: &[u8]) -> Result<(), WireError> {
        for part in value.split(|b| *b == b',') {
            let n = parse_decimal(part.trim_ascii()).ok_or(WireError::Head("invalid content-length"))?;
            if self.content_length.is_some_and(|m| m != n) {
                return Err(WireError::Head("conflicting content-length fields"));
            }
            self.content_length = Some(n);
        }
        Ok(())
    }

    /// A `Transfer-Encoding` field: only the last coding decides whether the body is chunked.
    pub(super) fn note_transfer_encoding(&mut self, value: &[u8]) {
        self.transfer_encoding = true;
        if let Some(last) = value
            .split(|b| *b == b',')
            .map(<[u8]>::trim_ascii)
            .rfind(|c| !c.is_empty())
        {
            self.chunked_last = last.eq_ignore_ascii_case(b"chunked");
        }
    }

    /// A `Connection` field. False when it names more than `close` and `keep-alive`: fields
    /// that are then connection-scoped too.
    pub(super) fn note_connection(&mut self, value: &[u8]) -> bool {
        let mut only_options = true;
        for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            let close = token.eq_ignore_ascii_case(b"close");
            let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
            self.close |= close;
            self.keep_alive |= keep_alive;
            only_options &= close || keep_alive || token.is_empty();
        }
        only_options
    }

    /// Whether the connection stays open after this message, by its version (`0` is HTTP/1.0).
    pub(super) fn persistent(&self, version: u8) -> bool {
        if version == 0 {
            self.keep_alive
        } else {
            !self.close
        }
    }
}

/// Writes one header field, `name: value`, in a head being encoded.
pub(super) fn push_field(name: &HeaderName, value: &HeaderValue, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A non-empty run of ASCII digits that fits a `u64`.
pub(super) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// `n` in decimal, written into `digits`.
pub(super) fn render_decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test runs on its own thread, so each starts with no recycled maps.

    #[test]
    fn host_in_any_case_is_the_standard_name_and_other_names_parse_as_before() {
        for raw in [&b"host"[..], b"Host", b"HOST", b"hOsT"] {
            assert_eq!(field_name(raw).unwrap(), header::HOST);
        }
        for raw in [&b"hosts"[..], b"x-host", b"Content-Type", b"x-request-id"] {
            assert_eq!(
                field_name(raw).unwrap(),
                HeaderName::from_bytes(raw).unwrap(),
                "{raw:?}"
            );
        }
        assert!(field_name(b"ho st").is_err());
        assert!(field_name(b"").is_err());
    }

    #[test]
    fn a_recycled_map_is_emptied_and_filled_by_the_next_head_parsed_without_a_spare() {
        // Larger than a new map would be, so that its capacity tells it apart.
        let mut map = HeaderMap::with_capacity(MIN_MAP * 2);
        map.insert(header::HOST, HeaderValue::from_static("old"));
        let capacity = map.capacity();
        recycle(map);
        let head = Bytes::from_static(b"x-a: 1\r\n");
        let (map, _) = header_map(&head, &[(0, 3, 5, 6)], &mut None).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("x-a").unwrap(), "1");
        assert!(map.get(header::HOST).is_none(), "the old field is gone");
        assert_eq!(map.capacity(), capacity, "the recycled map, not a new one");
        assert!(recycled().is_none(), "taken once");
    }

    #[test]
    fn maps_too_small_or_too_large_are_not_kept_and_the_store_is_bounded() {
        recycle(HeaderMap::new());
        recycle(HeaderMap::with_capacity(RECYCLED_CAPACITY_MAX * 4));
        assert!(recycled().is_none());
        for _ in 0..RECYCLED_MAX + 3 {
            recycle(HeaderMap::with_capacity(MIN_MAP));
        }
        let mut kept = 0;
        while recycled().is_some() {
            kept += 1;
        }
        assert_eq!(kept, RECYCLED_MAX);
    }
}
