//! The `mesh_catalog` schema: the catalog of the mesh as system tables, governed like
//! data. Each table is defined once here (its name, schema and rows for one
//! principal's [`MeshView`]); SQL, the Flight SQL metadata commands and the HTTP side
//! all read these same rows. A principal sees rows only about products (and columns)
//! they may read; stewards see everything.

mod columns;
mod lineage;
mod products;
mod quality;
mod query_log;
mod rows;
mod sight;
mod usage;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, Session, TableProvider};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use meshgate_audit::Audit;
use meshgate_catalog::quality::QualityBook;
use meshgate_policy::{GovernedCatalog, MeshView};

/// The reserved schema of the system tables; no domain may take its name.
pub const SYSTEM_SCHEMA: &str = "mesh_catalog";

/// The system tables, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTable {
    Products,
    Columns,
    QualityResults,
    Lineage,
    QueryLog,
    Usage,
}

impl SystemTable {
    pub const ALL: [SystemTable; 6] = [
        SystemTable::Products,
        SystemTable::Columns,
        SystemTable::QualityResults,
        SystemTable::Lineage,
        SystemTable::QueryLog,
        SystemTable::Usage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SystemTable::Products => "products",
            SystemTable::Columns => "columns",
            SystemTable::QualityResults => "quality_results",
            SystemTable::Lineage => "lineage",
            SystemTable::QueryLog => "query_log",
            SystemTable::Usage => "usage",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            SystemTable::Products => "Every data product you may read: owner, version, status, size and health",
            SystemTable::Columns => "The columns of every product you may read, as you see them",
            SystemTable::QualityResults => "Results of the products' quality and freshness checks, latest and history",
            SystemTable::Lineage => "Where products come from (declared upstream) and who reads them",
            SystemTable::QueryLog => "Recorded queries: your own (a steward's: everyone's)",
            SystemTable::Usage => "Queries, principals, groups and consuming domains per product and window",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|table| table.name() == name)
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            SystemTable::Products => products::schema(),
            SystemTable::Columns => columns::schema(),
            SystemTable::QualityResults => quality::schema(),
            SystemTable::Lineage => lineage::schema(),
            SystemTable::QueryLog => query_log::schema(),
            SystemTable::Usage => usage::schema(),
        }
    }

    /// The table's rows as `view`'s principal may see them.
    pub async fn rows(self, view: &MeshView, sources: &SystemSources) -> Result<RecordBatch> {
        match self {
            SystemTable::Products => products::rows(view, sources).await,
            SystemTable::Columns => columns::rows(view),
            SystemTable::QualityResults => quality::rows(view, sources),
            SystemTable::Lineage => lineage::rows(view, sources),
            SystemTable::QueryLog => query_log::rows(view, sources),
            SystemTable::Usage => usage::rows(view, sources),
        }
    }
}

/// What the system tables read besides the snapshot: the quality results and the
/// recorded queries (both outlive reloads).
#[derive(Debug, Clone, Default)]
pub struct SystemSources {
    pub quality: Arc<QualityBook>,
    pub audit: Audit,
}

/// The principal's governed catalog plus the `mesh_catalog` schema.
#[derive(Debug)]
pub(crate) struct CatalogWithSystem {
    governed: GovernedCatalog,
    view: MeshView,
    sources: SystemSources,
}

impl CatalogWithSystem {
    pub fn new(view: MeshView, sources: SystemSources) -> Self {
        Self { governed: GovernedCatalog::new(view.clone()), view, sources }
    }
}

impl CatalogProvider for CatalogWithSystem {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.governed.schema_names();
        names.push(SYSTEM_SCHEMA.to_owned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name != SYSTEM_SCHEMA {
            return self.governed.schema(name);
        }
        let schema = MemorySchemaProvider::new();
        for table in SystemTable::ALL {
            let provider =
                Arc::new(SystemTableProvider { table, view: self.view.clone(), sources: self.sources.clone() });
            // Registering a new name in an empty schema cannot fail.
            let _ = schema.register_table(table.name().to_owned(), provider);
        }
        Some(Arc::new(schema))
    }
}

/// A system table for one principal: its rows are taken when the query runs.
#[derive(Debug)]
struct SystemTableProvider {
    table: SystemTable,
    view: MeshView,
    sources: SystemSources,
}

#[async_trait]
impl TableProvider for SystemTableProvider {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.table.rows(&self.view, &self.sources).await?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], self.table.schema(), projection.cloned())?)
    }
}
