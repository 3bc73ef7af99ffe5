//! `ProductTable`: a data product as a DataFusion table. It scans the product's
//! files through a listing table and refuses to scan an unhealthy product. A
//! product whose store was unavailable is opened again in the background
//! (`recovery`) and, once readable, serves from the same table.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::error::{ProblemKind, ProductError};
use crate::health::Health;
use crate::plain_strings::plain_string_reads;
use crate::scan_exec::ProductScanExec;

/// A product's table: what its files were found to be when last opened.
#[derive(Debug)]
pub struct ProductTable {
    qualified_name: Arc<str>,
    location: Arc<str>,
    opened: RwLock<Arc<Opened>>,
}

/// `inner` reads the files; `health` says whether it may.
#[derive(Debug)]
struct Opened {
    schema: SchemaRef,
    inner: Option<Arc<dyn TableProvider>>,
    health: Health,
}

impl ProductTable {
    pub(crate) fn new(
        qualified_name: String,
        location: String,
        schema: SchemaRef,
        inner: Option<Arc<dyn TableProvider>>,
        health: Health,
    ) -> Self {
        let opened = RwLock::new(Arc::new(Opened { schema, inner, health }));
        Self { qualified_name: qualified_name.into(), location: location.into(), opened }
    }

    fn opened(&self) -> Arc<Opened> {
        match self.opened.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Takes what `reopened` (the same product, opened again) found; scans planned
    /// before keep reading what they started with.
    pub(crate) fn take_opened(&self, reopened: &ProductTable) {
        let opened = reopened.opened();
        match self.opened.write() {
            Ok(mut guard) => *guard = opened,
            Err(poisoned) => *poisoned.into_inner() = opened,
        }
    }

    /// Whether the product could not be opened or read.
    pub fn health(&self) -> Health {
        self.opened().health.clone()
    }

    /// The error a query on this product fails with, if it cannot be read now.
    /// A store that was unreachable at load time is tried again at each query.
    pub fn refusal(&self) -> Option<ProductError> {
        let opened = self.opened();
        match (&opened.health, &opened.inner) {
            (health, None) => Some(health.problem().cloned().unwrap_or_else(|| ProductError {
                product: self.qualified_name.to_string(),
                kind: ProblemKind::Unavailable,
                detail: "its files could not be opened".into(),
            })),
            (Health::Unhealthy(problem), Some(_)) if problem.kind != ProblemKind::Unavailable => Some(problem.clone()),
            _ => None,
        }
    }

    fn readable(&self) -> Result<Arc<dyn TableProvider>> {
        if let Some(problem) = self.refusal() {
            return Err(DataFusionError::External(Box::new(problem)));
        }
        self.opened().inner.clone().ok_or_else(|| DataFusionError::Internal("product table without a reader".into()))
    }

    fn wrap(&self, plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let plan = plain_string_reads(plan);
        Arc::new(ProductScanExec::new(Arc::clone(&self.qualified_name), Arc::clone(&self.location), plan))
    }
}

#[async_trait]
impl TableProvider for ProductTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.opened().schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.readable()?.scan(state, projection, filters, limit).await;
        Ok(self.wrap(plan.map_err(|error| self.name_error(error))?))
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> Result<ScanResult> {
        let result = self.readable()?.scan_with_args(state, args).await.map_err(|error| self.name_error(error))?;
        Ok(self.wrap(result.into_inner()).into())
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        match &self.opened().inner {
            Some(inner) => inner.supports_filters_pushdown(filters),
            None => Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()]),
        }
    }
}

impl ProductTable {
    fn name_error(&self, error: DataFusionError) -> DataFusionError {
        crate::health::name_read_error(&self.qualified_name, &self.location, error)
    }
}
