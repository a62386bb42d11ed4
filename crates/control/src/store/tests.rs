use super::*;

const VS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
"#;

const VS_V2: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
"#;

const VS_LABELLED: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  labels: {team: books}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
"#;

const DR: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
"#;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports: [{port: 9080, name: http}]
"#;

fn actions(outcome: &WriteOutcome) -> Vec<Action> {
    outcome.results.iter().map(|r| r.action).collect()
}

fn rv(r: &Resource) -> u64 {
    r.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn create_configure_unchanged() {
    let store = Store::in_memory();
    let out = store.apply_text(VS, "vs.yaml", false).expect("apply");
    assert_eq!(actions(&out), [Action::Created]);
    assert_eq!(out.results[0].namespace, "default");
    let created = store
        .get(Kind::VirtualService, "default", "reviews")
        .expect("stored");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(rv(&created), 1);
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert!(
        created
            .metadata
            .creation_timestamp
            .as_deref()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(created.metadata.uid.as_deref().map(str::len), Some(36));

    let out = store.apply_text(VS, "vs.yaml", false).expect("apply");
    assert_eq!(actions(&out), [Action::Unchanged]);
    assert_eq!(store.revision(), 1, "unchanged must not create a revision");

    let out = store.apply_text(VS_V2, "vs.yaml", false).expect("apply");
    assert_eq!(actions(&out), [Action::Configured]);
    let updated = store
        .get(Kind::VirtualService, "default", "reviews")
        .expect("stored");
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(rv(&updated), 2);
    assert_eq!(
        updated.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );
    assert_eq!(updated.metadata.uid, created.metadata.uid);
}

#[test]
fn label_change_is_configured_without_new_generation() {
    let store = Store::in_memory();
    store.apply_text(VS, "vs.yaml", false).expect("apply");
    let out = store.apply_text(VS_LABELLED, "vs.yaml", false).expect("apply");
    assert_eq!(actions(&out), [Action::Configured]);
    let r = store
        .get(Kind::VirtualService, "default", "reviews")
        .expect("stored");
    assert_eq!(r.metadata.generation, Some(1));
    assert_eq!(rv(&r), 2);
}

#[test]
fn resource_version_is_global_and_monotonic() {
    let store = Store::in_memory();
    store
        .apply_text(&format!("{VS}\n---\n{DR}"), "a.yaml", false)
        .expect("apply");
    let vs = store.get(Kind::VirtualService, "default", "reviews").expect("vs");
    let dr = store
        .get(Kind::DestinationRule, "bookinfo", "reviews")
        .expect("dr");
    assert_eq!((rv(&vs), rv(&dr)), (1, 2));
    store
        .delete(Kind::VirtualService, "default", "reviews")
        .expect("delete");
    assert_eq!(store.revision(), 3);
    store.apply_text(VS, "vs.yaml", false).expect("apply");
    let vs = store.get(Kind::VirtualService, "default", "reviews").expect("vs");
    assert_eq!(rv(&vs), 4);
    assert_eq!(
        vs.metadata.generation,
        Some(1),
        "re-created after delete starts over"
    );
}

#[test]
fn invalid_document_changes_nothing_and_reports_all_errors() {
    let store = Store::in_memory();
    store.apply_text(VS, "vs.yaml", false).expect("apply");
    let bad_field =
        "apiVersion: networking.istio.io/v9\nkind: DestinationRule\nmetadata: {name: x}\nspec: {host: a}\n";
    let bad_name = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: Bad_Name}\nspec: {host: a}\n";
    let text = format!("{VS_V2}\n---\n{DR}\n---\n{bad_field}\n---\n{bad_name}");
    match store.apply_text(&text, "multi.yaml", false) {
        Err(StoreError::Invalid(errors)) => {
            assert!(!errors.is_empty());
            assert!(errors.iter().all(|e| e.source == "multi.yaml"));
            assert!(errors.iter().any(|e| e.document == 3), "{errors:?}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Names are checked even when the spec parses.
    match store.apply_text(&format!("{DR}\n---\n{bad_name}"), "names.yaml", false) {
        Err(StoreError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].path, "metadata.name");
            assert_eq!(errors[0].document, 2);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(store.revision(), 1);
    assert_eq!(store.list(None, None).len(), 1);
    let vs = store.get(Kind::VirtualService, "default", "reviews").expect("vs");
    assert_eq!(vs.metadata.generation, Some(1));
}

#[test]
fn kubernetes_objects_are_skipped_with_a_note() {
    let store = Store::in_memory();
    let out = store
        .apply_text(&format!("{SERVICE}\n---\n{VS}"), "a.yaml", false)
        .expect("apply");
    assert_eq!(actions(&out), [Action::Created]);
    assert_eq!(out.notes.len(), 1);
    assert!(
        out.notes[0].starts_with("service/reviews skipped"),
        "{:?}",
        out.notes
    );
}

#[test]
fn dry_run_changes_nothing() {
    let store = Store::in_memory();
    let out = store.apply_text(VS, "vs.yaml", true).expect("apply");
    assert_eq!(actions(&out), [Action::Created]);
    assert_eq!(store.revision(), 0);
    assert!(store.list(None, None).is_empty());
}

#[test]
fn list_filters_and_delete_reports_missing() {
    let store = Store::in_memory();
    store
        .apply_text(&format!("{VS}\n---\n{DR}"), "a.yaml", false)
        .expect("apply");
    assert_eq!(store.list(Some(Kind::DestinationRule), None).len(), 1);
    assert_eq!(store.list(None, Some("bookinfo")).len(), 1);
    assert_eq!(store.list(Some(Kind::VirtualService), Some("bookinfo")).len(), 0);
    assert!(matches!(
        store.delete(Kind::Gateway, "default", "nope"),
        Err(StoreError::NotFound(_))
    ));
    let err = store
        .delete(Kind::Gateway, "default", "nope")
        .expect_err("missing");
    assert_eq!(
        err.to_string(),
        "gateways.networking.istio.io \"nope\" not found in namespace \"default\""
    );
    let gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gone}\nspec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]}\n";
    match store.delete_text(&format!("{VS}\n---\n{gw}"), "d.yaml") {
        Err(StoreError::PartlyNotFound { deleted, missing }) => {
            assert_eq!(actions(&deleted), [Action::Deleted]);
            assert_eq!(missing, [ResourceKey::new(Kind::Gateway, "default", "gone")]);
        }
        other => panic!("expected PartlyNotFound, got {other:?}"),
    }
    assert!(store.get(Kind::VirtualService, "default", "reviews").is_none());
}

#[test]
fn changes_are_notified() {
    let store = Store::in_memory();
    let mut rx = store.subscribe();
    store.apply_text(VS, "vs.yaml", false).expect("apply");
    assert!(rx.has_changed().expect("sender alive"));
    assert_eq!(*rx.borrow_and_update(), 1);
    store.apply_text(VS, "vs.yaml", false).expect("apply");
    assert!(
        !rx.has_changed().expect("sender alive"),
        "unchanged apply must not notify"
    );
    let snap = store.shared_snapshot();
    assert_eq!(snap.revision, 1);
    assert_eq!(snap.resources.len(), 1);
}

#[test]
fn persists_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let created = {
        let store = Store::open(dir.path()).expect("open");
        store
            .apply_text(&format!("{VS}\n---\n{DR}"), "a.yaml", false)
            .expect("apply");
        store
            .delete(Kind::DestinationRule, "bookinfo", "reviews")
            .expect("delete");
        store.get(Kind::VirtualService, "default", "reviews").expect("vs")
    };
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.revision(),
        3,
        "the revision survives, even when the last write was a delete"
    );
    assert_eq!(store.list(None, None).len(), 1);
    let loaded = store.get(Kind::VirtualService, "default", "reviews").expect("vs");
    assert_eq!(loaded, created);
    let out = store.apply_text(VS_V2, "vs.yaml", false).expect("apply");
    assert_eq!(actions(&out), [Action::Configured]);
    let updated = store.get(Kind::VirtualService, "default", "reviews").expect("vs");
    assert_eq!(rv(&updated), 4);
    assert_eq!(
        updated.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );
}

