//! The byte stream under our HTTP/1.1 codec: a TCP socket, or a TCP socket carrying TLS.
//!
//! Both are driven with tokio's readiness API through a shared reference, so that a
//! connection's reader (a request body, lent to another task) and its writer can be held apart.
//! A TLS connection is the rustls state machine taken out of tokio-rustls after the handshake:
//! records are read and written with the socket's non-blocking calls, and the plaintext goes
//! straight into the codec's buffer. That way the mesh's mTLS hops use the same codec as
//! plaintext ones instead of hyper's (a dispatcher, a boxed service future and a flush per
//! message; `benches/NOTES.md` round 13).
//!
//! The rustls state sits behind a mutex that is never contended for long: it is held only
//! inside one non-blocking step, never across a wait.

use std::io::{self, Read, Write};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// A connection's transport.
#[derive(Debug)]
pub(crate) enum Wire {
    Plain(TcpStream),
    Tls(Box<TlsWire>),
}

/// TLS over a TCP socket, after the handshake.
pub(crate) struct TlsWire {
    tcp: TcpStream,
    tls: Mutex<rustls::Connection>,
}

impl std::fmt::Debug for TlsWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWire")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

impl Wire {
    /// TLS over `tcp`, continuing a connection whose handshake is done (records already read
    /// and not yet processed stay in `tls`).
    pub(crate) fn tls(tcp: TcpStream, tls: impl Into<rustls::Connection>) -> Self {
        Wire::Tls(Box::new(TlsWire {
            tcp,
            tls: Mutex::new(tls.into()),
        }))
    }

    /// The TCP socket of a plaintext connection.
    pub(crate) fn into_plain(self) -> Option<TcpStream> {
        match self {
            Wire::Plain(tcp) => Some(tcp),
            Wire::Tls(_) => None,
        }
    }

    /// Reads what the connection has into `buf` (which has spare room); `Ok(0)` is the end of
    /// the stream. No system call while the socket is known not to be readable.
    pub(crate) fn poll_read(&self, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self {
            Wire::Plain(tcp) => poll_read_plain(tcp, buf, cx),
            Wire::Tls(tls) => tls.poll_read(buf, cx),
        }
    }

    /// Writes all of `buf`. No system call while the socket is known not to be writable.
    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        match self {
            Wire::Plain(io) => {
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
            Wire::Tls(tls) => {
                while !buf.is_empty() {
                    let n = std::future::poll_fn(|cx| tls.poll_write(cx, buf)).await?;
                    buf = &buf[n..];
                }
                std::future::poll_fn(|cx| tls.poll_flush(cx)).await
            }
        }
    }

    /// Writes some of `buf`. Over TLS the bytes may be left encrypted in rustls's buffer:
    /// [`Wire::poll_flush`] sends them.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Wire::Plain(tcp) => loop {
                match tcp.try_write(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(tcp.poll_write_ready(cx))?,
                    res => return Poll::Ready(res),
                }
            },
            Wire::Tls(tls) => tls.poll_write(cx, buf),
        }
    }

    /// Sends what [`Wire::poll_write`] left buffered (nothing, over plain TCP).
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Wire::Plain(_) => Poll::Ready(Ok(())),
            Wire::Tls(tls) => tls.poll_flush(cx),
        }
    }

    /// Resolves when the peer closes (or resets) the connection; never, once it has sent more
    /// data (a pipelined request, read after the current exchange). Consumes no data.
    pub(crate) async fn closed(&self) {
        match self {
            Wire::Plain(io) => {
                let mut probe = [0u8; 1];
                match io.peek(&mut probe).await {
                    Ok(0) | Err(_) => {}
                    Ok(_) => std::future::pending().await,
                }
            }
            Wire::Tls(tls) => loop {
                if tls.tcp.readable().await.is_err() {
                    return;
                }
                // The lock is let go before the match: an arm waits.
                let incoming = take_in(&mut tls.lock(), &tls.tcp);
                match incoming {
                    Ok(Incoming::Nothing) => {}
                    Ok(Incoming::Data(_)) => std::future::pending().await,
                    Ok(Incoming::Closed) | Err(_) => return,
                }
            },
        }
    }

    /// True unless the peer closed the idle connection or sent something on it (a server's
    /// late bytes). Costs no system call unless the socket became readable (tokio tracks
    /// readiness). Over TLS, records with no data (session tickets) are taken in on the way.
    pub(crate) fn idle_is_open(&self) -> bool {
        match self {
            Wire::Plain(io) => {
                let mut probe = [0u8; 1];
                matches!(io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Wire::Tls(tls) => matches!(take_in(&mut tls.lock(), &tls.tcp), Ok(Incoming::Nothing)),
        }
    }
}

/// Reads from plain TCP into `buf`.
fn poll_read_plain(io: &TcpStream, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    loop {
        let room = buf.capacity() - buf.len();
        match io.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(io.poll_read_ready(cx))?,
            Ok(n) if n > 0 && n < room => {
                // A short read emptied the socket: forget its readiness now, as nginx does,
                // so the next read waits for the reactor instead of making a system call
                // that only says "would block" (one a message). A peer's close is never
                // forgotten (tokio keeps closed states), and data arriving after the read
                // raises a new edge.
                forget_readable(io);
                return Poll::Ready(Ok(n));
            }
            res => return Poll::Ready(res),
        }
    }
}

