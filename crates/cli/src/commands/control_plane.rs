//! `strait control-plane`: the config store, the REST API and the config push server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use strait_control::ControlPlaneOptions;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where resources are persisted (one JSON file each); survives restarts.
    #[arg(long, default_value = ".strait/state", env = "STRAIT_STATE_DIR")]
    pub state_dir: PathBuf,
    /// REST API address (what `strait apply/get` talk to).
    #[arg(long = "rest", default_value = "127.0.0.1:15014")]
    pub rest: SocketAddr,
    /// gRPC config push address (what proxies connect to).
    #[arg(long = "grpc", default_value = "127.0.0.1:15010")]
    pub grpc: SocketAddr,
}

/// Runs the command until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    strait_control::run(ControlPlaneOptions {
        state_dir: args.state_dir,
        rest_addr: args.rest,
        grpc_addr: args.grpc,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
