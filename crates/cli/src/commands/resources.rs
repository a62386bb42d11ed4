//! `strait apply|get|delete|validate`: kubectl's commands and output, against the control
//! plane's REST API (validate works offline).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::{Value, json};
use strait_api::Kind;
use strait_control::store::{ActionResult, Store, StoreError, WriteOutcome};

use super::client::{Client, ServerArgs, encode};
use super::files::{Manifest, read_manifests};
use super::table::resource_table;

/// `apply` arguments.
#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// File, directory (recursively: *.yaml, *.yml, *.json) or `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filename: Vec<PathBuf>,
    /// Show what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Output formats of `get`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetOutput {
    /// The resources as YAML.
    Yaml,
    /// The resources as JSON.
    Json,
    /// The table (Istio's CRDs declare no extra wide columns).
    Wide,
}

/// `get` arguments.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// Kind: name, plural or short name (`vs`, `dr`, `gw`, `se`, `we`, `pa`, `ap`, `ra`),
    /// comma-separated list, or `all`.
    pub kind: String,
    /// Resource name; all resources of the kind when absent.
    pub name: Option<String>,
    /// Namespace (default `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<GetOutput>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `delete` arguments.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Delete the resources named in these files (or directories, or `-`).
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filename: Vec<PathBuf>,
    /// Kind (as for `get`), when deleting by name.
    pub kind: Option<String>,
    /// Names to delete.
    pub names: Vec<String>,
    /// Namespace (default `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `validate` arguments.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// File, directory (recursively) or `-`. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filename: Vec<PathBuf>,
}

/// What offline validation found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OfflineCheck {
    /// Istio resources that passed.
    pub resources: usize,
    /// One line per problem: file, document, resource, field path, reason.
    pub errors: Vec<String>,
    /// Informational lines (skipped Kubernetes objects).
    pub notes: Vec<String>,
}

/// Validates manifests exactly as the control plane's store will (a dry run against an empty
/// in-memory store), so `validate` and `apply` never disagree.
pub fn check_offline(manifests: &[Manifest]) -> OfflineCheck {
    let store = Store::in_memory();
    let mut check = OfflineCheck::default();
    for m in manifests {
        match store.apply_text(&m.text, &m.source, true) {
            Ok(outcome) => {
                check.resources += outcome.results.len();
                check.notes.extend(outcome.notes);
            }
            Err(StoreError::Invalid(errors)) => check.errors.extend(errors.iter().map(ToString::to_string)),
            Err(e) => check.errors.push(e.to_string()),
        }
    }
    check
}

fn print_errors(errors: &[String]) {
    for e in errors {
        eprintln!("error: {e}");
    }
}

/// `virtualservice.networking.istio.io/reviews created`.
pub fn apply_line(result: &ActionResult, dry_run: bool) -> String {
    let suffix = if dry_run { " (dry run)" } else { "" };
    format!(
        "{}/{} {}{suffix}",
        result.kind.qualified(),
        result.name,
        result.action
    )
}

fn outcome_of(body: Value) -> anyhow::Result<WriteOutcome> {
    serde_json::from_value(body).map_err(|e| anyhow::anyhow!("unexpected answer from the control plane: {e}"))
}

