//! `BarrierExec`: the top of every governed scan. By default nothing from above
//! crosses it: no filter, projection or limit pushdown, no sort pushdown, and its
//! statistics are unknown, so nothing is answered from the raw files' statistics.
//!
//! When the principal may see every row of the product ("transparent"), nothing below
//! is hidden except masked values, so filters over unmasked columns may pass down (for
//! pruning and join filters) and row counts and unmasked column statistics may pass up
//! (for join order).
//!
//! When rows are hidden, filters pass down only if they cannot fail on any row and
//! read only unmasked columns ([`crate::cannot_fail`]), and only when the row filter
//! itself cannot fail either (else a user filter below would choose which rows the
//! row filter runs on, and its errors would tell about single rows). On a hidden row
//! such a filter can only drop it, as the row filter does. The only figure that passes
//! up is the number of rows the principal sees, when it is known without reading the
//! files (an accelerated copy counts what the row filter keeps): what the principal's
//! own `count(*)` says, as an estimate, so that joins are ordered as for everyone else.

use std::sync::Arc;

use std::collections::HashSet;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, DataFusionError, Result, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter_pushdown::{ChildFilterDescription, FilterDescription, FilterPushdownPhase};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

#[derive(Debug, Clone)]
pub struct BarrierExec {
    product: Arc<str>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// Unmasked per output column: the columns filters may read below the barrier
    /// (`None`: no filter passes).
    unmasked: Option<Arc<[bool]>>,
    /// The row filter may hide rows from the principal (not "transparent").
    hides_rows: bool,
    /// Rows the principal sees, when known without reading the product.
    visible_rows: Option<usize>,
}

impl BarrierExec {
    pub fn new(product: Arc<str>, input: Arc<dyn ExecutionPlan>, transparent: Option<Vec<bool>>) -> Self {
        let properties = Arc::clone(input.properties());
        let hides_rows = transparent.is_none();
        Self { product, input, properties, unmasked: transparent.map(Arc::from), hides_rows, visible_rows: None }
    }

    /// This barrier reporting `rows` (what the principal's row filter keeps) as an
    /// estimate of its row count.
    pub fn with_visible_rows(self, rows: Option<usize>) -> Self {
        Self { visible_rows: rows, ..self }
    }

    /// This barrier, hiding rows, letting filters that cannot fail and read only the
    /// columns `unmasked` marks pass down. Only for a row filter that cannot fail.
    pub fn with_unmasked(self, unmasked: Vec<bool>) -> Self {
        Self { unmasked: Some(unmasked.into()), ..self }
    }

    /// The governed product, as `domain.product`.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// `Some(unmasked per output column)` when no row is hidden from the principal.
    pub fn transparent(&self) -> Option<&[bool]> {
        self.unmasked.as_deref().filter(|_| !self.hides_rows)
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
        match self.transparent() {
            Some(_) => vec![ChildStats::At(partition)],
            None => vec![ChildStats::Skip],
        }
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let schema = self.schema();
        let (Some(unmasked), Some(input)) = (self.transparent(), input_stats.first()) else {
            let mut stats = Statistics::new_unknown(&schema);
            // Only for the whole output: how the visible rows split between partitions
            // is not known.
            if let (Some(rows), None) = (self.visible_rows, args.partition()) {
                stats.num_rows = Precision::Inexact(rows);
            }
            return Ok(Arc::new(stats));
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
        let Some(unmasked) = &self.unmasked else {
            return Ok(FilterDescription::all_unsupported(&parent_filters, &self.children()));
        };
        let mut filters = parent_filters;
        if self.hides_rows {
            // A filter that could fail goes in as a column the child does not have, so
            // it is reported unsupported in its place (the optimizer reads only whether
            // each position was taken).
            let schema = self.schema();
            for filter in &mut filters {
                if !crate::cannot_fail::cannot_fail(filter, &schema, unmasked) {
                    *filter = Arc::new(Column::new("", usize::MAX));
                }
            }
        }
        let allowed: HashSet<usize> = unmasked.iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect();
        let child = ChildFilterDescription::from_child_with_allowed_indices(&filters, allowed, &self.input)?;
        Ok(FilterDescription::new().with_child(child))
    }

    // Projection, limit and sort pushdown: the defaults refuse.
}
