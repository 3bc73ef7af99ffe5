//! `AcceleratedCopy`: one product's rows in memory, as they were in the files it
//! was built from, split into partitions for the cores.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::physical_plan::ExecutionPlan;

use super::memory::Reservation;
use super::scan::AcceleratedScanExec;

/// A product's rows held in memory.
#[derive(Debug)]
pub struct AcceleratedCopy {
    schema: SchemaRef,
    partitions: Arc<Vec<Vec<RecordBatch>>>,
    rows: u64,
    /// Identifies the files it was read from (paths, sizes, modification times).
    pub(crate) files: u64,
    loaded_at: SystemTime,
    build_time: Duration,
    reservation: Reservation,
}

impl AcceleratedCopy {
    pub(crate) fn new(
        schema: SchemaRef,
        partitions: Vec<Vec<RecordBatch>>,
        files: u64,
        build_time: Duration,
        reservation: Reservation,
    ) -> Self {
        let rows = partitions.iter().flatten().map(|batch| batch.num_rows() as u64).sum();
        let partitions = Arc::new(partitions);
        Self { schema, partitions, rows, files, loaded_at: SystemTime::now(), build_time, reservation }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Memory its batches take.
    pub fn bytes(&self) -> u64 {
        self.reservation.bytes()
    }

    /// When it was built.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// How long building it took.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// A scan of the copy for `product`; filters and limits stay above it (it applies
    /// none itself).
    pub(crate) fn scan(&self, product: Arc<str>, projection: Option<&Vec<usize>>) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = AcceleratedScanExec::try_new(
            product,
            Arc::clone(&self.partitions),
            Arc::clone(&self.schema),
            projection.cloned(),
        )?;
        Ok(Arc::new(scan))
    }
}
