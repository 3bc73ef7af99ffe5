//! Building a copy: the product's files scanned whole, their batches dealt round-robin
//! into one partition per core, every byte counted against the product's `max_bytes`
//! and the mesh's budget as it arrives.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::SessionState;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;

use super::copy::AcceleratedCopy;
use super::memory::AccelerationMemory;
use crate::config::acceleration::format_bytes;

/// Why no copy was built.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// It would not fit in memory: `max_bytes` or the budget.
    Refused(String),
    /// The files could not be read.
    Failed(String),
}

/// What a build may take.
pub(crate) struct Limits<'a> {
    pub memory: &'a Arc<AccelerationMemory>,
    pub max_bytes: Option<u64>,
    /// Bytes of the copy the new one replaces: given back when it is swapped in.
    pub replaces: u64,
}

/// The files a planned scan reads (path, size, modification time, ETag), and the
/// Delta version, as one number.
pub(crate) fn files_digest(plan: &Arc<dyn ExecutionPlan>, delta_version: Option<u64>) -> Result<u64> {
    let mut files = Vec::new();
    plan.apply(|node| {
        if let Some(source) = node.downcast_ref::<DataSourceExec>()
            && let Some(config) = source.data_source().downcast_ref::<FileScanConfig>()
        {
            for file in config.file_groups.iter().flat_map(|group| group.iter()) {
                let meta = &file.object_meta;
                files.push((
                    meta.location.to_string(),
                    meta.size,
                    meta.last_modified.timestamp_millis(),
                    meta.e_tag.clone(),
                ));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    // A large file is read as several ranges: each file once.
    files.sort();
    files.dedup();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    delta_version.hash(&mut hasher);
    Ok(hasher.finish())
}

/// Runs `scan` (the product's files, whole) into a copy with `schema`.
pub(crate) async fn build(
    name: &str,
    scan: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    files: u64,
    state: &SessionState,
    limits: Limits<'_>,
) -> Result<AcceleratedCopy, BuildError> {
    let started = Instant::now();
    let failed = |error: datafusion::error::DataFusionError| BuildError::Failed(error.to_string());
    let count = state.config().target_partitions().max(1);
    let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); count];
    let mut reservation = limits.memory.reserve();
    let mut stream = execute_stream(scan, state.task_ctx()).map_err(failed)?;
    let mut next = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(failed)?;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = if batch.schema() == schema {
            batch
        } else {
            RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec()).map_err(|error| failed(error.into()))?
        };
        reservation.grow(batch.get_array_memory_size() as u64);
        check_limits(name, reservation.bytes(), &limits)?;
        partitions[next].push(batch);
        next = (next + 1) % count;
    }
    Ok(AcceleratedCopy::new(schema, partitions, files, started.elapsed(), reservation))
}

fn check_limits(name: &str, bytes: u64, limits: &Limits<'_>) -> Result<(), BuildError> {
    if let Some(max) = limits.max_bytes
        && bytes > max
    {
        return Err(BuildError::Refused(format!(
            "{name} is not accelerated: its data takes more than its max_bytes of {}",
            format_bytes(max)
        )));
    }
    let memory = limits.memory;
    let budget = memory.budget();
    let others = memory.held().saturating_sub(bytes).saturating_sub(limits.replaces);
    if others + bytes > budget {
        return Err(BuildError::Refused(format!(
            "{name} is not accelerated: its data takes more than the {} left of the acceleration budget \
             (acceleration.budget: {}, of which other products hold {})",
            format_bytes(budget.saturating_sub(others)),
            format_bytes(budget),
            format_bytes(others)
        )));
    }
    Ok(())
}
