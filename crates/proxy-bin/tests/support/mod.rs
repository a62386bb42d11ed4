//! Running `strait-proxy` processes in tests: a free port, a spawned proxy that is killed even
//! when an assertion fails, and a wait (with a deadline) until its admin port says ready.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the process even when an assertion fails.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// `strait-proxy --config CONFIG --admin ADMIN --concurrency 1 --no-access-log`, with `envs`;
/// stderr is kept for the test to read.
pub fn spawn_proxy(config: &Path, admin: SocketAddr, envs: &[(&str, &str)]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_strait-proxy"))
        .args([
            "--config",
            &config.display().to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .args(["--concurrency", "1", "--no-access-log"])
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strait-proxy starts");
    Running(child)
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`): the raw response, or how
/// the connection or the read failed.
pub fn exchange(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

/// Polls `/ready` on the admin port until it answers 200; panics with the proxy's stderr if it
/// exits first, or after 30 s.
pub fn wait_ready(proxy: &mut Running, admin: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if exchange(admin, "admin", "/ready").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return;
        }
        if let Ok(Some(status)) = proxy.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = proxy.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("strait-proxy exited early: {status}: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("strait-proxy at admin {admin} never became ready");
}
