//! Shards: one query read as a fixed number of disjoint parts that together are
//! exactly its result (docs/ml.md). Shard `i` of `n` is the query run over the `i`-th
//! slice of its *driving product* (the first product it names): that product's files,
//! sorted by path and laid end to end, are cut into `n` equal byte ranges, and the
//! Parquet reader reads each row group in exactly one of them. So the shards cost one
//! scan of the driving product between them, and the same files always give the same
//! shards.
//!
//! That is only the result's split when every operator between the driving scan and
//! the result treats the product's rows one at a time: projections, filters, joins
//! that keep the driving side's rows, exchanges and sorts (they move rows, never
//! combine them). Aggregates, limits, windows over the whole result and joins that
//! emit the other side's unmatched rows would give each shard its own answer, so
//! such plans are refused. A point-in-time join keeps its entity rows apart too.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::{FileRange, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use meshgate_catalog::ProductScanExec;
use meshgate_policy::{BarrierExec, GovernedTable};
use sha2::{Digest, Sha256};

use crate::error::EngineError;

/// The product whose files a query's shards divide: the first product it names.
pub(crate) fn driving_product(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<GovernedTable>()
        {
            found = Some(table.product().product.qualified_name());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Refuses a plan whose result is ordered or limited at the top: an ORDER BY means
/// the order is part of the answer, which shards read in any order cannot keep.
pub(crate) fn check_unordered(plan: &LogicalPlan) -> Result<(), EngineError> {
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::Projection(projection) => node = projection.input.as_ref(),
            LogicalPlan::SubqueryAlias(alias) => node = alias.input.as_ref(),
            LogicalPlan::Sort(_) => {
                return Err(EngineError::NotShardable(
                    "its result is ordered (ORDER BY); drop the ORDER BY and shuffle or sort on the client".into(),
                ));
            }
            LogicalPlan::Limit(_) => {
                return Err(EngineError::NotShardable("its result is limited (LIMIT/OFFSET)".into()));
            }
            _ => return Ok(()),
        }
    }
}

/// `plan` reading only shard `index` of `count` of `driving`'s files, and the
/// fingerprint of the files the shards were cut from (so a ticket can tell when
/// they changed). Refuses plans whose shards would not add up to the result.
pub(crate) fn shard(
    plan: &Arc<dyn ExecutionPlan>,
    driving: &str,
    index: usize,
    count: usize,
) -> Result<(Arc<dyn ExecutionPlan>, Vec<u8>), EngineError> {
    let mut found = Vec::new();
    find_scans(plan, driving, &mut Vec::new(), &mut found);
    let path = match found.as_slice() {
        [path] => path.clone(),
        [] => {
            return Err(EngineError::NotShardable(format!(
                "it does not read the rows of {driving}, the product its shards divide, from its files one by one \
                 (an aggregate answered from file statistics; or a Delta product, which cannot be sharded yet)"
            )));
        }
        _ => {
            return Err(EngineError::NotShardable(format!(
                "it reads {driving} more than once; shards divide one scan of the product named first"
            )));
        }
    };
    check_path(plan, &path)?;
    rebuild(plan, &path, index, count)
}

/// Paths (child indices from `plan`) to the file scans of `product`.
fn find_scans(plan: &Arc<dyn ExecutionPlan>, product: &str, path: &mut Vec<usize>, found: &mut Vec<Vec<usize>>) {
    if let Some(scan) = plan.downcast_ref::<ProductScanExec>()
        && scan.product() == product
    {
        // The file scan below it (the optimizer may have put a sort or projection
        // between them; the path check covers those too).
        path.push(0);
        find_file_scan(scan.children()[0], path, found);
        path.pop();
        return;
    }
    for (index, child) in plan.children().into_iter().enumerate() {
        path.push(index);
        find_scans(child, product, path, found);
        path.pop();
    }
}

fn find_file_scan(plan: &Arc<dyn ExecutionPlan>, path: &mut Vec<usize>, found: &mut Vec<Vec<usize>>) {
    if plan.downcast_ref::<DataSourceExec>().is_some_and(|s| s.data_source().is::<FileScanConfig>()) {
        found.push(path.clone());
        return;
    }
    for (index, child) in plan.children().into_iter().enumerate() {
        path.push(index);
        find_file_scan(child, path, found);
        path.pop();
    }
}

/// Every operator from the top of `plan` down `path` must keep the driving rows apart.
fn check_path(plan: &Arc<dyn ExecutionPlan>, path: &[usize]) -> Result<(), EngineError> {
    let mut node = plan;
    for &child in path {
        check_operator(node, child)?;
        node = node.children()[child];
    }
    Ok(())
}

