//! Simulated proxies: real gRPC streams on the push protocol that say Hello and ACK each push.

use std::time::{SystemTime, UNIX_EPOCH};

use strait_mesh::pb::config_discovery_client::ConfigDiscoveryClient;
use strait_mesh::pb::{Ack, Hello, ProxyMessage, proxy_message};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::mesh::{MeshSize, node_for};

/// One line the simulated proxies print per ACK:
/// `ACK <proxy> <version> <µs since epoch> <bytes of config_json>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckLine {
    /// Proxy index.
    pub proxy: usize,
    /// Version acknowledged.
    pub version: String,
    /// When the ACK was sent, µs since the Unix epoch.
    pub micros: u64,
    /// Size of the push's `config_json` as received (0 when the line does not say).
    pub bytes: u64,
}

impl AckLine {
    /// Parses a line; `None` for anything else (an error message).
    pub fn parse(line: &str) -> Option<AckLine> {
        let mut p = line.split_whitespace();
        (p.next()? == "ACK").then_some(())?;
        Some(AckLine {
            proxy: p.next()?.parse().ok()?,
            version: p.next()?.to_string(),
            micros: p.next()?.parse().ok()?,
            bytes: p.next().and_then(|b| b.parse().ok()).unwrap_or(0),
        })
    }
}

async fn proxy(
    index: usize,
    size: MeshSize,
    grpc: String,
    out: mpsc::UnboundedSender<String>,
    first: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let mut first = Some(first);
    let node = node_for(&size, index);
    let mut client = ConfigDiscoveryClient::connect(grpc).await?;
    let (tx, rx) = mpsc::channel(4);
    tx.send(ProxyMessage {
        kind: Some(proxy_message::Kind::Hello(Hello {
            proxy_id: node.id,
            role: "sidecar".into(),
            namespace: node.namespace,
            workload: node.workload,
            labels: node.labels.into_iter().collect(),
            service_account: node.service_account,
            address: node.address,
            running_version: String::new(),
            // Measure the compressed path (the bodies are not decoded here).
            accept_encodings: vec!["gzip".into()],
            accept_delta: true,
        })),
    })
    .await?;
    let mut pushes = client.stream_config(ReceiverStream::new(rx)).await?.into_inner();
    while let Some(push) = pushes.message().await? {
        tx.send(ProxyMessage {
            kind: Some(proxy_message::Kind::Ack(Ack {
                version: push.version.clone(),
            })),
        })
        .await?;
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let bytes = push.config_json.len();
        let _ = out.send(format!("ACK {index} {} {micros} {bytes}\n", push.version));
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
    }
    Ok(())
}

/// Proxies connected at once: the next batch connects when this one has its first
/// configuration, as proxies arrive in a rolling start rather than all in one instant.
pub const CONNECT_BATCH: usize = 25;

/// Connects `n` proxies (workloads 0..n of the mesh) to `grpc` in batches of [`CONNECT_BATCH`]
/// and prints an [`AckLine`] per ACK on stdout until the streams end.
pub async fn run_proxies(n: usize, size: MeshSize, grpc: String) -> anyhow::Result<()> {
    let (out, mut lines) = mpsc::unbounded_channel::<String>();
    let connector = {
        let out = out.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let all: Vec<usize> = (0..n).collect();
            for batch in all.chunks(CONNECT_BATCH) {
                let mut firsts = Vec::new();
                for &i in batch {
                    let (grpc, out) = (grpc.clone(), out.clone());
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    firsts.push(rx);
                    tasks.spawn(async move {
                        if let Err(e) = proxy(i, size, grpc, out.clone(), tx).await {
                            let _ = out.send(format!("proxy {i} failed: {e}\n"));
                        }
                    });
                }
                for rx in firsts {
                    // A proxy that failed drops its sender; its error line is already out.
                    let _ = rx.await;
                }
            }
            while tasks.join_next().await.is_some() {}
        })
    };
    drop(out);
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.recv().await {
        let mut batch = line;
        while let Ok(more) = lines.try_recv() {
            batch.push_str(&more);
        }
        stdout.write_all(batch.as_bytes()).await?;
        stdout.flush().await?;
    }
    let _ = connector.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_lines_roundtrip() {
        assert_eq!(
            AckLine::parse("ACK 12 345 1700000000000000"),
            Some(AckLine {
                proxy: 12,
                version: "345".into(),
                micros: 1_700_000_000_000_000,
                bytes: 0,
            })
        );
        assert_eq!(AckLine::parse("ACK 1 2 3 77131").map(|a| a.bytes), Some(77131));
        assert_eq!(AckLine::parse("proxy 3 failed: refused"), None);
        assert_eq!(AckLine::parse("ACK x 1 2"), None);
    }
}
