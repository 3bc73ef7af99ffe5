//! `ProductTable`: a data product as a DataFusion table. It scans the product's
//! files through a listing table, or its accelerated copy in memory when it has one,
//! and refuses to scan an unhealthy product. A product whose store was unavailable is
//! opened again in the background (`recovery`) and, once readable, serves from the
//! same table.

use std::sync::{Arc, RwLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::acceleration::AcceleratedCopy;
use crate::error::{ProblemKind, ProductError};
use crate::health::Health;
use crate::plain_strings::plain_string_reads;
use crate::scan_exec::ProductScanExec;

/// A product's table: what its files were found to be when last opened, and its
/// accelerated copy.
#[derive(Debug)]
pub struct ProductTable {
    qualified_name: Arc<str>,
    location: Arc<str>,
    opened: RwLock<Arc<Opened>>,
}

/// `inner` reads the files; `health` says whether it may; `copy` holds them in memory.
#[derive(Debug)]
struct Opened {
    schema: SchemaRef,
    inner: Option<Arc<dyn TableProvider>>,
    health: Health,
    copy: Option<Arc<AcceleratedCopy>>,
}

/// What a product's table reads at one moment: its files, and its accelerated copy
/// when it has one. A query takes it once per product, so all its scans of the product
/// read the same data, whatever refresh happens meanwhile.
#[derive(Debug, Clone)]
pub struct ProductData {
    qualified_name: Arc<str>,
    location: Arc<str>,
    opened: Arc<Opened>,
}

impl ProductTable {
    pub(crate) fn new(
        qualified_name: String,
        location: String,
        schema: SchemaRef,
        inner: Option<Arc<dyn TableProvider>>,
        health: Health,
    ) -> Self {
        let opened = RwLock::new(Arc::new(Opened { schema, inner, health, copy: None }));
        Self { qualified_name: qualified_name.into(), location: location.into(), opened }
    }

    /// What the table reads now.
    pub fn data(&self) -> ProductData {
        let opened = match self.opened.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        ProductData { qualified_name: Arc::clone(&self.qualified_name), location: Arc::clone(&self.location), opened }
    }

    fn replace(&self, change: impl FnOnce(&Opened) -> Opened) {
        let mut guard = match self.opened.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(change(&guard));
    }

    /// Takes what `reopened` (the same product, opened again) found; scans planned
    /// before keep reading what they started with.
    pub(crate) fn take_opened(&self, reopened: &ProductTable) {
        let found = reopened.data().opened;
        self.replace(|current| Opened {
            schema: Arc::clone(&found.schema),
            inner: found.inner.clone(),
            health: found.health.clone(),
            copy: current.copy.clone().filter(|copy| copy.schema() == &found.schema),
        });
    }

    /// Serves from `copy` (or from the files again, for `None`); scans planned before
    /// keep reading what they started with.
    pub(crate) fn set_copy(&self, copy: Option<Arc<AcceleratedCopy>>) {
        self.replace(|current| Opened {
            schema: Arc::clone(&current.schema),
            inner: current.inner.clone(),
            health: current.health.clone(),
            copy,
        });
    }

    /// Whether the product could not be opened or read.
    pub fn health(&self) -> Health {
        self.data().opened.health.clone()
    }

    /// The error a query on this product fails with, if it cannot be read now.
    /// A store that was unreachable at load time is tried again at each query.
    pub fn refusal(&self) -> Option<ProductError> {
        self.data().refusal()
    }

    /// The copy in memory the table serves from, if any.
    pub fn accelerated(&self) -> Option<Arc<AcceleratedCopy>> {
        self.data().opened.copy.clone()
    }
}

/// Which [`ProductData`] something was made from, without keeping that data alive.
#[derive(Debug, Clone)]
pub struct DataIdentity(Weak<Opened>);

impl DataIdentity {
    /// Whether `data` is the data this names (never true once that data was replaced
    /// and freed: the name keeps its address from being used again).
    pub fn is(&self, data: &ProductData) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&data.opened))
    }
}

impl ProductData {
    /// A name for this data that does not keep it alive.
    pub fn identity(&self) -> DataIdentity {
        DataIdentity(Arc::downgrade(&self.opened))
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.opened.schema)
    }

    /// The copy in memory this reads, if any.
    pub fn accelerated(&self) -> Option<&Arc<AcceleratedCopy>> {
        self.opened.copy.as_ref()
    }

    /// See [`ProductTable::refusal`].
    pub fn refusal(&self) -> Option<ProductError> {
        let opened = &self.opened;
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
        self.opened.inner.clone().ok_or_else(|| DataFusionError::Internal("product table without a reader".into()))
    }

    fn wrap(&self, plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let plan = plain_string_reads(plan);
        Arc::new(ProductScanExec::new(Arc::clone(&self.qualified_name), Arc::clone(&self.location), plan))
    }

    fn name_error(&self, error: DataFusionError) -> DataFusionError {
        crate::health::name_read_error(&self.qualified_name, &self.location, error)
    }

    /// Scans the accelerated copy when there is one, else the files.
    pub async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.readable()?;
        match &self.opened.copy {
            // A limit is applied above (the copy's batches are whole): planned, not pushed.
            Some(copy) => Ok(self.wrap(copy.scan(Arc::clone(&self.qualified_name), projection)?)),
            None => self.scan_files(state, projection, filters, limit).await,
        }
    }

    /// Scans the files, accelerated or not: what needs to know where each row was read.
    pub async fn scan_files(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.readable()?.scan(state, projection, filters, limit).await;
        Ok(self.wrap(plan.map_err(|error| self.name_error(error))?))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        match (&self.opened.inner, &self.opened.copy) {
            (Some(inner), None) => inner.supports_filters_pushdown(filters),
            // The copy applies no filter itself: they all stay above the scan.
            _ => Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()]),
        }
    }
}

#[async_trait]
impl TableProvider for ProductTable {
    fn schema(&self) -> SchemaRef {
        self.data().schema()
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
        self.data().scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> Result<ScanResult> {
        let data = self.data();
        if data.accelerated().is_some() {
            let projection = args.projection().map(|p| p.to_vec());
            let filters = args.filters().unwrap_or_default();
            return Ok(data.scan(state, projection.as_ref(), filters, args.limit()).await?.into());
        }
        let result = data.readable()?.scan_with_args(state, args).await.map_err(|error| data.name_error(error))?;
        Ok(data.wrap(result.into_inner()).into())
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.data().supports_filters_pushdown(filters)
    }
}
