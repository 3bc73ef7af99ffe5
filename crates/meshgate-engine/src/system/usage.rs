//! `mesh_catalog.usage`: per product the principal may read and per window (`1h`,
//! `24h`, `7d`, `all`), how many queries read it, how many distinct principals,
//! groups and consuming domains asked: the reuse rate. The rows those queries
//! returned count only for someone no row of the product is hidden from.

use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use meshgate_policy::MeshView;

use super::SystemSources;
use super::rows::{Cell, Rows, text};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let count = |name: &str, nullable: bool| Field::new(name, DataType::Int64, nullable);
    Arc::new(Schema::new(vec![
        text("domain"),
        text("product"),
        text("window"),
        count("queries", false),
        count("rows", true),
        count("distinct_principals", false),
        count("distinct_groups", false),
        count("distinct_consuming_domains", false),
    ]))
});

pub(super) fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

pub(super) fn rows(view: &MeshView, sources: &SystemSources) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema());
    let steward = view.policy().is_steward(view.principal());
    for usage in sources.audit.usage(SystemTime::now()) {
        let Some(table) = view.table(&usage.domain, &usage.product)? else { continue };
        let whole = steward || !table.hides_rows();
        let count = |value: u64| Cell::Int(Some(i64::try_from(value).unwrap_or(i64::MAX)));
        rows.push(vec![
            text(&usage.domain),
            text(&usage.product),
            text(usage.window.name()),
            count(usage.queries),
            if whole { count(usage.rows) } else { Cell::Int(None) },
            count(usage.principals),
            count(usage.groups),
            count(usage.consuming_domains),
        ])?;
    }
    rows.finish()
}
