//! A product's files as they are right now, one by one (path, size, modification
//! time, ETag): what a training set's manifest records, so a later read can tell
//! whether the data moved. Listed fresh on every call; never cached.

use std::sync::Arc;

use datafusion::common::DataFusionError;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;

use crate::snapshot::{MeshSnapshot, ProductEntry, file_extension};

/// One file of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFile {
    /// The path in its store, as the store names it.
    pub path: String,
    pub size: u64,
    /// Last modification, milliseconds since the epoch.
    pub modified_ms: i64,
    pub e_tag: Option<String>,
}

impl MeshSnapshot {
    /// The files `entry` reads now, sorted by path. A Delta product's files are those
    /// of the version it reads.
    pub async fn product_files(&self, entry: &ProductEntry) -> Result<Vec<ProductFile>, DataFusionError> {
        if let Some(problem) = entry.table.refusal() {
            return Err(DataFusionError::External(Box::new(problem)));
        }
        let mut files = match entry.delta_table() {
            Some(table) => crate::delta::files(table).map_err(|error| DataFusionError::External(Box::new(error)))?,
            None => self.listed_files(entry).await?,
        };
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The files under a (non-Delta) product's location, listed now.
    pub(crate) async fn listed_files(&self, entry: &ProductEntry) -> Result<Vec<ProductFile>, DataFusionError> {
        let ctx = SessionContext::new_with_config_rt(self.session_config().clone(), Arc::clone(self.runtime()));
        let state = ctx.state();
        let url = ListingTableUrl::parse(entry.product.location.as_str())?;
        let store = self.runtime().object_store(&url)?;
        let listing = url.list_all_files(&state, store.as_ref(), file_extension(&entry.product)).await?;
        listing
            .map_ok(|meta| ProductFile {
                path: meta.location.to_string(),
                size: meta.size,
                modified_ms: meta.last_modified.timestamp_millis(),
                e_tag: meta.e_tag,
            })
            .try_collect()
            .await
    }
}
