//! `strait-proxy`: the same proxy and flags as `strait proxy`, in a binary without the CLI.
#![forbid(unsafe_code)]

use std::error::Error as _;
use std::process::ExitCode;

use strait_proxy_bin::{Command, HELP, args, build_runtime, log, run, worker_threads};

fn main() -> ExitCode {
    let control_plane_env = std::env::var("STRAIT_CONTROL_PLANE").ok();
    let opts = match args::parse(std::env::args_os().skip(1), control_plane_env) {
        Ok(Command::Run(opts)) => *opts,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("strait-proxy {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Exit status 2 for a bad command line, as clap (and so `strait proxy`) does.
            eprintln!("error: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    log::init(std::env::var("STRAIT_LOG").ok().as_deref());
    let workers = worker_threads(&opts, std::env::var("TOKIO_WORKER_THREADS").ok().as_deref());
    let runtime = match build_runtime(workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain, as `strait proxy` prints it (anyhow's `{:#}`).
            let mut msg = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !msg.ends_with(&text) {
                    msg.push_str(": ");
                    msg.push_str(&text);
                }
                source = s.source();
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
