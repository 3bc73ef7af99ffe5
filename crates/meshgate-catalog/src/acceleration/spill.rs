//! Spilled copies: an accelerated copy too large for memory, written to local Arrow
//! IPC stream files, one per partition, in the mesh's `acceleration.spill.directory`.
//!
//! The files hold the product's raw rows (hidden rows and masked values included), so
//! no one may open them but the copy's own scan. Each file is created (mode 0600, a
//! name never used before) and at once unlinked: the copy keeps the open file and
//! reads it by position, and the rows are on disk under no name. No SQL, no other
//! process and no other user can reach them; the kernel frees the space when the copy
//! is dropped (its last query done) or the process ends, a crash included, so nothing
//! is ever left behind to clean up. (Where a file cannot be unlinked while open, not
//! Unix, it keeps its name until the copy is dropped.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::{DataFusionError, Result, project_schema};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::memory::Reservation;

/// Files created by this process, for their names.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// A file of a copy: open, nameless (see the module's notes).
#[derive(Debug)]
struct SpillFile {
    file: File,
    /// Its name, where it could not be unlinked at once; removed with the file.
    named: Option<PathBuf>,
}

impl SpillFile {
    fn create(directory: &Path) -> io::Result<Self> {
        let name = format!(".meshgate-{}-{}.arrow", std::process::id(), NEXT_FILE.fetch_add(1, Ordering::Relaxed));
        let path = directory.join(name);
        let file = private_file(&path)?;
        if !cfg!(unix) {
            return Ok(Self { file, named: Some(path) });
        }
        if let Err(error) = fs::remove_file(&path) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(error);
        }
        Ok(Self { file, named: None })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        read_at(&self.file, buf, offset)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Some(path) = self.named.take() {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).open(path)
}

/// Writes to a spill file, counting the bytes.
struct Appender {
    file: Arc<SpillFile>,
    bytes: u64,
}

impl Write for Appender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = (&self.file.file).write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&self.file.file).flush()
    }
}

/// Reads a spill file from an offset of its own (readers of one file never share one).
struct Cursor {
    file: Arc<SpillFile>,
    offset: u64,
}

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buf, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

/// An I/O error of the spill directory. Its path is logged, never put in a message a
/// reader may see (`acceleration_problem`, query warnings); a full disk is a refusal
/// (the copy does not fit), anything else a failure.
pub(crate) fn spill_error(directory: &Path, error: &io::Error) -> DataFusionError {
    tracing::warn!(directory = %directory.display(), %error, "spilling an accelerated copy failed");
    let message = format!("writing its spilled copy failed: {error}");
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            DataFusionError::ResourcesExhausted(message)
        }
        _ => DataFusionError::Execution(message),
    }
}

type PartitionWriter = StreamWriter<BufWriter<Appender>>;

/// A copy being written: one IPC stream per partition. The stream format (not the
/// file format) so that a dictionary column may change its dictionary between batches.
pub(crate) struct SpillWriter {
    directory: PathBuf,
    files: Vec<Arc<SpillFile>>,
    writers: Vec<PartitionWriter>,
    rows: Vec<u64>,
    reservation: Reservation,
}

impl SpillWriter {
    /// Starts a copy with `partitions` files in `directory` (made if missing), its
    /// disk counted in `reservation`.
    pub fn create(directory: &Path, schema: &SchemaRef, partitions: usize, reservation: Reservation) -> Result<Self> {
        let io = |error: io::Error| spill_error(directory, &error);
        fs::create_dir_all(directory).map_err(io)?;
        let mut writer = Self {
            directory: directory.to_path_buf(),
            files: Vec::with_capacity(partitions),
            writers: Vec::with_capacity(partitions),
            rows: vec![0; partitions],
            reservation,
        };
        for _ in 0..partitions {
            let file = Arc::new(SpillFile::create(directory).map_err(io)?);
            let out = Appender { file: Arc::clone(&file), bytes: 0 };
            writer.writers.push(StreamWriter::try_new(BufWriter::new(out), schema)?);
            writer.files.push(file);
        }
        writer.count_written();
        Ok(writer)
    }

    /// Bytes written so far, in all files (what each `BufWriter` holds not yet).
    fn written(&self) -> u64 {
        self.writers.iter().map(|writer| writer.get_ref().get_ref().bytes).sum()
    }

    fn count_written(&mut self) {
        let written = self.written();
        self.reservation.grow(written.saturating_sub(self.reservation.bytes()));
    }

    /// Appends `batch` to `partition`'s file.
    pub fn write(&mut self, partition: usize, batch: &RecordBatch) -> Result<()> {
        self.writers[partition].write(batch).map_err(|error| self.arrow_error(error))?;
        self.rows[partition] += batch.num_rows() as u64;
        self.count_written();
        Ok(())
    }

    fn arrow_error(&self, error: datafusion::arrow::error::ArrowError) -> DataFusionError {
        match error {
            datafusion::arrow::error::ArrowError::IoError(_, error) => spill_error(&self.directory, &error),
            other => other.into(),
        }
    }

    /// Disk the copy takes so far.
    pub fn bytes(&self) -> u64 {
        self.reservation.bytes()
    }

    /// Ends every file; the copy is then read with [`SpilledFiles::stream`].
    pub fn finish(mut self) -> Result<SpilledFiles> {
        for partition in 0..self.writers.len() {
            self.writers[partition].finish().map_err(|error| self.arrow_error(error))?;
            self.writers[partition].get_mut().flush().map_err(|error| spill_error(&self.directory, &error))?;
        }
        self.count_written();
        let Self { directory, files, rows, reservation, .. } = self;
        Ok(SpilledFiles { directory, files, rows, reservation })
    }
}

