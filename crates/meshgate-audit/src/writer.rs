//! A background thread that turns items into lines and writes them, so the query
//! path only queues. The queue is unbounded: nothing handed over is dropped. The
//! thread writes in bursts: it takes what is queued (up to [`BURST`] items), writes
//! it, then flushes the file to the operating system. A process crash therefore
//! loses at most the items still queued and the burst being written; the file is
//! fsync'ed on rotation and when the writer closes.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::file::JsonLinesFile;

/// Most items written between two flushes.
pub const BURST: usize = 4096;

enum Command<T> {
    Item(T),
    /// Answered once everything queued before it is written and flushed.
    Sync(Sender<()>),
}

/// The sending side of a writer thread.
#[derive(Debug)]
pub(crate) struct Writer<T> {
    tx: Mutex<Option<Sender<Command<T>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T> std::fmt::Debug for Command<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Item(_) => "Item",
            Self::Sync(_) => "Sync",
        })
    }
}

impl<T: Send + 'static> Writer<T> {
    /// Starts the thread: each item goes through `render` (which may act on it and
    /// return the line to write, without its newline) and, when there is a file, into it.
    pub(crate) fn spawn(
        name: &str,
        mut file: Option<JsonLinesFile>,
        mut render: impl FnMut(T) -> Option<Vec<u8>> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Command<T>>();
        let thread_name = name.to_owned();
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            run(&thread_name, rx, &mut file, &mut render);
            if let Some(file) = file.as_mut()
                && let Err(error) = file.sync()
            {
                tracing::error!(writer = %thread_name, %error, "cannot fsync on close");
            }
        })?;
        Ok(Self { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) })
    }

    /// Queues `item` (never blocks, never drops; after [`Writer::close`] it is ignored).
    pub(crate) fn send(&self, item: T) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(Command::Item(item));
        }
    }

    /// Waits until everything queued so far is written and flushed.
    pub(crate) fn sync(&self) {
        let (reply, done) = channel();
        let sent = lock(&self.tx).as_ref().is_some_and(|tx| tx.send(Command::Sync(reply)).is_ok());
        if sent {
            let _ = done.recv();
        }
    }

    /// Writes what is queued, fsyncs and stops the thread. Later items are ignored.
    pub(crate) fn close(&self) {
        drop(lock(&self.tx).take());
        if let Some(thread) = lock(&self.thread).take()
            && thread.join().is_err()
        {
            tracing::error!("an audit writer thread panicked");
        }
    }
}

fn lock<V>(mutex: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run<T>(
    name: &str,
    rx: Receiver<Command<T>>,
    file: &mut Option<JsonLinesFile>,
    render: &mut impl FnMut(T) -> Option<Vec<u8>>,
) {
    let mut errors = 0u64;
    let mut report = |error: std::io::Error| {
        errors += 1;
        // The first error, then one in a thousand: a full disk must not flood the log.
        if errors % 1000 == 1 {
            tracing::error!(writer = %name, %error, errors, "cannot write to the file");
        }
    };
    // Blocks for the first command of a burst; ends when every sender is gone.
    while let Ok(first) = rx.recv() {
        let mut replies = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(command) = next.take() {
            match command {
                Command::Item(item) => {
                    taken += 1;
                    if let Some(line) = render(item)
                        && let Some(file) = file.as_mut()
                        && let Err(error) = file.write_line(&line)
                    {
                        report(error);
                    }
                }
                Command::Sync(reply) => replies.push(reply),
            }
            if taken < BURST {
                next = rx.try_recv().ok();
            }
        }
        if let Some(file) = file.as_mut()
            && let Err(error) = file.flush()
        {
            report(error);
        }
        for reply in replies {
            let _ = reply.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_sent_is_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let writer = Writer::spawn("test-writer", Some(JsonLinesFile::open(&path, None).unwrap()), |n: u32| {
            (!n.is_multiple_of(3)).then(|| n.to_string().into_bytes())
        })
        .unwrap();
        for n in 0..10_000 {
            writer.send(n);
        }
        writer.sync();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<String> = (0u32..10_000).filter(|n| !n.is_multiple_of(3)).map(|n| n.to_string()).collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        writer.close();
        writer.send(1);
        writer.sync();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
