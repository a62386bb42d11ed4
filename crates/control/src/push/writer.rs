//! The write side of a proxy's stream: queued versions become pushes, sent as chunks that
//! share the body's pieces (nothing is rendered or copied per proxy).
//!
//! Pushes in flight are bounded over all streams. Sending 2.3 MB to 1,000 proxies at once
//! shares the machine between all of them, so every proxy finishes late (the measured round
//! took twice as long); a bounded number in flight finishes most proxies early. The transport
//! (hyper's HTTP/2) takes a whole message into its send buffer at once and asks for the next
//! immediately, so "handed to the transport" does not mean "sent": a push is done when the
//! proxy answers it (ACK or NACK), so a permit is held until that answer, the stream's end, or
//! [`ANSWER_TIMEOUT`] for a proxy that does not answer.
//!
//! A stream whose proxy accepts gzip gets gzip bodies (see [`Body::gzip_chunks`]); they are
//! ~30× smaller, so more of them may be in flight (a plain push takes `GZIP_PUSH_SHARE`
//! permits, a gzip push one).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::Status;

use super::body::Body;
use super::delta::delta_json;
use super::{GZIP, GZIP_PUSH_SHARE, Outgoing};

/// One push: the version and the configuration's JSON as chunks (`len` bytes in all),
/// encoded as `encoding` says (`""` plain, `"gzip"`).
#[derive(Debug)]
pub(crate) struct Rendered {
    pub version: String,
    pub chunks: Vec<bytes::Bytes>,
    pub len: usize,
    pub encoding: &'static str,
    /// For a delta, the version it applies over; else empty.
    pub delta_base: String,
}

/// The pushes of one stream.
pub(crate) type PushStream = Pin<Box<dyn Stream<Item = Result<Rendered, Status>> + Send + 'static>>;

/// How long a push may keep its write permit without an answer.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a stream's reader tells its writer: the write permit of the newest push, until the
/// proxy answers it, and whether the proxy said it accepts gzip.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    slot: Mutex<Option<Held>>,
    gzip: AtomicBool,
}

#[derive(Debug)]
struct Held {
    version: u64,
    /// Distinguishes pushes of the same version (never happens) and stale timers.
    generation: u64,
    _permit: OwnedSemaphorePermit,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        // Plain assignments only; a poisoned slot is still consistent.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `permit` for `version` (releasing the previous push's, which a newer one replaces).
    fn hold(self: &Arc<Self>, version: u64, permit: OwnedSemaphorePermit) {
        let generation = {
            let mut slot = self.lock();
            let generation = slot.as_ref().map_or(0, |h| h.generation + 1);
            *slot = Some(Held {
                version,
                generation,
                _permit: permit,
            });
            generation
        };
        let flight = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(ANSWER_TIMEOUT).await;
            if let Some(flight) = flight.upgrade() {
                let mut slot = flight.lock();
                if slot.as_ref().is_some_and(|h| h.generation == generation) {
                    *slot = None;
                }
            }
        });
    }

    /// The proxy answered `version` (ACK or NACK): it has read every push up to it.
    pub fn answered(&self, version: &str) {
        let Ok(version) = version.parse::<u64>() else {
            return;
        };
        let mut slot = self.lock();
        if slot.as_ref().is_some_and(|h| h.version <= version) {
            *slot = None;
        }
    }

    /// The proxy's Hello accepts gzip bodies (set before its first push is queued).
    pub fn accept_gzip(&self) {
        self.gzip.store(true, Ordering::Release);
    }

    fn gzip(&self) -> bool {
        self.gzip.load(Ordering::Acquire)
    }

    /// The stream ended.
    pub fn clear(&self) {
        *self.lock() = None;
    }
}

