//! The proxy's side of the push stream: say who we are, apply every pushed configuration, answer
//! ACK or NACK, and reconnect with backoff when the control plane goes away.
//!
//! The proxy keeps serving its last good configuration the whole time: a lost control plane or a
//! configuration it cannot apply never takes traffic down.
//!
//! The Hello announces gzip: the control plane then sends bodies as gzip (several concatenated
//! members, its shared pieces compressed once for every proxy), ~30× fewer bytes per push.
//! It also announces deltas: after the first push, a change usually arrives as a
//! [`ConfigDelta`] over the configuration this proxy runs (a few KB instead of the whole
//! configuration); a delta over a version the proxy does not run is NACKed, and the control
//! plane answers that with the whole configuration.

use std::io::Read;
use std::time::Duration;

use flate2::read::MultiGzDecoder;

use strait_mesh::pb::config_discovery_client::ConfigDiscoveryClient;
use strait_mesh::pb::{Ack, ConfigPush, Hello, Nack, ProxyMessage, proxy_message};
use strait_mesh::{ConfigDelta, ProxyConfig};
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

/// The `ConfigPush.encoding` of gzip bodies, announced in the Hello.
const GZIP: &str = "gzip";

/// Largest decoded configuration accepted from a gzip body: a few KB of gzip can expand to
/// gigabytes, so the decoder stops here (1,000 services are ~2.3 MB of JSON).
pub const MAX_DECODED_CONFIG: u64 = 256 * 1024 * 1024;

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
    if !hello.accept_encodings.iter().any(|e| e == GZIP) {
        hello.accept_encodings.push(GZIP.into());
    }
    hello.accept_delta = true;
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
    let delta = !push.delta_base.is_empty();
    let decoded = if !delta {
        decode_config(&push)
    } else {
        apply_delta(proxy.running().as_deref(), &push)
    };
    let mut config = match decoded {
        Ok(c) => c,
        Err(reason) => return nack(reason),
    };
    config.version = push.version.clone();
    match proxy.apply(config).await {
        Ok(()) => {
            tracing::info!(%version, delta, "applied pushed config");
            proxy_message::Kind::Ack(Ack { version })
        }
        Err(e) => nack(e.to_string()),
    }
}

/// The configuration a delta push makes of the running one; the error is the NACK reason.
fn apply_delta(running: Option<&ProxyConfig>, push: &ConfigPush) -> Result<ProxyConfig, String> {
    let base = running.filter(|r| r.version == push.delta_base).ok_or_else(|| {
        format!(
            "config delta over version {} but this proxy runs {}",
            push.delta_base,
            running.map_or("nothing", |r| r.version.as_str())
        )
    })?;
    let delta = ConfigDelta::from_json(&decoded_body(push)?).map_err(|e| e.to_string())?;
    delta.apply(base).map_err(|e| e.to_string())
}

/// The pushed configuration, decoded as its `encoding` says; the error is the NACK reason.
fn decode_config(push: &ConfigPush) -> Result<ProxyConfig, String> {
    ProxyConfig::from_json(&decoded_body(push)?).map_err(|e| format!("cannot decode config: {e}"))
}

