//! Spilled copies: an accelerated copy too large for memory, written to local Arrow
//! IPC files, one per partition, in the mesh's `acceleration.spill.directory`.
//!
//! The files hold the product's raw rows (hidden rows and masked values included), so
//! they are the server's alone: each server process writes under a directory of its
//! own (`meshgate-<pid>`, mode 0700), each copy in a directory of its own, each file
//! mode 0600. Nothing in SQL names a local path (no table functions or DDL reach
//! files, and the configuration refuses a spill directory that overlaps a product's
//! folder), so they are read only as the copy's scan, under the product's barrier.
//! The files are removed when the copy is dropped (the last query reading it done),
//! all of them when the server stops, and a directory a process that did not stop
//! cleanly left behind is removed when the next one first spills there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::{DataFusionError, Result, project_schema};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;

use super::memory::Reservation;

/// Copies written by this process, for their directories' names.
static NEXT_COPY: AtomicU64 = AtomicU64::new(0);

/// Spill directories this process has cleaned and made its own.
static PREPARED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// This process's directory under `directory`, made (mode 0700) on first use, when
/// the directories of processes that are gone are removed.
fn process_area(directory: &Path) -> io::Result<PathBuf> {
    let area = directory.join(format!("meshgate-{}", std::process::id()));
    let mut prepared = PREPARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if prepared.contains(&area) {
        return Ok(area);
    }
    fs::create_dir_all(directory)?;
    for entry in fs::read_dir(directory)?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.strip_prefix("meshgate-")) else { continue };
        // Ours from a former process with this pid, or one whose process is gone.
        let gone = entry.path() == area || Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists();
        if gone && let Err(error) = fs::remove_dir_all(entry.path()) {
            tracing::warn!(directory = %entry.path().display(), %error, "could not remove a former spill directory");
        }
    }
    private_dir(&area)?;
    prepared.push(area.clone());
    Ok(area)
}

/// Removes every spilled copy this process wrote (its areas), when the server stops.
pub fn remove_spilled_copies() {
    let areas = std::mem::take(&mut *PREPARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    for area in areas {
        remove_copy_dir(&area);
    }
}

#[cfg(unix)]
fn private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new().mode(0o700).create(path)?;
    // The mode asked for is narrowed by the umask, never widened; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_dir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type PartitionWriter = StreamWriter<Counting<BufWriter<File>>>;

/// A copy being written: one IPC stream per partition. The stream format (not the
/// file format) so that a dictionary column may change its dictionary between batches.
pub(crate) struct SpillWriter {
    copy_dir: Option<PathBuf>,
    files: Vec<PathBuf>,
    writers: Vec<PartitionWriter>,
    rows: Vec<u64>,
    reservation: Reservation,
}

impl SpillWriter {
    /// Starts a copy with `partitions` files under `directory`, its disk counted in
    /// `reservation`.
    pub fn create(directory: &Path, schema: &SchemaRef, partitions: usize, reservation: Reservation) -> Result<Self> {
        let io = |error: io::Error| spill_error(directory, error);
        let area = process_area(directory).map_err(io)?;
        let copy_dir = area.join(format!("copy-{}", NEXT_COPY.fetch_add(1, Ordering::Relaxed)));
        private_dir(&copy_dir).map_err(io)?;
        let mut writer = Self {
            copy_dir: Some(copy_dir.clone()),
            files: Vec::with_capacity(partitions),
            writers: Vec::with_capacity(partitions),
            rows: vec![0; partitions],
            reservation,
        };
        for partition in 0..partitions {
            let path = copy_dir.join(format!("part-{partition}.arrow"));
            let file = private_file(&path).map_err(io)?;
            let out = Counting { inner: BufWriter::new(file), bytes: 0 };
            writer.writers.push(StreamWriter::try_new(out, schema)?);
            writer.files.push(path);
        }
        Ok(writer)
    }

    /// Appends `batch` to `partition`'s file.
    pub fn write(&mut self, partition: usize, batch: &RecordBatch) -> Result<()> {
        let writer = &mut self.writers[partition];
        let before = writer.get_ref().bytes;
        writer.write(batch)?;
        self.reservation.grow(writer.get_ref().bytes - before);
        self.rows[partition] += batch.num_rows() as u64;
        Ok(())
    }

    /// Disk the copy takes so far.
    pub fn bytes(&self) -> u64 {
        self.reservation.bytes()
    }

    /// Ends every file; the copy is then read with [`SpilledFiles::stream`].
    pub fn finish(mut self) -> Result<SpilledFiles> {
        for writer in &mut self.writers {
            writer.finish()?;
            let before = writer.get_ref().bytes;
            writer.get_mut().flush().map_err(|error| spill_error(&self.files[0], error))?;
            self.reservation.grow(writer.get_ref().bytes - before);
        }
        self.writers.clear();
        let files = SpilledFiles {
            copy_dir: self.copy_dir.take().unwrap_or_default(),
            files: std::mem::take(&mut self.files),
            rows: std::mem::take(&mut self.rows),
            reservation: self.reservation.take(),
        };
        Ok(files)
    }
}

impl Drop for SpillWriter {
    /// A copy that was not finished (refused, failed) leaves nothing behind.
    fn drop(&mut self) {
        if let Some(dir) = self.copy_dir.take() {
            remove_copy_dir(&dir);
        }
    }
}

fn spill_error(path: &Path, error: io::Error) -> DataFusionError {
    DataFusionError::Execution(format!("writing to the spill directory {}: {error}", path.display()))
}

fn remove_copy_dir(dir: &Path) {
    if let Err(error) = fs::remove_dir_all(dir)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(directory = %dir.display(), %error, "could not remove a spilled copy");
    }
}

