//! The cells: which processes each one runs, with which generated configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::configs;
use crate::process::{Managed, accepts, http_status};

/// One process of a system under test.
#[derive(Debug, Clone)]
pub(crate) enum Sut {
    /// nginx with its own prefix directory and configuration file.
    Nginx {
        dir: PathBuf,
        conf: PathBuf,
        listen: SocketAddr,
    },
    /// HAProxy with a configuration file.
    Haproxy { conf: PathBuf, listen: SocketAddr },
    /// `strait proxy --config`.
    Strait {
        config: PathBuf,
        admin: SocketAddr,
        listen: SocketAddr,
    },
}

/// A cell of the table.
#[derive(Debug, Clone)]
pub(crate) struct CellDef {
    pub name: String,
    pub hops: u32,
    pub http2: bool,
    /// Where the load generator connects.
    pub target: SocketAddr,
    /// Host header it sends.
    pub host: String,
    pub procs: Vec<Sut>,
    pub note: String,
}

impl CellDef {
    pub fn is_strait(&self) -> bool {
        self.procs.iter().any(|p| matches!(p, Sut::Strait { .. }))
    }
}

/// Everything `define` needs.
pub(crate) struct Layout<'a> {
    pub out: &'a Path,
    pub port_base: u16,
    pub backend: SocketAddr,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Writes every configuration file and returns the cells in table order.
pub(crate) fn define(l: &Layout<'_>) -> anyhow::Result<Vec<CellDef>> {
    let b = l.port_base;
    let mut cells = Vec::new();
    let plain = |name: &str, hops, http2, target, procs, note: &str| CellDef {
        name: name.into(),
        hops,
        http2,
        target,
        host: configs::SERVICE_HOST.into(),
        procs,
        note: note.into(),
    };
    cells.push(plain("direct", 0, false, l.backend, vec![], ""));
    cells.push(plain(
        "direct-h2",
        0,
        true,
        l.backend,
        vec![],
        "h2c to the backend",
    ));
    for (i, (name, http2)) in [("nginx", false), ("nginx-h2", true)].into_iter().enumerate() {
        let dir = l.out.join(name);
        let listen = local(b + 101 + i as u16);
        let conf = dir.join("nginx.conf");
        write(&conf, &configs::nginx_proxy(&dir, listen, l.backend, http2))?;
        let note = if http2 {
            "h2c downstream, HTTP/1.1 keep-alive upstream"
        } else {
            ""
        };
        cells.push(plain(
            name,
            1,
            http2,
            listen,
            vec![Sut::Nginx { dir, conf, listen }],
            note,
        ));
    }
    for (i, (name, http2)) in [("haproxy", false), ("haproxy-h2", true)].into_iter().enumerate() {
        let listen = local(b + 111 + i as u16);
        let conf = l.out.join(name).join("haproxy.cfg");
        write(&conf, &configs::haproxy_proxy(listen, l.backend, http2))?;
        let note = if http2 {
            "h2c downstream, HTTP/1.1 upstream"
        } else {
            ""
        };
        cells.push(plain(
            name,
            1,
            http2,
            listen,
            vec![Sut::Haproxy { conf, listen }],
            note,
        ));
    }
    for (i, (name, http2)) in [("strait", false), ("strait-h2", true)].into_iter().enumerate() {
        let listen = local(b + 121 + i as u16);
        let admin = local(b + 131 + i as u16);
        let config = l.out.join(name).join("proxy.json");
        write(&config, &json(&configs::strait_outbound(listen, l.backend)))?;
        let note = if http2 {
            "h2c downstream, HTTP/1.1 upstream"
        } else {
            ""
        };
        cells.push(plain(
            name,
            1,
            http2,
            listen,
            vec![Sut::Strait {
                config,
                admin,
                listen,
            }],
            note,
        ));
    }
    // nginx pair with mTLS (TLS 1.3) between the hops: the mesh reference without Envoy.
    let dir = l.out.join("nginx-2hop");
    std::fs::create_dir_all(&dir)?;
    let pki_script = configs::pki_script(&dir);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&pki_script)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "openssl could not create the test certificates in {}",
        dir.display()
    );
    let pki = configs::Pki { dir: &dir };
    let (client, server) = (local(b + 161), local(b + 162));
    let (cdir, sdir) = (dir.join("client"), dir.join("server"));
    let (cconf, sconf) = (cdir.join("nginx.conf"), sdir.join("nginx.conf"));
    write(
        &cconf,
        &configs::nginx_client_sidecar(&cdir, client, server, &pki),
    )?;
    write(
        &sconf,
        &configs::nginx_server_sidecar(&sdir, server, l.backend, &pki),
    )?;
    cells.push(plain(
        "nginx-2hop",
        2,
        false,
        client,
        vec![
            Sut::Nginx {
                dir: cdir,
                conf: cconf,
                listen: client,
            },
            Sut::Nginx {
                dir: sdir,
                conf: sconf,
                listen: server,
            },
        ],
        "two nginx processes, mTLS (TLS 1.3, P-256) between the hops",
    ));
    // Strait sidecar pair, mTLS between the hops with nginx-2hop's certificates.
    let (client, server) = (local(b + 141), local(b + 142));
    let (cadmin, sadmin) = (local(b + 151), local(b + 152));
    let (cconf, sconf) = (
        l.out.join("strait-2hop/client.json"),
        l.out.join("strait-2hop/server.json"),
    );
    let mut outbound = configs::strait_outbound(client, server);
    configs::strait_client_mtls(&mut outbound, server, &pki);
    let mut inbound = configs::strait_inbound(server, l.backend);
    configs::strait_server_mtls(&mut inbound, &pki);
    write(&cconf, &json(&outbound))?;
    write(&sconf, &json(&inbound))?;
    cells.push(plain(
        "strait-2hop",
        2,
        false,
        client,
        vec![
            Sut::Strait {
                config: cconf,
                admin: cadmin,
                listen: client,
            },
            Sut::Strait {
                config: sconf,
                admin: sadmin,
                listen: server,
            },
        ],
        "two strait proxies, mTLS (TLS 1.3, P-256, nginx-2hop's certificates) between the hops",
    ));
    Ok(cells)
}

