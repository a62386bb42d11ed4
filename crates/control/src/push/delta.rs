//! Change-sized pushes: the [`ConfigDelta`](strait_mesh::ConfigDelta) JSON that turns the body a
//! proxy acknowledged into its new body, assembled from the bodies' pieces without decoding
//! anything.
//!
//! Nearly all of a sidecar's configuration is the shared outbound table and clusters, kept per
//! service ([`SharedJson::vhost_groups`], [`SharedJson::cluster_groups`]). The shared part of a delta (spans over the old
//! groups) is the same for every proxy of a share key, so it is computed once per pair of
//! shared parts and cached in the newer one; each proxy adds only its own items, sent whole
//! when they changed (they are ~1 KB).

use std::sync::{Arc, Mutex, Weak};

use super::body::{Body, SharedJson};
use crate::compile::JsonItems;

/// How far ahead in the old list an unmatched new group is looked for. The lists are in
/// registry order, so an added, removed or changed service shifts the match by one or two;
/// a group not found in the window is sent as new items, which is correct, only larger.
const LOOK_AHEAD: usize = 16;

/// A delta larger than this share of the whole body is not worth it: the whole body goes
/// instead (gzip-compressed for proxies that take gzip, from pieces compressed once).
const MAX_SHARE_OF_WHOLE: usize = 4;

/// Shared deltas from older shared parts to the one holding the cache.
#[derive(Debug, Default)]
pub(crate) struct DeltaCache {
    from: Mutex<Vec<(Weak<SharedJson>, Arc<SharedDelta>)>>,
}

/// The shared part of a delta: comma-separated spans over the old shared lists.
#[derive(Debug)]
pub(crate) struct SharedDelta {
    vhosts: Vec<u8>,
    clusters: Vec<u8>,
}

impl DeltaCache {
    /// The delta from `old` to `new` (whose cache this is), computed on first use.
    fn get(&self, old: &Arc<SharedJson>, new: &SharedJson) -> Arc<SharedDelta> {
        // Computing under the lock is deliberate: the streams of one key wait for the first
        // one's result instead of all computing it. It takes about a millisecond.
        let mut from = self.from.lock().unwrap_or_else(|p| p.into_inner());
        from.retain(|(weak, _)| weak.strong_count() > 0);
        if let Some((_, delta)) = from
            .iter()
            .find(|(weak, _)| std::ptr::eq(weak.as_ptr(), Arc::as_ptr(old)))
        {
            return delta.clone();
        }
        let delta = Arc::new(SharedDelta {
            vhosts: spans(old.vhost_groups(), new.vhost_groups()),
            clusters: spans(old.cluster_groups(), new.cluster_groups()),
        });
        from.push((Arc::downgrade(old), delta.clone()));
        delta
    }
}

/// The delta JSON turning `base` (what the proxy runs) into `new`, or `None` when a whole push
/// is better: either body is not a sidecar's in parts, or the delta would be large.
pub(crate) fn delta_json(new: &Body, base: &Body) -> Option<Vec<u8>> {
    let (new_parts, base_parts) = (new.parts.as_ref()?, base.parts.as_ref()?);
    let shared = if Arc::ptr_eq(&new_parts.shared, &base_parts.shared) {
        None
    } else {
        Some(new_parts.shared.deltas.get(&base_parts.shared, &new_parts.shared))
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"listeners\":[");
    own_span(&mut out, &new_parts.listeners, &base_parts.listeners, 0);
    out.extend_from_slice(b"],\"routeTables\":[");
    match &shared {
        None => span_keep(&mut out, 0, 1),
        Some(d) => {
            out.extend_from_slice(b"{\"edit\":{\"at\":0,\"virtualHosts\":[");
            out.extend_from_slice(&d.vhosts);
            out.extend_from_slice(b"]}}");
        }
    }
    own_span(&mut out, &new_parts.route_tables, &base_parts.route_tables, 1);
    out.extend_from_slice(b"],\"clusters\":[");
    let base_shared_clusters = base_parts.shared.cluster_count();
    match &shared {
        None => span_keep(&mut out, 0, base_shared_clusters),
        Some(d) => out.extend_from_slice(&d.clusters),
    }
    own_span(
        &mut out,
        &new_parts.clusters,
        &base_parts.clusters,
        base_shared_clusters,
    );
    out.extend_from_slice(b"]}");
    (out.len() * MAX_SHARE_OF_WHOLE <= new.len()).then_some(out)
}

/// Adds a comma unless the span list is still empty or already ends with one: every span
/// writer calls it first, so spans can be written in any combination.
fn separate(out: &mut Vec<u8>) {
    if !matches!(out.last(), None | Some(b'[' | b',')) {
        out.push(b',');
    }
}

/// A proxy's own items: kept (they start at `at` in the base list) when unchanged, else new.
fn own_span(out: &mut Vec<u8>, new: &JsonItems, base: &JsonItems, at: u32) {
    if new.same_as(base) {
        span_keep(out, at, base.count);
    } else {
        span_items(out, &new.json);
    }
}

/// `{"keep":[start,count]}`, nothing for an empty run.
fn span_keep(out: &mut Vec<u8>, start: u32, count: u32) {
    if count == 0 {
        return;
    }
    separate(out);
    out.extend_from_slice(format!("{{\"keep\":[{start},{count}]}}").as_bytes());
}

/// `{"items":[...]}`, nothing for no items.
fn span_items(out: &mut Vec<u8>, items: &[u8]) {
    if items.is_empty() {
        return;
    }
    separate(out);
    out.extend_from_slice(b"{\"items\":[");
    out.extend_from_slice(items);
    out.extend_from_slice(b"]}");
}

/// Comma-separated spans that rebuild the items of `new` from those of `old` (both lists of
/// groups in registry order): runs of groups found in `old` become `keep` spans, the rest
/// `items` spans.
pub(crate) fn spans(old: &[JsonItems], new: &[JsonItems]) -> Vec<u8> {
    let mut starts = Vec::with_capacity(old.len());
    let mut at = 0u32;
    for g in old {
        starts.push(at);
        at = at.saturating_add(g.count);
    }
    let mut out = Vec::new();
    // At most one of the two is pending: each is written out before the other starts.
    let mut keep: Option<(u32, u32)> = None;
    let mut items: Vec<u8> = Vec::new();
    let mut next = 0usize;
    for group in new.iter().filter(|g| g.count > 0) {
        let window = next..old.len().min(next + LOOK_AHEAD);
        let found = window
            .into_iter()
            .find(|&k| old[k].count > 0 && old[k].same_as(group));
        match found {
            Some(k) => {
                span_items(&mut out, &items);
                items.clear();
                let start = starts[k];
                keep = match keep {
                    Some((s, c)) if s + c == start => Some((s, c + group.count)),
                    done => {
                        if let Some((s, c)) = done {
                            span_keep(&mut out, s, c);
                        }
                        Some((start, group.count))
                    }
                };
                next = k + 1;
            }
            None => {
                if let Some((s, c)) = keep.take() {
                    span_keep(&mut out, s, c);
                }
                if !items.is_empty() {
                    items.push(b',');
                }
                items.extend_from_slice(&group.json);
            }
        }
    }
    if let Some((s, c)) = keep {
        span_keep(&mut out, s, c);
    }
    span_items(&mut out, &items);
    out
}

#[cfg(test)]
mod tests;
