//! meshgate-audit: what every query did, for stewards and for the catalog.
//!
//! - the **audit log**: one JSON line per query ([`AuditRecord`]), append-only,
//!   rotated by size with retention ([`log`]);
//! - the **query log and usage** kept in memory for the system tables
//!   ([`Audit::recent`], [`Audit::usage`]), rebuilt from the audit files on start;
//! - **OpenLineage** run events, START then COMPLETE/FAIL/ABORT ([`lineage`]), to a
//!   file and/or an HTTP endpoint.
//!
//! A query is followed by a [`QueryAudit`]: [`Audit::begin`] when it arrives,
//! [`QueryAudit::planned`] once its products are known (the START event), and
//! [`QueryAudit::end`] when it ends. Nothing here blocks or fails a query: lines and
//! events are queued for background threads. No query engine inside (the engine
//! reads [`Audit::recent`] and [`Audit::usage`] for its system tables).

pub mod error;
mod file;
pub mod lineage;
mod log;
mod memory;
pub mod record;
pub mod redact;
pub mod usage;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;

pub use error::AuditError;
pub use file::Rotation;
pub use lineage::event::{OutputColumn, Planned, SourceColumn};
pub use log::Rebuilt;
pub use memory::{RECENT_BYTES, RECENT_RECORDS};
pub use record::{AuditRecord, Outcome, ProductRead, QueryKind};
pub use usage::{UsageRow, Window};

use lineage::Lineage;
use lineage::event::{EventType, RunEvent};
use log::AuditLog;
use memory::Memory;

/// Where records and events go.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// The audit log's directory (no log file when unset; the in-memory query log
    /// and usage are kept either way).
    pub dir: Option<PathBuf>,
    pub rotation: Option<Rotation>,
    /// OpenLineage events as JSON lines.
    pub lineage_file: Option<PathBuf>,
    /// OpenLineage endpoint each event is POSTed to.
    pub lineage_url: Option<String>,
}

impl AuditOptions {
    /// The rotation used when none is set: 64 MiB files, 10 kept.
    pub const DEFAULT_ROTATION: Rotation = Rotation { max_bytes: 64 * 1024 * 1024, keep: 10 };
}

/// The server's audit: cheap to clone, shared by every call.
#[derive(Debug, Clone, Default)]
pub struct Audit(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    log: Option<AuditLog>,
    lineage: Option<Lineage>,
    memory: Mutex<Memory>,
    rebuilt: Rebuilt,
}

/// Who asks and what, when a query arrives.
#[derive(Debug, Clone)]
pub struct QueryStart<'a> {
    /// The mesh's catalog name (lineage namespaces are `meshgate://<catalog>`).
    pub catalog: &'a str,
    pub principal: &'a str,
    pub groups: Vec<String>,
    /// The principal's `domain` attribute, if it has one.
    pub principal_domain: Option<String>,
    pub purpose: Option<String>,
    /// The training set a shard read belongs to.
    pub training_set: Option<String>,
    /// From a prepared statement (SQL or Substrait).
    pub prepared: bool,
    pub statement: Statement<'a>,
}

