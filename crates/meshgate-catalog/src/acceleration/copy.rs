//! `AcceleratedCopy`: one product's rows in memory (or spilled to local files), as
//! they were in the files it was built from, split into partitions for the cores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;

use super::memory::Reservation;
use super::scan::AcceleratedScanExec;
use super::spill::SpilledFiles;

/// Where a copy's rows are.
#[derive(Debug)]
pub(crate) enum CopyData {
    /// In memory, one list of batches per partition.
    Memory(Vec<Vec<RecordBatch>>),
    /// In local files, one per partition.
    Spilled(Arc<SpilledFiles>),
}

impl CopyData {
    pub fn partitions(&self) -> usize {
        match self {
            CopyData::Memory(partitions) => partitions.len(),
            CopyData::Spilled(files) => files.partitions(),
        }
    }

    pub fn rows(&self) -> u64 {
        match self {
            CopyData::Memory(partitions) => partitions.iter().flatten().map(|batch| batch.num_rows() as u64).sum(),
            CopyData::Spilled(files) => files.rows(None),
        }
    }
}

/// A product's rows held in memory, or spilled to local files.
#[derive(Debug)]
pub struct AcceleratedCopy {
    schema: SchemaRef,
    data: Arc<CopyData>,
    rows: u64,
    /// Identifies the files it was read from (paths, sizes, modification times).
    pub(crate) files: u64,
    loaded_at: SystemTime,
    build_time: Duration,
    reservation: Reservation,
    /// Rows each row filter keeps ([`Self::rows_where`]).
    kept: Mutex<HashMap<Expr, u64>>,
}

/// Row filters whose counts a copy keeps before it starts over.
const KEPT_COUNTS: usize = 256;

impl AcceleratedCopy {
    pub(crate) fn new(
        schema: SchemaRef,
        data: CopyData,
        files: u64,
        build_time: Duration,
        reservation: Reservation,
    ) -> Self {
        let rows = data.rows();
        Self {
            schema,
            data: Arc::new(data),
            rows,
            files,
            loaded_at: SystemTime::now(),
            build_time,
            reservation,
            kept: Mutex::default(),
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Memory its batches take (0 when spilled).
    pub fn bytes(&self) -> u64 {
        self.reservation.bytes()
    }

    /// Local disk its spilled files take (0 in memory).
    pub fn disk_bytes(&self) -> u64 {
        match self.data.as_ref() {
            CopyData::Memory(_) => 0,
            CopyData::Spilled(files) => files.bytes(),
        }
    }

    /// The spill directory its files are in, when it was spilled to local files.
    pub fn spilled_in(&self) -> Option<&std::path::Path> {
        match self.data.as_ref() {
            CopyData::Memory(_) => None,
            CopyData::Spilled(files) => Some(files.directory()),
        }
    }

    /// When it was built.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// How long building it took.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// How many of the copy's rows `filter` keeps, planned by `plan` against the copy's
    /// schema when it was not counted before. Counted once per filter and copy: meant
    /// for a principal's row filter, whose count is what that principal's `count(*)`
    /// says, nothing about the rows it hides. Keyed by the filter itself, whose
    /// literals carry their types (a NULL and the text 'NULL' differ). `None` for a
    /// spilled copy: counting would read its files while planning.
    pub fn rows_where(
        &self,
        filter: &Expr,
        plan: impl FnOnce(&SchemaRef) -> Result<Arc<dyn PhysicalExpr>>,
    ) -> Result<Option<u64>> {
        let CopyData::Memory(partitions) = self.data.as_ref() else { return Ok(None) };
        if let Some(rows) = self.kept.lock().ok().and_then(|kept| kept.get(filter).copied()) {
            return Ok(Some(rows));
        }
        let predicate = plan(&self.schema)?;
        let mut rows = 0u64;
        for batch in partitions.iter().flatten() {
            let kept = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
            let kept = kept
                .as_boolean_opt()
                .ok_or_else(|| DataFusionError::Internal(format!("row filter {predicate} is not boolean")))?;
            // NULL keeps no row, as in a filter (`true_count` counts only set, valid bits).
            rows += kept.true_count() as u64;
        }
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() >= KEPT_COUNTS {
                kept.clear();
            }
            kept.insert(filter.clone(), rows);
        }
        Ok(Some(rows))
    }

    /// A scan of the copy for `product`; filters and limits stay above it (it applies
    /// none itself).
    pub(crate) fn scan(&self, product: Arc<str>, projection: Option<&Vec<usize>>) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = AcceleratedScanExec::try_new(
            product,
            Arc::clone(&self.data),
            Arc::clone(&self.schema),
            projection.cloned(),
        )?;
        Ok(Arc::new(scan))
    }
}
