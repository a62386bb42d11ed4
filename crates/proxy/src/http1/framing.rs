//! Message bodies: how they are delimited (RFC 9112 §6), decoded out of a read buffer without
//! copying, and chunk-encoded.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::SizeHint;

use super::{MAX_HEAD, MAX_HEADERS, WireError};

/// How the rest of a message body is delimited, and how far the reader got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
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
pub(crate) enum Chunk {
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
pub(crate) enum Decoded {
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
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
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
    pub(crate) fn at_eof(&mut self) -> Result<(), WireError> {
        match *self {
            Framing::UntilClose | Framing::Done | Framing::Length(0) => {
                *self = Framing::Done;
                Ok(())
            }
            _ => Err(WireError::Closed),
        }
    }

    /// True when the body has nothing more to give.
    pub(crate) fn is_end(&self) -> bool {
        matches!(self, Framing::Done | Framing::Length(0))
    }

    /// What is known of the remaining length.
    pub(crate) fn size_hint(&self) -> SizeHint {
        match *self {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// One chunk of a chunked body: size line, data, CRLF, in one buffer.
pub(crate) fn encode_chunk(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 20);
    push_chunk(data, &mut out);
    Bytes::from(out)
}

/// Appends one chunk (size line, data, CRLF) to `out`.
pub(crate) fn push_chunk(data: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = data.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked body (no trailers).
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
