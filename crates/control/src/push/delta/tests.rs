//! Spans over per-service groups must rebuild exactly the new list, whatever changed.

use proptest::prelude::*;
use strait_mesh::delta::Span;
use strait_mesh::{Cluster, ConfigDelta, ProxyConfig};

use super::*;

fn cluster(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        ..Cluster::default()
    }
}

/// A group of clusters named `names`, serialized as the compiler does.
fn group(names: &[String]) -> JsonItems {
    let clusters: Vec<Cluster> = names.iter().map(|n| cluster(n)).collect();
    let json = serde_json::to_vec(&clusters).expect("json");
    JsonItems {
        json: json[1..json.len() - 1].into(),
        count: names.len() as u32,
    }
}

/// What the proxy makes of `old` with the spans.
fn rebuilt(old: &[Vec<String>], new: &[Vec<String>]) -> Vec<String> {
    let old_groups: Vec<JsonItems> = old.iter().map(|g| group(g)).collect();
    let new_groups: Vec<JsonItems> = new.iter().map(|g| group(g)).collect();
    let json = [&b"{\"clusters\":["[..], &spans(&old_groups, &new_groups), b"]}"].concat();
    let delta =
        ConfigDelta::from_json(&json).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json)));
    let base = ProxyConfig {
        clusters: old.iter().flatten().map(|n| cluster(n)).collect(),
        ..ProxyConfig::default()
    };
    let next = delta.apply(&base).expect("applies");
    next.clusters.into_iter().map(|c| c.name).collect()
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn one_changed_group_among_many_is_one_items_span_between_two_keeps() {
    let old: Vec<Vec<String>> = (0..100).map(|i| names(&format!("s{i}-"), 2)).collect();
    let mut new = old.clone();
    new[50] = names("changed-", 3);
    let old_groups: Vec<JsonItems> = old.iter().map(|g| group(g)).collect();
    let new_groups: Vec<JsonItems> = new.iter().map(|g| group(g)).collect();
    let json = String::from_utf8(spans(&old_groups, &new_groups)).expect("utf-8");
    assert!(json.starts_with("{\"keep\":[0,100]},{\"items\":["), "{json}");
    assert!(json.ends_with("]},{\"keep\":[102,98]}"), "{json}");
    assert_eq!(rebuilt(&old, &new), new.concat());
    // Unchanged: one keep of everything.
    let same = String::from_utf8(spans(&old_groups, &old_groups)).expect("utf-8");
    assert_eq!(same, "{\"keep\":[0,200]}");
}

/// An edit script applied to a list of groups.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Remove(usize),
    Change(usize, usize),
    Empty(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..64usize, 0..4usize).prop_map(|(at, n)| Edit::Insert(at, n)),
        (0..64usize).prop_map(Edit::Remove),
        (0..64usize, 0..4usize).prop_map(|(at, n)| Edit::Change(at, n)),
        (0..64usize).prop_map(Edit::Empty),
    ]
}

proptest! {
    #[test]
    fn spans_rebuild_the_new_list_after_any_edits(
        sizes in proptest::collection::vec(0..4usize, 0..40),
        edits in proptest::collection::vec(edit(), 0..12),
    ) {
        let old: Vec<Vec<String>> = sizes.iter().enumerate().map(|(i, n)| names(&format!("g{i}-"), *n)).collect();
        let mut new = old.clone();
        for (k, e) in edits.iter().enumerate() {
            let len = new.len();
            match *e {
                Edit::Insert(at, n) => new.insert(at.min(len), names(&format!("new{k}-"), n)),
                Edit::Remove(at) if len > 0 => { new.remove(at % len); }
                Edit::Change(at, n) if len > 0 => new[at % len] = names(&format!("chg{k}-"), n),
                Edit::Empty(at) if len > 0 => new[at % len].clear(),
                _ => {}
            }
        }
        prop_assert_eq!(rebuilt(&old, &new), new.concat());
    }
}

#[test]
fn keep_and_items_spans_decode_as_the_mesh_types() {
    let json = spans(
        &[group(&names("a", 2))],
        &[group(&names("a", 2)), group(&names("b", 1))],
    );
    let delta: Vec<Span<Cluster>> =
        serde_json::from_slice(&[&b"["[..], &json, b"]"].concat()).expect("spans decode");
    assert_eq!(delta, vec![Span::Keep([0, 2]), Span::Items(vec![cluster("b0")])]);
}