/// The push's JSON bytes, decoded as its `encoding` says.
fn decoded_body(push: &ConfigPush) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match push.encoding.as_str() {
        "" => Ok(std::borrow::Cow::Borrowed(&push.config_json)),
        GZIP => {
            let mut out = Vec::new();
            MultiGzDecoder::new(push.config_json.as_slice())
                .take(MAX_DECODED_CONFIG + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("cannot decode the gzip config body: {e}"))?;
            if out.len() as u64 > MAX_DECODED_CONFIG {
                return Err(format!(
                    "the gzip config body decodes to more than the proxy's limit of {MAX_DECODED_CONFIG} bytes"
                ));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        other => Err(format!(
            "unknown config encoding {other:?} (this proxy decodes plain JSON and \"gzip\")"
        )),
    }
}

async fn send(tx: &mpsc::Sender<ProxyMessage>, kind: proxy_message::Kind) -> Result<(), tonic::Status> {
    tx.send(ProxyMessage { kind: Some(kind) })
        .await
        .map_err(|_| tonic::Status::cancelled("push stream closed"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::ProxyOptions;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).expect("in memory");
        enc.finish().expect("in memory")
    }

    fn push(version: &str, config_json: Vec<u8>, encoding: &str) -> ConfigPush {
        ConfigPush {
            version: version.into(),
            config_json,
            encoding: encoding.into(),
            delta_base: String::new(),
        }
    }

    #[tokio::test]
    async fn gzip_bodies_are_decoded_even_in_several_members_and_garbage_is_nacked() {
        let proxy = Proxy::new(ProxyOptions::default());
        let json = ProxyConfig::default().to_json();
        // Split in two members, as the control plane sends shared pieces.
        let (a, b) = json.split_at(json.len() / 2);
        let mut body = gzip(a);
        body.extend(gzip(b));
        let reply = apply_push(&proxy, push("1", body, "gzip")).await;
        assert!(
            matches!(&reply, proxy_message::Kind::Ack(ack) if ack.version == "1"),
            "{reply:?}"
        );
        assert_eq!(proxy.running().map(|c| c.version.clone()), Some("1".into()));

        let plain = apply_push(&proxy, push("2", json.clone(), "")).await;
        assert!(
            matches!(&plain, proxy_message::Kind::Ack(ack) if ack.version == "2"),
            "{plain:?}"
        );

        let garbage = apply_push(&proxy, push("3", b"not gzip at all".to_vec(), "gzip")).await;
        match &garbage {
            proxy_message::Kind::Nack(nack) => {
                assert_eq!(nack.version, "3");
                assert!(nack.reason.contains("gzip"), "{}", nack.reason);
            }
            other => panic!("expected a NACK, got {other:?}"),
        }
        let unknown = apply_push(&proxy, push("4", json, "br")).await;
        assert!(
            matches!(&unknown, proxy_message::Kind::Nack(n) if n.reason.contains("br")),
            "{unknown:?}"
        );
        // The last good configuration keeps serving.
        assert_eq!(proxy.running().map(|c| c.version.clone()), Some("2".into()));
    }

    #[tokio::test]
    async fn a_delta_applies_over_the_running_version_only() {
        use strait_mesh::delta::Span;
        use strait_mesh::{Cluster, ConfigDelta};
        let proxy = Proxy::new(ProxyOptions::default());
        let cluster = |name: &str| Cluster {
            name: name.into(),
            ..Cluster::default()
        };
        let first = ProxyConfig {
            clusters: vec![cluster("a"), cluster("b")],
            ..ProxyConfig::default()
        };
        let delta = |base: &str, spans| ConfigPush {
            delta_base: base.into(),
            ..push(
                "",
                ConfigDelta {
                    clusters: spans,
                    ..ConfigDelta::default()
                }
                .to_json(),
                "",
            )
        };
        let no_base = apply_push(
            &proxy,
            ConfigPush {
                version: "1".into(),
                ..delta("0", vec![Span::Keep([0, 1])])
            },
        )
        .await;
        assert!(
            matches!(&no_base, proxy_message::Kind::Nack(n) if n.reason.contains("runs nothing")),
            "{no_base:?}"
        );
        let reply = apply_push(&proxy, push("1", first.to_json(), "")).await;
        assert!(matches!(reply, proxy_message::Kind::Ack(_)), "{reply:?}");

        let next = ConfigPush {
            version: "2".into(),
            ..delta("1", vec![Span::Keep([1, 1]), Span::Items(vec![cluster("c")])])
        };
        let reply = apply_push(&proxy, next).await;
        assert!(
            matches!(&reply, proxy_message::Kind::Ack(a) if a.version == "2"),
            "{reply:?}"
        );
        let running = proxy.running().expect("running");
        let names: Vec<&str> = running.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(running.version, "2");

        // Over a version it does not run (1): refused, version 2 keeps serving.
        let stale = ConfigPush {
            version: "3".into(),
            ..delta("1", vec![Span::Keep([0, 1])])
        };
        let reply = apply_push(&proxy, stale).await;
        assert!(
            matches!(&reply, proxy_message::Kind::Nack(n) if n.reason.contains("over version 1 but this proxy runs 2")),
            "{reply:?}"
        );
        let out_of_range = ConfigPush {
            version: "4".into(),
            ..delta("2", vec![Span::Keep([1, 5])])
        };
        let reply = apply_push(&proxy, out_of_range).await;
        assert!(
            matches!(&reply, proxy_message::Kind::Nack(n) if n.reason.contains("clusters 1..6")),
            "{reply:?}"
        );
        assert_eq!(proxy.running().map(|c| c.version.clone()), Some("2".into()));
    }

    #[test]
    fn a_gzip_bomb_past_the_limit_is_refused_naming_the_limit() {
        // 300 MiB of zeros: ~300 KB of gzip.
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..300 {
            enc.write_all(&zeros).expect("in memory");
        }
        let body = enc.finish().expect("in memory");
        let err = decode_config(&push("1", body, "gzip")).expect_err("too big");
        assert!(err.contains(&MAX_DECODED_CONFIG.to_string()), "{err}");
    }
}
