//! Bad input gets a clear error and loses nothing: the store and the running mesh are unchanged.

use strait_e2e::{Demo, istio_samples, stars};

#[test]
fn invalid_config_is_rejected_and_changes_nothing() {
    let demo = Demo::start(43);
    let all_v1 = istio_samples().join("samples/bookinfo/networking/virtual-service-all-v1.yaml");
    demo.apply(&all_v1);
    demo.wait_synced();
    let before = demo.strait(&["get", "vs", "-o", "json"]);
    assert!(before.status.success());

    let dir = std::env::temp_dir().join(format!("strait-e2e-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "malformed.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x\n",
            &["malformed.yaml"],
        ),
        (
            "unknown-field.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {hostt: reviews}\n",
            &["unknown-field.yaml", "VirtualService default/reviews", "hostt"],
        ),
        (
            // The first document is valid, the second is not: nothing of the file may be applied.
            "partly-invalid.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec:\n  hosts: [bad]\n  http:\n  - route:\n    - {destination: {host: a}, weight: 0}\n    - {destination: {host: b}, weight: 0}\n",
            &["partly-invalid.yaml", "VirtualService default/bad", "weight"],
        ),
        (
            "wrong-version.yaml",
            "apiVersion: networking.istio.io/v9\nkind: VirtualService\nmetadata: {name: reviews}\nspec: {hosts: [reviews]}\n",
            &["wrong-version.yaml", "apiVersion"],
        ),
    ];
    for (name, yaml, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, yaml).expect("write case");
        let out = demo.strait(&["apply", "-f", &path.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} must be rejected");
        for e in expected {
            assert!(stderr.contains(e), "{name}: error should mention {e:?}: {stderr}");
        }
        let after = demo.strait(&["get", "vs", "-o", "json"]);
        assert_eq!(before.stdout, after.stdout, "{name} changed the store");
    }
    // A VirtualService pointing at nothing is valid on its own: it is written, with istioctl
    // analyze's warning, and the mesh keeps working.
    let nowhere = dir.join("nowhere.yaml");
    std::fs::write(
        &nowhere,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: nowhere}\nspec:\n  hosts: [nowhere]\n  http:\n  - route:\n    - destination: {host: nowhere}\n",
    )
    .expect("write case");
    let out = demo.strait(&["apply", "-f", &nowhere.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "Error [IST0101] (VirtualService default/nowhere) Referenced host not found: \"nowhere\""
        ),
        "analyzer warning expected: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    demo.wait_synced();

    // The mesh still runs the last good config: all-v1, no stars.
    for _ in 0..5 {
        let page = demo.get("/productpage", &[]).expect("productpage");
        assert_eq!(page.status, 200);
        assert_eq!(stars(&page.body), 0);
    }
    let status = demo.strait(&["proxy-status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        !text.contains("NACK"),
        "no proxy should have been sent an invalid config: {text}"
    );
}

#[test]
fn a_second_demo_on_the_same_addresses_says_one_is_running() {
    let demo = Demo::start(45);
    let mut second = std::process::Command::new(strait_e2e::strait_bin())
        .args([
            "demo",
            "--subnet",
            "45",
            "--gateway-address",
            "127.45.0.1",
            "--control-address",
        ])
        .arg(demo.rest.ip().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second demo");
    let status = strait_e2e::eventually(
        "the second demo to give up",
        std::time::Duration::from_secs(20),
        || second.try_wait().ok().flatten(),
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr).expect("read");
    assert!(!status.success());
    assert!(stderr.contains("already running"), "{stderr}");
    // The first one is unharmed.
    assert_eq!(demo.get("/productpage", &[]).expect("productpage").status, 200);
}