/// Turns queued versions into pushes. Only the newest queued version is sent (the proxy needs
/// the latest configuration, not the history; its ACK settles the older ones).
pub(crate) fn push_stream(
    rx: mpsc::UnboundedReceiver<Outgoing>,
    writes: Arc<Semaphore>,
    flight: Arc<InFlight>,
) -> PushStream {
    let state = (rx, writes, flight);
    Box::pin(futures::stream::unfold(
        state,
        |(mut rx, writes, flight)| async move {
            let mut next = rx.recv().await?;
            while matches!(next, Outgoing::Push(..)) {
                match rx.try_recv() {
                    Ok(newer) => next = newer,
                    Err(_) => break,
                }
            }
            match next {
                Outgoing::Fail(status) => Some((Err(status), (rx, writes, flight))),
                Outgoing::Push(version, body, base) => {
                    let gzip = flight.gzip();
                    let push = match base {
                        Some(base) => render(&body, version, gzip, Some(&base)),
                        // A whole push may be the first to need a shared piece's bytes or gzip
                        // member (MBs to join and compress, once per snapshot): not on an async
                        // worker. Whole pushes are rare (a proxy connecting).
                        None => {
                            let whole = body.clone();
                            tokio::task::spawn_blocking(move || render(&whole, version, gzip, None))
                                .await
                                .unwrap_or_else(|_| render(&body, version, gzip, None))
                        }
                    };
                    // A plain push takes a whole share of the permits, a gzip one (~30× smaller)
                    // one permit, and a delta (a few KB) none: bounding those only made 1,000
                    // proxies wait for each other's ACK round trips. A closed semaphore never
                    // happens (it lives as long as the server); then the push just goes.
                    let cost = if !push.delta_base.is_empty() {
                        0
                    } else if gzip {
                        1
                    } else {
                        GZIP_PUSH_SHARE
                    };
                    if cost > 0
                        && let Ok(permit) = writes.clone().acquire_many_owned(cost).await
                    {
                        flight.hold(version, permit);
                    }
                    Some((Ok(push), (rx, writes, flight)))
                }
            }
        },
    ))
}

/// `body` as `version`'s push: a delta over `base` (the version the proxy runs) when one was
/// asked for and is worth it, else the whole body, gzip or plain.
fn render(body: &Body, version: u64, gzip: bool, base: Option<&(u64, Arc<Body>)>) -> Rendered {
    if let Some((base_version, base)) = base
        && let Some(json) = delta_json(body, base)
    {
        return Rendered {
            version: version.to_string(),
            len: json.len(),
            chunks: vec![bytes::Bytes::from(json)],
            encoding: "",
            delta_base: base_version.to_string(),
        };
    }
    let ((chunks, len), encoding) = if gzip {
        (body.gzip_chunks(version), GZIP)
    } else {
        (body.chunks(version), "")
    };
    Rendered {
        version: version.to_string(),
        chunks,
        len,
        encoding,
        delta_base: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn permit(writes: &Arc<Semaphore>) -> OwnedSemaphorePermit {
        writes.clone().acquire_owned().await.expect("open semaphore")
    }

    #[tokio::test]
    async fn a_permit_is_held_until_the_proxy_answers_that_version_or_a_newer_one() {
        let writes = Arc::new(Semaphore::new(2));
        let flight = Arc::new(InFlight::default());
        flight.hold(5, permit(&writes).await);
        assert_eq!(writes.available_permits(), 1);
        flight.answered("4");
        flight.answered("not a version");
        assert_eq!(writes.available_permits(), 1, "older or garbled answers keep it");
        flight.answered("6");
        assert_eq!(writes.available_permits(), 2);

        flight.hold(7, permit(&writes).await);
        flight.hold(8, permit(&writes).await);
        assert_eq!(
            writes.available_permits(),
            1,
            "a newer push replaces the older's permit"
        );
        flight.clear();
        assert_eq!(writes.available_permits(), 2, "the stream's end releases it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_proxy_loses_its_permit_after_the_timeout() {
        let writes = Arc::new(Semaphore::new(1));
        let flight = Arc::new(InFlight::default());
        flight.hold(1, permit(&writes).await);
        assert_eq!(writes.available_permits(), 0);
        // Paused time: the acquire completes exactly when the timer has fired.
        let again = tokio::time::timeout(ANSWER_TIMEOUT * 2, permit(&writes)).await;
        assert!(again.is_ok(), "the permit came back after ANSWER_TIMEOUT");
    }
}
