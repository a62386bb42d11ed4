//! The command line of `strait-proxy`: exactly the flags of `strait proxy`, parsed by hand.
//!
//! Why not clap: clap's parser, help renderer and error formatter are start-up code, and every
//! 64 KB window of code touched at start-up stays resident in an idle proxy (fault-around). The
//! flag set is small and fixed, so a plain loop does the same job in a few pages.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Default control-plane gRPC address (same as `strait proxy`).
pub const DEFAULT_CONTROL_PLANE: &str = "http://127.0.0.1:15010";

/// What to run, as `strait proxy` would read it from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--config FILE`: run this static configuration instead of following a control plane.
    pub config: Option<PathBuf>,
    /// `--control-plane URL` (env `STRAIT_CONTROL_PLANE`).
    pub control_plane: String,
    /// `--role`: `sidecar` or `gateway`.
    pub role: String,
    /// `--workload NAME`.
    pub workload: String,
    /// `--namespace`/`-n NS`.
    pub namespace: String,
    /// `--labels k=v,k=v` (repeatable; every value split on commas).
    pub labels: Vec<String>,
    /// `--service-account NAME`.
    pub service_account: String,
    /// `--address IP`: sidecar listeners bind here.
    pub address: IpAddr,
    /// `--admin ADDR`; default `<address>:15000`.
    pub admin: Option<SocketAddr>,
    /// `--no-access-log`.
    pub no_access_log: bool,
    /// `--concurrency N` (N >= 1).
    pub concurrency: Option<NonZeroUsize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: None,
            control_plane: DEFAULT_CONTROL_PLANE.into(),
            role: "sidecar".into(),
            workload: "proxy".into(),
            namespace: "default".into(),
            labels: Vec::new(),
            service_account: "default".into(),
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            admin: None,
            no_access_log: false,
            concurrency: None,
        }
    }
}

/// The outcome of reading the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the proxy.
    Run(Box<Options>),
    /// `--help`/`-h`: print [`HELP`].
    Help,
    /// `--version`/`-V`: print the version.
    Version,
}

