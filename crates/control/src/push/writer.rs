//! The write side of a proxy's stream: queued versions become pushes, sent as chunks that
//! share the body's pieces (nothing is rendered or copied per proxy).

use std::pin::Pin;

use futures::Stream;
use tokio::sync::mpsc;
use tonic::Status;

use super::Outgoing;

/// One push: the version and the configuration's JSON as chunks (`len` bytes in all).
#[derive(Debug)]
pub(crate) struct Rendered {
    pub version: String,
    pub chunks: Vec<bytes::Bytes>,
    pub len: usize,
}

/// The pushes of one stream.
pub(crate) type PushStream = Pin<Box<dyn Stream<Item = Result<Rendered, Status>> + Send + 'static>>;

/// Turns queued versions into pushes. Only the newest queued version is sent (the proxy needs
/// the latest configuration, not the history; its ACK settles the older ones).
pub(crate) fn push_stream(rx: mpsc::UnboundedReceiver<Outgoing>) -> PushStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        let mut next = rx.recv().await?;
        while matches!(next, Outgoing::Push(..)) {
            match rx.try_recv() {
                Ok(newer) => next = newer,
                Err(_) => break,
            }
        }
        match next {
            Outgoing::Fail(status) => Some((Err(status), rx)),
            Outgoing::Push(version, body) => {
                let (chunks, len) = body.chunks(version);
                let push = Rendered {
                    version: version.to_string(),
                    chunks,
                    len,
                };
                Some((Ok(push), rx))
            }
        }
    }))
}
