//! Delta Lake products (`format: delta`): the table's log says which Parquet files make
//! each version. A product serves the version that was current when the mesh was
//! loaded (at start and on every reload); a pinned name (`events@v=42`,
//! `events@ts=2026-11-30T12:00:00Z`, see [`DeltaPin`]) serves another, opened once per
//! snapshot ([`crate::MeshSnapshot::delta_pin`]). Either way the product is a
//! [`ProductTable`] like any other, so it is governed the same way.

mod columns;
mod log;
mod pin;
mod pins;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use deltalake_core::delta_datafusion::{DeltaScanConfig, DeltaScanNext};
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

pub use pin::DeltaPin;
pub(crate) use pins::PinCache;

use crate::config::Product;
use crate::error::{ProblemKind, ProductError};
use crate::health::{Health, schema_drift, strip_location};
use crate::inventory::Inventory;
use crate::plain_strings::plain_schema;
use crate::product_table::ProductTable;
use crate::snapshot::{ProductEntry, unreadable};

/// Opens a Delta product at its newest version.
pub(crate) async fn open_product(state: &SessionState, product: Product) -> ProductEntry {
    match load(state.runtime_env(), &product.location, None).await {
        Ok(table) => entry_at(state, product, table),
        Err(error) => {
            let problem = load_problem(&product, &error);
            unreadable(product, problem)
        }
    }
}

/// Loads the table's log at `version` (the newest when `None`) through meshgate's own
/// object store for the location.
async fn load(runtime: &RuntimeEnv, location: &Url, version: Option<u64>) -> Result<DeltaTable, DeltaTableError> {
    log::register_log_stores();
    let store = runtime
        .object_store_registry
        .get_store(location)
        .map_err(|error| DeltaTableError::Generic(error.to_string()))?;
    let mut builder = DeltaTableBuilder::from_url(location.clone())?.with_storage_backend(store, location.clone());
    if let Some(version) = version {
        builder = builder.with_version(version);
    }
    builder.load().await
}

/// The product served from `table` as loaded: its declared columns (or all of the
/// table's), checked against the table's schema at that version.
fn entry_at(state: &SessionState, product: Product, table: DeltaTable) -> ProductEntry {
    let name = product.qualified_name();
    let location = product.location.to_string();
    let scan = table.snapshot().and_then(|loaded| {
        // Partition values as plain strings, and strings plain unless the server sends views.
        let config = DeltaScanConfig::new_from_session(state).with_wrap_partition_values(false);
        Ok(DeltaScanNext::new(loaded.snapshot().clone(), config)?)
    });
    let scan: Arc<dyn TableProvider> = match scan {
        Ok(scan) => Arc::new(scan),
        Err(error) => {
            let problem = load_problem(&product, &error);
            return unreadable(product, problem);
        }
    };
    let found = scan.schema();
    let views = state.table_options().parquet.global.schema_force_view_types;
    let found = if views { found } else { Arc::new(plain_schema(&found)) };
    let mut health = Health::Healthy;
    let (schema, inner) = match &product.schema {
        None => (found, scan),
        Some(declared) => {
            let drift = schema_drift(declared, &found, product.format);
            if !drift.is_empty() {
                health = Health::Unhealthy(ProductError {
                    product: name.clone(),
                    kind: ProblemKind::SchemaDrift,
                    detail: drift.join("; "),
                });
            }
            columns::declared(declared, &found, scan)
        }
    };
    let delta_version = table.version();
    let table_at = ProductTable::new(name, location, schema, Some(inner), health);
    ProductEntry::new(product, Arc::new(table_at)).with_delta(table, delta_version)
}

/// Why a Delta table could not be opened, naming the product, without store paths.
fn load_problem(product: &Product, error: &DeltaTableError) -> ProductError {
    let name = product.qualified_name();
    let location = product.location.as_str();
    let (kind, detail) = match error {
        DeltaTableError::ObjectStore { .. } | DeltaTableError::Io { .. } => {
            (ProblemKind::Unavailable, strip_location(&error.to_string(), location))
        }
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => {
            (ProblemKind::Unavailable, "no Delta table at its location (no commits in _delta_log/)".to_owned())
        }
        other => (
            ProblemKind::Corrupt,
            format!("its Delta log cannot be read: {}", strip_location(&other.to_string(), location)),
        ),
    };
    ProductError { product: name, kind, detail }
}

/// A Delta product's inventory at the version it serves: the data files of that
/// version (not every file under its location), and the rows its log records.
pub(crate) fn inventory(table: &DeltaTable) -> Result<Inventory, DeltaTableError> {
    let loaded = table.snapshot()?;
    let (mut files, mut bytes, mut newest, mut rows) = (0, 0, None::<i64>, Some(0u64));
    for file in loaded.log_data().iter() {
        files += 1;
        bytes += u64::try_from(file.size()).unwrap_or(0);
        newest = Some(newest.map_or(file.modification_time(), |n| n.max(file.modification_time())));
        // Rows deleted through a deletion vector are still in the file's count.
        let counted = file.num_records().filter(|_| file.deletion_vector_descriptor().is_none());
        rows = rows.zip(counted).map(|(sum, n)| sum + n as u64);
    }
    Ok(Inventory { files, bytes, last_modified_ms: newest, rows })
}

/// A Delta product's data files at the version it serves (paths relative to the
/// table, as its log records them).
pub(crate) fn files(table: &DeltaTable) -> Result<Vec<crate::files::ProductFile>, DeltaTableError> {
    let loaded = table.snapshot()?;
    Ok(loaded
        .log_data()
        .iter()
        .map(|file| crate::files::ProductFile {
            path: file.path().into_owned(),
            size: u64::try_from(file.size()).unwrap_or(0),
            modified_ms: file.modification_time(),
            e_tag: None,
        })
        .collect())
}
