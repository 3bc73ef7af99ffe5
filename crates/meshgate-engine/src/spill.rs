//! Spill files whose failures say they are the server's: a directory that cannot be
//! written is not a product that cannot be read. DataFusion's disk manager does the
//! work (files in the spill directory, its size limit, its accounting); every error
//! from creating, writing or reading back a spill file is wrapped in a [`SpillError`].
//! `meshgate_catalog::spill_failure` finds it, so no scan blames its product, and
//! `EngineError` reports it as the query's lack of resources.

use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::spill_file::{SpillFile, SpillWriter, TempFileFactory};
use futures::{Stream, StreamExt};
use meshgate_catalog::SpillError;

/// Where spill files go, through DataFusion's disk manager.
pub(crate) struct SpillFiles {
    disk: Arc<DiskManager>,
    directory: Arc<str>,
}

impl SpillFiles {
    /// Spill files in a working folder made in `directory` now, or in the system's
    /// temporary directory (made on first use) when `None`.
    pub(crate) fn new(directory: Option<&Path>) -> Result<Self> {
        let builder = match directory {
            Some(dir) => DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![dir.to_path_buf()])),
            None => DiskManagerBuilder::default(),
        };
        let named =
            directory.map_or_else(|| std::env::temp_dir().display().to_string(), |dir| dir.display().to_string());
        Ok(Self { disk: Arc::new(builder.build()?), directory: named.into() })
    }

    /// Bytes of spill files on disk now.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.disk.used_disk_space()
    }
}

impl TempFileFactory for SpillFiles {
    fn create_temp_file(&self, description: &str) -> Result<Arc<dyn SpillFile>> {
        let file = self
            .disk
            .create_tmp_file(description)
            .map_err(|error| failed("create a spill file", &self.directory, Box::new(error)))?;
        Ok(Arc::new(TaggedFile { file, directory: Arc::clone(&self.directory) }))
    }
}

/// The error of a spill file's `action`, logged with the directory.
fn failed(action: &'static str, directory: &str, source: Box<dyn std::error::Error + Send + Sync>) -> DataFusionError {
    let error = SpillError { action, directory: directory.to_owned(), source };
    tracing::warn!(directory, %error, "spilling failed");
    DataFusionError::External(Box::new(error))
}

/// One spill file, its errors tagged.
struct TaggedFile {
    file: Arc<dyn SpillFile>,
    directory: Arc<str>,
}

impl SpillFile for TaggedFile {
    fn path(&self) -> Option<&Path> {
        self.file.path()
    }

    fn size(&self) -> Option<u64> {
        self.file.size()
    }

    fn read_stream(&self) -> Result<Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>> {
        let directory = Arc::clone(&self.directory);
        let tag = move |error: DataFusionError| failed("read a spill file back", &directory, Box::new(error));
        let stream = self.file.read_stream().map_err(tag.clone())?;
        Ok(Box::pin(stream.map(move |chunk| chunk.map_err(tag.clone()))))
    }

    fn open_writer(&self) -> Result<Box<dyn SpillWriter>> {
        let writer =
            self.file.open_writer().map_err(|error| failed("write a spill file", &self.directory, Box::new(error)))?;
        Ok(Box::new(TaggedWriter { writer, directory: Arc::clone(&self.directory) }))
    }
}

/// A spill file's writer. Its errors stay I/O errors of the kind the disk manager's
/// writer gives them, wrapping the [`SpillError`], which keeps the error behind it (a
/// full disk is still found as one).
struct TaggedWriter {
    writer: Box<dyn SpillWriter>,
    directory: Arc<str>,
}

impl TaggedWriter {
    fn tag(&self, error: std::io::Error) -> std::io::Error {
        let kind = error.kind();
        let error =
            SpillError { action: "write a spill file", directory: self.directory.to_string(), source: Box::new(error) };
        tracing::warn!(directory = %self.directory, %error, "spilling failed");
        std::io::Error::new(kind, error)
    }
}

impl Write for TaggedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf).map_err(|error| self.tag(error))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush().map_err(|error| self.tag(error))
    }
}

impl SpillWriter for TaggedWriter {
    fn finish(&mut self) -> Result<()> {
        self.writer.finish().map_err(|error| failed("write a spill file", &self.directory, Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spill_directory_that_is_gone_is_the_spills_failure() {
        let root = tempfile::tempdir().unwrap();
        let files = SpillFiles::new(Some(root.path())).unwrap();
        // the working folder the disk manager made goes
        for entry in std::fs::read_dir(root.path()).unwrap() {
            std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
        }
        let error = files.create_temp_file("a test sort").err().expect("no folder to spill into");
        let spill = meshgate_catalog::spill_failure(&error).expect("tagged as the spill's");
        assert_eq!(spill.action, "create a spill file");
        assert!(spill.to_string().contains("not found"), "{spill}");
        assert!(!spill.to_string().contains(&*root.path().display().to_string()), "{spill}");
    }

    #[test]
    fn write_errors_keep_their_kind_and_their_tag() {
        let root = tempfile::tempdir().unwrap();
        let files = SpillFiles::new(Some(root.path())).unwrap();
        let file = files.create_temp_file("a test sort").unwrap();
        let mut writer = file.open_writer().unwrap();
        writer.write_all(b"spilled rows").unwrap();
        writer.flush().unwrap();
        assert_eq!(files.used_bytes(), 12);
        let tagged = TaggedWriter { writer, directory: "/spill".into() }
            .tag(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(tagged.kind(), std::io::ErrorKind::StorageFull);
        // as DataFusion's spill writer reports it: an Arrow I/O error
        let error = DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::IoError("spilling".into(), tagged)),
            None,
        );
        assert!(meshgate_catalog::disk_full(&error));
        assert_eq!(meshgate_catalog::spill_failure(&error).map(|spill| spill.action), Some("write a spill file"));
        drop(file);
        assert_eq!(files.used_bytes(), 0);
    }
}