/// A command line `strait-proxy` cannot run; each message says which argument to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A flag that `strait proxy` does not have.
    #[error("unexpected argument '{0}'")]
    Unknown(String),
    /// A flag given without its value.
    #[error("a value is required for '{0}' but none was supplied")]
    MissingValue(&'static str),
    /// A value that does not parse.
    #[error("invalid value '{value}' for '{flag}': {why}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// Why it is wrong.
        why: String,
    },
    /// A single-valued flag given twice (clap says the same).
    #[error("the argument '{0}' cannot be used multiple times")]
    Repeated(&'static str),
    /// A flag that takes no value given one (`--no-access-log=x`).
    #[error("unexpected value '{value}' for '{flag}' found; no more were expected")]
    UnexpectedValue {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// An argument that is not valid UTF-8.
    #[error("an argument is not valid UTF-8: {0}")]
    NotUtf8(String),
}

/// `strait-proxy --help`.
pub const HELP: &str = "\
Run a proxy (sidecar or gateway), from the control plane or a static config file.

The same proxy as `strait proxy`, in a binary without the rest of the CLI (fewer resident pages).

Usage: strait-proxy [OPTIONS]

Options:
      --config <CONFIG>
          Run this static configuration (JSON or YAML `ProxyConfig`) instead of following a control plane
      --control-plane <CONTROL_PLANE>
          Control-plane gRPC address [env: STRAIT_CONTROL_PLANE=] [default: http://127.0.0.1:15010]
      --role <ROLE>
          `sidecar` or `gateway` [default: sidecar]
      --workload <WORKLOAD>
          Workload name (the WorkloadEntry's name for a sidecar) [default: proxy]
  -n, --namespace <NAMESPACE>
          Namespace [default: default]
      --labels <LABELS>
          Workload labels, `k=v,k=v` (a gateway: `istio=ingressgateway`)
      --service-account <SERVICE_ACCOUNT>
          Service account [default: default]
      --address <ADDRESS>
          The workload's address: sidecar listeners bind here [default: 127.0.0.1]
      --admin <ADMIN>
          Admin address (config dump, readiness); default `<address>:15000`
      --no-access-log
          Do not print an access-log line per request (benchmarks compare proxies without logging)
      --concurrency <CONCURRENCY>
          Worker threads (Istio's `--concurrency`). 1 runs everything on one thread, the cheapest shape for
          a sidecar pinned to one core. Default: `TOKIO_WORKER_THREADS`, else one per CPU
  -h, --help
          Print help
  -V, --version
          Print version

Environment: STRAIT_LOG sets the log filter (`warn` by default; `info`, `strait_proxy=debug,warn`, ...).
";

/// The flags that take a value, by long name.
const VALUED: [&str; 10] = [
    "--config",
    "--control-plane",
    "--role",
    "--workload",
    "--namespace",
    "--labels",
    "--service-account",
    "--address",
    "--admin",
    "--concurrency",
];

/// Reads the arguments after the program name. `control_plane_env` is `STRAIT_CONTROL_PLANE`
/// (used when `--control-plane` is absent; an empty value counts as unset).
pub fn parse<I>(args: I, control_plane_env: Option<String>) -> Result<Command, ArgsError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut opts = Options::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut args = args.into_iter();
    while let Some(raw) = args.next() {
        let arg = raw
            .into_string()
            .map_err(|a| ArgsError::NotUtf8(a.to_string_lossy().into_owned()))?;
        let (flag, inline) = split_flag(&arg)?;
        match flag {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--no-access-log" => {
                if let Some(value) = inline {
                    return Err(ArgsError::UnexpectedValue {
                        flag: "--no-access-log",
                        value,
                    });
                }
                once(&mut seen, "--no-access-log")?;
                opts.no_access_log = true;
            }
            _ => {
                let Some(flag) = VALUED.iter().copied().find(|f| *f == flag) else {
                    return Err(ArgsError::Unknown(arg));
                };
                let value = match inline {
                    Some(v) => v,
                    // Like clap, a following flag is not taken as the value.
                    None => match args.next() {
                        Some(v) => {
                            let v = v
                                .into_string()
                                .map_err(|a| ArgsError::NotUtf8(a.to_string_lossy().into_owned()))?;
                            if v.starts_with('-') && v.len() > 1 {
                                return Err(ArgsError::MissingValue(flag));
                            }
                            v
                        }
                        None => return Err(ArgsError::MissingValue(flag)),
                    },
                };
                if flag != "--labels" {
                    once(&mut seen, flag)?;
                }
                set(&mut opts, flag, value)?;
            }
        }
    }
    if !seen.contains(&"--control-plane")
        && let Some(env) = control_plane_env.filter(|v| !v.is_empty())
    {
        opts.control_plane = env;
    }
    Ok(Command::Run(Box::new(opts)))
}

/// `--flag=value` → (`--flag`, Some(value)); `-nVALUE`/`-n=VALUE` → (`--namespace`, Some(VALUE));
/// anything else as is.
fn split_flag(arg: &str) -> Result<(&str, Option<String>), ArgsError> {
    if let Some(long) = arg.strip_prefix("--") {
        if long.is_empty() {
            // `--` ends the flags; `strait proxy` takes no positional arguments.
            return Err(ArgsError::Unknown(arg.into()));
        }
        return Ok(match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (arg, None),
        });
    }
    if let Some(rest) = arg.strip_prefix("-n")
        && !rest.is_empty()
    {
        let value = rest.strip_prefix('=').unwrap_or(rest);
        return Ok(("--namespace", Some(value.to_string())));
    }
    Ok(match arg {
        "-n" => ("--namespace", None),
        _ => (arg, None),
    })
}

fn once(seen: &mut Vec<&'static str>, flag: &'static str) -> Result<(), ArgsError> {
    if seen.contains(&flag) {
        return Err(ArgsError::Repeated(flag));
    }
    seen.push(flag);
    Ok(())
}

fn set(opts: &mut Options, flag: &'static str, value: String) -> Result<(), ArgsError> {
    let invalid = |value: &str, why: String| ArgsError::Invalid {
        flag,
        value: value.to_string(),
        why,
    };
    match flag {
        "--config" => opts.config = Some(PathBuf::from(value)),
        "--control-plane" => opts.control_plane = value,
        "--role" => opts.role = value,
        "--workload" => opts.workload = value,
        "--namespace" => opts.namespace = value,
        "--labels" => opts.labels.extend(value.split(',').map(str::to_string)),
        "--service-account" => opts.service_account = value,
        "--address" => opts.address = value.parse().map_err(|e| invalid(&value, format!("{e}")))?,
        "--admin" => opts.admin = Some(value.parse().map_err(|e| invalid(&value, format!("{e}")))?),
        "--concurrency" => {
            let n: usize = value.parse().map_err(|e| invalid(&value, format!("{e}")))?;
            let n = NonZeroUsize::new(n).ok_or_else(|| invalid(&value, "it must be at least 1".into()))?;
            opts.concurrency = Some(n);
        }
        // VALUED and this match list the same flags.
        _ => return Err(ArgsError::Unknown(flag.into())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn run(args: &[&str]) -> Result<Options, ArgsError> {
        match parse(args.iter().map(OsString::from), None)? {
            Command::Run(o) => Ok(*o),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_strait_proxy() {
        let o = run(&[]).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.control_plane, "http://127.0.0.1:15010");
        assert_eq!(o.role, "sidecar");
        assert_eq!(o.workload, "proxy");
        assert_eq!(o.namespace, "default");
        assert_eq!(o.service_account, "default");
        assert_eq!(o.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn every_flag_of_the_sidecar_spawn_is_read() {
        // What crates/cli/src/commands/workload.rs passes to a sidecar.
        let o = run(&[
            "--role",
            "sidecar",
            "--workload",
            "reviews-v2",
            "--namespace",
            "default",
            "--service-account",
            "bookinfo-reviews",
            "--address",
            "127.10.0.6",
            "--control-plane",
            "http://127.0.0.1:15010",
            "--labels",
            "app=reviews,version=v2",
        ])
        .unwrap();
        assert_eq!(o.workload, "reviews-v2");
        assert_eq!(o.service_account, "bookinfo-reviews");
        assert_eq!(o.address.to_string(), "127.10.0.6");
        assert_eq!(o.labels, ["app=reviews", "version=v2"]);
    }

    #[test]
    fn benchmark_flags_are_read() {
        let o = run(&[
            "--config=/tmp/p.json",
            "--address",
            "127.0.0.1",
            "--admin",
            "127.0.0.1:18102",
            "--no-access-log",
            "--concurrency",
            "1",
        ])
        .unwrap();
        assert_eq!(o.config, Some(PathBuf::from("/tmp/p.json")));
        assert_eq!(o.admin, Some("127.0.0.1:18102".parse().unwrap()));
        assert!(o.no_access_log);
        assert_eq!(o.concurrency.map(NonZeroUsize::get), Some(1));
    }

    #[test]
    fn short_namespace_forms() {
        for args in [&["-n", "ns1"][..], &["-nns1"], &["-n=ns1"], &["--namespace=ns1"]] {
            assert_eq!(run(args).unwrap().namespace, "ns1", "{args:?}");
        }
    }

    #[test]
    fn labels_repeat_and_split_on_commas() {
        let o = run(&["--labels", "a=1,b=2", "--labels=c=3"]).unwrap();
        assert_eq!(o.labels, ["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn control_plane_env_applies_only_without_the_flag() {
        let env = Some("http://10.0.0.1:15010".to_string());
        let Ok(Command::Run(o)) = parse(Vec::<OsString>::new(), env.clone()) else {
            panic!("expected Run")
        };
        assert_eq!(o.control_plane, "http://10.0.0.1:15010");
        let Ok(Command::Run(o)) = parse(["--control-plane", "http://x:1"].map(OsString::from), env) else {
            panic!("expected Run")
        };
        assert_eq!(o.control_plane, "http://x:1");
        let Ok(Command::Run(o)) = parse(Vec::<OsString>::new(), Some(String::new())) else {
            panic!("expected Run")
        };
        assert_eq!(o.control_plane, DEFAULT_CONTROL_PLANE);
    }

    #[test]
    fn help_and_version() {
        for h in ["--help", "-h"] {
            assert_eq!(parse([OsString::from(h)], None), Ok(Command::Help));
        }
        for v in ["--version", "-V"] {
            assert_eq!(parse([OsString::from(v)], None), Ok(Command::Version));
        }
        // Every flag is documented in the help.
        for f in VALUED.iter().chain(&["--no-access-log"]) {
            assert!(
                HELP.contains(&format!("{f} ")) || HELP.contains(&format!("{f}\n")),
                "{f}"
            );
        }
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let cases: &[(&[&str], ArgsError)] = &[
            (&["--bogus"], ArgsError::Unknown("--bogus".into())),
            (&["proxy"], ArgsError::Unknown("proxy".into())),
            (&["--"], ArgsError::Unknown("--".into())),
            (&["--config"], ArgsError::MissingValue("--config")),
            (&["--role", "--no-access-log"], ArgsError::MissingValue("--role")),
            (&["--role", "a", "--role", "b"], ArgsError::Repeated("--role")),
            (
                &["--no-access-log", "--no-access-log"],
                ArgsError::Repeated("--no-access-log"),
            ),
            (
                &["--no-access-log=yes"],
                ArgsError::UnexpectedValue {
                    flag: "--no-access-log",
                    value: "yes".into(),
                },
            ),
        ];
        for (args, want) in cases {
            assert_eq!(run(args).as_ref(), Err(want), "{args:?}");
        }
        for args in [
            &["--concurrency", "0"][..],
            &["--concurrency", "x"],
            &["--address", "localhost"],
            &["--admin", "127.0.0.1"],
        ] {
            assert!(matches!(run(args), Err(ArgsError::Invalid { .. })), "{args:?}");
        }
        let msg = run(&["--concurrency", "0"]).unwrap_err().to_string();
        assert!(
            msg.contains("--concurrency") && msg.contains("at least 1"),
            "{msg}"
        );
    }

    proptest! {
        /// Any argument list either parses or yields an error: never a panic.
        #[test]
        fn never_panics(args in proptest::collection::vec("(-{0,2})[a-z=0-9.:-]{0,12}", 0..6)) {
            let _ = parse(args.into_iter().map(OsString::from), None);
        }

        /// A value given with `=` or as the next argument reads the same.
        #[test]
        fn inline_and_separate_values_agree(
            flag in proptest::sample::select(&["--role", "--workload", "--namespace", "--service-account"][..]),
            value in "[a-z0-9][a-z0-9.=-]{0,15}",
        ) {
            let a = parse([OsString::from(format!("{flag}={value}"))], None);
            let b = parse([OsString::from(flag), OsString::from(value.clone())], None);
            prop_assert_eq!(a, b);
        }

        /// Concurrency accepts exactly the positive integers.
        #[test]
        fn concurrency_is_positive(n in 0usize..100_000) {
            let r = run(&["--concurrency", &n.to_string()]);
            prop_assert_eq!(r.is_ok(), n > 0);
        }
    }
}
