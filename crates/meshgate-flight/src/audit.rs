//! Recording queries in the audit log and lineage ([`meshgate_audit`]): who asks
//! (principal, groups, `domain` attribute, declared purpose), what (the SQL or the
//! Substrait plan, statement or prepared), what planning found it reads, and how it
//! ended. A DoGet's query is followed by its [`crate::results::QueryLog`]; a query
//! refused at planning in GetFlightInfo or when a prepared statement is created is
//! recorded here at once. A GetFlightInfo that succeeds records nothing: its DoGet
//! does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate_audit::{Audit, OutputColumn, Planned, QueryAudit, QueryEnd, QueryStart, SourceColumn, Statement};
use meshgate_engine::{Engine, Query};
use meshgate_policy::{AttrValue, Principal};
use tonic::{Code, Status};

use crate::error::{FlightError, code_name, to_status};
use crate::metrics::{Metrics, ProductLabels};
use crate::proto::StatementPayload;
use crate::service::MeshFlightSqlService;

/// The call header a client declares a query's purpose in (ADBC:
/// `adbc.flight.sql.rpc.call_header.x-meshgate-purpose`): `principal.purpose` in
/// policies, recorded in the audit log and lineage.
pub const PURPOSE_HEADER: &str = "x-meshgate-purpose";

/// The DoGet header naming the training set a shard read belongs to (the Python
/// package sends `<manifest id>/<split>/<shard>-of-<shards>`). Recorded only.
pub const TRAINING_SET_HEADER: &str = "x-meshgate-training-set";

/// Longest purpose recorded, in characters.
const MAX_PURPOSE_CHARS: usize = 512;

/// The principal attribute naming the domain a principal consumes for.
const DOMAIN_ATTRIBUTE: &str = "domain";

/// A purpose header's value, trimmed and bounded; none when empty.
pub(crate) fn declared_purpose(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    (!value.is_empty()).then(|| value.chars().take(MAX_PURPOSE_CHARS).collect())
}

/// What a DoGet's headers say about the read, for the record.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallNotes {
    pub purpose: Option<String>,
    pub training_set: Option<String>,
}

impl CallNotes {
    pub fn from_headers(headers: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            purpose: declared_purpose(headers(PURPOSE_HEADER).as_deref()),
            training_set: declared_purpose(headers(TRAINING_SET_HEADER).as_deref())
                .map(|tag| tag.chars().take(MAX_TRAINING_SET_CHARS).collect()),
        }
    }
}

/// Longest training-set tag recorded, in characters.
const MAX_TRAINING_SET_CHARS: usize = 200;

/// Starts following `statement` for `principal`. The purpose is the call's header,
/// else the one the ticket carries from GetFlightInfo.
pub(crate) fn begin(
    audit: &Audit,
    engine: &Engine,
    principal: &Principal,
    statement: &StatementPayload,
    notes: CallNotes,
) -> QueryAudit {
    let statement_text = if statement.substrait_plan.is_empty() {
        Statement::Sql(&statement.sql)
    } else {
        Statement::Substrait(&statement.substrait_plan)
    };
    audit.begin(QueryStart {
        catalog: engine.snapshot().catalog_name(),
        principal: &principal.name,
        groups: principal.groups.clone(),
        principal_domain: match principal.attributes.get(DOMAIN_ATTRIBUTE) {
            Some(AttrValue::Utf8(domain)) => Some(domain.clone()),
            _ => None,
        },
        purpose: notes.purpose.or_else(|| declared_purpose(Some(&statement.declared_purpose))),
        training_set: notes.training_set,
        prepared: statement.prepared,
        statement: statement_text,
    })
}

/// What planning found: the products read and, when lineage is on, each result
/// column's source.
pub(crate) fn planned(audit: &Audit, query: &Query) -> Planned {
    let products = query
        .reads()
        .iter()
        .map(|read| meshgate_audit::ProductRead {
            domain: read.domain.clone(),
            product: read.product.clone(),
            version: read.version.clone(),
            delta_version: read.delta_version,
            columns: read.columns.clone(),
            masked: read.masked.clone(),
            rules: read.rules.clone(),
        })
        .collect();
    if !audit.lineage_enabled() {
        return Planned { products, outputs: Vec::new() };
    }
    let outputs = query
        .schema()
        .fields()
        .iter()
        .zip(query.column_sources())
        .map(|(field, source)| OutputColumn {
            name: field.name().clone(),
            source: source.map(|source| SourceColumn {
                domain: source.schema,
                // A pinned version (`orders@1`) is the product `orders`.
                product: source.table.split('@').next().unwrap_or_default().to_owned(),
                column: source.column,
            }),
        })
        .collect();
    Planned { products, outputs }
}

/// Every query ends here, whether it ran or not: its record goes to the audit log
/// and lineage, its figures to the metrics (outcome and `code`, the time since it
/// arrived, the products it read).
pub(crate) fn end(
    query: QueryAudit,
    end: QueryEnd,
    code: Code,
    elapsed: Duration,
    reads: &[ProductLabels],
    metrics: &Metrics,
) {
    metrics.query_ended(end.outcome, code, elapsed, reads);
    query.end(end);
}

/// How a query that never ran ended: refused by the gateway or failed, by code.
fn end_before_running(query: QueryAudit, status: &Status, started: Instant, metrics: &Metrics) {
    let code = code_name(status.code());
    let ending = QueryEnd {
        rows: 0,
        bytes: 0,
        outcome: meshgate_audit::Outcome::before_running(code),
        error_code: Some(code.to_owned()),
        error: Some(status.message().to_owned()),
    };
    end(query, ending, status.code(), started.elapsed(), &[], metrics);
}

impl MeshFlightSqlService {
    /// Records `statement`, which planning (begun at `started`) refused with `error`,
    /// and returns the status the call ends with.
    pub(crate) fn refused(
        &self,
        engine: &Engine,
        principal: &Arc<Principal>,
        statement: &StatementPayload,
        error: &FlightError,
        started: Instant,
    ) -> Status {
        let status = to_status(error);
        end_before_running(
            begin(self.audit(), engine, principal, statement, CallNotes::default()),
            &status,
            started,
            self.metrics(),
        );
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_are_trimmed_bounded_and_never_empty() {
        assert_eq!(declared_purpose(Some("  churn model ")), Some("churn model".into()));
        assert_eq!(declared_purpose(Some("   ")), None);
        assert_eq!(declared_purpose(None), None);
        assert_eq!(declared_purpose(Some(&"é".repeat(600))).unwrap().chars().count(), MAX_PURPOSE_CHARS);
    }
}
