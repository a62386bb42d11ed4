//! The control plane decides what every proxy must do: it keeps the Istio resources, knows the
//! workloads, compiles both into one [`strait_mesh::ProxyConfig`] per proxy and pushes it.
#![forbid(unsafe_code)]

pub mod compile;
pub mod push;
pub mod registry;
pub mod rest;
pub mod server;
pub mod store;

pub use server::{ControlPlane, ControlPlaneOptions, ServerError, run, start, start_with_store};
pub use store::{Store, StoreError};
