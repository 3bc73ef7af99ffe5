//! The execution runtime shared by every query: a memory pool with a limit and
//! spilling to disk for large sorts, aggregations and joins.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datafusion::common::Result as DataFusionResult;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool, UnboundedMemoryPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::spill_file::TempFileFactory;

use crate::error::EngineError;
use crate::spill::SpillFiles;

/// How long a product's file listing is reused before the store is listed again:
/// files a domain adds become visible within this time.
pub const DEFAULT_LISTING_TTL: Duration = Duration::from_secs(30);

/// How much memory queries may use together, where they spill, and how long file
/// listings are cached.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Bytes all running queries may hold at once; `None` for no limit.
    pub memory_limit: Option<usize>,
    /// Directory for spill files; the system temporary directory when `None`.
    pub spill_dir: Option<PathBuf>,
    /// How long a listing of a product's files is reused.
    pub listing_ttl: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self { memory_limit: None, spill_dir: None, listing_ttl: DEFAULT_LISTING_TTL }
    }
}

/// Builds the runtime: a fair spilling pool under the limit (reporting its largest
/// consumers when exhausted) that remembers its peak, and a disk manager whose spill
/// files report their own failures (`spill.rs`).
pub fn runtime(options: &RuntimeOptions) -> Result<Arc<RuntimeEnv>, EngineError> {
    let pool: Arc<dyn MemoryPool> = match options.memory_limit {
        Some(limit) => {
            Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), NonZeroUsize::MIN.saturating_add(4)))
        }
        None => Arc::new(UnboundedMemoryPool::default()),
    };
    let spill = Arc::new(
        SpillFiles::new(options.spill_dir.as_deref())
            .map_err(|error| EngineError::Internal(format!("cannot prepare the spill directory: {error}")))?,
    );
    let disk = DiskManagerBuilder::default().with_temp_file_factory(Arc::clone(&spill) as Arc<dyn TempFileFactory>);
    let pool: Arc<dyn MemoryPool> = Arc::new(PeakMemoryPool::new(pool, spill));
    RuntimeEnvBuilder::new()
        .with_memory_pool(pool)
        .with_disk_manager_builder(disk)
        // Footers and statistics are cached for as long as memory allows (they are
        // keyed by file and change with it); listings expire so new files show up.
        .with_object_list_cache_ttl(Some(options.listing_ttl))
        .build_arc()
        .map_err(|error| EngineError::Internal(format!("cannot build the query runtime: {error}")))
}

/// The most memory the runtime's queries ever held at once, in bytes; `None` for a
/// runtime [`runtime`] did not build.
pub fn memory_peak(runtime: &RuntimeEnv) -> Option<usize> {
    runtime.memory_pool.as_ref().downcast_ref::<PeakMemoryPool>().map(PeakMemoryPool::peak)
}

/// Bytes of spill files on disk now; `None` for a runtime [`runtime`] did not build.
/// (A disk manager given a file factory leaves the counting to it.)
pub fn spill_bytes(runtime: &RuntimeEnv) -> Option<u64> {
    runtime.memory_pool.as_ref().downcast_ref::<PeakMemoryPool>().map(|pool| pool.spill.used_bytes())
}

/// A memory pool that counts what it hands out and remembers the most it held at once
/// (atomics only: reservations never wait on it); everything else is the inner pool's.
/// It is the one part of the runtime meshgate's code can find again, so it also holds
/// the runtime's spill files for [`spill_bytes`].
struct PeakMemoryPool {
    inner: Arc<dyn MemoryPool>,
    reserved: AtomicUsize,
    peak: AtomicUsize,
    spill: Arc<SpillFiles>,
}

impl fmt::Debug for PeakMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeakMemoryPool").field("inner", &self.inner).field("peak", &self.peak).finish_non_exhaustive()
    }
}

impl PeakMemoryPool {
    fn new(inner: Arc<dyn MemoryPool>, spill: Arc<SpillFiles>) -> Self {
        Self { inner, reserved: AtomicUsize::new(0), peak: AtomicUsize::new(0), spill }
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn grown(&self, additional: usize) {
        let now = self.reserved.fetch_add(additional, Ordering::Relaxed).saturating_add(additional);
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

impl fmt::Display for PeakMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl MemoryPool for PeakMemoryPool {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.grown(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.reserved.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DataFusionResult<()> {
        self.inner.try_grow(reservation, additional)?;
        self.grown(additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// Parses a byte size such as `512MiB`, `1GiB`, `2G` or `1048576`.
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let bytes = meshgate_catalog::config::acceleration::parse_byte_size(text)?;
    usize::try_from(bytes).map_err(|_| format!("'{}' is too large", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_remembers_its_peak() {
        let runtime = runtime(&RuntimeOptions { memory_limit: Some(1 << 20), ..Default::default() }).unwrap();
        assert_eq!(memory_peak(&runtime), Some(0));
        let first = MemoryConsumer::new("first").register(&runtime.memory_pool);
        let second = MemoryConsumer::new("second").register(&runtime.memory_pool);
        first.try_grow(1000).unwrap();
        second.grow(500);
        first.shrink(600);
        second.try_grow(100).unwrap();
        assert_eq!(runtime.memory_pool.reserved(), 1000);
        assert_eq!(memory_peak(&runtime), Some(1500));
        // A refused reservation is not counted.
        assert!(first.try_grow(2 << 20).is_err());
        drop((first, second));
        assert_eq!(runtime.memory_pool.reserved(), 0);
        assert_eq!(memory_peak(&runtime), Some(1500));
        assert_eq!(memory_peak(&RuntimeEnvBuilder::new().build().unwrap()), None);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("5 parsecs").is_err());
    }
}
