//! One module per subcommand.

pub mod analyze;
pub mod client;
pub mod control_plane;
pub mod demo;
pub mod files;
pub mod http;
pub mod proxy;
pub mod resources;
pub mod run;
pub mod sample;
pub mod status;
pub mod table;
pub mod workload;