fn json(cfg: &strait_mesh::ProxyConfig) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_default()
}

/// How to run the proxies.
pub(crate) struct Programs {
    /// The Strait proxy: `strait-proxy`, or `strait` with `proxy` in `strait_prefix`.
    pub strait: PathBuf,
    /// Arguments before the proxy's flags: `["proxy"]` for `strait`, none for `strait-proxy`.
    pub strait_prefix: Vec<String>,
    /// Extra arguments for the proxy (e.g. turning the access log off).
    pub strait_args: Vec<String>,
    pub logs: PathBuf,
}

/// The proxy-only binary's file name (crate `crates/proxy-bin`).
pub(crate) const LEAN_PROXY: &str = "strait-proxy";

/// Which program runs the Strait cells, given `--strait PATH`: a `strait-proxy` path as is; for
/// `strait`, the `strait-proxy` beside it when `lean` and it is not older than `strait` (what a
/// deployment runs: ~4 MB less idle RSS, crates/proxy/benches/NOTES.md), else `strait proxy`.
/// The age check keeps a `strait-proxy` left by an older build from being measured.
pub(crate) fn proxy_program(strait: &Path, lean: bool) -> (PathBuf, Vec<String>) {
    if strait.file_name().is_some_and(|n| n == LEAN_PROXY) {
        return (strait.to_path_buf(), Vec::new());
    }
    let beside = strait.with_file_name(LEAN_PROXY);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (std::fs::metadata(&beside), modified(strait)) {
        (Ok(meta), Some(strait_time)) if meta.is_file() => meta.modified().is_ok_and(|t| t >= strait_time),
        _ => false,
    };
    if lean && fresh {
        (beside, Vec::new())
    } else {
        (strait.to_path_buf(), vec!["proxy".into()])
    }
}