/// A spilled copy's files; freed when it is dropped.
#[derive(Debug)]
pub(crate) struct SpilledFiles {
    /// The spill directory they were made in.
    directory: PathBuf,
    files: Vec<Arc<SpillFile>>,
    rows: Vec<u64>,
    reservation: Reservation,
}

impl SpilledFiles {
    pub fn partitions(&self) -> usize {
        self.files.len()
    }

    pub fn directory(&self) -> &Path {
        &self.directory
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

    /// Streams `partition`'s rows, projected: each batch decoded on a blocking thread
    /// of its own, so a query its client does not read holds no thread. The stream
    /// keeps the copy's files (`this`) until it ends.
    pub fn stream(
        this: &Arc<Self>,
        product: &str,
        partition: usize,
        schema: &SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> Result<SendableRecordBatchStream> {
        let projected = project_schema(schema, projection.as_ref())?;
        let read = this.files.get(partition).map(|file| PartitionRead {
            reader: None,
            open: Some((Cursor { file: Arc::clone(file), offset: 0 }, projection)),
            product: product.to_owned(),
            _files: Arc::clone(this),
        });
        let batches = futures::stream::unfold(read, |read| async move {
            let mut read = read?;
            match tokio::task::spawn_blocking(move || (read.next(), read)).await {
                Ok((Some(Ok(batch)), read)) => Some((Ok(batch), Some(read))),
                Ok((Some(Err(error)), _)) => Some((Err(error), None)),
                Ok((None, _)) => None,
                Err(error) => Some((Err(DataFusionError::External(Box::new(error))), None)),
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(projected, batches)))
    }
}

impl Drop for SpilledFiles {
    /// Closing files of gigabytes frees their blocks: off the async threads.
    fn drop(&mut self) {
        let files = std::mem::take(&mut self.files);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(files));
        }
    }
}

/// One partition's file being read.
struct PartitionRead {
    reader: Option<StreamReader<BufReader<Cursor>>>,
    /// Before the first batch: where to start, and the projection.
    open: Option<(Cursor, Option<Vec<usize>>)>,
    product: String,
    _files: Arc<SpilledFiles>,
}

impl PartitionRead {
    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let failed = |error: &dyn std::fmt::Display| {
            DataFusionError::Execution(format!("reading the spilled copy of {}: {error}", self.product))
        };
        if let Some((cursor, projection)) = self.open.take() {
            match StreamReader::try_new_buffered(cursor, projection) {
                Ok(reader) => self.reader = Some(reader),
                Err(error) => return Some(Err(failed(&error))),
            }
        }
        let batch = self.reader.as_mut()?.next()?;
        Some(batch.map_err(|error| failed(&error)))
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

    async fn regions(files: &Arc<SpilledFiles>, schema: &SchemaRef, partition: usize) -> Vec<String> {
        let read = SpilledFiles::stream(files, "shop.users", partition, schema, Some(vec![1])).unwrap();
        let batches: Vec<RecordBatch> = read.try_collect().await.unwrap();
        batches
            .iter()
            .flat_map(|batch| {
                let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
                let column = column.as_any().downcast_ref::<StringArray>().unwrap().clone();
                column.iter().map(|value| value.unwrap().to_owned()).collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_spilled_copy_reads_back_and_leaves_no_file_anyone_could_open() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill");
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("region", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        ]));
        let memory = AccelerationMemory::new();
        let mut writer = SpillWriter::create(&spill, &schema, 2, memory.reserve_disk()).unwrap();
        // A dictionary that changes between batches of one file (the IPC file format
        // would refuse it).
        writer.write(0, &batch(&schema, &[1, 2], &["eu", "us"])).unwrap();
        writer.write(0, &batch(&schema, &[3], &["apac"])).unwrap();
        writer.write(1, &batch(&schema, &[4], &["eu"])).unwrap();
        let files = Arc::new(writer.finish().unwrap());
        assert_eq!((files.rows(None), files.rows(Some(0)), files.partitions()), (4, 3, 2));
        assert!(files.bytes() > 0 && memory.spilled() == files.bytes());
        #[cfg(unix)]
        assert_eq!(fs::read_dir(&spill).unwrap().count(), 0, "the files have no name");

        // Two readers of one file at once, each at its own offset.
        let (first, second) = tokio::join!(regions(&files, &schema, 0), regions(&files, &schema, 0));
        assert_eq!(first, ["eu", "us", "apac"]);
        assert_eq!(second, first);
        assert_eq!(regions(&files, &schema, 1).await, ["eu"]);
        assert!(regions(&files, &schema, 7).await.is_empty());

        drop(files);
        assert_eq!(memory.spilled(), 0);
    }

    #[test]
    fn a_copy_not_finished_gives_its_disk_back() {
        let dir = tempfile::tempdir().unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let memory = AccelerationMemory::new();
        let mut writer = SpillWriter::create(dir.path(), &schema, 1, memory.reserve_disk()).unwrap();
        let ids = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(vec![1; 1000]))]).unwrap();
        writer.write(0, &ids).unwrap();
        assert!(memory.spilled() > 0);
        drop(writer);
        assert_eq!(memory.spilled(), 0);
        #[cfg(unix)]
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_full_disk_is_a_refusal_and_no_message_names_the_directory() {
        let full = spill_error(Path::new("/secret/spill"), &io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(full, DataFusionError::ResourcesExhausted(_)), "{full}");
        let denied = spill_error(Path::new("/secret/spill"), &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(denied, DataFusionError::Execution(_)), "{denied}");
        assert!(!full.to_string().contains("/secret") && !denied.to_string().contains("/secret"));
    }
}
