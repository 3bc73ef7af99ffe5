//! The memory accelerated copies hold, counted against the mesh's budget
//! (`acceleration.budget`), apart from the pool running queries draw on; and the local
//! disk spilled copies take, against `acceleration.spill.budget`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::acceleration::DEFAULT_BUDGET;

/// Bytes held by every accelerated copy alive, and the budget they must fit in; the
/// same for spilled copies on disk.
#[derive(Debug)]
pub struct AccelerationMemory {
    held: AtomicU64,
    budget: AtomicU64,
    spilled: AtomicU64,
}

impl Default for AccelerationMemory {
    fn default() -> Self {
        Self { held: AtomicU64::new(0), budget: AtomicU64::new(DEFAULT_BUDGET), spilled: AtomicU64::new(0) }
    }
}

impl AccelerationMemory {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Bytes held by copies now (those of a snapshot being replaced included).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub fn budget(&self) -> u64 {
        self.budget.load(Ordering::Relaxed)
    }

    pub(crate) fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// Bytes spilled copies take on disk now.
    pub fn spilled(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    pub(crate) fn reserve(self: &Arc<Self>) -> Reservation {
        Reservation { memory: Arc::clone(self), bytes: 0, disk: false }
    }

    pub(crate) fn reserve_disk(self: &Arc<Self>) -> Reservation {
        Reservation { memory: Arc::clone(self), bytes: 0, disk: true }
    }

    fn counter(&self, disk: bool) -> &AtomicU64 {
        if disk { &self.spilled } else { &self.held }
    }
}

/// Bytes one copy holds in memory, or takes on disk; given back when the copy is
/// dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    memory: Arc<AccelerationMemory>,
    bytes: u64,
    disk: bool,
}

impl Reservation {
    pub fn grow(&mut self, bytes: u64) {
        self.bytes += bytes;
        self.memory.counter(self.disk).fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.memory.counter(self.disk).fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_given_back() {
        let memory = AccelerationMemory::new();
        let mut first = memory.reserve();
        first.grow(100);
        let mut second = memory.reserve();
        second.grow(50);
        assert_eq!(memory.held(), 150);
        drop(first);
        assert_eq!(memory.held(), 50);
        let mut disk = memory.reserve_disk();
        disk.grow(70);
        assert_eq!((memory.held(), memory.spilled()), (50, 70));
        drop(second);
        drop(disk);
        assert_eq!((memory.held(), memory.spilled()), (0, 0));
    }
}
