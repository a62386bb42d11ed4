//! An upstream response's header fields kept as the bytes the downstream HTTP/1.1 encoder
//! writes, instead of a `HeaderMap`.
//!
//! A response that goes from an HTTP/1.1 upstream to an HTTP/1.1 client with no response edits
//! is read by nobody between the two: building its map (a name parse, a value check, a hash and
//! an insert per field, then the drop) and writing it out again (a name comparison and four
//! copies per field) was ~2,000 of ~20,400 instructions a proxied request. Here the head is
//! edited in place instead: the fields the proxy must not forward, or writes itself, are cut
//! out, names are lowercased as Envoy writes them, and what remains is one slice of the head.
//!
//! Anything unusual (a field not written as `name: value` on its own CRLF line, `Connection`
//! naming other fields) gets the map as before: this is a fast path, not a second parser.

use bytes::{Buf, Bytes, BytesMut};

use super::WireError;
use super::fields::{FramingFields, Span};

/// A response's header fields as they go downstream, and what the encoder needs to know of the
/// fields that were cut out.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldBlock {
    /// `name: value\r\n` lines, names lowercased; none of them hop-by-hop, `content-length`,
    /// `server` or `x-envoy-upstream-service-time`.
    pub(crate) bytes: Bytes,
    /// A `date` field is among them.
    pub(crate) has_date: bool,
    /// The response's `Content-Length`, written again by the encoder as it frames the body.
    pub(crate) content_length: Option<u64>,
}

impl FieldBlock {
    /// The value of the first field named `name` (lowercase).
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.bytes.split(|b| *b == b'\n').find_map(|line| {
            let line = line.strip_suffix(b"\r")?;
            let rest = line.strip_prefix(name.as_bytes())?;
            rest.strip_prefix(b": ")
        })
    }
}

/// What a field is to the proxy, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ContentLength,
    TransferEncoding,
    Connection,
    /// Connection-scoped: never forwarded (RFC 9110 §7.6.1, as `headers::strip_hop_by_hop`).
    HopByHop,
    /// Written by the proxy on every response from upstream (`pipeline::Stamp`).
    Stamped,
    Date,
    Other,
}

/// Classifies a field name without allocating: by length first, then one case-insensitive
/// comparison.
fn kind(name: &[u8]) -> Kind {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Kind::HopByHop,
        4 if is("date") => Kind::Date,
        6 if is("server") => Kind::Stamped,
        7 if is("upgrade") => Kind::HopByHop,
        10 if is("connection") => Kind::Connection,
        10 if is("keep-alive") => Kind::HopByHop,
        14 if is("content-length") => Kind::ContentLength,
        16 if is("proxy-connection") => Kind::HopByHop,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        18 if is("proxy-authenticate") => Kind::HopByHop,
        19 if is("proxy-authorization") => Kind::HopByHop,
        29 if is("x-envoy-upstream-service-time") => Kind::Stamped,
        _ => Kind::Other,
    }
}

/// Turns the fields of `head` (a complete response head, split off the read buffer; `spans`
/// are its fields' offsets) into a [`FieldBlock`], noting the framing fields on the way.
/// `Ok(None)`: the head is not in the plain layout this path handles; the caller builds a map.
pub(super) fn field_block(
    head: &mut BytesMut,
    spans: &[Span],
) -> Result<Option<(FieldBlock, FramingFields)>, WireError> {
    let mut framing = FramingFields::default();
    let Some(&(first, ..)) = spans.first() else {
        return Ok(Some((FieldBlock::default(), framing)));
    };
    let mut kinds = [Kind::Other; super::MAX_HEADERS];
    if spans.len() > kinds.len() {
        return Ok(None);
    }
    let mut at = first as usize;
    for (i, &(ns, ne, vs, ve)) in spans.iter().enumerate() {
        let (ns, ne, vs, ve) = (ns as usize, ne as usize, vs as usize, ve as usize);
        // One field per line, written `name: value\r\n`, each right after the last.
        if ns != at
            || vs != ne + 2
            || head.get(ne..vs) != Some(b": ")
            || head.get(ve..ve + 2) != Some(b"\r\n")
        {
            return Ok(None);
        }
        at = ve + 2;
        let value = &head[vs..ve];
        let k = kind(&head[ns..ne]);
        match k {
            Kind::ContentLength => framing.note_length(value)?,
            Kind::TransferEncoding => framing.note_transfer_encoding(value),
            // Fields named by `Connection` go too: rare enough to leave to the map.
            Kind::Connection if !framing.note_connection(value) => return Ok(None),
            _ => {}
        }
        kinds[i] = k;
    }
    let mut block = FieldBlock::default();
    // Kept lines move down over the ones cut out; the head only gets shorter.
    let mut to = first as usize;
    for (&(ns, ne, _, ve), &k) in spans.iter().zip(&kinds) {
        match k {
            Kind::Other | Kind::Date => {}
            // The encoder writes the length as it frames the body.
            Kind::ContentLength
            | Kind::TransferEncoding
            | Kind::Connection
            | Kind::HopByHop
            | Kind::Stamped => continue,
        }
        block.has_date |= k == Kind::Date;
        let (ns, ne, end) = (ns as usize, ne as usize, ve as usize + 2);
        if ns != to {
            head.copy_within(ns..end, to);
        }
        head[to..to + (ne - ns)].make_ascii_lowercase();
        to += end - ns;
    }
    // Narrowed in place: no second split, no reference count taken.
    head.truncate(to);
    head.advance(first as usize);
    block.bytes = std::mem::take(head).freeze();
    block.content_length = framing.content_length;
    Ok(Some((block, framing)))
}

#[cfg(test)]
mod tests;
