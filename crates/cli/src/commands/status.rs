//! `strait proxy-status|proxy-config`.

use std::process::ExitCode;

/// `proxy-status` arguments.
#[derive(clap::Args)]
pub struct ProxyStatusArgs {}
/// `proxy-config` arguments.
#[derive(clap::Args)]
pub struct ProxyConfigArgs {}

/// `strait proxy-status`.
pub async fn proxy_status(_a: ProxyStatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// `strait proxy-config`.
pub async fn proxy_config(_a: ProxyConfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
