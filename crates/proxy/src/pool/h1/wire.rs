//! HTTP/1.1 on the wire, toward upstreams: the request head encoded into a reused buffer, the
//! response head parsed with `httparse` out of a reused read buffer, and response bodies framed
//! as RFC 9112 §6.3 says. Pure functions over buffers, so they are tested without sockets.
//!
//! Hyper's client did this work behind a dispatch channel and a fresh 8 KB read buffer per
//! response (its parsed headers kept sharing the old one); together ~12,800 instructions of a
//! ~36,000-instruction proxied request (`benches/NOTES.md`, round 3).

use bytes::{Buf, Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version, header};
use hyper::body::SizeHint;

/// More header fields than this in one response head is an error (hyper's default is 100).
pub(super) const MAX_HEADERS: usize = 100;
/// A response head (or a chunk-size line, or a trailer section) longer than this is an error.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// What went wrong on an upstream connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The peer closed before the message ended.
    #[error("upstream closed the connection before the end of the response")]
    Closed,
    /// A response head that is not HTTP/1.x.
    #[error("malformed upstream response head: {0}")]
    Head(&'static str),
    /// A response body that breaks its own framing.
    #[error("malformed upstream response body: {0}")]
    Body(&'static str),
    /// The socket failed.
    #[error("upstream connection: {0}")]
    Io(#[from] std::io::Error),
    /// The request body, streamed from downstream, failed (the client went away).
    #[error("request body: {0}")]
    RequestBody(String),
}

/// How the rest of a response body is delimited, and how far the reader got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`, at this point of a chunk.
    Chunked(Chunk),
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
    /// Nothing more (a body read to its end, or one that never had any).
    Done,
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero-size) chunk: the trailer section and its empty line.
    Trailers,
}

/// One step of body decoding.
#[derive(Debug, PartialEq)]
pub(super) enum Decoded {
    /// Body bytes (never empty).
    Data(Bytes),
    /// Trailer fields of a chunked body.
    Trailers(HeaderMap),
    /// The body ended.
    End,
    /// The buffer holds no complete step: read more.
    More,
}

impl Framing {
    /// Takes the next step of the body out of `buf`. Data is split off the buffer, not copied.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            match *self {
                Framing::Done | Framing::Length(0) => {
                    *self = Framing::Done;
                    return Ok(Decoded::End);
                }
                Framing::Length(n) | Framing::Chunked(Chunk::Data(n)) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let take = n.min(buf.len() as u64);
                    let left = n - take;
                    *self = match *self {
                        Framing::Length(_) => Framing::Length(left),
                        _ if left == 0 => Framing::Chunked(Chunk::DataEnd),
                        _ => Framing::Chunked(Chunk::Data(left)),
                    };
                    // `take` ≤ buf.len(), a usize.
                    return Ok(Decoded::Data(buf.split_to(take as usize).freeze()));
                }
                Framing::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                Framing::Chunked(Chunk::Size) => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        *self = if size == 0 {
                            Framing::Chunked(Chunk::Trailers)
                        } else {
                            Framing::Chunked(Chunk::Data(size))
                        };
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(Decoded::More),
                    Ok(httparse::Status::Partial) => return Err(WireError::Body("chunk size line too long")),
                    Err(_) => return Err(WireError::Body("invalid chunk size line")),
                },
                Framing::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(Decoded::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::Body("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailers) => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((used, fields))) => {
                            let mut trailers = HeaderMap::new();
                            for f in fields {
                                // A trailer field we cannot represent is dropped, not fatal.
                                if let (Ok(name), Ok(value)) = (
                                    HeaderName::from_bytes(f.name.as_bytes()),
                                    HeaderValue::from_bytes(f.value),
                                ) {
                                    trailers.append(name, value);
                                }
                            }
                            buf.advance(used);
                            *self = Framing::Done;
                            if !trailers.is_empty() {
                                return Ok(Decoded::Trailers(trailers));
                            }
                        }
                        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(Decoded::More),
                        Ok(httparse::Status::Partial) => {
                            return Err(WireError::Body("trailer section too long"));
                        }
                        Err(_) => return Err(WireError::Body("invalid trailer section")),
                    }
                }
            }
        }
    }

    /// The server closed the connection: the end of a close-delimited body, an error otherwise.
    pub(super) fn at_eof(&mut self) -> Result<(), WireError> {
        match *self {
            Framing::UntilClose | Framing::Done | Framing::Length(0) => {
                *self = Framing::Done;
                Ok(())
            }
            _ => Err(WireError::Closed),
        }
    }

    /// True when the body has nothing more to give.
    pub(super) fn is_end(&self) -> bool {
        matches!(self, Framing::Done | Framing::Length(0))
    }

    /// What is known of the remaining length.
    pub(super) fn size_hint(&self) -> SizeHint {
        match *self {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// A parsed response head and what it says about the body and the connection.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) response: Response<()>,
    pub(super) framing: Framing,
    /// The server lets the connection carry another request after this response.
    pub(super) keep_alive: bool,
}

/// Header fields the framing depends on, gathered while the head is parsed.
#[derive(Default)]
struct FramingFields {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked_last: bool,
    close: bool,
    keep_alive: bool,
}

/// Where one header field's name and value sit in the read buffer.
type Span = (u32, u32, u32, u32);

/// What the parser saw of a complete head, by offsets: the header values are cut out of the
/// head once it is split off the read buffer, which the parser's borrow forbids while it lives.
struct Scanned<const N: usize> {
    len: usize,
    code: u16,
    version: u8,
    count: usize,
    spans: [Span; N],
}

/// Header fields looked for on the stack first; a head with more is parsed again with room for
/// [`MAX_HEADERS`]. Small, because the span table is initialised on every parse.
const INLINE_HEADERS: usize = 24;

fn scan<const N: usize>(buf: &[u8]) -> Result<Option<Scanned<N>>, httparse::Error> {
    // Uninitialised: zeroing room for fields that are not there cost ~1,600 instructions a
    // response with room for 100.
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; N];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut fields,
    )? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let mut spans = [(0, 0, 0, 0); N];
    let base = buf.as_ptr() as usize;
    // Offsets fit: a head longer than MAX_HEAD is refused before its spans are used.
    let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
    for (span, f) in spans.iter_mut().zip(resp.headers.iter()) {
        let name = offset(f.name.as_bytes());
        let value = offset(f.value);
        *span = (
            name,
            name + f.name.len() as u32,
            value,
            value + f.value.len() as u32,
        );
    }
    Ok(Some(Scanned {
        len,
        code: resp.code.unwrap_or(0),
        version: resp.version.unwrap_or(1),
        count: resp.headers.len(),
        spans,
    }))
}

