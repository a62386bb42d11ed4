//! `bench-backend --address 127.0.0.1:18080`: the 1 KB HTTP server behind every cell.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use clap::Parser;

/// Arguments.
#[derive(Parser)]
#[command(about = "Answers every HTTP/1.1 or h2c request with a 1 KB body (one thread)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    address: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread: the backend shares CPU 0 with the load generator (performance.md §7.2).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(strait_bench::backend::run(args.address))
}
