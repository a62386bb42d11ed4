//! `strait validate` as a user runs it: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared() -> PathBuf {
    std::env::var_os("STRAIT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn strait(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("run strait")
}

#[test]
fn project_bookinfo_samples_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/bookinfo/networking");
    let out = strait(&["validate", "-f", &dir.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn istio_bookinfo_samples_validate_unchanged() {
    let dir = shared().join("istio-samples/samples/bookinfo/networking");
    let out = strait(&["validate", "-f", &dir.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_file_exits_non_zero_naming_file_resource_and_field() {
    let dir = std::env::temp_dir().join(format!("strait-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - match:\n    - uri: {regex: \"(unclosed\"}\n    route:\n    - destination: {host: reviews}\n",
    )
    .expect("write");
    let out = strait(&["validate", "-f", &file.to_string_lossy()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "an invalid regex must fail validation");
    for needle in [
        "bad.yaml",
        "VirtualService default/reviews",
        "spec.http[0].match[0].uri",
    ] {
        assert!(err.contains(needle), "error should name {needle:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn standard_input_is_read_with_dash() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["validate", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn analyze_finds_a_route_to_an_undefined_subset_like_istioctl() {
    let dir = std::env::temp_dir().join(format!("strait-analyze-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("mesh.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n  resolution: STATIC\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v4}}]\n",
    )
    .expect("write");
    let out = strait(&["analyze", "-f", &file.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(79), "{stdout}");
    assert!(
        stdout.contains(
            "Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: \"reviews+v4\""
        ),
        "{stdout}"
    );
    // The same mesh with the subset that exists is clean.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .expect("read")
            .replace("subset: v4", "subset: v1"),
    )
    .expect("write");
    let out = strait(&["analyze", "-f", &file.to_string_lossy()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No validation issues found"));
    let _ = std::fs::remove_dir_all(&dir);
}
