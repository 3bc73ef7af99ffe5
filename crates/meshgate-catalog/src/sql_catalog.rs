//! The mesh as a DataFusion catalog: one schema per domain, one table per product.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::Result;

use crate::snapshot::MeshSnapshot;

/// Catalog provider over one snapshot.
#[derive(Debug)]
pub struct MeshCatalog {
    snapshot: Arc<MeshSnapshot>,
}

impl MeshCatalog {
    pub fn new(snapshot: Arc<MeshSnapshot>) -> Self {
        Self { snapshot }
    }
}

impl CatalogProvider for MeshCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.snapshot.domain_names().map(str::to_owned).collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let _products = self.snapshot.domain_products(name)?;
        Some(Arc::new(DomainSchema { snapshot: Arc::clone(&self.snapshot), domain: name.to_owned() }))
    }
}

/// Schema provider for one domain.
#[derive(Debug)]
pub struct DomainSchema {
    snapshot: Arc<MeshSnapshot>,
    domain: String,
}

#[async_trait]
impl SchemaProvider for DomainSchema {
    fn table_names(&self) -> Vec<String> {
        self.snapshot
            .domain_products(&self.domain)
            .map(|products| products.map(|entry| entry.product.name.clone()).collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.snapshot.product(&self.domain, name).map(|entry| Arc::clone(&entry.table) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.snapshot.product(&self.domain, name).is_some()
    }
}
