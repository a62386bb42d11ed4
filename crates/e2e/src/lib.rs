//! End-to-end harness: starts the real `strait` binary (`strait demo`, which starts the control
//! plane, every Bookinfo application and sidecar and the ingress gateway as separate processes) and
//! drives it the way a user does, with the CLI and plain HTTP over real sockets.
//!
//! Each test takes its own loopback subnet (`127.<subnet>.x.y`) so tests run in parallel without
//! sharing a port, and alongside a `strait demo` a developer may have running.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `strait` binary cargo built next to this test executable (`target/<profile>/strait`).
pub fn strait_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRAIT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/strait
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join("strait");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p strait` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// Istio's sample files, unchanged (`shared/istio-samples` beside the repository).
pub fn istio_samples() -> PathBuf {
    let root = std::env::var_os("STRAIT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = root.join("istio-samples");
    assert!(
        dir.is_dir(),
        "Istio's samples not found at {} (set STRAIT_SHARED_DIR)",
        dir.display()
    );
    dir
}

/// The project's own samples directory.
pub fn project_samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Response {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole response.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!("malformed response: {:?}", String::from_utf8_lossy(&raw)))
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_string() };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        s = rest.get(size + 2..)?;
    }
}

/// A running `strait demo` on its own subnet. Dropping it stops every process it started.
pub struct Demo {
    child: Child,
    /// The ingress gateway (port 8080 of the Bookinfo Gateway).
    pub gateway: SocketAddr,
    /// The control plane's REST address, for `--server`.
    pub rest: SocketAddr,
    /// The subnet octet.
    pub subnet: u8,
    state_dir: PathBuf,
}

impl Demo {
    /// Starts the demo on `127.<subnet>.*` and waits until Bookinfo answers through the gateway.
    pub fn start(subnet: u8) -> Demo {
        let state_dir = std::env::temp_dir().join(format!("strait-e2e-{subnet}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state_dir);
        let gateway_ip = format!("127.{subnet}.0.1");
        let control_ip = format!("127.{subnet}.0.254");
        let child = Command::new(strait_bin())
            .args([
                "demo",
                "--subnet",
                &subnet.to_string(),
                "--gateway-address",
                &gateway_ip,
            ])
            .args(["--control-address", &control_ip, "--state-dir"])
            .arg(&state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start strait demo");
        let demo = Demo {
            child,
            gateway: format!("{gateway_ip}:8080").parse().expect("address"),
            rest: format!("{control_ip}:15014").parse().expect("address"),
            subnet,
            state_dir,
        };
        eventually("Bookinfo through the gateway", Duration::from_secs(120), || {
            demo.get("/productpage", &[]).ok().filter(|r| r.status == 200)
        });
        demo
    }

    /// GET through the ingress gateway.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        http(self.gateway, "GET", path, headers, "")
    }

    /// Runs the `strait` CLI against this demo's control plane.
    pub fn strait(&self, args: &[&str]) -> Output {
        strait_cli(self.rest, args)
    }

    /// `strait apply -f <file>`; panics with the CLI's output unless it succeeds.
    pub fn apply(&self, file: &Path) -> String {
        let out = self.strait(&["apply", "-f", &file.to_string_lossy()]);
        assert!(
            out.status.success(),
            "strait apply -f {} failed: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until every proxy acknowledged the latest config (so a change is in effect).
    pub fn wait_synced(&self) {
        eventually("all proxies SYNCED", Duration::from_secs(20), || {
            let out = self.strait(&["proxy-status"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let rows: Vec<&str> = text.lines().skip(1).filter(|l| !l.trim().is_empty()).collect();
            (out.status.success() && rows.len() >= 7 && rows.iter().all(|l| l.contains("SYNCED")))
                .then_some(())
        });
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGTERM lets the demo stop its children; fall back to SIGKILL if it does not exit.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    child: Child,
    what: String,
}

impl Process {
    /// Starts `strait <args>` with output discarded.
    pub fn strait(what: &str, args: &[&str]) -> Process {
        let child = Command::new(strait_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Process {
            child,
            what: what.to_string(),
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process politely (SIGTERM) and waits for it, SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.what);
        self.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Runs the `strait` CLI against the control plane at `rest`.
pub fn strait_cli(rest: SocketAddr, args: &[&str]) -> Output {
    Command::new(strait_bin())
        .args(args)
        .env("STRAIT_SERVER", format!("http://{rest}"))
        .output()
        .expect("run strait")
}

/// Counts the filled star icons in a product page.
pub fn stars(page: &str) -> usize {
    page.matches("glyphicon glyphicon-star").count()
}
