//! Reading messages off a socket into a reused buffer, and writing whole buffers, with tokio's
//! readiness API (`&TcpStream`), so a connection's reader and writer can be held apart.

use std::io;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::Frame;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::WireError;
use super::framing::{Decoded, Framing};

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

    /// Reads what the socket has; `Ok(0)` is the end of the stream. No system call while the
    /// socket is known not to be readable.
    pub(crate) fn poll_fill(&mut self, io: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 2 {
            self.buf.reserve(READ_SIZE);
        }
        loop {
            let room = self.buf.capacity() - self.buf.len();
            match io.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(io.poll_read_ready(cx))?,
                Ok(n) if n > 0 && n < room => {
                    // A short read emptied the socket: forget its readiness now, as nginx does,
                    // so the next read waits for the reactor instead of making a system call
                    // that only says "would block" (one a message). A peer's close is never
                    // forgotten (tokio keeps closed states), and data arriving after the read
                    // raises a new edge.
                    let _ = io.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                    return Poll::Ready(Ok(n));
                }
                res => return Poll::Ready(res),
            }
        }
    }

    /// Reads more, waiting until there is something (or the end).
    pub(crate) async fn fill(&mut self, io: &TcpStream) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(io, cx)).await
    }

    /// The next piece of the body; `None` at its end. The end of the stream ends a
    /// close-delimited body and is an error for any other.
    pub(crate) fn poll_body(
        &mut self,
        io: &TcpStream,
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

/// Resolves when the peer closes (or resets) the connection; never, once it has sent more
/// bytes (a pipelined request, read after the current exchange). Peeks: consumes nothing.
pub(crate) async fn closed(io: &TcpStream) {
    let mut probe = [0u8; 1];
    match io.peek(&mut probe).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Writes all of `buf`. No system call while the socket is known not to be writable.
pub(crate) async fn write_all(io: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match io.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
