//! networking.istio.io types: Gateway, VirtualService, DestinationRule, ServiceEntry and
//! WorkloadEntry, every field as Istio serves them (v1, with v1beta1 and v1alpha3 accepted).
//!
//! Field names are the protobuf-JSON camelCase names; unknown fields are refused so that a typo
//! (`hostt`) is reported instead of silently ignored, as Istio's CRD schema does.

mod common;
mod destination_rule;
mod gateway;
mod http_route;
mod load_balancer;
mod service_entry;
mod virtual_service;
mod workload_entry;

pub use crate::proto::{Duration, Percent};
pub use common::*;
pub use destination_rule::*;
pub use gateway::*;
pub use http_route::*;
pub use load_balancer::*;
pub use service_entry::*;
pub use virtual_service::*;
pub use workload_entry::*;