fn check_operator(node: &Arc<dyn ExecutionPlan>, driving_child: usize) -> Result<(), EngineError> {
    let row_local = node.is::<ProjectionExec>()
        || node.is::<FilterExec>()
        || node.is::<CoalescePartitionsExec>()
        // Deprecated in DataFusion 55 (no longer planned), still row-local.
        || node.name() == "CoalesceBatchesExec"
        || node.is::<RepartitionExec>()
        || node.is::<SortPreservingMergeExec>()
        || node.is::<CooperativeExec>()
        || node.is::<BarrierExec>()
        || node.is::<ProductScanExec>();
    if row_local {
        // A fetch on a merge or coalesce is a LIMIT.
        let limited = node.downcast_ref::<SortPreservingMergeExec>().is_some_and(|m| m.fetch().is_some())
            || node.downcast_ref::<CoalescePartitionsExec>().is_some_and(|c| c.fetch().is_some());
        return if limited { Err(refused(node, "a LIMIT")) } else { Ok(()) };
    }
    if let Some(sort) = node.downcast_ref::<SortExec>() {
        return match sort.fetch() {
            Some(_) => Err(refused(node, "a LIMIT")),
            None => Ok(()),
        };
    }
    if let Some(join) = node.downcast_ref::<HashJoinExec>() {
        return check_join(node, *join.join_type(), driving_child);
    }
    if let Some(join) = node.downcast_ref::<SortMergeJoinExec>() {
        return check_join(node, join.join_type(), driving_child);
    }
    if let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() {
        return check_join(node, *join.join_type(), driving_child);
    }
    if node.is::<CrossJoinExec>() {
        return Ok(());
    }
    if node.is::<crate::asof::AsOfJoinExec>() {
        // Entities stream through one by one; the features are read whole.
        return if driving_child == 0 {
            Ok(())
        } else {
            Err(refused(node, "a point-in-time join on its feature side"))
        };
    }
    Err(refused(node, "an operator that combines rows (aggregation, DISTINCT, LIMIT, UNION or a window)"))
}

/// A join keeps the driving rows apart when each output row comes from at most one
/// driving row and the other side's rows appear only through their matches.
fn check_join(node: &Arc<dyn ExecutionPlan>, join_type: JoinType, driving_child: usize) -> Result<(), EngineError> {
    use JoinType::*;
    let fine = match driving_child {
        0 => matches!(join_type, Inner | Left | LeftSemi | LeftAnti | LeftMark),
        _ => matches!(join_type, Inner | Right | RightSemi | RightAnti | RightMark),
    };
    if fine { Ok(()) } else { Err(refused(node, &format!("a {join_type} join that emits the other side's rows"))) }
}

fn refused(node: &Arc<dyn ExecutionPlan>, what: &str) -> EngineError {
    EngineError::NotShardable(format!(
        "between its result and the product its shards divide there is {what} ({}), which needs all the rows \
         at once; read it as one result, or shard a query without it",
        node.name()
    ))
}

/// A plan with its driving scan cut, and the digest of the files it was cut from.
type Sliced = (Arc<dyn ExecutionPlan>, Vec<u8>);

/// `plan` with the file scan at the end of `path` cut to shard `index` of `count`,
/// every operator above rebuilt (their partitioning follows the new scan).
fn rebuild(plan: &Arc<dyn ExecutionPlan>, path: &[usize], index: usize, count: usize) -> Result<Sliced, EngineError> {
    let Some((&first, rest)) = path.split_first() else { return slice_files(plan, index, count) };
    let mut children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    let (child, fingerprint) = rebuild(&children[first], rest, index, count)?;
    children[first] = child;
    let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
    Ok((Arc::clone(plan).replace_children(children, options)?, fingerprint))
}

/// The file scan `scan` reading only shard `index` of `count`: its files sorted by
/// path and laid end to end, cut into equal byte ranges.
fn slice_files(scan: &Arc<dyn ExecutionPlan>, index: usize, count: usize) -> Result<Sliced, EngineError> {
    let config = scan
        .downcast_ref::<DataSourceExec>()
        .and_then(|source| source.data_source().downcast_ref::<FileScanConfig>())
        .ok_or_else(|| EngineError::Internal("a shard's scan is not a file scan".into()))?;
    let mut files: Vec<PartitionedFile> = Vec::new();
    for file in config.file_groups.iter().flat_map(|group| group.files()) {
        if !files.iter().any(|seen| seen.object_meta.location == file.object_meta.location) {
            let mut whole = file.clone();
            whole.range = None;
            whole.statistics = None;
            files.push(whole);
        }
    }
    files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
    let mut digest = Sha256::new();
    for file in &files {
        digest.update(file.object_meta.location.as_ref().as_bytes());
        digest.update([0]);
        digest.update(file.object_meta.size.to_be_bytes());
        // With the times and ETags, the digest tells nothing about sizes to whoever
        // reads the (signed, not sealed) ticket.
        digest.update(file.object_meta.last_modified.timestamp_millis().to_be_bytes());
        digest.update(file.object_meta.e_tag.as_deref().unwrap_or_default().as_bytes());
        digest.update([0]);
    }
    let total: u64 = files.iter().map(|file| file.object_meta.size).sum();
    let bound = |i: usize| (u128::from(total) * i as u128 / count as u128) as u64;
    let (low, high) = (bound(index), bound(index + 1));
    let mut group = Vec::new();
    let mut offset = 0u64;
    for file in files {
        let size = file.object_meta.size;
        let (start, end) = (low.max(offset), high.min(offset + size));
        if start < end {
            let mut piece = file;
            if (start, end) != (offset, offset + size) {
                piece.range = Some(FileRange { start: (start - offset) as i64, end: (end - offset) as i64 });
            }
            group.push(piece);
        }
        offset += size;
    }
    let sliced = FileScanConfigBuilder::from(config.clone()).with_file_groups(vec![FileGroup::new(group)]).build();
    let plan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(sliced);
    Ok((plan, digest.finalize().to_vec()))
}