/// Starts the processes of `cell` on CPU 1 and waits until they serve.
pub(crate) fn start(cell: &CellDef, p: &Programs) -> Result<Vec<Managed>, String> {
    let mut procs = Vec::new();
    let ready = Duration::from_secs(10);
    for (i, sut) in cell.procs.iter().enumerate() {
        let log = p.logs.join(format!("{}-{i}.log", cell.name));
        let arg = |s: &Path| s.display().to_string();
        match sut {
            Sut::Nginx { dir, conf, listen } => {
                let args = vec!["-p".into(), format!("{}/", dir.display()), "-c".into(), arg(conf)];
                let mut m = Managed::spawn("nginx", 1, Path::new("nginx"), &args, &[], &log, false)
                    .map_err(|e| e.to_string())?;
                m.wait_ready(ready, &format!("accepting on {listen}"), || accepts(*listen))
                    .map_err(|e| e.to_string())?;
                procs.push(m);
            }
            Sut::Haproxy { conf, listen } => {
                let args = vec!["-db".into(), "-f".into(), arg(conf)];
                let mut m = Managed::spawn("haproxy", 1, Path::new("haproxy"), &args, &[], &log, false)
                    .map_err(|e| e.to_string())?;
                m.wait_ready(ready, &format!("accepting on {listen}"), || accepts(*listen))
                    .map_err(|e| e.to_string())?;
                procs.push(m);
            }
            Sut::Strait {
                config,
                admin,
                listen,
            } => {
                let not_ready = |e: String| format!("strait proxy not ready: {e}");
                if !p.strait.exists() {
                    return Err(not_ready(format!(
                        "{} does not exist (build it with `cargo build --release -p strait -p strait-proxy-bin`)",
                        p.strait.display()
                    )));
                }
                let mut args = p.strait_prefix.clone();
                args.extend([
                    "--config".into(),
                    arg(config),
                    "--address".into(),
                    "127.0.0.1".into(),
                    "--admin".into(),
                    admin.to_string(),
                ]);
                args.extend(p.strait_args.iter().cloned());
                // One worker thread (taskset already limits tokio to one core; say it anyway).
                let env = [("TOKIO_WORKER_THREADS", "1"), ("RUST_LOG", "warn")];
                let mut m = Managed::spawn("strait proxy", 1, &p.strait, &args, &env, &log, true)
                    .map_err(|e| not_ready(e.to_string()))?;
                m.wait_ready(
                    ready,
                    &format!("GET http://{admin}/ready = 200 and {listen} accepting"),
                    || http_status(*admin, "/ready") == Some(200) && accepts(*listen),
                )
                .map_err(|e| not_ready(e.to_string()))?;
                procs.push(m);
            }
        }
    }
    Ok(procs)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn touch(path: &Path, secs: u64) {
        let file = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path);
        file.and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(secs)))
            .unwrap();
    }

    #[test]
    fn the_lean_proxy_is_measured_when_it_is_fresh() {
        let dir = std::env::temp_dir().join(format!("strait-bench-proxy-program-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let strait = dir.join("strait");
        let lean = dir.join(LEAN_PROXY);
        let subcommand = vec!["proxy".to_string()];
        touch(&strait, 2_000_000_000);
        assert_eq!(proxy_program(&strait, true), (strait.clone(), subcommand.clone()));
        touch(&lean, 2_000_000_010);
        assert_eq!(proxy_program(&strait, true), (lean.clone(), vec![]));
        // --no-lean-proxy measures `strait proxy` even so.
        assert_eq!(
            proxy_program(&strait, false),
            (strait.clone(), subcommand.clone())
        );
        // A strait-proxy older than strait is from an earlier build: not measured.
        touch(&lean, 1_999_999_990);
        assert_eq!(proxy_program(&strait, true), (strait.clone(), subcommand));
        // --strait pointing at strait-proxy runs it as given.
        assert_eq!(proxy_program(&lean, false), (lean.clone(), vec![]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
