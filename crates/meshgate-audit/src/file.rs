//! An append-only JSON-lines file, optionally rotated by size: when the next line
//! would take the file past `max_bytes`, it is flushed, fsync'ed and renamed to
//! `<stem>-<UTC timestamp>.jsonl` beside it (the directory fsync'ed too), a new file is
//! started, and rotated files beyond the newest `keep` are deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;

/// Size-based rotation and retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated before a line would take it past this size.
    pub max_bytes: u64,
    /// Rotated files kept (the oldest beyond are deleted).
    pub keep: usize,
}

#[derive(Debug)]
pub(crate) struct JsonLinesFile {
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    rotation: Option<Rotation>,
}

impl JsonLinesFile {
    /// Opens `path` for appending (creating it and its directory). A last line cut
    /// short by a crash is ended, so the next line starts on its own.
    pub(crate) fn open(path: &Path, rotation: Option<Rotation>) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let mut size = file.metadata()?.len();
        if size > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(size - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                size += 1;
            }
        }
        Ok(Self { path: path.to_owned(), file: BufWriter::with_capacity(64 * 1024, file), size, rotation })
    }

    /// Appends one line (`line` without its newline).
    pub(crate) fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if let Some(rotation) = self.rotation
            && self.size > 0
            && self.size + len > rotation.max_bytes
        {
            self.rotate(rotation)?;
        }
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    /// Hands what is buffered to the operating system (no fsync).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    /// Flushes and fsyncs.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()
    }

    fn rotate(&mut self, rotation: Rotation) -> io::Result<()> {
        self.sync()?;
        let rotated = self.free_rotated_name();
        std::fs::rename(&self.path, &rotated)?;
        let fresh = Self::open(&self.path, self.rotation)?;
        *self = fresh;
        sync_dir(&self.path);
        for old in rotated_files(&self.path).iter().rev().skip(rotation.keep) {
            if let Err(error) = std::fs::remove_file(old) {
                tracing::warn!(file = %old.display(), %error, "cannot delete a rotated audit file");
            }
        }
        Ok(())
    }

    /// `<stem>-<timestamp>.jsonl`, microseconds; moved on by a microsecond while taken,
    /// so names sort in the order files were rotated.
    fn free_rotated_name(&self) -> PathBuf {
        let mut time = Utc::now();
        loop {
            let name = format!("{}-{}.jsonl", stem(&self.path), time.format("%Y%m%dT%H%M%S%.6fZ"));
            let candidate = self.path.with_file_name(name);
            if !candidate.exists() {
                return candidate;
            }
            time += chrono::Duration::microseconds(1);
        }
    }
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The rotated files of `path`, oldest first.
pub(crate) fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else { return Vec::new() };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{}-", stem(path));
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| {
            file.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    files
}

/// Every line of the rotated files of `path`, then of `path` itself, oldest first.
pub(crate) fn read_lines(path: &Path, mut line: impl FnMut(&str)) -> io::Result<()> {
    let mut files = rotated_files(path);
    if path.exists() {
        files.push(path.to_owned());
    }
    for file in files {
        let reader = BufReader::new(File::open(&file)?);
        for text in reader.split(b'\n') {
            line(&String::from_utf8_lossy(&text?));
        }
    }
    Ok(())
}

/// Makes a rename in the directory of `path` durable.
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && let Err(error) = File::open(dir).and_then(|dir| dir.sync_all())
    {
        tracing::warn!(dir = %dir.display(), %error, "cannot fsync the audit directory");
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(path: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        read_lines(path, |line| {
            if !line.is_empty() {
                lines.push(line.to_owned())
            }
        })
        .unwrap();
        lines
    }

    #[test]
    fn files_rotate_by_size_and_keep_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut file = JsonLinesFile::open(&path, Some(Rotation { max_bytes: 25, keep: 2 })).unwrap();
        for n in 0..10 {
            file.write_line(format!("line number {n}").as_bytes()).unwrap(); // 14 bytes with the newline
        }
        file.sync().unwrap();
        // One line per file: 25 bytes hold one 14-byte line, not two.
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        assert_eq!(std::fs::read_to_string(&rotated[0]).unwrap(), "line number 7\n");
        assert_eq!(std::fs::read_to_string(&rotated[1]).unwrap(), "line number 8\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line number 9\n");
        assert_eq!(lines_of(&path), ["line number 7", "line number 8", "line number 9"]);
        for file in rotated {
            let name = file.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(name.starts_with("audit-20") && name.ends_with("Z.jsonl"), "{name}");
        }
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_ended_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("lineage.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"a\":1}\n{\"cut").unwrap();
        let mut file = JsonLinesFile::open(&path, None).unwrap();
        file.write_line(b"{\"b\":2}").unwrap();
        file.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"cut\n{\"b\":2}\n");
    }

    #[test]
    fn without_rotation_files_grow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut file = JsonLinesFile::open(&path, None).unwrap();
        for _ in 0..100 {
            file.write_line(&[b'x'; 100]).unwrap();
        }
        file.sync().unwrap();
        assert!(rotated_files(&path).is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100 * 101);
    }
}
