//! What the catalog says of a product's acceleration: loading, ready, stale after a
//! failed refresh, or refused.

use std::sync::Mutex;
use std::time::SystemTime;

/// Where a product's acceleration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelerationState {
    /// Not built yet.
    Loading,
    /// Served from a copy of the files as they are.
    Ready,
    /// Served from a copy, but building a newer one failed: the copy may be behind
    /// the files.
    Stale,
    /// Served from its files: the copy would not fit in `max_bytes` or the budget.
    Refused,
    /// Served from its files: the copy could not be built.
    Failed,
}

impl AccelerationState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccelerationState::Loading => "loading",
            AccelerationState::Ready => "ready",
            AccelerationState::Stale => "stale",
            AccelerationState::Refused => "refused",
            AccelerationState::Failed => "failed",
        }
    }
}

/// The last outcome of building or refreshing a product's copy.
#[derive(Debug, Default)]
pub struct AccelerationStatus {
    inner: Mutex<Outcome>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// The last build or refresh that failed, and why; cleared by one that works.
    pub problem: Option<Problem>,
    /// When the files were last found to match the copy.
    pub checked_at: Option<SystemTime>,
    /// The files the last attempt read: a refused product is tried again only when
    /// they change.
    pub attempted: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub refused: bool,
    pub message: String,
    pub at: SystemTime,
}

impl AccelerationStatus {
    pub(crate) fn outcome(&self) -> Outcome {
        self.inner.lock().map(|outcome| outcome.clone()).unwrap_or_default()
    }

    pub(crate) fn record(&self, change: impl FnOnce(&mut Outcome)) {
        if let Ok(mut outcome) = self.inner.lock() {
            change(&mut outcome);
        }
    }

    /// The state, given whether a copy is serving.
    pub fn state(&self, serving: bool) -> AccelerationState {
        match (serving, self.outcome().problem) {
            (true, None) => AccelerationState::Ready,
            (true, Some(_)) => AccelerationState::Stale,
            (false, None) => AccelerationState::Loading,
            (false, Some(problem)) if problem.refused => AccelerationState::Refused,
            (false, Some(_)) => AccelerationState::Failed,
        }
    }

    /// Why the last build or refresh failed, if it did.
    pub fn problem(&self) -> Option<String> {
        self.outcome().problem.map(|problem| problem.message)
    }

    /// When the files were last found to match the copy.
    pub fn checked_at(&self) -> Option<SystemTime> {
        self.outcome().checked_at
    }
}
