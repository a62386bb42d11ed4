//! One module per subcommand.

pub mod control_plane;
pub mod demo;
pub mod http;
pub mod proxy;
pub mod resources;
pub mod run;
pub mod sample;
pub mod status;
pub mod workload;
