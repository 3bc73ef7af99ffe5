//! `ProductScanExec`: sits on top of a product's file scan and names the product in
//! every error the scan raises, so users learn which product failed and how.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

use crate::health::name_read_error;

/// Whether `plan` reads a product's data itself: a product scan, a file scan, a scan
/// of an accelerated copy, or a Delta table scan (its metadata-only form too, which
/// answers from the row counts in the log). The plan verifier requires each to sit
/// under a barrier.
pub fn reads_product_data(plan: &dyn ExecutionPlan) -> bool {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    plan.is::<ProductScanExec>()
        || plan.is::<crate::acceleration::AcceleratedScanExec>()
        || plan.downcast_ref::<DataSourceExec>().is_some_and(|source| source.data_source().is::<FileScanConfig>())
        || plan.is::<deltalake_core::delta_datafusion::DeltaScanExec>()
        // DeltaScanMetaExec is not exported: Delta's scans are known by their names too.
        || plan.name().starts_with("DeltaScan")
}

/// Wraps a product's scan; errors leave it as [`crate::ProductError`]s.
#[derive(Debug, Clone)]
pub struct ProductScanExec {
    product: Arc<str>,
    location: Arc<str>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ProductScanExec {
    pub fn new(product: Arc<str>, location: Arc<str>, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::clone(input.properties());
        Self { product, location, input, properties }
    }

    /// The product this scan reads, as `domain.product`.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// Where the product's data lives, as its errors name it.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl DisplayAs for ProductScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProductScanExec: product={}", self.product)
    }
}

impl ExecutionPlan for ProductScanExec {
    fn name(&self) -> &str {
        "ProductScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!("ProductScanExec takes one child, got {}", children.len())));
        }
        let input = children.swap_remove(0);
        Ok(Arc::new(match options.children_properties {
            ChildrenPropertiesMode::Keep => Self { input, ..Self::clone(&self) },
            ChildrenPropertiesMode::Recompute => {
                Self::new(Arc::clone(&self.product), Arc::clone(&self.location), input)
            }
        }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let product = Arc::clone(&self.product);
        let location = Arc::clone(&self.location);
        let stream =
            self.input.execute(partition, context).map_err(|error| name_read_error(&product, &location, error))?;
        let schema = stream.schema();
        let named = stream.map(move |batch| batch.map_err(|error| name_read_error(&product, &location, error)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, named)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        input_stats
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Internal("ProductScanExec has no input statistics".into()))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}
