//! Change-sized pushes: a [`ConfigDelta`] turns the configuration a proxy runs into the next one.
//!
//! At 1,000 services a sidecar's configuration is ~2.3 MB of JSON, and one changed
//! VirtualService changes one virtual host of it. Sending the whole configuration to 1,000
//! proxies on every change costs the control plane, the network and every proxy's decoder far
//! more than the change itself. A delta says, for each of the configuration's lists, which runs
//! of the base list to keep and which new items to put between them, in order. Rebuilding a list
//! from its spans gives exactly the list the control plane compiled (same items, same order),
//! so a proxy that applies deltas runs byte-for-byte the configuration a full push would give.
//!
//! The base is always a whole configuration the proxy runs: a delta names its base version and
//! the proxy refuses (NACKs) a delta whose base it does not run; the control plane then sends
//! the whole configuration.

use serde::{Deserialize, Serialize};

use crate::{Cluster, Listener, ProxyConfig, RouteTable, VirtualHost};

/// One run of a new list: kept items of the base list, or new items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Span<T> {
    /// `[start, count]`: the base list's items `start..start + count`, in order.
    Keep([u32; 2]),
    /// New items, in order.
    Items(Vec<T>),
}

/// One run of the new route-table list: like [`Span`], plus a base table with its virtual
/// hosts edited (the outbound table, where nearly every change lands).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TableSpan {
    /// `[start, count]`: the base list's tables `start..start + count`, unchanged.
    Keep([u32; 2]),
    /// New tables, in order.
    Items(Vec<RouteTable>),
    /// The base table at `at`, its virtual hosts rebuilt from spans over its own.
    Edit(TableEdit),
}

/// A base route table whose virtual hosts changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableEdit {
    /// Index of the table in the base configuration's route tables.
    pub at: u32,
    /// The table's new virtual hosts, as spans over the base table's.
    pub virtual_hosts: Vec<Span<VirtualHost>>,
}

/// The change from one configuration to the next, list by list. An empty span list means an
/// empty list (not "unchanged": unchanged is one `Keep` of the whole base list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConfigDelta {
    /// The new listeners.
    pub listeners: Vec<Span<Listener>>,
    /// The new route tables.
    pub route_tables: Vec<TableSpan>,
    /// The new clusters.
    pub clusters: Vec<Span<Cluster>>,
}

/// Why a delta does not apply to a base configuration: the proxy NACKs with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaError {
    /// The delta could not be decoded.
    Decode(String),
    /// A span reaches past the end of the base list it keeps from.
    OutOfRange {
        /// Which list (`listeners`, `routeTables`, `clusters`, `routeTables[3].virtualHosts`).
        list: String,
        /// First index asked for.
        start: u32,
        /// Items asked for.
        count: u32,
        /// Items the base list has.
        len: usize,
    },
}

impl std::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeltaError::Decode(e) => write!(f, "cannot decode the config delta: {e}"),
            DeltaError::OutOfRange {
                list,
                start,
                count,
                len,
            } => write!(
                f,
                "config delta keeps {list} {start}..{} but the running configuration has {len}",
                u64::from(*start) + u64::from(*count)
            ),
        }
    }
}

impl std::error::Error for DeltaError {}

impl ConfigDelta {
    /// Decodes a pushed delta.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DeltaError> {
        serde_json::from_slice(bytes).map_err(|e| DeltaError::Decode(e.to_string()))
    }

    /// Encodes a delta (the control plane assembles its bytes itself; this is for tests and
    /// tools).
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The configuration this delta makes of `base`; its version is left empty (the push
    /// carries it).
    pub fn apply(&self, base: &ProxyConfig) -> Result<ProxyConfig, DeltaError> {
        let mut route_tables = Vec::new();
        for span in &self.route_tables {
            match span {
                TableSpan::Keep([start, count]) => {
                    route_tables.extend_from_slice(kept(&base.route_tables, *start, *count, "routeTables")?)
                }
                TableSpan::Items(items) => route_tables.extend(items.iter().cloned()),
                TableSpan::Edit(edit) => {
                    let table =
                        base.route_tables
                            .get(edit.at as usize)
                            .ok_or_else(|| DeltaError::OutOfRange {
                                list: "routeTables".into(),
                                start: edit.at,
                                count: 1,
                                len: base.route_tables.len(),
                            })?;
                    let list = format!("routeTables[{}].virtualHosts", edit.at);
                    route_tables.push(RouteTable {
                        name: table.name.clone(),
                        virtual_hosts: rebuild(&table.virtual_hosts, &edit.virtual_hosts, &list)?,
                    });
                }
            }
        }
        Ok(ProxyConfig {
            version: String::new(),
            listeners: rebuild(&base.listeners, &self.listeners, "listeners")?,
            route_tables,
            clusters: rebuild(&base.clusters, &self.clusters, "clusters")?,
        })
    }
}

