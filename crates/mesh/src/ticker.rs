//! A periodic tick that is not a timer in tokio's wheel.
//!
//! Why: any pending timer in tokio's wheel makes every wake-up of a worker compute a park
//! timeout, read the clock and process the wheel: ~220 instructions a wake-up, ~430 a proxied
//! request (two wake-ups), measured with callgrind (crates/proxy/benches/NOTES.md, rounds 7 and
//! 9). A request arms no timer unless its route has a timeout or a fault delay, so a process's
//! periodic housekeeping (the proxy's idle-connection sweep, a supervised child's look at its
//! parent) would be the only timers left. On Linux a [`Ticker`] is a `timerfd` registered with
//! the I/O driver instead: a readiness event per period, nothing in between. Elsewhere it is
//! tokio's interval. A thread of its own was measured too and costs more (glibc's
//! multi-threaded system-call wrappers).

pub use imp::Ticker;

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A periodic `timerfd`, awaited through the I/O driver. Needs a runtime with I/O enabled.
    pub struct Ticker {
        fd: AsyncFd<OwnedFd>,
    }

    impl Ticker {
        /// Ticks every `every`, the first time `every` from now.
        pub fn new(every: Duration) -> io::Result<Self> {
            let fd = rustix::time::timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            let period = Timespec {
                tv_sec: i64::try_from(every.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(every.subsec_nanos()),
            };
            let spec = Itimerspec {
                it_interval: period,
                it_value: period,
            };
            rustix::time::timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
            // Deprecated for types whose raw descriptor may change or close while registered;
            // an `OwnedFd` owned by the `AsyncFd` cannot. Its replacement is an `unsafe fn`,
            // which this crate forbids.
            #[allow(deprecated)]
            let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
            Ok(Ticker { fd })
        }

        /// Waits for the next expiry (several missed ones count as one).
        pub async fn tick(&mut self) -> io::Result<()> {
            loop {
                let mut ready = self.fd.readable().await?;
                let mut expirations = [0u8; 8];
                match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)) {
                    Ok(result) => return result.map(|_| ()),
                    // Spurious readiness, now cleared: wait again.
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::time::Duration;

    /// Elsewhere, tokio's interval.
    pub struct Ticker(tokio::time::Interval);

    impl Ticker {
        /// Ticks every `every`, the first time `every` from now.
        pub fn new(every: Duration) -> io::Result<Self> {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Ok(Ticker(tick))
        }

        /// Waits for the next tick.
        pub async fn tick(&mut self) -> io::Result<()> {
            self.0.tick().await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn it_fires_again_and_again() {
        let mut ticker = Ticker::new(Duration::from_millis(5)).unwrap();
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(10), ticker.tick())
                .await
                .expect("a tick within ten seconds")
                .unwrap();
        }
    }
}
