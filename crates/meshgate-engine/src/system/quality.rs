//! `mesh_catalog.quality_results`: every kept result of the quality checks of the
//! product versions the principal may read, latest flagged. What was measured is
//! shown only to someone who sees the whole product as the check did: every row, and
//! the check's columns unmasked (a steward, or a reader nothing is hidden from).

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use meshgate_catalog::quality::CheckResult;
use meshgate_policy::MeshView;

use super::SystemSources;
use super::rows::{Cell, Rows, text, text_list, texts, time};
use super::sight::Sight;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let count = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        text("domain", false),
        text("product", false),
        text("version", false),
        text("check_name", false),
        text("kind", false),
        text("severity", false),
        text("description", false),
        text_list("columns"),
        time("ran_at", false),
        Field::new("duration_ms", DataType::Int64, false),
        count("files"),
        count("bytes"),
        time("newest_file", true),
        Field::new("measured", DataType::Float64, true),
        text("expectation", false),
        Field::new("passed", DataType::Boolean, false),
        text("error", true),
        Field::new("is_latest", DataType::Boolean, false),
    ]))
});

pub(super) fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

pub(super) fn rows(view: &MeshView, sources: &SystemSources) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema());
    let latest = sources.quality.latest();
    let mut sight = Sight::new(view);
    for result in sources.quality.history() {
        let Some(seen) = sight.version(&result.domain, &result.product, &result.version)? else { continue };
        let is_latest = latest.iter().any(|l| same_run(l, &result));
        let shows_values = seen.whole
            && (seen.steward || result.kind != "sql")
            && result.columns.iter().all(|column| seen.plain_columns.contains(column));
        let measured = if shows_values { result.measured } else { None };
        let files = |value: u64| Cell::Int(seen.whole.then(|| i64::try_from(value).ok()).flatten());
        rows.push(vec![
            text(&result.domain),
            text(&result.product),
            text(&result.version),
            text(&result.check),
            text(result.kind),
            text(result.severity.as_str()),
            text(&result.description),
            texts(&result.columns),
            Cell::Time(Some(millis(result.ran_at))),
            Cell::Int(Some(result.duration.as_millis() as i64)),
            files(result.files.files as u64),
            files(result.files.bytes),
            Cell::Time(result.files.newest.filter(|_| seen.whole).map(millis)),
            Cell::Float(measured),
            text(&result.expectation),
            Cell::Bool(Some(result.passed)),
            Cell::Str(result.error.as_deref()),
            Cell::Bool(Some(is_latest)),
        ])?;
    }
    rows.finish()
}

fn same_run(a: &CheckResult, b: &CheckResult) -> bool {
    a.domain == b.domain
        && a.product == b.product
        && a.version == b.version
        && a.check == b.check
        && a.ran_at == b.ran_at
}

pub(super) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_millis() as i64,
        Err(before) => -(before.duration().as_millis() as i64),
    }
}
