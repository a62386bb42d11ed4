//! The control plane decides what every proxy must do: it keeps the Istio resources, knows the
//! workloads, compiles both into one [`strait_mesh::ProxyConfig`] per proxy and pushes it.
#![forbid(unsafe_code)]

pub mod compile;
