//! `BarrierExec`: the top of every governed scan. Nothing from above crosses it:
//! no filter, projection or limit pushdown, no sort pushdown, and its statistics are
//! unknown, so nothing is answered from the raw files' statistics.
//!
//! One exception, when the principal may see every row of the product ("transparent"):
//! then nothing below is hidden except masked values, so filters over unmasked columns
//! may pass down (for pruning and join filters) and row counts and unmasked column
//! statistics may pass up (for join order).

use std::sync::Arc;

use std::collections::HashSet;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, DataFusionError, Result, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter_pushdown::{ChildFilterDescription, FilterDescription, FilterPushdownPhase};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

#[derive(Debug, Clone)]
pub struct BarrierExec {
    product: Arc<str>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// `Some(unmasked per output column)` when no row is hidden from the principal.
    transparent: Option<Arc<[bool]>>,
}

impl BarrierExec {
    pub fn new(product: Arc<str>, input: Arc<dyn ExecutionPlan>, transparent: Option<Vec<bool>>) -> Self {
        let properties = Arc::clone(input.properties());
        Self { product, input, properties, transparent: transparent.map(Arc::from) }
    }

    /// The governed product, as `domain.product`.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// `Some(unmasked per output column)` when no row is hidden from the principal.
    pub fn transparent(&self) -> Option<&[bool]> {
        self.transparent.as_deref()
    }
}

impl DisplayAs for BarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GovernedScan: product={}", self.product)
    }
}

impl ExecutionPlan for BarrierExec {
    fn name(&self) -> &str {
        "BarrierExec"
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
            return Err(DataFusionError::Internal(format!("BarrierExec takes one child, got {}", children.len())));
        }
        let input = children.swap_remove(0);
        Ok(Arc::new(match options.children_properties {
            ChildrenPropertiesMode::Keep => Self { input, ..Self::clone(&self) },
            ChildrenPropertiesMode::Recompute => {
                Self { properties: Arc::clone(input.properties()), input, ..Self::clone(&self) }
            }
        }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        match self.transparent {
            Some(_) => vec![ChildStats::At(partition)],
            None => vec![ChildStats::Skip],
        }
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let schema = self.schema();
        let (Some(unmasked), Some(input)) = (&self.transparent, input_stats.first()) else {
            return Ok(Arc::new(Statistics::new_unknown(&schema)));
        };
        // Every row is visible, so counts and unmasked column statistics are exactly
        // what the principal could compute; masked columns' statistics would describe
        // raw values.
        let mut stats = input.as_ref().clone();
        for (column, unmasked) in stats.column_statistics.iter_mut().zip(unmasked.iter()) {
            if !unmasked {
                *column = ColumnStatistics::new_unknown();
            }
        }
        // Byte sizes would be derived from raw (unmasked) values.
        if unmasked.iter().any(|unmasked| !unmasked) {
            stats.total_byte_size = Precision::Absent;
        }
        Ok(Arc::new(stats))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        let Some(unmasked) = &self.transparent else {
            return Ok(FilterDescription::all_unsupported(&parent_filters, &self.children()));
        };
        let allowed: HashSet<usize> = unmasked.iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect();
        let child = ChildFilterDescription::from_child_with_allowed_indices(&parent_filters, allowed, &self.input)?;
        Ok(FilterDescription::new().with_child(child))
    }

    // Projection, limit and sort pushdown: the defaults refuse.
}
