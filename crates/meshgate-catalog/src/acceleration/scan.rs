//! `AcceleratedScanExec`: the scan of an accelerated copy. A leaf of its own type (not
//! a generic memory scan) so the plan verifier knows it for product data, like a file
//! scan: it must sit under its product's barrier.
//!
//! A plan kept to run again (the engine's reuse of physical plans) holds its scans
//! *released*: they name the copy without keeping it alive, so a copy refreshed away
//! is freed as soon as no running query reads it. Resetting the plan's state before a
//! run takes the copy again, or fails when it is gone.

use std::sync::{Arc, Weak};

use datafusion::common::tree_node::{Transformed, TreeNode};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics, project_schema};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::common::compute_record_batch_statistics;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};

use super::copy::CopyData;
use super::spill::SpilledFiles;

/// Streams one accelerated copy's partitions (from memory, or from its spilled files),
/// projected.
#[derive(Debug)]
pub struct AcceleratedScanExec {
    product: Arc<str>,
    partitions: Partitions,
    /// The copy's schema (before projection).
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

/// The copy's partitions: held while the scan may run, released while its plan waits
/// to be run again.
#[derive(Debug, Clone)]
enum Partitions {
    Held(Arc<CopyData>),
    Released(Weak<CopyData>),
}

impl AcceleratedScanExec {
    pub(crate) fn try_new(
        product: Arc<str>,
        partitions: Arc<CopyData>,
        schema: SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let projected = project_schema(&schema, projection.as_ref())?;
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(projected),
            Partitioning::UnknownPartitioning(partitions.partitions().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self { product, partitions: Partitions::Held(partitions), schema, projection, properties })
    }

    fn with_partitions(&self, partitions: Partitions) -> Self {
        Self {
            product: Arc::clone(&self.product),
            partitions,
            schema: Arc::clone(&self.schema),
            projection: self.projection.clone(),
            properties: Arc::clone(&self.properties),
        }
    }

    /// The partitions, unless this scan is released and its copy is gone.
    fn held(&self) -> Result<Arc<CopyData>> {
        match &self.partitions {
            Partitions::Held(partitions) => Ok(Arc::clone(partitions)),
            Partitions::Released(partitions) => partitions.upgrade().ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "the accelerated copy of {} this plan was made for has been refreshed away",
                    self.product
                ))
            }),
        }
    }

    /// The product whose copy this reads, as `domain.product`.
    pub fn product(&self) -> &str {
        &self.product
    }
}

impl DisplayAs for AcceleratedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let partitions = self.properties.partitioning.partition_count();
        match self.held() {
            Ok(held) => {
                let spilled = if matches!(held.as_ref(), CopyData::Spilled(_)) { ", spilled" } else { "" };
                let rows = held.rows();
                write!(
                    f,
                    "AcceleratedScanExec: product={}, partitions={partitions}, rows={rows}{spilled}",
                    self.product
                )
            }
            Err(_) => write!(f, "AcceleratedScanExec: product={}, partitions={partitions}, released", self.product),
        }
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

    /// A released scan takes its copy again (and fails when the copy is gone).
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        match &self.partitions {
            Partitions::Held(_) => Ok(self),
            Partitions::Released(_) => Ok(Arc::new(self.with_partitions(Partitions::Held(self.held()?)))),
        }
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        match self.held()?.as_ref() {
            CopyData::Memory(partitions) => {
                let batches = partitions.get(partition).cloned().unwrap_or_default();
                let stream = MemoryStream::try_new(batches, Arc::clone(&self.schema), self.projection.clone())?;
                Ok(Box::pin(stream))
            }
            CopyData::Spilled(files) => {
                SpilledFiles::stream(files, &self.product, partition, &self.schema, self.projection.clone())
            }
        }
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let statistics = match (self.held()?.as_ref(), args.partition()) {
            (CopyData::Memory(partitions), Some(partition)) => {
                let batches = partitions.get(partition).cloned().unwrap_or_default();
                compute_record_batch_statistics(&[batches], &self.schema, self.projection.clone())
            }
            (CopyData::Memory(partitions), None) => {
                compute_record_batch_statistics(partitions, &self.schema, self.projection.clone())
            }
            // Row counts, and bytes estimated from the files' size: the files are not
            // read to plan.
            (CopyData::Spilled(files), partition) => {
                let projected = project_schema(&self.schema, self.projection.as_ref())?;
                let mut statistics = Statistics::new_unknown(&projected);
                let rows = files.rows(partition);
                statistics.num_rows = Precision::Exact(usize::try_from(rows).unwrap_or(usize::MAX));
                let share = rows as f64 / files.rows(None).max(1) as f64 * projected.fields().len() as f64
                    / self.schema.fields().len().max(1) as f64;
                statistics.total_byte_size = Precision::Inexact((files.bytes() as f64 * share) as usize);
                statistics
            }
        };
        Ok(Arc::new(statistics))
    }
}

/// `plan` with its accelerated scans released (see the module's notes), to be kept
/// and run again after `reset_plan_states` takes the copies again.
pub fn release_accelerated_copies(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(scan) = node.downcast_ref::<AcceleratedScanExec>() else { return Ok(Transformed::no(node)) };
        let released = match &scan.partitions {
            Partitions::Held(partitions) => Partitions::Released(Arc::downgrade(partitions)),
            Partitions::Released(_) => return Ok(Transformed::no(node)),
        };
        Ok(Transformed::yes(Arc::new(scan.with_partitions(released)) as Arc<dyn ExecutionPlan>))
    })
    .map(|released| released.data)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::TaskContext;
    use datafusion::physical_plan::collect;
    use datafusion::physical_plan::execution_plan::reset_plan_states;

    use super::*;

    #[tokio::test]
    async fn a_released_scan_runs_again_while_its_copy_lives_and_never_keeps_it_alive() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let copy = Arc::new(CopyData::Memory(vec![vec![batch]]));
        let scan = AcceleratedScanExec::try_new("shop.users".into(), Arc::clone(&copy), schema, None).unwrap();
        let released = release_accelerated_copies(Arc::new(scan)).unwrap();
        assert_eq!(Arc::strong_count(&copy), 1, "a released scan holds no copy");
        let again = reset_plan_states(Arc::clone(&released)).unwrap();
        let batches = collect(again, Arc::new(TaskContext::default())).await.unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        drop(copy);
        let gone = reset_plan_states(released).unwrap_err().to_string();
        assert!(gone.contains("accelerated copy of shop.users") && gone.contains("refreshed away"), "{gone}");
    }
}
