//! Segment: the message each destination receives, how messages are packed into
//! requests, and the HTTP client that delivers them.

pub mod batch;
pub mod client;
pub mod identity;
pub mod message;
pub mod response;
pub mod verify;
pub mod wire;

pub use client::{Accepted, DeliveryError, SegmentApi, SegmentClient, SendPolicy};
pub use identity::message_id;
pub use message::ExportEvent;
pub use wire::{LIBRARY_NAME, LIBRARY_VERSION};
