//! Data quality: the owner's checks and freshness SLA of each product, run against
//! the raw product (ungoverned) in a private session where it is the only table;
//! results and statuses kept in a [`QualityBook`] that survives reloads.

mod book;
mod checks;
mod files;
mod result;
mod runner;
mod schedule;

pub use book::{FRESHNESS_CHECK, Gate, HISTORY_PER_CHECK, QualityBook};
pub use result::{CheckResult, FileSnapshot, FreshnessStatus, ProductKey, ProductQuality, QualityStatus};
pub use runner::{ProductChecks, plan_contracts};
pub use schedule::QualityTask;
pub(crate) use schedule::check_now;

#[cfg(test)]
mod tests;
