//! `strait analyze -f PATH`: istioctl analyze's cross-resource checks on files, offline.
//!
//! Output and exit codes follow istioctl: one line per finding
//! (`Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviews"`),
//! `✔ No validation issues found …` when clean, exit 79 when a finding reaches the failure
//! threshold (Error by default) and 65 when the input cannot be parsed.

use std::path::PathBuf;
use std::process::ExitCode;

use strait_api::analyze::{Level, analyze_documents};
use strait_api::parse_documents;

use super::files::read_manifests;

/// istioctl's exit code when analysis finds issues at or above the threshold.
const EXIT_ISSUES: u8 = 79;
/// istioctl's exit code when the input does not parse.
const EXIT_PARSE: u8 = 65;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (recursively) to analyze together; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filename: Vec<PathBuf>,
    /// Lowest level that makes the command fail: Error, Warning or Info.
    #[arg(long, default_value = "Error")]
    pub failure_threshold: String,
}

/// Runs the analysis over every document of every file at once (references cross files).
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threshold = match args.failure_threshold.to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "warning" => Level::Warning,
        "info" => Level::Info,
        other => anyhow::bail!("--failure-threshold must be Error, Warning or Info, not {other:?}"),
    };
    let mut docs = Vec::new();
    let mut parse_failed = false;
    for m in read_manifests(&args.filename)? {
        match parse_documents(&m.text, &m.source) {
            Ok(d) => docs.extend(d),
            Err(errors) => {
                parse_failed = true;
                for e in errors {
                    eprintln!("Error [IST0106] {e}");
                }
            }
        }
    }
    if parse_failed {
        return Ok(ExitCode::from(EXIT_PARSE));
    }
    let findings = analyze_documents(&docs);
    if findings.is_empty() {
        println!("✔ No validation issues found when analyzing the given files.");
        return Ok(ExitCode::SUCCESS);
    }
    for f in &findings {
        println!("{f}");
    }
    // Level orders Error < Warning < Info: "at or above the threshold" is "<=".
    let failing = findings.iter().any(|f| f.level <= threshold);
    Ok(if failing {
        ExitCode::from(EXIT_ISSUES)
    } else {
        ExitCode::SUCCESS
    })
}
