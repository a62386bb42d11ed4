//! The proxy's side of the push stream: say who we are, apply every pushed configuration, answer
//! ACK or NACK, and reconnect with backoff when the control plane goes away.
//!
//! The proxy keeps serving its last good configuration the whole time: a lost control plane or a
//! configuration it cannot apply never takes traffic down.

use std::time::Duration;

use strait_mesh::ProxyConfig;
use strait_mesh::pb::config_discovery_client::ConfigDiscoveryClient;
use strait_mesh::pb::{Ack, ConfigPush, Hello, Nack, ProxyMessage, proxy_message};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::Proxy;

/// Where the control plane is and who this proxy is.
#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// Control plane gRPC endpoint, e.g. `http://127.0.0.1:15010`.
    pub control_plane: String,
    /// Identity sent on every (re)connection.
    pub hello: Hello,
}

/// First and largest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(3);

/// Follows the control plane forever: connect, stream, and on any failure wait and reconnect.
pub async fn run(proxy: Proxy, opts: XdsOptions) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match stream_once(&proxy, &opts).await {
            // A stream that delivered at least one push was healthy: start the backoff over.
            Ok(true) => backoff = BACKOFF_MIN,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "control plane stream failed; keeping the last good config"),
        }
        // Jitter keeps a fleet of proxies from reconnecting in lockstep after a restart.
        let jitter = rand::random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life. Returns whether any configuration arrived.
async fn stream_once(proxy: &Proxy, opts: &XdsOptions) -> Result<bool, tonic::Status> {
    let mut client = ConfigDiscoveryClient::connect(opts.control_plane.clone())
        .await
        .map_err(|e| tonic::Status::unavailable(format!("cannot reach {}: {e}", opts.control_plane)))?;
    let (tx, rx) = mpsc::channel::<ProxyMessage>(8);
    let mut hello = opts.hello.clone();
    if let Some(running) = proxy.running() {
        hello.running_version = running.version.clone();
    }
    send(&tx, proxy_message::Kind::Hello(hello)).await?;
    let mut pushes = client.stream_config(ReceiverStream::new(rx)).await?.into_inner();
    let mut got_any = false;
    while let Some(push) = pushes.message().await? {
        got_any = true;
        let reply = apply_push(proxy, push).await;
        send(&tx, reply).await?;
    }
    Ok(got_any)
}

/// Applies one push and builds the ACK or NACK for it.
async fn apply_push(proxy: &Proxy, push: ConfigPush) -> proxy_message::Kind {
    let version = push.version.clone();
    let nack = |reason: String| {
        tracing::warn!(%version, %reason, "rejecting pushed config (NACK)");
        proxy_message::Kind::Nack(Nack {
            version: version.clone(),
            reason,
        })
    };
    let mut config = match ProxyConfig::from_json(&push.config_json) {
        Ok(c) => c,
        Err(e) => return nack(format!("cannot decode config: {e}")),
    };
    config.version = push.version.clone();
    match proxy.apply(config).await {
        Ok(()) => {
            tracing::info!(%version, "applied pushed config");
            proxy_message::Kind::Ack(Ack { version })
        }
        Err(e) => nack(e.to_string()),
    }
}

async fn send(tx: &mpsc::Sender<ProxyMessage>, kind: proxy_message::Kind) -> Result<(), tonic::Status> {
    tx.send(ProxyMessage { kind: Some(kind) })
        .await
        .map_err(|_| tonic::Status::cancelled("push stream closed"))
}
