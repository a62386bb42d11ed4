//! security.istio.io types (placeholder shapes).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

macro_rules! raw_spec {
    ($($name:ident),*) => {$(
        /// Spec, kept raw until typed.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// All fields.
            #[serde(flatten)]
            pub raw: Map<String, Value>,
        }
    )*};
}
raw_spec!(PeerAuthentication, AuthorizationPolicy, RequestAuthentication);
