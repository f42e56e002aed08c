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
mod scale;
mod sdks;
mod secrets;