/// Parses a response head at the start of `buf` and splits it off. `None`: the head is not
/// complete yet. Header values share the head's bytes (one buffer, no copy per field).
pub(super) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, WireError> {
    match scan::<INLINE_HEADERS>(buf) {
        Err(httparse::Error::TooManyHeaders) => build_head(buf, method, scan::<MAX_HEADERS>(buf)),
        scanned => build_head(buf, method, scanned),
    }
}

fn build_head<const N: usize>(
    buf: &mut BytesMut,
    method: &Method,
    scanned: Result<Option<Scanned<N>>, httparse::Error>,
) -> Result<Option<Head>, WireError> {
    let Scanned {
        len,
        code,
        version,
        count,
        spans,
    } = match scanned {
        Ok(Some(s)) if s.len <= MAX_HEAD => s,
        Ok(Some(_)) => return Err(WireError::Head("response head too long")),
        Ok(None) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(None) => return Err(WireError::Head("response head too long")),
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::Head("too many header fields")),
        Err(_) => return Err(WireError::Head("not an HTTP/1.x response")),
    };
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| WireError::Head("invalid status code"))?;
    let mut headers = HeaderMap::with_capacity(count);
    let mut framing_fields = FramingFields::default();
    for &(ns, ne, vs, ve) in &spans[..count] {
        let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
            .map_err(|_| WireError::Head("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
            .map_err(|_| WireError::Head("invalid header value"))?;
        framing_fields.note(&name, &value)?;
        headers.append(name, value);
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    *response.headers_mut() = headers;

    let f = framing_fields;
    let no_body = *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Done
    } else if f.transfer_encoding {
        if f.chunked_last {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = f.content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let persistent = if version == 0 { f.keep_alive } else { !f.close };
    // RFC 9112 §6.3: a message with both Transfer-Encoding and Content-Length may be an attempt
    // at request smuggling; the connection is closed after it.
    let ambiguous = f.transfer_encoding && f.content_length.is_some();
    Ok(Some(Head {
        response,
        framing,
        keep_alive: persistent && !ambiguous && framing != Framing::UntilClose,
    }))
}

impl FramingFields {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), WireError> {
        if name == header::CONTENT_LENGTH {
            // `Content-Length: 5, 5` and repeated equal fields are one length; anything else is
            // not a length.
            for part in value.as_bytes().split(|b| *b == b',') {
                let n = parse_decimal(trim(part)).ok_or(WireError::Head("invalid content-length"))?;
                if self.content_length.is_some_and(|m| m != n) {
                    return Err(WireError::Head("conflicting content-length fields"));
                }
                self.content_length = Some(n);
            }
        } else if name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
            // Only the last coding decides whether the body is chunked.
            if let Some(last) = value
                .as_bytes()
                .split(|b| *b == b',')
                .map(trim)
                .rfind(|c| !c.is_empty())
            {
                self.chunked_last = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|b| *b == b',').map(trim) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// A non-empty run of ASCII digits that fits a `u64`.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Methods whose requests carry no body by convention: without one, no `Content-Length: 0` is
/// written for them (as hyper's client does).
fn bodiless(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE | Method::CONNECT
    )
}

/// Writes the request line and header section into `out`. `length` is the body's exact length
/// when known (then `Content-Length`), else the body is sent chunked; the request's own
/// `Content-Length` and `Transfer-Encoding` fields are replaced by that. Returns true for
/// chunked.
pub(super) fn encode_head(parts: &Parts, length: Option<u64>, out: &mut Vec<u8>) -> bool {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let chunked = match length {
        Some(0) if !had_length && bodiless(&parts.method) => false,
        Some(n) => {
            out.extend_from_slice(b"content-length: ");
            let mut digits = [0u8; 20];
            out.extend_from_slice(render_decimal(n, &mut digits));
            out.extend_from_slice(b"\r\n");
            false
        }
        None => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            true
        }
    };
    out.extend_from_slice(b"\r\n");
    chunked
}

fn render_decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
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

/// One chunk of a chunked request body: size line, data, CRLF, in one buffer.
pub(super) fn encode_chunk(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 20);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The end of a chunked request body (no trailers).
pub(super) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests;