#[test]
fn atomic_writes_leave_no_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .apply_text(&format!("{VS}\n---\n{DR}"), "a.yaml", false)
        .expect("apply");
    store.apply_text(VS_V2, "vs.yaml", false).expect("apply");
    let files: Vec<String> = std::fs::read_dir(dir.path().join("resources"))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "destinationrules.bookinfo.reviews.json",
            "virtualservices.default.reviews.json"
        ]
    );
    let root: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(root.iter().all(|f| !f.ends_with(".tmp")), "{root:?}");
}

#[test]
fn leftover_temp_files_are_cleaned_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        store.apply_text(VS, "vs.yaml", false).expect("apply");
    }
    let stray = dir
        .path()
        .join("resources")
        .join(".virtualservices.default.x.json.tmp");
    std::fs::write(&stray, b"{half").expect("write");
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.list(None, None).len(), 1);
    assert!(!stray.exists());
}

#[test]
fn a_write_shares_every_unchanged_resource_with_the_previous_snapshot() {
    let store = Store::in_memory();
    store.apply_text(VS, "t", false).unwrap();
    store.apply_text(DR, "t", false).unwrap();
    let before = store.shared_snapshot();
    store.apply_text(VS_V2, "t", false).unwrap();
    let after = store.shared_snapshot();
    assert_eq!(before.resources.len(), 2);
    assert_eq!(after.resources.len(), 2);
    let find = |s: &Snapshot, kind: Kind| {
        s.resources
            .iter()
            .find(|r| r.kind == kind)
            .cloned()
            .expect("resource in snapshot")
    };
    assert!(
        Arc::ptr_eq(
            &find(&before, Kind::DestinationRule),
            &find(&after, Kind::DestinationRule)
        ),
        "the DestinationRule did not change: the same resource, not a copy"
    );
    let (old, new) = (
        find(&before, Kind::VirtualService),
        find(&after, Kind::VirtualService),
    );
    assert!(!Arc::ptr_eq(&old, &new));
    assert_ne!(
        old.spec, new.spec,
        "the older snapshot still sees the older VirtualService"
    );
}
