//! The server's side: request heads in, response heads out.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version, header};

use super::block::FieldBlock;
use super::fields::{self, FramingFields, INLINE_HEADERS, Span};
use super::framing::{Chunk, Framing};
use super::raw::{self, RawFields};
use super::{MAX_HEAD, MAX_HEADERS, WireError};

/// A parsed request head and what it says about the body and the connection.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// Its header map is empty when the fields are in `raw`.
    pub(crate) request: Request<()>,
    /// The fields as they came, when the head allowed it (see [`RawFields`]).
    pub(crate) raw: Option<RawFields>,
    pub(crate) framing: Framing,
    /// The client lets the connection carry another request after this one.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on a request with a body: the client may wait for a 100 first.
    pub(crate) expect_continue: bool,
}

/// What the parser saw of a complete request head, by offsets; its fields' offsets are in the
/// caller's span table.
struct Scanned {
    len: usize,
    method: (u32, u32),
    target: (u32, u32),
    version: u8,
    count: usize,
}

fn scan<const N: usize>(buf: &[u8], spans: &mut [Span; N]) -> Result<Option<Scanned>, WireError> {
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; N];
    let mut req = httparse::Request::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut fields);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => fields::check_scan(Some(len), buf.len(), None)?,
        Ok(httparse::Status::Partial) => fields::check_scan(None, buf.len(), None)?,
        Err(e) => fields::check_scan(None, buf.len(), Some(e))?,
    };
    let Some(len) = len else { return Ok(None) };
    let base = buf.as_ptr() as usize;
    let span = |s: Option<&str>| {
        let s = s.unwrap_or_default();
        // Within the head, which is at most MAX_HEAD long.
        let start = (s.as_ptr() as usize).saturating_sub(base) as u32;
        (start, start + s.len() as u32)
    };
    fields::record_spans(buf, req.headers, spans);
    Ok(Some(Scanned {
        len,
        method: span(req.method),
        target: span(req.path),
        version: req.version.unwrap_or(1),
        count: req.headers.len(),
    }))
}

