//! Time travel on Delta products: a statement's pinned names (`sales."events@v=42"`,
//! `sales."events@ts=2026-11-30T12:00:00Z"`) are opened before planning, since
//! opening a version reads its log, and handed to the principal's view, where the
//! rest of planning finds them like any other product.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::TableReference;
use meshgate_catalog::{DeltaPin, PinError, ProductEntry};
use meshgate_policy::MeshView;

use crate::error::EngineError;

/// The Delta versions `references` pin, by (domain, table name as written). A name the
/// principal cannot read is left alone: it fails later exactly like a missing one,
/// whatever its pin says.
pub(crate) async fn pinned_versions(
    view: &MeshView,
    default_schema: Option<&str>,
    references: &[TableReference],
) -> Result<BTreeMap<(String, String), Arc<ProductEntry>>, EngineError> {
    let mut pins = BTreeMap::new();
    for reference in references {
        if reference.catalog().is_some_and(|catalog| catalog != view.snapshot().catalog_name()) {
            continue;
        }
        let Some(domain) = reference.schema().or(default_schema) else { continue };
        let table = reference.table();
        let Some((name, pin)) = DeltaPin::split(table) else { continue };
        if view.product(domain, name).is_none() || pins.contains_key(&(domain.to_owned(), table.to_owned())) {
            continue;
        }
        let pin = pin.map_err(|message| EngineError::InvalidSql(format!("table {domain}.{table}: {message}")))?;
        let entry = view.snapshot().delta_pin(domain, name, pin).await.map_err(|error| match error {
            PinError::Invalid(message) => EngineError::InvalidSql(format!("table {domain}.{table}: {message}")),
            PinError::NotFound(message) => {
                EngineError::TableNotFound { name: reference.to_string(), hint: format!(": {message}") }
            }
            PinError::Product(problem) => EngineError::Product(problem),
        })?;
        if let Some(entry) = entry {
            pins.insert((domain.to_owned(), table.to_owned()), entry);
        }
    }
    Ok(pins)
}
