//! HTTP/1.1 spoken by hand, in both directions: heads parsed with `httparse` out of a reused read
//! buffer (header values share its bytes), heads encoded into a reused write buffer, bodies
//! framed as RFC 9112 says. Pure functions over buffers, tested without sockets; the connections
//! that use them are `pool::h1` (upstream) and `listener::h1` (downstream).
//!
//! Hyper did this work on both sides before, behind a dispatch channel (client), a boxed service
//! future (server) and a fresh 8 KB read buffer per message (its parsed headers kept sharing the
//! previous one): ~25,000 of a ~36,000-instruction proxied request (`benches/NOTES.md`, round 3).
//! h2c stays with hyper.

pub(crate) mod block;
pub(crate) mod client;
mod fields;
pub(crate) mod framing;
pub(crate) mod io;
pub(crate) mod raw;
pub(crate) mod server;
pub(crate) mod wire;

pub(crate) use fields::recycle as recycle_header_map;

/// More header fields than this in one head is an error (hyper's default is 100).
pub(crate) const MAX_HEADERS: usize = 100;
/// A head (or a chunk-size line, or a trailer section) longer than this is an error.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// What went wrong reading or writing HTTP/1.1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The peer closed before the message ended.
    #[error("the peer closed the connection before the end of the message")]
    Closed,
    /// A head that is not HTTP/1.x, or breaks its rules.
    #[error("malformed message head: {0}")]
    Head(&'static str),
    /// A head over the size or field-count limits (431 for a request).
    #[error("message head too large: {0}")]
    TooLarge(&'static str),
    /// A body that breaks its own framing.
    #[error("malformed message body: {0}")]
    Body(&'static str),
    /// The socket failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The request body, streamed from downstream, failed (the client went away).
    #[error("request body: {0}")]
    RequestBody(String),
}

#[cfg(test)]
mod tests;
