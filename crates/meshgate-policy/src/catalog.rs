//! The mesh as one principal sees it: only the products they may read, each as a
//! [`crate::GovernedTable`]. Forbidden products are absent, exactly like products
//! that do not exist; so are domains with nothing visible.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::Result;
use meshgate_catalog::{MeshSnapshot, ProductEntry};

use crate::policy_set::PolicySet;
use crate::principal::Principal;

/// One principal's view of one snapshot.
#[derive(Debug, Clone)]
pub struct MeshView {
    snapshot: Arc<MeshSnapshot>,
    policy: Arc<PolicySet>,
    principal: Arc<Principal>,
    /// Delta versions the statement pins, by (domain, table name as written):
    /// opened before planning ([`MeshSnapshot::delta_pin`]), read like any product.
    pins: Arc<BTreeMap<(String, String), Arc<ProductEntry>>>,
    /// Products carry the provenance columns (docs/ml.md).
    provenance: bool,
}

impl MeshView {
    pub fn new(snapshot: Arc<MeshSnapshot>, policy: Arc<PolicySet>, principal: Arc<Principal>) -> Self {
        Self { snapshot, policy, principal, pins: Arc::default(), provenance: false }
    }

    /// This view with every product carrying the provenance columns.
    pub fn with_provenance(mut self, provenance: bool) -> Self {
        self.provenance = provenance;
        self
    }

    /// This view with the pinned Delta versions a statement names.
    pub fn with_pins(mut self, pins: BTreeMap<(String, String), Arc<ProductEntry>>) -> Self {
        self.pins = Arc::new(pins);
        self
    }

    /// The entry a table name reads: a pinned Delta version, or the snapshot's.
    fn entry(&self, domain: &str, name: &str) -> Option<&Arc<ProductEntry>> {
        match self.pins.get(&(domain.to_owned(), name.to_owned())) {
            Some(pinned) => Some(pinned),
            None => self.snapshot.product(domain, name),
        }
    }

    pub fn snapshot(&self) -> &Arc<MeshSnapshot> {
        &self.snapshot
    }

    pub fn policy(&self) -> &Arc<PolicySet> {
        &self.policy
    }

    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// The product if this principal may read it.
    pub fn product(&self, domain: &str, name: &str) -> Option<&Arc<ProductEntry>> {
        self.entry(domain, name).filter(|entry| self.policy.can_read(&self.principal, &entry.product))
    }

    /// Visible products of a domain, sorted by name.
    pub fn domain_products(&self, domain: &str) -> Vec<&Arc<ProductEntry>> {
        self.snapshot
            .domain_products(domain)
            .map(|products| products.filter(|e| self.policy.can_read(&self.principal, &e.product)).collect())
            .unwrap_or_default()
    }

    /// Domains with at least one visible product, sorted.
    pub fn domain_names(&self) -> Vec<String> {
        self.snapshot
            .domain_names()
            .filter(|domain| !self.domain_products(domain).is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Every visible product, by domain then name.
    pub fn products(&self) -> Vec<&Arc<ProductEntry>> {
        self.snapshot.products().filter(|e| self.policy.can_read(&self.principal, &e.product)).collect()
    }

    /// Every visible version of every product (retired ones included, for who may
    /// read them), by domain, name, then version.
    pub fn all_versions(&self) -> Vec<&Arc<ProductEntry>> {
        self.snapshot.all_versions().filter(|e| self.policy.can_read(&self.principal, &e.product)).collect()
    }

    /// The product as a governed table, if visible.
    pub fn table(&self, domain: &str, name: &str) -> Result<Option<Arc<crate::GovernedTable>>> {
        let Some(entry) = self.entry(domain, name) else { return Ok(None) };
        let Some(table) = self.policy.governed_table(&self.principal, entry)? else { return Ok(None) };
        let table = if self.provenance { table.with_provenance()? } else { table };
        Ok(Some(Arc::new(table)))
    }
}

/// Catalog provider over a [`MeshView`].
#[derive(Debug)]
pub struct GovernedCatalog {
    view: MeshView,
}

impl GovernedCatalog {
    pub fn new(view: MeshView) -> Self {
        Self { view }
    }
}

impl CatalogProvider for GovernedCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.view.domain_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if self.view.domain_products(name).is_empty() {
            return None;
        }
        Some(Arc::new(GovernedSchema { view: self.view.clone(), domain: name.to_owned() }))
    }
}

#[derive(Debug)]
struct GovernedSchema {
    view: MeshView,
    domain: String,
}

#[async_trait]
impl SchemaProvider for GovernedSchema {
    fn table_names(&self) -> Vec<String> {
        self.view.domain_products(&self.domain).into_iter().map(|e| e.product.name.clone()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.view.table(&self.domain, name)?.map(|table| table as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.view.product(&self.domain, name).is_some()
    }
}
