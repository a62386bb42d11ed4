//! Reading messages off a connection ([`Wire`]) into a reused buffer.

use std::io;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::Frame;

use super::WireError;
use super::framing::{Decoded, Framing};
use super::wire::Wire;

/// Each read asks for at least this much room.
const READ_SIZE: usize = 8 * 1024;

/// What has been read from a connection and not consumed yet, and where the body being read
/// stands. Body bytes are split off the buffer and handed on; once those are dropped, the
/// buffer is reused without a new allocation.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) buf: BytesMut,
    pub(crate) framing: Framing,
}

impl Inbound {
    pub(crate) fn new() -> Self {
        Inbound {
            buf: BytesMut::new(),
            framing: Framing::Done,
        }
    }

    /// Reads what the connection has; `Ok(0)` is the end of the stream. No system call while
    /// the socket is known not to be readable.
    pub(crate) fn poll_fill(&mut self, io: &Wire, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 2 {
            self.buf.reserve(READ_SIZE);
        }
        io.poll_read(&mut self.buf, cx)
    }

    /// Reads more, waiting until there is something (or the end).
    pub(crate) async fn fill(&mut self, io: &Wire) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(io, cx)).await
    }

    /// The next piece of the body; `None` at its end. The end of the stream ends a
    /// close-delimited body and is an error for any other.
    pub(crate) fn poll_body(
        &mut self,
        io: &Wire,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        loop {
            match self.framing.decode(&mut self.buf) {
                Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Decoded::Trailers(t)) => return Poll::Ready(Some(Ok(Frame::trailers(t)))),
                Ok(Decoded::End) => return Poll::Ready(None),
                Ok(Decoded::More) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            match ready!(self.poll_fill(io, cx)) {
                Ok(0) => {
                    return match self.framing.at_eof() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e))),
                    };
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
        }
    }
}
