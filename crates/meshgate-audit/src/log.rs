//! The audit log: `audit.jsonl` in its directory, one [`AuditRecord`] per line,
//! rotated by size to `audit-<timestamp>.jsonl` with the newest `keep` rotated files
//! retained ([`crate::file`]), written by one background thread ([`crate::writer`]).

use std::path::Path;
use std::sync::Arc;

use crate::error::AuditError;
use crate::file::{JsonLinesFile, Rotation, read_lines};
use crate::memory::Memory;
use crate::record::AuditRecord;
use crate::writer::Writer;

pub const FILE_NAME: &str = "audit.jsonl";

#[derive(Debug)]
pub(crate) struct AuditLog {
    writer: Writer<Arc<AuditRecord>>,
}

/// What re-reading the files found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub records: u64,
    /// Lines that are not records (a line cut short by a crash, an edit).
    pub malformed: u64,
}

impl AuditLog {
    /// Opens the log in `dir`, first feeding `memory` with every record of its files
    /// (rotated ones, then the current), so a restart keeps `query_log` and `usage`.
    pub(crate) fn open(dir: &Path, rotation: Rotation, memory: &mut Memory) -> Result<(Self, Rebuilt), AuditError> {
        let path = dir.join(FILE_NAME);
        let rebuilt = rebuild(&path, memory)?;
        let file = JsonLinesFile::open(&path, Some(rotation))
            .map_err(|source| AuditError::Open { path: path.clone(), source })?;
        let writer = Writer::spawn("meshgate-audit", Some(file), |record: Arc<AuditRecord>| {
            match serde_json::to_vec(record.as_ref()) {
                Ok(line) => Some(line),
                Err(error) => {
                    tracing::error!(%error, query_id = %record.query_id, "cannot serialize an audit record");
                    None
                }
            }
        })
        .map_err(|source| AuditError::Thread(source.to_string()))?;
        Ok((Self { writer }, rebuilt))
    }

    pub(crate) fn send(&self, record: Arc<AuditRecord>) {
        self.writer.send(record);
    }

    pub(crate) fn sync(&self) {
        self.writer.sync();
    }

    pub(crate) fn close(&self) {
        self.writer.close();
    }
}

fn rebuild(path: &Path, memory: &mut Memory) -> Result<Rebuilt, AuditError> {
    let mut rebuilt = Rebuilt::default();
    read_lines(path, |line| {
        if line.trim().is_empty() {
            return;
        }
        match serde_json::from_str::<AuditRecord>(line) {
            Ok(record) => match record.time_ms() {
                Some(time_ms) => {
                    rebuilt.records += 1;
                    memory.add(Arc::new(record), time_ms);
                }
                None => rebuilt.malformed += 1,
            },
            Err(_) => rebuilt.malformed += 1,
        }
    })
    .map_err(|source| AuditError::Rebuild { path: path.to_owned(), source })?;
    Ok(rebuilt)
}
