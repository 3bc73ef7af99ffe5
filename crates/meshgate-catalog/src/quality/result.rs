//! What one run of a check records, and a product's quality at a glance.

use std::time::{Duration, SystemTime};

use crate::config::contract::{OnFailure, Severity};

/// A product version: the key results are kept under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProductKey {
    pub domain: String,
    pub product: String,
    pub version: String,
}

impl ProductKey {
    /// `domain.product`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.domain, self.product)
    }
}

/// The files a check ran on, listed from the object store just before it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSnapshot {
    pub files: usize,
    pub bytes: u64,
    /// The newest file's modification time (`None`: no files, or the store does not say).
    pub newest: Option<SystemTime>,
}

/// The result of one run of one check (freshness included, as kind `freshness`).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub domain: String,
    pub product: String,
    pub version: String,
    /// The check's name, unique within the product (`freshness` for the SLA).
    pub check: String,
    /// `row_count`, `not_null`, `unique`, `allowed_values`, `range`, `regex`, `sql`
    /// or `freshness`.
    pub kind: &'static str,
    pub severity: Severity,
    pub description: String,
    pub columns: Vec<String>,
    pub files: FileSnapshot,
    /// When the check started.
    pub ran_at: SystemTime,
    pub duration: Duration,
    /// What was measured: violating rows, the row count, the query's value (true = 1),
    /// or for freshness the age in seconds. `None` when the check could not run.
    pub measured: Option<f64>,
    /// What the check asserts, in words (`o_orderkey is not null`).
    pub expectation: String,
    pub passed: bool,
    /// Why the check could not run (then `passed` is false).
    pub error: Option<String>,
}

impl CheckResult {
    /// What went wrong, for messages: `12 rows violate it`, `measured 3`, the error.
    pub fn failure_text(&self) -> String {
        if let Some(error) = &self.error {
            return format!("could not run: {error}");
        }
        let measured = self.measured.map(crate::config::contract::number).unwrap_or_default();
        match self.kind {
            "not_null" | "unique" | "allowed_values" | "range" | "regex" => {
                let rows = self.measured.unwrap_or_default();
                format!("{measured} row{} violate{} it", plural(rows), if rows == 1.0 { "s" } else { "" })
            }
            "sql" if self.expectation.ends_with("for every row") => {
                let rows = self.measured.unwrap_or_default();
                format!("{measured} row{} violate{} it", plural(rows), if rows == 1.0 { "s" } else { "" })
            }
            "row_count" => format!("the product has {measured} rows"),
            "freshness" => format!("the newest data is {} old", age_text(self.measured.unwrap_or_default())),
            _ => format!("measured {measured}"),
        }
    }

    /// `check orders_not_null (o_orderkey is not null) failed: 12 rows violate it`.
    pub fn failure_message(&self) -> String {
        format!("check {} ({}) failed: {}", self.check, self.expectation, self.failure_text())
    }
}

fn plural(count: f64) -> &'static str {
    if count == 1.0 { "" } else { "s" }
}

/// An age in its largest unit: days past two days, hours past two hours, else minutes
/// (or seconds under a minute).
fn age_text(seconds: f64) -> String {
    let seconds = seconds.max(0.0) as u64;
    match seconds {
        s if s >= 2 * 86_400 => format!("{}d", s / 86_400),
        s if s >= 2 * 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A product's quality, from its latest results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityStatus {
    /// Every check passed.
    Passing,
    /// A `warn` check failed.
    Warning,
    /// An `error` check failed (or could not run).
    Degraded,
    /// Not run yet.
    Unknown,
}

impl QualityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QualityStatus::Passing => "passing",
            QualityStatus::Warning => "warning",
            QualityStatus::Degraded => "degraded",
            QualityStatus::Unknown => "unknown",
        }
    }
}

/// Whether a product meets its freshness SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshnessStatus {
    Fresh,
    Stale,
    /// No SLA, or not measured yet.
    Unknown,
}

impl FreshnessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FreshnessStatus::Fresh => "fresh",
            FreshnessStatus::Stale => "stale",
            FreshnessStatus::Unknown => "unknown",
        }
    }
}

/// A product version's quality: its status and the results behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuality {
    pub key: ProductKey,
    pub status: QualityStatus,
    pub freshness: FreshnessStatus,
    pub on_failure: OnFailure,
    /// Checks in the contract (freshness included).
    pub checks: usize,
    /// When the latest result was recorded.
    pub checked_at: Option<SystemTime>,
    /// Latest results that did not pass, `error` severity first.
    pub failing: Vec<CheckResult>,
}
