//! Istio's configuration API: resource types for every field, multi-document parsing,
//! validation with field paths, and cross-resource analysis.
//!
//! Nothing here touches the network: the control plane, the CLI and the tests all use the same
//! functions, so `strait validate` and `strait apply` can never disagree.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod kind;
pub mod meta;
pub mod networking;
pub mod parse;
pub mod proto;
pub mod resource;
pub mod security;
pub mod validate;

pub use analyze::{Diagnostic, analyze, analyze_only};
pub use kind::Kind;
pub use meta::ObjectMeta;
pub use parse::{ApiError, Document, KubernetesObject, parse_documents};
pub use proto::Duration;
pub use resource::{Resource, Spec};
pub use validate::{FieldError, validate};
