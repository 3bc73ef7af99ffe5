//! `mesh_catalog.query_log`: the queries this server recorded (the audit log's recent
//! records): a principal sees their own, a steward everyone's. The policy rules a
//! query fired stay in the audit log, for stewards.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use meshgate_audit::QueryKind;
use meshgate_policy::MeshView;

use super::SystemSources;
use super::rows::{Cell, Rows, text, text_list, texts, time};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        time("time", true),
        text("query_id", false),
        text("principal", false),
        text_list("groups"),
        text("purpose", true),
        text("kind", false),
        text("sql", false),
        text("fingerprint", false),
        text_list("products"),
        count("rows"),
        count("bytes"),
        count("duration_ms"),
        text("outcome", false),
        text("error_code", true),
        text("error", true),
    ]))
});

pub(super) fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

pub(super) fn rows(view: &MeshView, sources: &SystemSources) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema());
    let steward = view.policy().is_steward(view.principal());
    let me = &view.principal().name;
    for record in sources.audit.recent() {
        if !steward && &record.principal != me {
            continue;
        }
        let products: Vec<String> =
            record.products.iter().map(|p| format!("{}.{}@{}", p.domain, p.product, p.version_read())).collect();
        let count = |value: u64| Cell::Int(Some(i64::try_from(value).unwrap_or(i64::MAX)));
        rows.push(vec![
            Cell::Time(record.time_ms()),
            text(&record.query_id),
            text(&record.principal),
            texts(&record.groups),
            Cell::Str(record.purpose.as_deref()),
            text(kind_name(record.kind)),
            text(&record.sql),
            text(&record.fingerprint),
            texts(&products),
            count(record.rows),
            count(record.bytes),
            count(record.duration_ms),
            text(record.outcome.name()),
            Cell::Str(record.error_code.as_deref()),
            Cell::Str(record.error.as_deref()),
        ])?;
    }
    rows.finish()
}

fn kind_name(kind: QueryKind) -> &'static str {
    match kind {
        QueryKind::Statement => "statement",
        QueryKind::Prepared => "prepared",
        QueryKind::Substrait => "substrait",
    }
}
