//! Children of `strait demo` and `strait run` stop when their supervisor is gone.
//!
//! Why: the supervisor stops its proxies and sample apps itself on Ctrl-C or SIGTERM, but a
//! supervisor killed with SIGKILL (a test harness's last resort, an OOM kill) cannot, and its
//! children would keep serving on the demo's addresses, reparented to init, so the next demo
//! says one is already running. The supervisor names itself in [`ENV`]; a child whose parent
//! was that process at start exits once its parent changes. Polling the parent id needs no
//! `unsafe` (unlike `PR_SET_PDEATHSIG`) and works for any of our binaries, whichever started it.

use std::time::Duration;

/// The environment variable in which a supervisor passes its process id to its children.
pub const ENV: &str = "STRAIT_SUPERVISOR_PID";

/// How often a supervised child looks at its parent.
const POLL: Duration = Duration::from_millis(500);

/// The supervisor this process should follow: the pid in `value` (of [`ENV`]) when it is the
/// process's parent at start. `None` when there is no supervisor, or when the variable was
/// inherited from further up (a grandchild must not stop because its own parent is not the
/// supervisor).
pub fn supervisor_of(value: Option<&str>, parent: u32) -> Option<u32> {
    let pid = value?.trim().parse::<u32>().ok()?;
    (pid == parent).then_some(pid)
}

/// Returns when the process's supervisor (see [`ENV`]) is gone; never returns for a process
/// that has none. Run it beside the process's work and exit when it returns.
pub async fn gone() {
    let parent = std::os::unix::process::parent_id();
    let Some(supervisor) = supervisor_of(std::env::var(ENV).ok().as_deref(), parent) else {
        return std::future::pending().await;
    };
    // Not a timer in tokio's wheel: see [`crate::ticker`].
    let mut tick = match crate::ticker::Ticker::new(POLL) {
        Ok(tick) => tick,
        Err(e) => {
            eprintln!("cannot follow the supervising process ({e}); running on without it");
            return std::future::pending().await;
        }
    };
    loop {
        if let Err(e) = tick.tick().await {
            eprintln!("stopped following the supervising process ({e}); running on without it");
            return std::future::pending().await;
        }
        if std::os::unix::process::parent_id() != supervisor {
            return;
        }
    }
}

/// Exits the process (status 1, with a line on stderr naming `what`) when its supervisor is
/// gone; a task to spawn beside the process's work.
pub async fn exit_when_gone(what: &'static str) {
    gone().await;
    eprintln!("{what}: the supervising process is gone; stopping");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_supervisor_that_is_the_parent_is_followed() {
        assert_eq!(supervisor_of(Some("42"), 42), Some(42));
        assert_eq!(supervisor_of(Some(" 42\n"), 42), Some(42));
        // Inherited from a grandparent: not ours to follow.
        assert_eq!(supervisor_of(Some("42"), 7), None);
        assert_eq!(supervisor_of(None, 42), None);
        assert_eq!(supervisor_of(Some("not a pid"), 42), None);
        assert_eq!(supervisor_of(Some(""), 42), None);
    }

    #[tokio::test]
    async fn without_a_supervisor_it_never_returns() {
        // The test runner does not set ENV for us (and if it did, our parent would not match).
        let r = tokio::time::timeout(Duration::from_millis(50), gone()).await;
        assert!(r.is_err());
    }
}
