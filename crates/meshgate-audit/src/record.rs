//! One audit line: what a query was, who asked, what it read and how it ended.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// How the query reached the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// CommandStatementQuery: SQL sent as is.
    Statement,
    /// A prepared statement (created, maybe bound, then executed).
    Prepared,
    /// A Substrait plan (CommandStatementSubstraitPlan or a prepared one).
    Substrait,
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every row reached the client.
    Ok,
    /// Turned away by the gateway before running (not found or hidden, not allowed,
    /// invalid, a product not in a state to serve).
    Refused,
    /// Planned, then failed (at run time, or for a reason that is not the caller's).
    Failed,
    /// Stopped by CancelFlightInfo, or the client went away mid-stream.
    Cancelled,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The outcome of a query that ended before it ran, by its gRPC code name: the
    /// gateway's refusals (the caller's doing) or a failure.
    pub fn before_running(code: &str) -> Self {
        match code {
            "PERMISSION_DENIED" | "NOT_FOUND" | "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => Self::Refused,
            _ => Self::Failed,
        }
    }
}

/// One product a query read: the version served (and for a Delta product the Delta
/// version read), the columns read, the columns the caller saw masked and the policy
/// rules that applied (grants, row filters, column rules, by id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRead {
    pub domain: String,
    pub product: String,
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<u64>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub masked: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
}

impl ProductRead {
    /// The version read, naming a Delta product's Delta version as semver build
    /// metadata (`1.0.0+delta.42`), so the data read is named exactly.
    pub fn version_read(&self) -> String {
        match self.delta_version {
            Some(delta) if self.version.contains('+') => format!("{}.delta.{delta}", self.version),
            Some(delta) => format!("{}+delta.{delta}", self.version),
            None => self.version.clone(),
        }
    }
}

/// One query, as recorded in the audit log (one JSON line) and kept in memory for
/// `query_log` and `usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the query was received: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// Unique per query; the OpenLineage run id.
    pub query_id: String,
    pub principal: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The principal's `domain` attribute: the domain it consumes for (usage counts
    /// distinct consuming domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_domain: Option<String>,
    /// What the client said the query is for (`x-meshgate-purpose`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The training set (manifest id, split and shard) a shard read belongs to
    /// (`x-meshgate-training-set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_set: Option<String>,
    pub kind: QueryKind,
    /// The statement with its literals (empty for a Substrait plan).
    pub sql: String,
    /// SHA-256 (hex) of the statement with literals redacted ([`crate::redact`]): the
    /// same for every run of one query shape.
    pub fingerprint: String,
    #[serde(default)]
    pub products: Vec<ProductRead>,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// The gRPC code name (`NOT_FOUND`, `INVALID_ARGUMENT`, …) when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditRecord {
    /// The record's time in milliseconds since the Unix epoch (`None` if the text is
    /// not RFC 3339).
    pub fn time_ms(&self) -> Option<i64> {
        DateTime::parse_from_rfc3339(&self.time).ok().map(|time| time.timestamp_millis())
    }

    /// Bytes of text the record holds (what keeping it in memory costs, roughly).
    pub(crate) fn text_bytes(&self) -> usize {
        let products: usize = self
            .products
            .iter()
            .map(|p| {
                p.domain.len()
                    + p.product.len()
                    + p.version.len()
                    + [&p.columns, &p.masked, &p.rules].iter().flat_map(|v| v.iter()).map(String::len).sum::<usize>()
            })
            .sum();
        self.sql.len() + self.error.as_ref().map_or(0, String::len) + products + 256
    }
}

/// `time` as audit records write it: RFC 3339, UTC, milliseconds (`2026-12-02T02:15:00.123Z`).
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_leave_out_what_is_absent() {
        let record = AuditRecord {
            time: "2026-12-02T02:15:00.123Z".into(),
            query_id: "q".into(),
            principal: "carl".into(),
            groups: vec!["contractor".into()],
            principal_domain: None,
            purpose: Some("churn model".into()),
            training_set: None,
            kind: QueryKind::Prepared,
            sql: "SELECT 1".into(),
            fingerprint: "ab".into(),
            products: vec![],
            rows: 1,
            bytes: 10,
            duration_ms: 3,
            outcome: Outcome::Ok,
            error_code: None,
            error: None,
        };
        let line = serde_json::to_string(&record).unwrap();
        assert!(line.contains(r#""kind":"prepared""#), "{line}");
        assert!(line.contains(r#""outcome":"ok""#), "{line}");
        assert!(!line.contains("error"), "{line}");
        assert_eq!(serde_json::from_str::<AuditRecord>(&line).unwrap(), record);
        assert_eq!(record.time_ms(), Some(1_796_177_700_123));
    }

    #[test]
    fn refusals_are_told_from_failures_by_code() {
        for code in ["PERMISSION_DENIED", "NOT_FOUND", "INVALID_ARGUMENT", "FAILED_PRECONDITION"] {
            assert_eq!(Outcome::before_running(code), Outcome::Refused);
        }
        for code in ["INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"] {
            assert_eq!(Outcome::before_running(code), Outcome::Failed);
        }
    }
}
