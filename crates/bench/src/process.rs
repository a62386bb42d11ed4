//! Starting the systems under test pinned to a core, waiting until they serve, and stopping
//! them (with their children: nginx's worker) when the run ends or fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procfs;

/// Why a process could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The program exited before it was ready.
    #[error("{what} exited with {status} before it was ready; last log lines:\n{log}")]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The program did not become ready in time.
    #[error("{what} was not ready after {seconds} s ({detail}); last log lines:\n{log}")]
    NotReady {
        /// Which process.
        what: String,
        /// How long we waited.
        seconds: u64,
        /// What was being waited for.
        detail: String,
        /// The end of its log.
        log: String,
    },
}

/// A child process that is stopped (with its descendants) when dropped.
#[derive(Debug)]
pub struct Managed {
    /// Display name.
    pub what: String,
    child: Child,
    log: PathBuf,
}

/// The last `n` lines of a log file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Managed {
    /// Starts `program args` pinned to `cpu` with `taskset`, output to `log` (stdout discarded
    /// when `discard_stdout`).
    pub fn spawn(
        what: &str,
        cpu: u32,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
        discard_stdout: bool,
    ) -> Result<Managed, ProcessError> {
        let spawn_err = |source| ProcessError::Spawn {
            program: program.display().to_string(),
            source,
        };
        let out = std::fs::File::create(log).map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        // A proxy's access log (one line per request) would fill the disk during a max run.
        let out = if discard_stdout {
            Stdio::null()
        } else {
            Stdio::from(out)
        };
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(cpu.to_string()).arg(program).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_err)?;
        Ok(Managed {
            what: what.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id (taskset execs the program, so it is the program's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process and its live descendants.
    pub fn tree(&self) -> Vec<u32> {
        procfs::process_tree(self.pid())
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ProcessError::Exited {
                what: self.what.clone(),
                status: status.to_string(),
                log: tail(&self.log, 15),
            }),
            _ => Ok(()),
        }
    }

    /// Polls `probe` until it succeeds, the process exits, or `timeout` passes.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        detail: &str,
        mut probe: impl FnMut() -> bool,
    ) -> Result<(), ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if probe() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProcessError::NotReady {
                    what: self.what.clone(),
                    seconds: timeout.as_secs(),
                    detail: detail.to_string(),
                    log: tail(&self.log, 15),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        // SIGTERM the whole tree (nginx's master and worker), give it a moment, then SIGKILL.
        let tree = self.tree();
        for pid in tree.iter().rev() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in tree.iter().skip(1) {
            if procfs::exists(*pid) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// True when a TCP connection to `addr` succeeds.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The status code of a plain `GET path` (HTTP/1.1, `Connection: close`), if any answer came.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    parse_status_line(&buf[..n])
}

/// The status code of an HTTP/1.x status line.
pub fn parse_status_line(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// True when `program` can be run (found on `PATH` or as a path).
pub fn available(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line(b""), None);
    }
}
