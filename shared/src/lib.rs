//! Data Export to Segment: the library behind the `export`, `destinations`, `test-event`
//! and `ingest` Lambda functions (and the `redrive` tool).

pub mod answer_body;
pub mod api;
pub mod archive;
pub mod aws;
pub mod config;
pub mod deadline;
pub mod delivery_status;
pub mod destination;
pub mod endpoint;
pub mod errors;
pub mod event;
pub mod export;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod replay;
pub mod requeue;
pub mod retry;
#[cfg(feature = "sample")]
pub mod sample;
#[cfg(feature = "sample")]
pub mod sample_sdk;
pub mod segment;
pub mod sources;
pub mod sqs_batches;
pub mod store;
pub mod timestamp;
pub mod web;
