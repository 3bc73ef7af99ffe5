//! Results as several independent streams: when a query's physical plan ends in
//! partitions that do not feed each other (no repartitioning or merging anywhere, no
//! ordering), each partition can be executed on its own — by another connection or
//! process — and the union of the partitions is the result.

use std::sync::Arc;

use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// The number of independent partitions of `plan`, or `None` when it must run as one
/// stream (one partition, or partitions that exchange data). An ORDER BY always ends
/// in one partition (a merge or a single sort), so ordered results stay one stream;
/// the files' own order within each partition does not matter to the result.
pub(crate) fn independent_partitions(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    let count = plan.output_partitioning().partition_count();
    if count < 2 || exchanges(plan) {
        return None;
    }
    Some(count)
}

/// Whether any operator moves rows between partitions: executing one partition of
/// such a plan would run (and buffer) the others too.
fn exchanges(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>()
        || plan
            .children()
            .iter()
            .any(|child| child.output_partitioning().partition_count() != plan.output_partitioning().partition_count())
        || plan.children().into_iter().any(exchanges)
}
