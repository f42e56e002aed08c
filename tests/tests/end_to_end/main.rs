//! The end-to-end suites that share one local stack (moto, the Segment receiver and the
//! functions under `cargo lambda watch`), one test binary. Each suite keeps to its own
//! projects, environments and write keys, so they run side by side. README, "Tests".

mod api_lambda;
mod archive;
mod delivery;
mod ingest;
mod lambda_e2e;
mod partial;
mod redrive;
mod replay;
