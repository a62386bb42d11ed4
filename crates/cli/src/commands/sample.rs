//! `strait sample APP --listen ADDR`: one sample application as its own process, configured from
//! the environment exactly like Istio's images, so `strait run` can start it like any other app.

use std::net::SocketAddr;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// productpage, details, reviews, ratings or httpbin.
    pub app: strait_samples::App,
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
}

/// Runs the sample until the process is stopped.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    tokio::spawn(strait_mesh::supervisor::exit_when_gone("sample"));
    strait_samples::run(args.app, args.listen).await?;
    Ok(ExitCode::SUCCESS)
}
