//! The in-process suites, one test binary: the library over in-memory parts, loopback
//! stand-ins or moto's server, with no function under `cargo lambda watch` (the
//! configuration suite runs the built binaries directly, for their start alone). README,
//! "Tests".

mod api;
mod archive;
mod bounds;
mod config;
mod endpoint;
mod faults;
mod forward;
mod origins;
mod partial;
mod pipeline;
mod replay;
mod scale;
mod schedule;
mod store_contract;
mod template;
