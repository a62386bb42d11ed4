//! `strait apply|get|delete|validate`.

use std::process::ExitCode;

/// `apply` arguments.
#[derive(clap::Args)]
pub struct ApplyArgs {}
/// `get` arguments.
#[derive(clap::Args)]
pub struct GetArgs {}
/// `delete` arguments.
#[derive(clap::Args)]
pub struct DeleteArgs {}
/// `validate` arguments.
#[derive(clap::Args)]
pub struct ValidateArgs {}

/// `strait apply`.
pub async fn apply(_a: ApplyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// `strait get`.
pub async fn get(_a: GetArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// `strait delete`.
pub async fn delete(_a: DeleteArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// `strait validate`.
pub async fn validate(_a: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
