//! `mesh_catalog.products`: one row per product the principal may read.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use meshgate_catalog::config::{Product, Status};
use meshgate_catalog::quality::ProductKey;
use meshgate_policy::MeshView;

use super::SystemSources;
use super::rows::{Cell, Rows, text, text_list, texts, time};
use super::sight::Sight;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let count = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        text("domain", false),
        text("name", false),
        text("version", false),
        text("status", false),
        text("table_name", true),
        Field::new("is_current", DataType::Boolean, false),
        text("sunset", true),
        text("owner", false),
        text("description", false),
        text_list("tags"),
        text("format", false),
        count("delta_version"),
        text("location", false),
        count("row_count"),
        count("bytes"),
        count("files"),
        time("last_modified", true),
        text("health", false),
        text("problem", true),
        text("quality_status", false),
        text("freshness_status", false),
        time("checked_at", true),
        text_list("ml_roles"),
        text("acceleration", true),
        text("acceleration_refresh", true),
        time("accelerated_at", true),
        count("accelerated_rows"),
        count("accelerated_bytes"),
        count("accelerated_disk_bytes"),
        text("acceleration_problem", true),
    ]))
});

pub(super) fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

pub(super) async fn rows(view: &MeshView, sources: &SystemSources) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema());
    let mut sight = Sight::new(view);
    for entry in view.all_versions() {
        let product = &entry.product;
        let current = view.snapshot().product(&product.domain, &product.name).is_some_and(|c| Arc::ptr_eq(c, entry));
        // The name that reads this version (none for a retired one).
        let table_name = match product.status {
            Status::Retired => None,
            _ if current => Some(product.name.clone()),
            _ => Some(format!("{}@{}", product.name, product.version)),
        };
        // Figures about the whole product are not for someone some rows are hidden from.
        let whole = sight.version(&product.domain, &product.name, &product.version)?.is_some_and(|seen| seen.whole);
        let inventory = if whole { view.snapshot().inventory(entry).await } else { None };
        let count = |value: Option<u64>| Cell::Int(value.and_then(|v| i64::try_from(v).ok()));
        let problem = entry.table.refusal().map(|problem| problem.to_string());
        let roles = ml_roles(product);
        let location = public_location(product);
        let key = ProductKey {
            domain: product.domain.clone(),
            product: product.name.clone(),
            version: product.version.clone(),
        };
        let quality = sources.quality.status_of(&key);
        let accelerated = product.acceleration.as_ref();
        let copy = entry.table.accelerated();
        let state = accelerated.map(|_| entry.acceleration.state(copy.is_some()).as_str());
        let refresh = accelerated.map(|acceleration| acceleration.refresh.to_string());
        // Its size, and why it did not fit, are figures about the whole product.
        let copy_seen = copy.as_ref().filter(|_| whole);
        let acceleration_problem = entry.acceleration.problem().filter(|_| whole);
        rows.push(vec![
            text(&product.domain),
            text(&product.name),
            text(&product.version),
            text(product.status.as_str()),
            Cell::Str(table_name.as_deref()),
            Cell::Bool(Some(current)),
            Cell::Str(product.sunset.as_deref()),
            text(&product.owner),
            text(&product.description),
            texts(&product.tags),
            text(product.format.name()),
            count(entry.delta_version),
            text(&location),
            count(inventory.as_ref().and_then(|i| i.rows)),
            count(inventory.as_ref().map(|i| i.bytes)),
            count(inventory.as_ref().map(|i| i.files)),
            Cell::Time(inventory.as_ref().and_then(|i| i.last_modified_ms)),
            text(if problem.is_some() { "unhealthy" } else { "healthy" }),
            Cell::Str(problem.as_deref()),
            text(quality.as_ref().map_or("unchecked", |q| q.status.as_str())),
            text(quality.as_ref().map_or("unknown", |q| q.freshness.as_str())),
            Cell::Time(quality.as_ref().and_then(|q| q.checked_at).map(super::quality::millis)),
            texts(&roles),
            Cell::Str(state),
            Cell::Str(refresh.as_deref()),
            Cell::Time(copy.as_ref().map(|copy| super::quality::millis(copy.loaded_at()))),
            count(copy_seen.map(|copy| copy.rows())),
            count(copy_seen.map(|copy| copy.bytes())),
            count(copy_seen.map(|copy| copy.disk_bytes())),
            Cell::Str(acceleration_problem.as_deref()),
        ])?;
    }
    rows.finish()
}

/// The ML roles its declared columns take, each once.
fn ml_roles(product: &Product) -> Vec<String> {
    let mut roles: Vec<String> =
        product.schema.iter().flatten().filter_map(|column| column.role).map(|role| role.as_str().to_owned()).collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The product's location without credentials or query parameters.
pub(crate) fn public_location(product: &Product) -> String {
    let mut url = product.location.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}
