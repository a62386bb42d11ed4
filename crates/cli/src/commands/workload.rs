//! A local workload: an application process plus its sidecar process, registered as a
//! WorkloadEntry selected by a ServiceEntry, the way Istio models workloads outside Kubernetes.
//!
//! Each workload gets its own loopback "pod IP" (e.g. `127.10.0.5`, which Linux serves without any
//! setup). The sidecar binds the service port and 15001 on that IP; the application listens on a
//! twin address (`127.10.1.5`) that only its sidecar uses. A client that calls the pod IP directly
//! therefore meets the sidecar, as a pod without a sidecar would in Istio.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use strait_control::registry::APP_ADDRESS_ANNOTATION;
use tokio::process::{Child, Command};

/// What runs inside the workload.
#[derive(Debug, Clone)]
pub enum App {
    /// One of the built-in samples (`strait sample <name>`).
    Sample(String),
    /// Any command; `{listen}` in its arguments is replaced by the address it must listen on.
    Command(Vec<String>),
}

/// One workload to start.
#[derive(Debug, Clone)]
pub struct Workload {
    /// WorkloadEntry name, e.g. `reviews-v2`.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Service the workload backs, e.g. `reviews`.
    pub service: String,
    /// Service port (also the port the app listens on).
    pub port: u16,
    /// Labels (`app`, `version`).
    pub labels: BTreeMap<String, String>,
    /// Service account (its identity).
    pub service_account: String,
    /// The workload's "pod IP": the sidecar binds here.
    pub ip: Ipv4Addr,
    /// The application.
    pub app: App,
    /// Extra environment for the application.
    pub env: Vec<(String, String)>,
}

impl Workload {
    /// The address the application itself listens on: the pod IP with the third octet set to 1.
    pub fn app_ip(&self) -> Ipv4Addr {
        let [a, b, _, d] = self.ip.octets();
        Ipv4Addr::new(a, b, 1, d)
    }

    /// The ServiceEntry and WorkloadEntry that register this workload (YAML, two documents).
    pub fn registration_yaml(&self) -> String {
        let labels = |indent: &str| {
            self.labels
                .iter()
                .map(|(k, v)| format!("{indent}{k}: {v:?}\n"))
                .collect::<String>()
        };
        format!(
            "apiVersion: networking.istio.io/v1\n\
             kind: ServiceEntry\n\
             metadata:\n  name: {svc}\n  namespace: {ns}\n\
             spec:\n  hosts:\n  - {svc}.{ns}.svc.cluster.local\n  location: MESH_INTERNAL\n  resolution: STATIC\n\
             \x20 ports:\n  - number: {port}\n    name: http\n    protocol: HTTP\n\
             \x20 workloadSelector:\n    labels:\n      app: {app:?}\n\
             ---\n\
             apiVersion: networking.istio.io/v1\n\
             kind: WorkloadEntry\n\
             metadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    {annotation}: \"{app_ip}\"\n\
             spec:\n  address: \"{ip}\"\n  serviceAccount: {sa}\n  labels:\n{labels}",
            svc = self.service,
            ns = self.namespace,
            port = self.port,
            app = self
                .labels
                .get("app")
                .cloned()
                .unwrap_or_else(|| self.service.clone()),
            name = self.name,
            annotation = APP_ADDRESS_ANNOTATION,
            app_ip = self.app_ip(),
            ip = self.ip,
            sa = self.service_account,
            labels = labels("    "),
        )
    }

