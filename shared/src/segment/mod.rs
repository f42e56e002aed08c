//! Segment: the message each destination receives, how messages are packed into
//! requests, and the HTTP client that delivers them.

pub mod batch;
pub mod client;
pub mod message;
pub mod response;

pub use client::{Delivery, DeliveryError, SegmentApi, SegmentClient, SendPolicy};
pub use message::{ExportEvent, LIBRARY_NAME, LIBRARY_VERSION, message_id};