/// The statement of a query.
#[derive(Debug, Clone, Copy)]
pub enum Statement<'a> {
    Sql(&'a str),
    /// A serialized Substrait plan (its fingerprint is the plan's hash).
    Substrait(&'a [u8]),
}

/// How a query ended.
#[derive(Debug, Clone)]
pub struct QueryEnd {
    pub rows: u64,
    pub bytes: u64,
    pub outcome: Outcome,
    /// The gRPC code name, when not ok.
    pub error_code: Option<String>,
    pub error: Option<String>,
}

/// One query being followed, from [`Audit::begin`] to [`QueryAudit::end`].
#[derive(Debug)]
pub struct QueryAudit {
    audit: Audit,
    id: String,
    time: String,
    time_ms: i64,
    started: Instant,
    catalog: String,
    principal: String,
    groups: Vec<String>,
    principal_domain: Option<String>,
    purpose: Option<String>,
    training_set: Option<String>,
    kind: QueryKind,
    sql: String,
    redacted: Option<Arc<str>>,
    fingerprint: String,
    planned: Option<Arc<Planned>>,
    start_sent: bool,
}

impl Audit {
    /// Opens the log (rebuilding the in-memory query log and usage from its files)
    /// and the lineage sinks. An HTTP sink needs a running Tokio runtime.
    pub fn open(options: &AuditOptions) -> Result<Self, AuditError> {
        let mut memory = Memory::default();
        let rotation = options.rotation.unwrap_or(AuditOptions::DEFAULT_ROTATION);
        if rotation.max_bytes == 0 {
            return Err(AuditError::MaxBytes);
        }
        let (log, rebuilt) = match &options.dir {
            Some(dir) => {
                let (log, rebuilt) = AuditLog::open(dir, rotation, &mut memory)?;
                (Some(log), rebuilt)
            }
            None => (None, Rebuilt::default()),
        };
        let lineage = match (&options.lineage_file, &options.lineage_url) {
            (None, None) => None,
            (file, url) => Some(Lineage::open(file.as_deref(), url.as_deref())?),
        };
        Ok(Self(Arc::new(Inner { log, lineage, memory: Mutex::new(memory), rebuilt })))
    }

    /// What opening the log re-read from its files.
    pub fn rebuilt(&self) -> Rebuilt {
        self.0.rebuilt
    }

    /// Starts following a query.
    pub fn begin(&self, start: QueryStart<'_>) -> QueryAudit {
        let now = Utc::now();
        let (kind, sql, redacted, fingerprint) = match start.statement {
            Statement::Sql(sql) => {
                let redacted = redact::redact(sql);
                let fingerprint = redact::fingerprint(&redacted);
                let kind = if start.prepared { QueryKind::Prepared } else { QueryKind::Statement };
                (kind, sql.to_owned(), Some(Arc::from(redacted)), fingerprint)
            }
            Statement::Substrait(plan) => {
                use sha2::Digest;
                (QueryKind::Substrait, String::new(), None, redact::hex(&sha2::Sha256::digest(plan)))
            }
        };
        QueryAudit {
            audit: self.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            time: record::format_time(now),
            time_ms: now.timestamp_millis(),
            started: Instant::now(),
            catalog: start.catalog.to_owned(),
            principal: start.principal.to_owned(),
            groups: start.groups,
            principal_domain: start.principal_domain,
            purpose: start.purpose,
            training_set: start.training_set,
            kind,
            sql,
            redacted,
            fingerprint,
            planned: None,
            start_sent: false,
        }
    }

    /// The most recent records, oldest first (at most [`RECENT_RECORDS`], and
    /// [`RECENT_BYTES`] of text).
    pub fn recent(&self) -> Vec<Arc<AuditRecord>> {
        self.memory().recent()
    }

    /// Usage per product and window, at `now`.
    pub fn usage(&self, now: SystemTime) -> Vec<UsageRow> {
        let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        self.memory().usage.rows(now_ms)
    }

    /// Whether lineage events are emitted (a file or an endpoint is set): without,
    /// callers may leave [`Planned::outputs`] empty.
    pub fn lineage_enabled(&self) -> bool {
        self.0.lineage.is_some()
    }

    /// Lineage events not delivered to the HTTP endpoint (queue full, endpoint down).
    pub fn lineage_dropped(&self) -> u64 {
        self.0.lineage.as_ref().and_then(Lineage::delivery).map_or(0, |d| d.dropped())
    }

    /// Lineage events the HTTP endpoint accepted.
    pub fn lineage_posted(&self) -> u64 {
        self.0.lineage.as_ref().and_then(Lineage::delivery).map_or(0, |d| d.posted())
    }

    /// Waits until every record and event so far is written and flushed.
    pub fn sync(&self) {
        if let Some(log) = &self.0.log {
            log.sync();
        }
        if let Some(lineage) = &self.0.lineage {
            lineage.sync();
        }
    }

    /// Writes what is queued, fsyncs the files and stops the writers (blocking).
    /// Records that end later are kept in memory only.
    pub fn shutdown(&self) {
        if let Some(log) = &self.0.log {
            log.close();
        }
        if let Some(lineage) = &self.0.lineage {
            lineage.close();
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.0.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn event(&self, query: &QueryAudit, event_type: EventType, time: String, error: Option<String>) {
        if let Some(lineage) = &self.0.lineage {
            lineage.send(RunEvent {
                event_type,
                time,
                run_id: query.id.clone(),
                catalog: query.catalog.clone(),
                principal: query.principal.clone(),
                fingerprint: query.fingerprint.clone(),
                redacted_sql: query.redacted.clone(),
                planned: query.planned.clone(),
                error,
                purpose: query.purpose.clone(),
                training_set: query.training_set.clone(),
            });
        }
    }
}

impl QueryAudit {
    /// The query's id (the OpenLineage run id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The query is planned and about to run: what it reads (the START event).
    pub fn planned(&mut self, planned: Planned) {
        self.planned = Some(Arc::new(planned));
        self.start();
    }

    fn start(&mut self) {
        if !self.start_sent {
            self.start_sent = true;
            self.audit.event(self, EventType::Start, self.time.clone(), None);
        }
    }

    /// The query ended: its record goes to the log and the in-memory query log and
    /// usage, and its end event (after its START, sent now if planning never
    /// finished) to lineage.
    pub fn end(mut self, end: QueryEnd) {
        self.start();
        let products = self.planned.as_ref().map(|planned| planned.products.clone()).unwrap_or_default();
        let event_type = match end.outcome {
            Outcome::Ok => EventType::Complete,
            Outcome::Refused | Outcome::Failed => EventType::Fail,
            Outcome::Cancelled => EventType::Abort,
        };
        let failure = (event_type == EventType::Fail)
            .then(|| end.error.clone().or_else(|| end.error_code.clone()).unwrap_or_else(|| "failed".into()));
        self.audit.event(&self, event_type, record::format_time(Utc::now()), failure);
        let record = Arc::new(AuditRecord {
            time: std::mem::take(&mut self.time),
            query_id: std::mem::take(&mut self.id),
            principal: std::mem::take(&mut self.principal),
            groups: std::mem::take(&mut self.groups),
            principal_domain: self.principal_domain.take(),
            purpose: self.purpose.take(),
            training_set: self.training_set.take(),
            kind: self.kind,
            sql: std::mem::take(&mut self.sql),
            fingerprint: std::mem::take(&mut self.fingerprint),
            products,
            rows: end.rows,
            bytes: end.bytes,
            duration_ms: self.started.elapsed().as_millis() as u64,
            outcome: end.outcome,
            error_code: end.error_code,
            error: end.error,
        });
        self.audit.memory().add(Arc::clone(&record), self.time_ms);
        if let Some(log) = &self.audit.0.log {
            log.send(record);
        }
    }
}

#[cfg(test)]
mod tests;
