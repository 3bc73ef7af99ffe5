//! What a product holds right now: its files, their bytes, the newest modification
//! time and (where the format records it) the row count. Listed from the store on
//! demand and kept for a minute, so the catalog stays cheap to ask and close to true.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::catalog::TableProvider;
use datafusion::common::stats::Precision;
use datafusion::execution::context::SessionContext;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

use crate::snapshot::{MeshSnapshot, ProductEntry};

/// How long an inventory is reused before the store is listed again.
const INVENTORY_TTL: Duration = Duration::from_secs(60);

/// A product's files as last listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub files: u64,
    pub bytes: u64,
    /// Newest file modification, milliseconds since the epoch.
    pub last_modified_ms: Option<i64>,
    /// Exact row count when the files record it (Parquet footers); `None` otherwise.
    pub rows: Option<u64>,
}

/// The cached inventory of one product.
#[derive(Debug, Default)]
pub(crate) struct InventoryCache {
    taken: std::sync::Mutex<Option<(Instant, Arc<Inventory>)>>,
}

impl MeshSnapshot {
    /// The product's inventory (listed at most once a minute); `None` when its files
    /// cannot be listed or read now.
    pub async fn inventory(&self, entry: &ProductEntry) -> Option<Arc<Inventory>> {
        if let Ok(taken) = entry.inventory.taken.lock()
            && let Some((at, inventory)) = taken.as_ref()
            && at.elapsed() < INVENTORY_TTL
        {
            return Some(Arc::clone(inventory));
        }
        let inventory = match take_inventory(self, entry).await {
            Ok(inventory) => Arc::new(inventory),
            Err(error) => {
                tracing::debug!(product = %entry.product.qualified_name(), %error, "cannot list the product's files");
                return None;
            }
        };
        if let Ok(mut taken) = entry.inventory.taken.lock() {
            *taken = Some((Instant::now(), Arc::clone(&inventory)));
        }
        Some(inventory)
    }
}

async fn take_inventory(
    snapshot: &MeshSnapshot,
    entry: &ProductEntry,
) -> Result<Inventory, datafusion::error::DataFusionError> {
    if let Some(problem) = entry.table.refusal() {
        return Err(datafusion::error::DataFusionError::External(Box::new(problem)));
    }
    if let Some(table) = entry.delta_table() {
        return Ok(crate::delta::inventory(table)?);
    }
    let listed = snapshot.listed_files(entry).await?;
    let files = listed.len() as u64;
    let bytes = listed.iter().map(|file| file.size).sum();
    let newest = listed.iter().map(|file| file.modified_ms).max();
    let ctx = SessionContext::new_with_config_rt(snapshot.session_config().clone(), Arc::clone(snapshot.runtime()));
    let state = ctx.state();
    let plan = entry.table.scan(&state, None, &[], None).await?;
    let rows = match StatisticsContext::new().compute(plan.as_ref(), &StatisticsArgs::new())?.num_rows {
        Precision::Exact(rows) => Some(rows as u64),
        _ => None,
    };
    Ok(Inventory { files, bytes, last_modified_ms: newest, rows })
}
