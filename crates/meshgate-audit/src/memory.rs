//! What the server keeps in memory of past queries, for the `query_log` and `usage`
//! system tables: the most recent records (a ring bounded by count and by the text
//! it holds) and the usage tallies.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::record::AuditRecord;
use crate::usage::Usage;

/// Records kept for `query_log`.
pub const RECENT_RECORDS: usize = 10_000;
/// Text the kept records may hold together (SQL can be long): past it, the oldest go.
pub const RECENT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Memory {
    recent: VecDeque<(Arc<AuditRecord>, usize)>,
    recent_bytes: usize,
    pub(crate) usage: Usage,
}

impl Memory {
    pub(crate) fn add(&mut self, record: Arc<AuditRecord>, time_ms: i64) {
        self.usage.add(&record, time_ms);
        let bytes = record.text_bytes();
        self.recent_bytes += bytes;
        self.recent.push_back((record, bytes));
        while self.recent.len() > RECENT_RECORDS || (self.recent_bytes > RECENT_BYTES && self.recent.len() > 1) {
            if let Some((_, bytes)) = self.recent.pop_front() {
                self.recent_bytes -= bytes;
            }
        }
    }

    /// The kept records, oldest first.
    pub(crate) fn recent(&self) -> Vec<Arc<AuditRecord>> {
        self.recent.iter().map(|(record, _)| Arc::clone(record)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, QueryKind};

    fn record(id: usize, sql: String) -> Arc<AuditRecord> {
        Arc::new(AuditRecord {
            training_set: None,
            time: String::new(),
            query_id: id.to_string(),
            principal: "ana".into(),
            groups: vec![],
            principal_domain: None,
            purpose: None,
            kind: QueryKind::Statement,
            sql,
            fingerprint: String::new(),
            products: vec![],
            rows: 0,
            bytes: 0,
            duration_ms: 0,
            outcome: Outcome::Ok,
            error_code: None,
            error: None,
        })
    }

    #[test]
    fn the_ring_keeps_the_newest_by_count_and_by_text() {
        let mut memory = Memory::default();
        for id in 0..RECENT_RECORDS + 5 {
            memory.add(record(id, "SELECT 1".into()), 0);
        }
        let recent = memory.recent();
        assert_eq!(recent.len(), RECENT_RECORDS);
        assert_eq!(recent[0].query_id, "5");
        assert_eq!(recent.last().unwrap().query_id, (RECENT_RECORDS + 4).to_string());

        let mut memory = Memory::default();
        let big = "x".repeat(RECENT_BYTES / 4);
        for id in 0..10 {
            memory.add(record(id, big.clone()), 0);
        }
        let ids: Vec<String> = memory.recent().iter().map(|r| r.query_id.clone()).collect();
        assert_eq!(ids, ["7", "8", "9"]);
        assert!(memory.recent_bytes <= RECENT_BYTES);
    }
}
