//! The client's side: request heads out, response heads in.

use bytes::BytesMut;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};

use super::block::{self, FieldBlock};
use super::fields::{self, INLINE_HEADERS, Span};
use super::framing::{Chunk, Framing};
use super::raw::RawFields;
use super::{MAX_HEADERS, WireError};

/// A parsed response head and what it says about the body and the connection.
#[derive(Debug)]
pub(crate) struct Head {
    /// Its header map is empty when the fields came as a [`FieldBlock`].
    pub(crate) response: Response<()>,
    /// The fields as the downstream HTTP/1.1 encoder writes them, when asked for and the head
    /// allowed it.
    pub(crate) block: Option<FieldBlock>,
    pub(crate) framing: Framing,
    /// The server lets the connection carry another request after this response.
    pub(crate) keep_alive: bool,
}

/// What the parser saw of a complete response head; its fields' offsets are in the caller's
/// span table.
struct Scanned {
    len: usize,
    code: u16,
    version: u8,
    count: usize,
}

fn scan<const N: usize>(buf: &[u8], spans: &mut [Span; N]) -> Result<Option<Scanned>, WireError> {
    // Uninitialised: zeroing room for fields that are not there cost ~1,600 instructions a
    // response with room for 100.
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; N];
    let mut resp = httparse::Response::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut fields);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => fields::check_scan(Some(len), buf.len(), None)?,
        Ok(httparse::Status::Partial) => fields::check_scan(None, buf.len(), None)?,
        Err(e) => fields::check_scan(None, buf.len(), Some(e))?,
    };
    let Some(len) = len else { return Ok(None) };
    fields::record_spans(buf, resp.headers, spans);
    Ok(Some(Scanned {
        len,
        code: resp.code.unwrap_or(0),
        version: resp.version.unwrap_or(1),
        count: resp.headers.len(),
    }))
}

/// Parses a response head at the start of `buf` and splits it off. `None`: the head is not
/// complete yet. `method` is the request's (a response to HEAD has no body). With `as_block`
/// the fields come as a [`FieldBlock`] when the head allows it (the caller writes them to an
/// HTTP/1.1 client unchanged), else in the response's map.
pub(crate) fn parse_response_head(
    buf: &mut BytesMut,
    method: &Method,
    as_block: bool,
) -> Result<Option<Head>, WireError> {
    let mut spans = [(0, 0, 0, 0); INLINE_HEADERS];
    match scan(buf, &mut spans) {
        Err(WireError::TooLarge(_)) if buf.len() <= super::MAX_HEAD => {
            let mut spans = [(0, 0, 0, 0); MAX_HEADERS];
            let scanned = scan(buf, &mut spans)?;
            build(buf, method, scanned, &spans, as_block)
        }
        scanned => build(buf, method, scanned?, &spans, as_block),
    }
}

fn build(
    buf: &mut BytesMut,
    method: &Method,
    scanned: Option<Scanned>,
    spans: &[Span],
    as_block: bool,
) -> Result<Option<Head>, WireError> {
    let Some(s) = scanned else { return Ok(None) };
    let mut head = buf.split_to(s.len);
    let status = StatusCode::from_u16(s.code).map_err(|_| WireError::Head("invalid status code"))?;
    let spans = &spans[..s.count];
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = if s.version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let (block, f) = match as_block
        .then(|| block::field_block(&mut head, spans))
        .transpose()?
    {
        Some(Some((block, f))) => (Some(block), f),
        _ => {
            let (headers, f) = fields::header_map(&head.freeze(), spans, &mut None)?;
            *response.headers_mut() = headers;
            (None, f)
        }
    };

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
    // RFC 9112 §6.3: a message with both Transfer-Encoding and Content-Length may be an attempt
    // at request smuggling; the connection is closed after it.
    let ambiguous = f.transfer_encoding && f.content_length.is_some();
    Ok(Some(Head {
        response,
        block,
        framing,
        keep_alive: f.persistent(s.version) && !ambiguous && framing != Framing::UntilClose,
    }))
}

/// A request head to write, borrowed from where the request path keeps it: a try, or a retry,
/// costs no copy of the header map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    /// Origin-form target.
    pub(crate) path: &'a PathAndQuery,
    pub(crate) headers: &'a HeaderMap,
    /// The client's fields as they came (and the proxy's request id), written before
    /// `headers`, which is then empty.
    pub(crate) raw: Option<&'a RawFields>,
    /// Written in place of the map's field of the same name (a retry's attempt count).
    pub(crate) replace: Option<(&'a HeaderName, &'a HeaderValue)>,
    /// Written when the map has no field of that name (`x-forwarded-proto`): the encoder sees
    /// every name anyway, where a lookup in the map hashes one.
    pub(crate) default: Option<(&'a HeaderName, &'a HeaderValue)>,
    /// The response's fields may come back as a [`FieldBlock`]: they go to an HTTP/1.1 client
    /// with nothing to edit on the way.
    pub(crate) block: bool,
}

impl RequestHead<'_> {
    /// An owned request with this head, for the clients that take one (hyper's).
    pub(crate) fn to_request<B>(self, body: B) -> Request<B> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = Uri::from(self.path.clone());
        *req.headers_mut() = match self.raw {
            Some(raw) => raw.clone().into_map(self.headers.clone()),
            None => self.headers.clone(),
        };
        if let Some((name, value)) = self.replace {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        if let Some((name, value)) = self.default {
            req.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
        req
    }
}

/// Methods whose requests carry no body by convention: without one, no `Content-Length: 0` is
/// written for them (as hyper's client does).
fn bodiless(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE | Method::CONNECT
    )
}

/// Writes the request line and header section into `out`, with `host` when the head has no
/// Host. `length` is the body's exact length when known (then `Content-Length`), else the body
/// is sent chunked; the head's own `Content-Length` and `Transfer-Encoding` fields are replaced
/// by that. Returns true for chunked.
pub(crate) fn encode_request_head(
    head: RequestHead<'_>,
    host: &str,
    length: Option<u64>,
    out: &mut Vec<u8>,
) -> bool {
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    let mut had_host = false;
    let mut had_default = false;
    if let Some(raw) = head.raw {
        // None of the fields the loop below skips is among them but `Content-Length`, which is
        // left out as the one it replaces is (`http1::raw`).
        raw.write_upstream(head.replace.map(|(r, _)| r), out);
        had_length = raw.content_length().is_some();
        if let Some(id) = raw.request_id() {
            out.extend_from_slice(b"x-request-id: ");
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        had_host = raw.contains(&header::HOST);
        had_default = head.default.is_some_and(|(d, _)| raw.contains(d));
    }
    for (name, value) in head.headers {
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::TRANSFER_ENCODING || head.replace.is_some_and(|(r, _)| r == name) {
            continue;
        }
        had_host |= name == header::HOST;
        had_default |= head.default.is_some_and(|(d, _)| d == name);
        fields::push_field(name, value, out);
    }
    if let Some((name, value)) = head.replace {
        fields::push_field(name, value, out);
    }
    if let (Some((name, value)), false) = (head.default, had_default) {
        fields::push_field(name, value, out);
    }
    if !had_host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let chunked = match length {
        Some(0) if !had_length && bodiless(head.method) => false,
        Some(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(fields::render_decimal(n, &mut [0; 20]));
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
