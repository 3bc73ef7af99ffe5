//! Errors of the audit log and the lineage sinks (all at start-up: once running,
//! recording never fails a query).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read the audit log {path} to rebuild the query log and usage: {source}")]
    Rebuild { path: PathBuf, source: std::io::Error },
    #[error("--lineage-url {url:?} is not a valid endpoint URL: {reason}")]
    LineageUrl { url: String, reason: String },
    #[error("cannot start the lineage HTTP client: {0}")]
    LineageClient(String),
    #[error("cannot start a writer thread: {0}")]
    Thread(String),
    #[error("--audit-max-bytes must be more than 0")]
    MaxBytes,
}
