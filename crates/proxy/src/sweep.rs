//! The idle-connection sweep: one task per proxy drops the pooled connections that servers closed
//! or that stayed idle too long, every [`EVERY`].
//!
//! Why: nothing else looks at an idle connection, and an endpoint that went away is never
//! checked out again, so without a sweep its sockets would stay open (in CLOSE_WAIT) for as long
//! as the pool lives. One task for all pools, ticked by a [`Ticker`] rather than a timer in
//! tokio's wheel: with any wheel timer pending, every wake-up of the worker pays for the time
//! driver (~430 instructions a proxied request; it was one `interval` per pool before).

use std::sync::Weak;
use std::time::Duration;

use strait_mesh::ticker::Ticker;

use crate::Inner;

/// How often idle connections are looked at.
pub(crate) const EVERY: Duration = Duration::from_secs(5);

/// Starts the sweep of `inner`'s pools on the current runtime; it ends with the proxy. Without
/// a runtime (a proxy applied from a plain thread) there is nothing to start.
pub(crate) fn start(inner: Weak<Inner>, every: Duration) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let mut ticker = match Ticker::new(every) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "no idle-connection sweep: cannot create its timer");
                return;
            }
        };
        loop {
            if let Err(e) = ticker.tick().await {
                tracing::warn!(error = %e, "idle-connection sweep stopped: its timer failed");
                return;
            }
            let Some(inner) = inner.upgrade() else { return };
            let state = inner.state.lock().await;
            for pool in state.clients.values() {
                pool.sweep();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use strait_mesh::ProxyConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::pool::Upstream;
    use crate::{Proxy, ProxyOptions};

    /// Every request on one listener to the one endpoint at `backend`.
    fn config(backend: SocketAddr) -> ProxyConfig {
        let yaml = format!(
            "version: v1\n\
             listeners: [{{name: main, address: '127.0.0.1:0', routeTable: t}}]\n\
             routeTables:\n\
             - name: t\n  virtualHosts:\n  - name: all\n    domains: ['*']\n    routes:\n\
             \x20   - name: r\n      action: {{forward: [{{cluster: c, weight: 100}}]}}\n\
             clusters: [{{name: c, endpoints: [{{address: '{backend}'}}]}}]\n"
        );
        crate::parse_config(std::path::Path::new("sweep.yaml"), &yaml).unwrap()
    }

    async fn read_head(s: &mut TcpStream) -> Vec<u8> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a whole head");
            head.extend_from_slice(&buf[..n]);
        }
        head
    }

    #[tokio::test]
    async fn the_sweep_closes_pooled_connections_the_server_closed() {
        // A server that answers one request with keep-alive, then half-closes when told to and
        // reports what its next read saw: 0 once the proxy closed its end of the connection.
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        let close = Arc::new(tokio::sync::Notify::new());
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let told = close.clone();
        tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            read_head(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            told.notified().await;
            s.shutdown().await.unwrap();
            let _ = seen_tx.send(s.read(&mut [0u8; 16]).await.map_err(|e| e.kind()));
        });
        let proxy = Proxy::new(ProxyOptions {
            id: "t".into(),
            admin_addr: None,
            access_log: false,
        });
        proxy.apply(config(backend_addr)).await.unwrap();
        let mut client = TcpStream::connect(proxy.listener_addr("main").unwrap())
            .await
            .unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut client).await;
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        // The connection is idle in the pool before the server closes it.
        let pooled = || async {
            let state = proxy.inner.state.lock().await;
            state.clients.values().map(Upstream::idle_count).sum::<usize>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while pooled().await != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the connection never went idle"
            );
            tokio::task::yield_now().await;
        }
        close.notify_one();
        // The proxy's own sweep ticks every five seconds; one every 10 ms beside it.
        start(Arc::downgrade(&proxy.inner), Duration::from_millis(10));
        let seen = tokio::time::timeout(Duration::from_secs(10), seen_rx)
            .await
            .expect("the proxy closed its end of the idle connection")
            .unwrap();
        assert_eq!(seen, Ok(0));
        assert_eq!(pooled().await, 0);
    }
}
