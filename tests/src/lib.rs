//! Test support shared by the test suite and the local run.

pub mod apigw;
pub mod browser;
pub mod event_source;
pub mod events_service;
pub mod fixtures;
pub mod golden;
pub mod lambda;
pub mod memory;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod recording_proxy;
pub mod replays;
pub mod sdk_page;
pub mod sqs;
pub mod stack;
pub mod store_contract;
pub mod template;
