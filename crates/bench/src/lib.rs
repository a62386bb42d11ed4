//! Strait's side-by-side benchmark harness (issue #3): a 1 KB backend, an open-loop load
//! generator with coordinated-omission correction, configurations for nginx, HAProxy and Strait,
//! the runner that measures every cell pinned per the 2-core protocol, and the control-plane
//! benchmark. `bench/run` is the entry point; see `docs/benchmarks.md`.
//!
//! Nothing here is timing-based in `cargo test`: the tests cover the pure parts (percentiles,
//! `/proc` parsing, wrk output, result shapes, generated configurations).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod chart;
pub mod configs;
pub mod control_plane;
pub mod kthreads;
pub mod loadgen;
pub mod paired;
pub mod process;
pub mod procfs;
pub mod repeat;
pub mod report;
pub mod results;
pub mod runner;
pub mod stats;
pub mod wrk;