/// A spilled copy's files; removed when it is dropped.
#[derive(Debug)]
pub(crate) struct SpilledFiles {
    copy_dir: PathBuf,
    files: Vec<PathBuf>,
    rows: Vec<u64>,
    reservation: Reservation,
}

impl SpilledFiles {
    pub fn partitions(&self) -> usize {
        self.files.len()
    }

    /// Rows in `partition`, or in every partition.
    pub fn rows(&self, partition: Option<usize>) -> u64 {
        match partition {
            Some(partition) => self.rows.get(partition).copied().unwrap_or(0),
            None => self.rows.iter().sum(),
        }
    }

    /// Disk the files take.
    pub fn bytes(&self) -> u64 {
        self.reservation.bytes()
    }

    /// Streams `partition`'s rows, projected, read off the files on a blocking thread.
    /// The stream keeps the files (`this`) until it ends.
    pub fn stream(
        this: &Arc<Self>,
        product: &str,
        partition: usize,
        schema: &SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> Result<SendableRecordBatchStream> {
        let projected = project_schema(schema, projection.as_ref())?;
        let mut builder = RecordBatchReceiverStreamBuilder::new(projected, 2);
        let Some(path) = this.files.get(partition).cloned() else { return Ok(builder.build()) };
        let (files, tx, product) = (Arc::clone(this), builder.tx(), product.to_owned());
        builder.spawn_blocking(move || {
            let _files = files;
            let failed = |error: &dyn std::fmt::Display| {
                DataFusionError::Execution(format!("reading the spilled copy of {product}: {error}"))
            };
            let file = File::open(&path).map_err(|error| failed(&error))?;
            let reader = StreamReader::try_new_buffered(file, projection).map_err(|error| failed(&error))?;
            for batch in reader {
                let batch = batch.map_err(|error| failed(&error));
                let stop = batch.is_err();
                if tx.blocking_send(batch).is_err() || stop {
                    break;
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

impl Drop for SpilledFiles {
    fn drop(&mut self) {
        remove_copy_dir(&self.copy_dir);
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{DictionaryArray, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use futures::TryStreamExt;

    use super::*;
    use crate::acceleration::AccelerationMemory;

    fn batch(schema: &SchemaRef, ids: &[i64], region: &[&str]) -> RecordBatch {
        let region: DictionaryArray<Int32Type> = region.iter().copied().collect();
        RecordBatch::try_new(Arc::clone(schema), vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(region)])
            .unwrap()
    }

    #[tokio::test]
    async fn a_spilled_copy_reads_back_private_and_is_removed_with_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("region", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        ]));
        let memory = AccelerationMemory::new();
        let mut writer = SpillWriter::create(dir.path(), &schema, 2, memory.reserve_disk()).unwrap();
        // A dictionary that changes between batches of one file (the IPC file format
        // would refuse it).
        writer.write(0, &batch(&schema, &[1, 2], &["eu", "us"])).unwrap();
        writer.write(0, &batch(&schema, &[3], &["apac"])).unwrap();
        writer.write(1, &batch(&schema, &[4], &["eu"])).unwrap();
        let files = Arc::new(writer.finish().unwrap());
        assert_eq!((files.rows(None), files.rows(Some(0)), files.partitions()), (4, 3, 2));
        assert!(files.bytes() > 0 && memory.spilled() == files.bytes());

        let area = dir.path().join(format!("meshgate-{}", std::process::id()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&area), 0o700);
            assert_eq!(mode(&files.copy_dir), 0o700);
            assert!(files.files.iter().all(|file| mode(file) == 0o600));
        }

        let read = SpilledFiles::stream(&files, "shop.users", 0, &schema, Some(vec![1])).unwrap();
        let batches: Vec<RecordBatch> = read.try_collect().await.unwrap();
        let regions: Vec<String> = batches
            .iter()
            .flat_map(|batch| {
                let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
                let column = column.as_any().downcast_ref::<StringArray>().unwrap().clone();
                column.iter().map(|value| value.unwrap().to_owned()).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(regions, ["eu", "us", "apac"]);

        let copy_dir = files.copy_dir.clone();
        drop(files);
        assert!(!copy_dir.exists(), "a dropped copy leaves no file behind");
        assert_eq!(memory.spilled(), 0);
    }

    #[test]
    fn a_copy_not_finished_leaves_nothing_and_a_former_process_area_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        // A directory left by a process that is gone (no such pid).
        let stale = dir.path().join("meshgate-4294967295");
        fs::create_dir_all(stale.join("copy-0")).unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let memory = AccelerationMemory::new();
        let writer = SpillWriter::create(dir.path(), &schema, 1, memory.reserve_disk()).unwrap();
        let copy_dir = writer.copy_dir.clone().unwrap();
        assert!(copy_dir.exists());
        if Path::new("/proc/self").exists() {
            assert!(!stale.exists(), "the area of a process that is gone is removed");
        }
        drop(writer);
        assert!(!copy_dir.exists());
    }
}
