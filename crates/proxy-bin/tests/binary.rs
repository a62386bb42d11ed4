//! The `strait-proxy` binary as a user runs it: flags, exit codes, and a static config served
//! until the process is killed.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Running, free_port, spawn_proxy, wait_ready};

fn strait_proxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strait-proxy"))
        .args(args)
        .output()
        .expect("strait-proxy runs")
}

/// `GET path` over HTTP/1.1; `None` until something answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

#[test]
fn help_lists_the_flags_of_strait_proxy() {
    let out = strait_proxy(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--control-plane",
        "--role",
        "--workload",
        "--namespace",
        "--labels",
        "--service-account",
        "--address",
        "--admin",
        "--no-access-log",
        "--concurrency",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    let out = strait_proxy(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("strait-proxy "));
}

#[test]
fn a_bad_command_line_exits_2_and_names_the_argument() {
    let out = strait_proxy(&["--concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--concurrency") && err.contains("--help"), "{err}");
    let out = strait_proxy(&["proxy"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the subcommand of `strait proxy` is not an argument here"
    );
}

#[test]
fn a_missing_config_file_is_an_error_message() {
    let out = strait_proxy(&[
        "--config",
        "/nonexistent/strait-proxy.json",
        "--admin",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("/nonexistent/strait-proxy.json"),
        "{err}"
    );
}

#[test]
fn serves_a_static_config_with_one_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("proxy.json");
    std::fs::write(&config, r#"{"version": "it-1", "listeners": []}"#).expect("write config");
    // A free port for the admin server (the proxy binds it itself).
    let admin = free_port();
    let mut proxy = spawn_proxy(&config, admin, &[("STRAIT_LOG", "info")]);
    wait_ready(&mut proxy, admin);
    let (status, dump) = get(admin, "/config_dump").expect("config dump answers");
    assert_eq!(status, 200);
    assert!(dump.contains("it-1"), "{dump}");
    // STRAIT_LOG=info prints the proxy's "config applied" event in the lean log format.
    let _ = proxy.0.kill();
    let mut err = String::new();
    if let Some(mut stderr) = proxy.0.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    assert!(err.contains("serving static config"), "{err}");
    assert!(err.contains(" INFO strait_proxy: config applied"), "{err}");
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

#[test]
fn a_proxy_stops_when_its_supervisor_is_killed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("proxy.json");
    std::fs::write(&config, r#"{"version": "sup-1", "listeners": []}"#).expect("write config");
    let admin = free_port();
    // A shell plays the supervisor (`strait demo`): it names itself in STRAIT_SUPERVISOR_PID,
    // starts the proxy, prints its pid and waits. SIGKILL gives it no chance to stop the proxy.
    let script = r#"STRAIT_SUPERVISOR_PID=$$ "$0" --config "$1" --admin "$2" --concurrency 1 >/dev/null 2>&1 &
echo $!
wait"#;
    let mut shell = Running(
        Command::new("sh")
            .args(["-c", script, env!("CARGO_BIN_EXE_strait-proxy")])
            .args([config.display().to_string(), admin.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh starts"),
    );
    let mut line = String::new();
    let mut out = shell.0.stdout.take().expect("piped stdout");
    let mut byte = [0u8; 1];
    while out.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    let pid: u32 = line.trim().parse().expect("the shell prints the proxy's pid");
    // A guard so that a failing assertion does not leave the proxy running.
    struct KillPid(u32);
    impl Drop for KillPid {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-9", &self.0.to_string()]).status();
        }
    }
    let _guard = KillPid(pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(admin, "/ready").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "the proxy never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!ended(pid), "the proxy runs while its supervisor does");
    shell.0.kill().expect("SIGKILL the supervisor");
    let _ = shell.0.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ended(pid) {
        assert!(
            Instant::now() < deadline,
            "the proxy (pid {pid}) still runs after its supervisor was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
