//! The end-to-end suites that start a stack of their own (other variables for the
//! functions, a browser, `make dev` itself, the real SDKs), one test binary; and `events`,
//! whose `events/` files use the fixed environment `demo/production` that `lambda_e2e`
//! uses too, on this binary's shared stack rather than that one's. README, "Tests".

mod console;
mod events;
mod fleet;
mod local_run;
mod options;
mod paging;
mod replay_bench;
mod scale;
mod sdks;
mod secrets;

/// Taken by the suites that load the machine for a while (thousands of destinations, a fleet
/// of SDKs, a big table): one at a time, so that on two cores one does not starve another's
/// stack into time-outs that no deployment would see (a fleet beside both scale runs had its
/// SDKs hang up on a third of their posts).
pub(crate) static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
