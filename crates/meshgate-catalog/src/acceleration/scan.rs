//! `AcceleratedScanExec`: the scan of an accelerated copy. A leaf of its own type (not
//! a generic memory scan) so the plan verifier knows it for product data, like a file
//! scan: it must sit under its product's barrier.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics, project_schema};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::common::compute_record_batch_statistics;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};

/// Streams one accelerated copy's partitions, projected.
#[derive(Debug)]
pub struct AcceleratedScanExec {
    product: Arc<str>,
    partitions: Arc<Vec<Vec<RecordBatch>>>,
    /// The copy's schema (before projection).
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl AcceleratedScanExec {
    pub(crate) fn try_new(
        product: Arc<str>,
        partitions: Arc<Vec<Vec<RecordBatch>>>,
        schema: SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let projected = project_schema(&schema, projection.as_ref())?;
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(projected),
            Partitioning::UnknownPartitioning(partitions.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self { product, partitions, schema, projection, properties })
    }

    /// The product whose copy this reads, as `domain.product`.
    pub fn product(&self) -> &str {
        &self.product
    }
}

impl DisplayAs for AcceleratedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: usize = self.partitions.iter().flatten().map(RecordBatch::num_rows).sum();
        write!(f, "AcceleratedScanExec: product={}, partitions={}, rows={rows}", self.product, self.partitions.len())
    }
}

impl ExecutionPlan for AcceleratedScanExec {
    fn name(&self) -> &str {
        "AcceleratedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return Err(DataFusionError::Internal("AcceleratedScanExec has no children".into()));
        }
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let batches = self.partitions.get(partition).cloned().unwrap_or_default();
        let stream = MemoryStream::try_new(batches, Arc::clone(&self.schema), self.projection.clone())?;
        Ok(Box::pin(stream))
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let statistics = match args.partition() {
            Some(partition) => {
                let batches = self.partitions.get(partition).cloned().unwrap_or_default();
                compute_record_batch_statistics(&[batches], &self.schema, self.projection.clone())
            }
            None => compute_record_batch_statistics(&self.partitions, &self.schema, self.projection.clone()),
        };
        Ok(Arc::new(statistics))
    }
}