/// `strait apply`.
pub async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let manifests = read_manifests(&args.filename)?;
    let check = check_offline(&manifests);
    if !check.errors.is_empty() {
        print_errors(&check.errors);
        return Ok(ExitCode::FAILURE);
    }
    let client = Client::new(&args.server).await?;
    // Several files: let the server check them all before changing anything, so that one bad
    // file leaves the store as it was (each request is atomic on its own).
    if manifests.len() > 1 || args.dry_run {
        let mut errors = Vec::new();
        let mut previews = Vec::new();
        for m in &manifests {
            let answer = client
                .post_manifest("/api/v1/apply?dryRun=true", &m.source, &m.text)
                .await?;
            if answer.status == 200 {
                previews.push(outcome_of(answer.body)?);
            } else {
                errors.extend(answer.errors());
            }
        }
        if !errors.is_empty() {
            print_errors(&errors);
            return Ok(ExitCode::FAILURE);
        }
        if args.dry_run {
            for outcome in previews {
                print_outcome(&outcome, true);
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
    for m in &manifests {
        let answer = client.post_manifest("/api/v1/apply", &m.source, &m.text).await?;
        if answer.status != 200 {
            print_errors(&answer.errors());
            return Ok(ExitCode::FAILURE);
        }
        print_outcome(&outcome_of(answer.body)?, false);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(outcome: &WriteOutcome, dry_run: bool) {
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    for r in &outcome.results {
        println!("{}", apply_line(r, dry_run));
    }
    for warning in &outcome.warnings {
        eprintln!("{warning}");
    }
}

/// Kinds named on the command line: one, a comma-separated list, or `all`.
pub fn parse_kinds(arg: &str) -> Result<Vec<Kind>, String> {
    if arg.eq_ignore_ascii_case("all") {
        return Ok(Kind::ALL.to_vec());
    }
    arg.split(',')
        .map(|k| {
            Kind::parse(k.trim()).ok_or_else(|| format!("the server doesn't have a resource type \"{k}\""))
        })
        .collect()
}

/// kubectl's message for a missing resource.
fn not_found(kind: Kind, name: &str) -> String {
    format!(
        "Error from server (NotFound): {}.{} \"{name}\" not found",
        kind.plural(),
        kind.group()
    )
}

/// `strait get`.
pub async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let kinds = match parse_kinds(&args.kind) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let namespace = args.namespace.clone().unwrap_or_else(|| "default".into());
    let client = Client::new(&args.server).await?;
    let now = SystemTime::now();

    if let Some(name) = &args.name {
        if args.all_namespaces {
            eprintln!("error: a resource cannot be retrieved by name across all namespaces");
            return Ok(ExitCode::FAILURE);
        }
        let [kind] = kinds.as_slice() else {
            eprintln!(
                "error: a resource name needs exactly one kind, got \"{}\"",
                args.kind
            );
            return Ok(ExitCode::FAILURE);
        };
        let path = format!(
            "/api/v1/resources/{}/{}/{}",
            kind.plural(),
            encode(&namespace),
            encode(name)
        );
        let answer = client.get(&path).await?;
        match answer.status {
            200 => {}
            404 => {
                eprintln!("{}", not_found(*kind, name));
                return Ok(ExitCode::FAILURE);
            }
            _ => {
                print_errors(&answer.errors());
                return Ok(ExitCode::FAILURE);
            }
        }
        match args.output {
            Some(GetOutput::Json) => println!("{}", serde_json::to_string_pretty(&answer.body)?),
            Some(GetOutput::Yaml) => print!("{}", to_yaml(&answer.body)?),
            _ => print!(
                "{}",
                resource_table(*kind, &[answer.body], args.all_namespaces, false, now)
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut listed: Vec<(Kind, Vec<Value>)> = Vec::new();
    for kind in &kinds {
        let mut path = format!("/api/v1/resources/{}", kind.plural());
        if !args.all_namespaces {
            path.push_str(&format!("?namespace={}", encode(&namespace)));
        }
        let answer = client.get(&path).await?;
        if answer.status != 200 {
            print_errors(&answer.errors());
            return Ok(ExitCode::FAILURE);
        }
        let items = answer
            .body
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        listed.push((*kind, items));
    }
    match args.output {
        Some(GetOutput::Json | GetOutput::Yaml) => {
            let items: Vec<Value> = listed.into_iter().flat_map(|(_, items)| items).collect();
            let list = json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}});
            if args.output == Some(GetOutput::Json) {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", to_yaml(&list)?);
            }
        }
        _ => {
            let tables = list_tables(&listed, args.all_namespaces, kinds.len() > 1, now);
            if tables.is_empty() {
                if args.all_namespaces {
                    eprintln!("No resources found");
                } else {
                    eprintln!("No resources found in {namespace} namespace.");
                }
            } else {
                print!("{tables}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The tables of a listing, one per kind that has resources, separated by a blank line.
pub fn list_tables(
    listed: &[(Kind, Vec<Value>)],
    all_namespaces: bool,
    qualified: bool,
    now: SystemTime,
) -> String {
    listed
        .iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(kind, items)| resource_table(*kind, items, all_namespaces, qualified, now))
        .collect::<Vec<_>>()
        .join("\n")
}

fn to_yaml(value: &Value) -> anyhow::Result<String> {
    serde_saphyr::to_string(value).map_err(|e| anyhow::anyhow!("cannot print YAML: {e}"))
}

/// `virtualservice.networking.istio.io "reviews" deleted`.
pub fn delete_line(result: &ActionResult) -> String {
    format!("{} \"{}\" deleted", result.kind.qualified(), result.name)
}

/// `strait delete`.
pub async fn delete(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    if !args.filename.is_empty() {
        if args.kind.is_some() {
            anyhow::bail!("give either -f FILE or KIND NAME, not both");
        }
        let manifests = read_manifests(&args.filename)?;
        let client = Client::new(&args.server).await?;
        for m in &manifests {
            let answer = client.post_manifest("/api/v1/delete", &m.source, &m.text).await?;
            match answer.status {
                200 | 404 => {
                    for r in answer
                        .body
                        .get("results")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Ok(r) = serde_json::from_value::<ActionResult>(r.clone()) {
                            println!("{}", delete_line(&r));
                        }
                    }
                    if answer.status == 404 && !args.ignore_not_found {
                        for e in answer.errors() {
                            eprintln!("Error from server (NotFound): {e}");
                        }
                        failed = true;
                    }
                }
                _ => {
                    print_errors(&answer.errors());
                    failed = true;
                }
            }
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let Some(kind_arg) = &args.kind else {
        anyhow::bail!("say what to delete: `strait delete -f FILE` or `strait delete KIND NAME`");
    };
    let kind = match parse_kinds(kind_arg).as_deref() {
        Ok([kind]) => *kind,
        Ok(_) => anyhow::bail!("delete by name needs exactly one kind, got \"{kind_arg}\""),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.names.is_empty() {
        anyhow::bail!(
            "resource(s) were provided, but no name was specified: `strait delete {kind_arg} NAME`"
        );
    }
    let namespace = args.namespace.clone().unwrap_or_else(|| "default".into());
    let client = Client::new(&args.server).await?;
    for name in &args.names {
        let path = format!(
            "/api/v1/resources/{}/{}/{}",
            kind.plural(),
            encode(&namespace),
            encode(name)
        );
        let answer = client.delete(&path).await?;
        match answer.status {
            200 => println!(
                "{}",
                delete_line(&ActionResult {
                    kind,
                    namespace: namespace.clone(),
                    name: name.clone(),
                    action: strait_control::store::Action::Deleted,
                })
            ),
            404 if args.ignore_not_found => {}
            404 => {
                eprintln!("{}", not_found(kind, name));
                failed = true;
            }
            _ => {
                print_errors(&answer.errors());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `✔ 12 resources valid`.
pub fn valid_line(count: usize) -> String {
    format!("✔ {count} resource{} valid", if count == 1 { "" } else { "s" })
}

/// `strait validate`.
pub async fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let manifests = read_manifests(&args.filename)?;
    let check = check_offline(&manifests);
    for note in &check.notes {
        eprintln!("note: {note}");
    }
    if !check.errors.is_empty() {
        print_errors(&check.errors);
        eprintln!(
            "✘ {} error{} found",
            check.errors.len(),
            if check.errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{}", valid_line(check.resources));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use strait_control::store::Action;

    use super::*;

    #[test]
    fn kubectl_lines() {
        let r = ActionResult {
            kind: Kind::VirtualService,
            namespace: "default".into(),
            name: "reviews".into(),
            action: Action::Configured,
        };
        assert_eq!(
            apply_line(&r, false),
            "virtualservice.networking.istio.io/reviews configured"
        );
        assert_eq!(
            apply_line(&r, true),
            "virtualservice.networking.istio.io/reviews configured (dry run)"
        );
        assert_eq!(
            delete_line(&r),
            "virtualservice.networking.istio.io \"reviews\" deleted"
        );
        assert_eq!(
            not_found(Kind::DestinationRule, "x"),
            "Error from server (NotFound): destinationrules.networking.istio.io \"x\" not found"
        );
        assert_eq!(valid_line(12), "✔ 12 resources valid");
        assert_eq!(valid_line(1), "✔ 1 resource valid");
    }

    #[test]
    fn kinds_from_the_command_line() {
        assert_eq!(
            parse_kinds("vs,dr"),
            Ok(vec![Kind::VirtualService, Kind::DestinationRule])
        );
        assert_eq!(parse_kinds("all").map(|k| k.len()), Ok(8));
        assert_eq!(
            parse_kinds("pods"),
            Err("the server doesn't have a resource type \"pods\"".to_string())
        );
    }

    #[test]
    fn offline_check_reports_file_document_resource_and_path() {
        let good = Manifest {
            source: "good.yaml".into(),
            text: "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n\
                   spec: {host: reviews}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n"
                .into(),
        };
        let bad = Manifest {
            source: "bad.yaml".into(),
            text: "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: Bad}\n\
                   spec: {host: reviews}\n"
                .into(),
        };
        let check = check_offline(std::slice::from_ref(&good));
        assert_eq!(
            (check.resources, check.errors.len(), check.notes.len()),
            (1, 0, 1)
        );
        let check = check_offline(&[good, bad]);
        assert_eq!(check.errors.len(), 1);
        assert!(
            check.errors[0]
                .starts_with("bad.yaml (document 1): DestinationRule default/Bad: metadata.name: "),
            "{:?}",
            check.errors
        );
    }

    /// The commands against a real control plane in this process, over its REST socket.
    #[tokio::test]
    async fn apply_get_delete_against_a_control_plane() {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let store = std::sync::Arc::new(Store::in_memory());
        let cp = strait_control::start_with_store(store.clone(), any, any)
            .await
            .expect("start");
        let server = ServerArgs {
            server: format!("http://{}", cp.rest_addr),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let dr = dir.path().join("dr.yaml");
        std::fs::write(&dr, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec: {host: reviews}\n").expect("write");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: Bad}\nspec: {host: reviews}\n").expect("write");

        let apply_args = |files: Vec<PathBuf>, dry_run| ApplyArgs {
            filename: files,
            dry_run,
            server: server.clone(),
        };
        assert_eq!(
            apply(apply_args(vec![dr.clone(), bad], false))
                .await
                .expect("apply"),
            ExitCode::FAILURE
        );
        assert_eq!(store.revision(), 0, "one bad file: nothing applied");
        assert_eq!(
            apply(apply_args(vec![dr.clone()], true)).await.expect("apply"),
            ExitCode::SUCCESS
        );
        assert_eq!(store.revision(), 0, "dry run");
        assert_eq!(
            apply(apply_args(vec![dr.clone()], false)).await.expect("apply"),
            ExitCode::SUCCESS
        );
        assert!(store.get(Kind::DestinationRule, "default", "reviews").is_some());

        let get_args = |kind: &str, name: Option<&str>| GetArgs {
            kind: kind.into(),
            name: name.map(Into::into),
            namespace: None,
            all_namespaces: false,
            output: None,
            server: server.clone(),
        };
        assert_eq!(
            get(get_args("dr", Some("reviews"))).await.expect("get"),
            ExitCode::SUCCESS
        );
        assert_eq!(get(get_args("all", None)).await.expect("get"), ExitCode::SUCCESS);
        assert_eq!(
            get(get_args("dr", Some("nope"))).await.expect("get"),
            ExitCode::FAILURE
        );
        assert_eq!(get(get_args("pods", None)).await.expect("get"), ExitCode::FAILURE);

        let delete_args = |names: Vec<String>| DeleteArgs {
            filename: Vec::new(),
            kind: Some("destinationrule".into()),
            names,
            namespace: None,
            ignore_not_found: false,
            server: server.clone(),
        };
        assert_eq!(
            delete(delete_args(vec!["reviews".into()])).await.expect("delete"),
            ExitCode::SUCCESS
        );
        assert!(store.get(Kind::DestinationRule, "default", "reviews").is_none());
        assert_eq!(
            delete(delete_args(vec!["reviews".into()])).await.expect("delete"),
            ExitCode::FAILURE
        );
        cp.shutdown().await.expect("shutdown");

        // With the control plane gone, the error says where it looked and how to start one.
        let err = get(get_args("dr", None)).await.expect_err("no server");
        assert!(
            format!("{err:#}").contains("cannot reach the control plane at http://127.0.0.1:"),
            "{err:#}"
        );
    }

    #[test]
    fn listing_tables_skip_empty_kinds() {
        let now = SystemTime::now();
        let dr =
            json!({"metadata": {"name": "reviews", "namespace": "default"}, "spec": {"host": "reviews"}});
        let listed = vec![(Kind::Gateway, vec![]), (Kind::DestinationRule, vec![dr])];
        assert_eq!(
            list_tables(&listed, false, true, now),
            "NAME                                          HOST      AGE\n\
             destinationrule.networking.istio.io/reviews   reviews   <unknown>\n"
        );
        assert_eq!(list_tables(&[(Kind::Gateway, vec![])], false, false, now), "");
    }
}
