//! An archive that takes each object and drops it, for the export benchmark's A/B of what
//! the archive's own work costs (grouping, the lines, gzip) without any store's latency
//! (BENCHMARKS.md §2, "What the archive costs").

use bytes::Bytes;
use shared::archive::{Archive, ArchiveError};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct ArchiveSink {
    pub bytes: AtomicU64,
    pub objects: AtomicU64,
}

impl Archive for ArchiveSink {
    async fn put(&self, _key: &str, body: Bytes) -> Result<(), ArchiveError> {
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        self.objects.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
