//! The control plane decides what every proxy must do: it keeps the Istio resources, knows the
//! workloads, compiles both into one [`strait_mesh::ProxyConfig`] per proxy and pushes it.
// One audited exception, in `malloc`: the rest of the crate has no unsafe code.
#![deny(unsafe_code)]

pub mod compile;
pub mod malloc;
pub mod push;
pub mod registry;
pub mod rest;
pub mod server;
pub mod store;

pub use server::{ControlPlane, ControlPlaneOptions, ServerError, run, start, start_with_store};
pub use store::{Store, StoreError};