/// Parses a request head at the start of `buf` and splits it off. `None`: the head is not
/// complete yet. Errors are the client's: 400, or 431 for [`WireError::TooLarge`]. The header
/// map is built in `spare` when it holds one (see [`fields::header_map`]).
pub(crate) fn parse_request_head(
    buf: &mut BytesMut,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<RequestHead>, WireError> {
    let mut spans = [(0, 0, 0, 0); INLINE_HEADERS];
    match scan(buf, &mut spans) {
        Err(WireError::TooLarge(_)) if buf.len() <= MAX_HEAD => {
            let mut spans = [(0, 0, 0, 0); MAX_HEADERS];
            let scanned = scan(buf, &mut spans)?;
            build(buf, scanned, &spans, spare)
        }
        scanned => build(buf, scanned?, &spans, spare),
    }
}

fn build(
    buf: &mut BytesMut,
    scanned: Option<Scanned>,
    spans: &[Span],
    spare: &mut Option<HeaderMap>,
) -> Result<Option<RequestHead>, WireError> {
    let Some(s) = scanned else { return Ok(None) };
    let head = buf.split_to(s.len);
    let method = Method::from_bytes(&head[s.method.0 as usize..s.method.1 as usize])
        .map_err(|_| WireError::Head("invalid method"))?;
    let spans = &spans[..s.count];
    let (head, raw) = match raw::request_fields(head, spans) {
        Ok(raw) => (raw.head.clone(), Some(raw)),
        Err(head) => (head.freeze(), None),
    };
    let uri = Uri::from_maybe_shared(head.slice(s.target.0 as usize..s.target.1 as usize))
        .map_err(|_| WireError::Head("invalid request target"))?;
    let (headers, f) = match &raw {
        // Of the fields the framing depends on, only a plain `Content-Length` keeps the raw
        // fields; the others take the map path. The map is for what the proxy may add, nearly
        // never used: one that allocates nothing, and the spare stays for a later head that
        // needs one.
        Some(r) => (
            HeaderMap::new(),
            FramingFields {
                content_length: r.content_length(),
                ..FramingFields::default()
            },
        ),
        None => fields::header_map(&head, spans, spare)?,
    };
    let framing = if f.transfer_encoding {
        // RFC 9112 §6.1: a request whose last coding is not chunked cannot be delimited, and one
        // with Content-Length too may be a smuggling attempt; Envoy refuses both.
        if f.content_length.is_some() {
            return Err(WireError::Head("both transfer-encoding and content-length"));
        }
        if !f.chunked_last {
            return Err(WireError::Head("transfer-encoding does not end in chunked"));
        }
        Framing::Chunked(Chunk::Size)
    } else {
        match f.content_length {
            Some(n) if n > 0 => Framing::Length(n),
            _ => Framing::Done,
        }
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = if s.version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    *request.headers_mut() = headers;
    Ok(Some(RequestHead {
        request,
        raw,
        keep_alive: f.persistent(s.version),
        expect_continue: f.expect_continue && s.version == 1 && !framing.is_end(),
        framing,
    }))
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body bytes at all (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length` of this many bytes.
    Length(u64),
    /// Chunked (an HTTP/1.1 client, length unknown).
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, length unknown).
    UntilClose,
}

/// What [`encode_response_head`] needs to know about the exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseFacts {
    pub(crate) status: StatusCode,
    /// The request was HEAD: the head describes a body that is not sent.
    pub(crate) head_request: bool,
    /// The client spoke HTTP/1.0.
    pub(crate) http10: bool,
    /// The connection stays open after this response (the client and the proxy both agree).
    pub(crate) keep_alive: bool,
    /// The body's exact length, when known.
    pub(crate) body_length: Option<u64>,
}

/// Writes the status line and header section into `out`. The response's own `Content-Length`
/// (when it is a valid length) is kept, or the body's known length used, else the body goes
/// chunked (HTTP/1.1) or until the close (HTTP/1.0); `Transfer-Encoding` is always ours. Adds
/// `Date` when missing, and `Connection` when the connection closes (or an HTTP/1.0 client keeps
/// it). The `replace` fields are written in place of the map's fields of the same names (the
/// proxy's `server`, say). An upstream's fields kept as a `block` are written first, as they
/// are (the block has none of the fields the encoder writes itself). Returns how the body is
/// framed, and whether the connection may stay open.
pub(crate) fn encode_response_head<'a>(
    facts: ResponseFacts,
    block: Option<&FieldBlock>,
    headers: &HeaderMap,
    replace: impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + Clone,
    out: &mut Vec<u8>,
) -> (BodyFraming, bool) {
    let status = facts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut length = None;
    let mut has_date = false;
    if let Some(block) = block {
        out.extend_from_slice(&block.bytes);
        length = block.content_length;
        has_date = block.has_date;
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            if let Some(n) = fields::parse_decimal(value.as_bytes().trim_ascii()) {
                length = Some(n);
            }
            continue;
        }
        if name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || replace.clone().any(|(r, _)| r == name)
        {
            continue;
        }
        has_date |= name == header::DATE;
        fields::push_field(name, value, out);
    }
    for (name, value) in replace {
        has_date |= name == header::DATE;
        fields::push_field(name, value, out);
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        push_date(out);
        out.extend_from_slice(b"\r\n");
    }
    let no_content = status.is_informational() || status == StatusCode::NO_CONTENT;
    let length = if no_content {
        None
    } else {
        length.or(facts.body_length)
    };
    let mut keep_alive = facts.keep_alive;
    let framing = if no_content || status == StatusCode::NOT_MODIFIED || facts.head_request {
        // A HEAD response describes the body it would have had, length included.
        if let (Some(n), false) = (length, no_content) {
            push_length(n, out);
        }
        BodyFraming::None
    } else if let Some(n) = length {
        push_length(n, out);
        BodyFraming::Length(n)
    } else if facts.http10 {
        keep_alive = false;
        BodyFraming::UntilClose
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        BodyFraming::Chunked
    };
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if facts.http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (framing, keep_alive)
}

fn push_length(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(fields::render_decimal(n, &mut [0; 20]));
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value, rendered once per second per thread (as hyper caches it).
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn push_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let rendered = httpdate::fmt_http_date(now);
            if rendered.len() != text.len() {
                // Not a four-digit year: not cached.
                out.extend_from_slice(rendered.as_bytes());
                return;
            }
            text.copy_from_slice(rendered.as_bytes());
            *at = secs;
        }
        out.extend_from_slice(&text[..]);
    });
}