/// `base[start..start + count]`, or why not.
fn kept<'b, T>(base: &'b [T], start: u32, count: u32, list: &str) -> Result<&'b [T], DeltaError> {
    let from = start as usize;
    from.checked_add(count as usize)
        .and_then(|to| base.get(from..to))
        .ok_or_else(|| DeltaError::OutOfRange {
            list: list.to_string(),
            start,
            count,
            len: base.len(),
        })
}

/// The list `spans` describe over `base`.
fn rebuild<T: Clone>(base: &[T], spans: &[Span<T>], list: &str) -> Result<Vec<T>, DeltaError> {
    let mut out = Vec::new();
    for span in spans {
        match span {
            Span::Keep([start, count]) => out.extend_from_slice(kept(base, *start, *count, list)?),
            Span::Items(items) => out.extend(items.iter().cloned()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str) -> Cluster {
        Cluster {
            name: name.into(),
            ..Cluster::default()
        }
    }

    fn vhost(name: &str) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            ..VirtualHost::default()
        }
    }

    fn base() -> ProxyConfig {
        ProxyConfig {
            version: "7".into(),
            listeners: Vec::new(),
            route_tables: vec![
                RouteTable {
                    name: "outbound".into(),
                    virtual_hosts: vec![vhost("a"), vhost("b"), vhost("c")],
                },
                RouteTable {
                    name: "inbound|9080".into(),
                    virtual_hosts: vec![vhost("in")],
                },
            ],
            clusters: vec![cluster("a"), cluster("b"), cluster("c")],
        }
    }

    #[test]
    fn a_delta_keeps_edits_and_inserts_in_order() {
        let delta = ConfigDelta {
            listeners: Vec::new(),
            route_tables: vec![
                TableSpan::Edit(TableEdit {
                    at: 0,
                    virtual_hosts: vec![
                        Span::Keep([0, 1]),
                        Span::Items(vec![vhost("b2")]),
                        Span::Keep([2, 1]),
                    ],
                }),
                TableSpan::Keep([1, 1]),
            ],
            clusters: vec![
                Span::Keep([0, 1]),
                Span::Keep([2, 1]),
                Span::Items(vec![cluster("d")]),
            ],
        };
        let json = delta.to_json();
        let decoded = ConfigDelta::from_json(&json).expect("round trip");
        assert_eq!(decoded, delta);
        let next = decoded.apply(&base()).expect("applies");
        let names = |v: &[VirtualHost]| v.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&next.route_tables[0].virtual_hosts), ["a", "b2", "c"]);
        assert_eq!(next.route_tables[1], base().route_tables[1]);
        let clusters: Vec<_> = next.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(clusters, ["a", "c", "d"]);
        assert_eq!(next.version, "");
    }

    #[test]
    fn the_wire_form_is_small_and_readable() {
        let delta = ConfigDelta {
            clusters: vec![Span::Keep([0, 3])],
            ..ConfigDelta::default()
        };
        assert_eq!(
            String::from_utf8(delta.to_json()).expect("utf-8"),
            r#"{"listeners":[],"routeTables":[],"clusters":[{"keep":[0,3]}]}"#
        );
    }

    #[test]
    fn out_of_range_spans_and_garbage_are_refused_with_a_reason() {
        let past_end = ConfigDelta {
            clusters: vec![Span::Keep([2, 5])],
            ..ConfigDelta::default()
        };
        let err = past_end.apply(&base()).expect_err("past the end");
        assert_eq!(
            err.to_string(),
            "config delta keeps clusters 2..7 but the running configuration has 3"
        );
        let overflow = ConfigDelta {
            listeners: vec![Span::Keep([u32::MAX, u32::MAX])],
            ..ConfigDelta::default()
        };
        assert!(overflow.apply(&base()).is_err());
        let no_table = ConfigDelta {
            route_tables: vec![TableSpan::Edit(TableEdit {
                at: 9,
                virtual_hosts: Vec::new(),
            })],
            ..ConfigDelta::default()
        };
        assert!(no_table.apply(&base()).is_err());
        let edit_past_end = ConfigDelta {
            route_tables: vec![TableSpan::Edit(TableEdit {
                at: 1,
                virtual_hosts: vec![Span::Keep([0, 2])],
            })],
            ..ConfigDelta::default()
        };
        let err = edit_past_end.apply(&base()).expect_err("one inbound vhost only");
        assert!(err.to_string().contains("routeTables[1].virtualHosts"), "{err}");
        assert!(matches!(
            ConfigDelta::from_json(b"{\"clusters\":[{\"keep\":1}]}"),
            Err(DeltaError::Decode(_))
        ));
    }
}