    /// Starts the sidecar and the application as two OS processes. With `logs`, each writes to
    /// `<logs>/<name>.proxy.log` and `<logs>/<name>.app.log`; otherwise they share our terminal.
    pub fn spawn(&self, exe: &Path, control_plane: &str, logs: Option<&Path>) -> anyhow::Result<Vec<Child>> {
        let output = |suffix: &str| -> anyhow::Result<(Stdio, Stdio)> {
            Ok(match logs {
                Some(dir) => {
                    let name = format!("{}.{suffix}", self.name);
                    (log_file(dir, &name)?, log_file(dir, &name)?)
                }
                None => (Stdio::inherit(), Stdio::inherit()),
            })
        };
        let (sidecar_out, sidecar_err) = output("proxy")?;
        let (app_out, app_err) = output("app")?;
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let sidecar = proxy_command(exe)
            .args([
                "--role",
                "sidecar",
                "--workload",
                &self.name,
                "--namespace",
                &self.namespace,
            ])
            .args([
                "--service-account",
                &self.service_account,
                "--address",
                &self.ip.to_string(),
            ])
            .args(["--control-plane", control_plane, "--labels", &labels.join(",")])
            .env(strait_mesh::supervisor::ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(sidecar_out)
            .stderr(sidecar_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the sidecar of {}", self.name))?;
        let listen = format!("{}:{}", self.app_ip(), self.port);
        let mut app = match &self.app {
            App::Sample(name) => {
                let mut c = Command::new(exe);
                c.args(["sample", name, "--listen", &listen]);
                c
            }
            App::Command(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| a.replace("{listen}", &listen)).collect();
                let (program, args) = argv.split_first().context("the workload command is empty")?;
                let mut c = Command::new(program);
                c.args(args);
                c
            }
        };
        let app = app
            .env(
                "HTTP_PROXY",
                format!("http://{}:{}", self.ip, strait_mesh::ports::OUTBOUND),
            )
            .env("STRAIT_LISTEN", &listen)
            .env(strait_mesh::supervisor::ENV, std::process::id().to_string())
            .env("HOSTNAME", format!("{}-{}", self.name, short_id()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(app_out)
            .stderr(app_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the application of {}", self.name))?;
        Ok(vec![sidecar, app])
    }
}

/// The file name of the proxy-only binary (crate `crates/proxy-bin`).
pub const LEAN_PROXY: &str = "strait-proxy";

/// How to start a proxy: `strait-proxy` when it sits next to `exe` and is not older than it,
/// else `exe proxy`. Returns the program and the arguments that precede the proxy's flags.
///
/// Why: the proxy-only binary keeps ~4 MB fewer pages resident per proxy (an idle proxy
/// 13.5 → 8.7 MB, crates/proxy/benches/NOTES.md), and a demo runs seven proxies. Why the age
/// check: `cargo build -p strait` (and `cargo run -- demo`, and the e2e tests) rebuild `strait`
/// only, so a `strait-proxy` left by an earlier build may run older proxy code; then the proxy
/// inside `strait` is the one that matches.
pub fn proxy_program(exe: &Path) -> (PathBuf, &'static [&'static str]) {
    let lean = exe.with_file_name(LEAN_PROXY);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (std::fs::metadata(&lean), modified(exe)) {
        (Ok(meta), Some(exe_time)) if meta.is_file() => meta.modified().is_ok_and(|t| t >= exe_time),
        _ => false,
    };
    if fresh && lean != exe {
        (lean, &[])
    } else {
        (exe.to_path_buf(), &["proxy"])
    }
}

/// A command that starts a proxy (see [`proxy_program`]); the caller adds the proxy's flags.
pub fn proxy_command(exe: &Path) -> Command {
    let (program, prefix) = proxy_program(exe);
    let mut command = Command::new(program);
    command.args(prefix);
    command
}

/// Waits for Ctrl-C or SIGTERM, so a supervisor can stop us and we can stop our children.
pub async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Opens (appending) `<dir>/<name>.log` for a child's output.
pub fn log_file(dir: &Path, name: &str) -> anyhow::Result<Stdio> {
    let path = dir.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Stdio::from(file))
}

/// A pod-name-like suffix, so `Reviews served by:` shows which instance answered.
fn short_id() -> String {
    let n: u32 = rand::random();
    format!("{:05x}", n & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_parses_as_istio_yaml() {
        let w = Workload {
            name: "reviews-v2".into(),
            namespace: "default".into(),
            service: "reviews".into(),
            port: 9080,
            labels: [
                ("app".to_string(), "reviews".to_string()),
                ("version".to_string(), "v2".to_string()),
            ]
            .into_iter()
            .collect(),
            service_account: "bookinfo-reviews".into(),
            ip: Ipv4Addr::new(127, 10, 0, 6),
            app: App::Sample("reviews".into()),
            env: vec![],
        };
        let docs = strait_api::parse_documents(&w.registration_yaml(), "test").expect("valid registration");
        assert_eq!(docs.len(), 2);
        assert_eq!(w.app_ip(), Ipv4Addr::new(127, 10, 1, 6));
    }

    #[test]
    fn proxies_prefer_a_fresh_lean_binary_next_to_strait() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("strait");
        let lean = dir.path().join(LEAN_PROXY);
        let set_age = |path: &Path, secs: u64| {
            let file = std::fs::File::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path);
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            file.and_then(|f| f.set_modified(time)).unwrap();
        };
        set_age(&exe, 2_000_000_000);
        // No strait-proxy: `strait proxy`.
        assert_eq!(proxy_program(&exe), (exe.clone(), &["proxy"][..]));
        // Built with (or after) strait: the lean binary, with no subcommand.
        set_age(&lean, 2_000_000_000);
        assert_eq!(proxy_program(&exe), (lean.clone(), &[][..]));
        set_age(&lean, 2_000_000_060);
        assert_eq!(proxy_program(&exe), (lean.clone(), &[][..]));
        // Left over from an older build: it may run older proxy code, so `strait proxy`.
        set_age(&lean, 1_999_999_000);
        assert_eq!(proxy_program(&exe), (exe.clone(), &["proxy"][..]));
        // A directory of that name is not a binary.
        std::fs::remove_file(&lean).unwrap();
        std::fs::create_dir(&lean).unwrap();
        assert_eq!(proxy_program(&exe), (exe.clone(), &["proxy"][..]));
    }
}
