//! Building a copy: the product's files scanned whole, their batches dealt round-robin
//! into one partition per core, every byte counted against the product's `max_bytes`
//! and the mesh's budget as it arrives. A copy that would not fit in memory, of a
//! product that may spill, goes on in local files instead (its batches so far written
//! out and let go), counted against the spill budget.

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

use super::copy::{AcceleratedCopy, CopyData};
use super::memory::{AccelerationMemory, Reservation};
use super::spill::SpillWriter;
use crate::config::acceleration::{SpillConfig, format_bytes};

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
    /// Disk of the copy the new one replaces.
    pub replaces_disk: u64,
    /// Where to go on when memory is not enough (the product may spill).
    pub spill: Option<SpillConfig>,
}

/// Where the copy being built goes.
enum Sink {
    Memory(Vec<Vec<RecordBatch>>, Reservation),
    Disk(SpillWriter),
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
    // Writing the spilled copy: a full disk means it does not fit.
    let spill_failed = |error: datafusion::error::DataFusionError| match error {
        datafusion::error::DataFusionError::ResourcesExhausted(message) => {
            BuildError::Refused(format!("{name} is not accelerated: {message}"))
        }
        other => failed(other),
    };
    let count = state.config().target_partitions().max(1);
    let mut sink = Sink::Memory(vec![Vec::new(); count], limits.memory.reserve());
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
        sink = match sink {
            Sink::Memory(mut partitions, mut reservation) => {
                reservation.grow(batch.get_array_memory_size() as u64);
                match (check_limits(name, reservation.bytes(), &limits), &limits.spill) {
                    (Ok(()), _) => {
                        partitions[next].push(batch);
                        Sink::Memory(partitions, reservation)
                    }
                    (Err(refused), None) => return Err(refused),
                    (Err(_), Some(spill)) => {
                        // What is held goes to disk first: it must fit there.
                        check_disk(name, reservation.bytes(), &limits)?;
                        partitions[next].push(batch);
                        let (directory, schema, disk) =
                            (spill.directory.clone(), Arc::clone(&schema), limits.memory.reserve_disk());
                        let writer = blocking(move || {
                            let mut writer = SpillWriter::create(&directory, &schema, count, disk)?;
                            for (partition, batches) in partitions.iter().enumerate() {
                                for batch in batches {
                                    writer.write(partition, batch)?;
                                }
                            }
                            Ok(writer)
                        })
                        .await
                        .map_err(spill_failed)?;
                        drop(reservation); // the batches went with `partitions`
                        check_disk(name, writer.bytes(), &limits)?;
                        Sink::Disk(writer)
                    }
                }
            }
            Sink::Disk(writer) => {
                check_disk(name, writer.bytes() + batch.get_array_memory_size() as u64, &limits)?;
                let partition = next;
                let writer = blocking(move || {
                    let mut writer = writer;
                    writer.write(partition, &batch)?;
                    Ok(writer)
                })
                .await
                .map_err(spill_failed)?;
                check_disk(name, writer.bytes(), &limits)?;
                Sink::Disk(writer)
            }
        };
        next = (next + 1) % count;
    }
    let (data, reservation) = match sink {
        Sink::Memory(partitions, reservation) => (CopyData::Memory(partitions), reservation),
        Sink::Disk(writer) => {
            let files = blocking(move || writer.finish()).await.map_err(spill_failed)?;
            (CopyData::Spilled(Arc::new(files)), limits.memory.reserve())
        }
    };
    Ok(AcceleratedCopy::new(schema, data, files, started.elapsed(), reservation))
}

/// Runs file writes off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| datafusion::error::DataFusionError::External(Box::new(error)))?
}

fn check_disk(name: &str, bytes: u64, limits: &Limits<'_>) -> Result<(), BuildError> {
    let Some(spill) = &limits.spill else { return Ok(()) };
    let others = limits.memory.spilled().saturating_sub(bytes).saturating_sub(limits.replaces_disk);
    if others + bytes > spill.budget {
        return Err(BuildError::Refused(format!(
            "{name} is not accelerated: its data does not fit in memory and takes more than the {} left of the \
             spill budget (acceleration.spill.budget: {}, of which other spilled copies take {})",
            format_bytes(spill.budget.saturating_sub(others)),
            format_bytes(spill.budget),
            format_bytes(others)
        )));
    }
    Ok(())
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