fn forget_readable(io: &TcpStream) {
    let _ = io.try_io(Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

/// What taking in the records the socket has brought.
enum Incoming {
    /// No data (maybe records without any, or nothing at all).
    Nothing,
    /// This much plaintext is waiting to be read.
    Data(usize),
    /// The peer closed the connection (with or without `close_notify`).
    Closed,
}

impl TlsWire {
    fn lock(&self) -> MutexGuard<'_, rustls::Connection> {
        self.tls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll_read(&self, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut tls = self.lock();
        loop {
            match take_in(&mut tls, &self.tcp)? {
                Incoming::Data(ready) => {
                    let n = ready.min(buf.capacity() - buf.len()).max(1);
                    let at = buf.len();
                    buf.resize(at + n, 0);
                    let read = tls.reader().read(&mut buf[at..]);
                    buf.truncate(at + *read.as_ref().unwrap_or(&0));
                    return Poll::Ready(read);
                }
                // The end, with or without close_notify, as for plain TCP.
                Incoming::Closed => return Poll::Ready(Ok(0)),
                Incoming::Nothing => {
                    drop(tls);
                    ready!(self.tcp.poll_read_ready(cx))?;
                    tls = self.lock();
                }
            }
        }
    }

    /// Encrypts as much of `buf` as rustls's buffer takes, after sending what was left.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_flush(cx))?;
        let mut tls = self.lock();
        let n = tls.writer().write(buf)?;
        // Sent now if the socket takes it; otherwise by the next write or flush.
        match write_tls(&mut tls, &self.tcp) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut tls = self.lock();
        loop {
            match write_tls(&mut tls, &self.tcp) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(tls);
                    ready!(self.tcp.poll_write_ready(cx))?;
                    tls = self.lock();
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Reads the records the socket has, without waiting, and says what they brought. What rustls
/// owes the peer (an alert, a key update) is sent on the way when the socket takes it.
fn take_in(tls: &mut rustls::Connection, tcp: &TcpStream) -> io::Result<Incoming> {
    loop {
        let state = tls.process_new_packets().map_err(io::Error::other)?;
        match state.plaintext_bytes_to_read() {
            0 if state.peer_has_closed() => return Ok(Incoming::Closed),
            0 => {}
            ready => return Ok(Incoming::Data(ready)),
        }
        if tls.wants_write() {
            let _ = write_tls(tls, tcp);
        }
        let mut from = TryRead { tcp, short: false };
        match tls.read_tls(&mut from) {
            Ok(0) => return Ok(Incoming::Closed),
            // A short read emptied the socket: its readiness is forgotten, as for plain TCP.
            Ok(_) if from.short => forget_readable(tcp),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Incoming::Nothing),
            Err(e) => return Err(e),
        }
    }
}

/// Sends rustls's pending records until none is left (`Ok`) or the socket is full
/// (`WouldBlock`).
fn write_tls(tls: &mut rustls::Connection, tcp: &TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        if tls.write_tls(&mut TryWrite(tcp))? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// The socket's non-blocking read, as `io::Read` for rustls; notes a read shorter than asked
/// for (the socket is empty).
struct TryRead<'a> {
    tcp: &'a TcpStream,
    short: bool,
}

impl Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.try_read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// The socket's non-blocking write, as `io::Write` for rustls (which gathers its records into
/// one vectored write).
struct TryWrite<'a>(&'a TcpStream);

impl Write for TryWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
