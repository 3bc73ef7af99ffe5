//! Live reload: the configuration's files are watched (their folders, since editors
//! and `mv` replace files rather than write them in place), and once changes have
//! been quiet for [`DEBOUNCE`] the configuration is reloaded. Before each reload the
//! watched set is read again from the mesh file, so a new domain's folder is watched.

mod sources;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::reload::Reloader;
use sources::Sources;

/// How long changes must stop before a reload: an editor's save or a copy of
/// several descriptors is one reload, not one per event.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the configuration of `mesh` and reloads `reloader` on changes, for as long
/// as the server runs.
pub fn start(reloader: Arc<Reloader>, mesh: &Path) -> Result<(), notify::Error> {
    let (events, changes) = unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        // The receiver is gone only when the server stops.
        let _ = events.send(event);
    })?;
    let mut watch = Watch { reloader, mesh: mesh.to_path_buf(), watcher, watched: BTreeSet::new(), changes };
    let sources = Sources::of(mesh);
    watch.rewatch(&sources);
    tracing::info!(
        folders = watch.watched.len(),
        debounce_ms = DEBOUNCE.as_millis() as u64,
        "watching the configuration"
    );
    tokio::spawn(watch.run(sources));
    Ok(())
}

struct Watch {
    reloader: Arc<Reloader>,
    mesh: PathBuf,
    watcher: RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    changes: UnboundedReceiver<notify::Result<Event>>,
}

impl Watch {
    async fn run(mut self, mut sources: Sources) {
        loop {
            let Some(changed) = self.next_change(&sources).await else { return };
            // Wait until the changes stop.
            loop {
                match tokio::time::timeout(DEBOUNCE, self.next_change(&sources)).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            // Watch what the files now name before reading them, so a change made
            // while the reload reads them is not missed.
            sources = Sources::of(&self.mesh);
            self.rewatch(&sources);
            // A refused reload is logged and counted by the reloader.
            let _ = self.reloader.reload(&format!("{} changed", changed.display())).await;
        }
    }

    /// The next path whose change can change the configuration; `None` once the
    /// watcher is gone.
    async fn next_change(&mut self, sources: &Sources) -> Option<PathBuf> {
        loop {
            let event = match self.changes.recv().await? {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "watching the configuration");
                    continue;
                }
            };
            if !changes_content(&event.kind) {
                continue;
            }
            if let Some(path) = event.paths.into_iter().find(|path| sources.touches(path)) {
                return Some(path);
            }
        }
    }

    /// Watches exactly the folders `sources` needs. Every one is watched afresh: a
    /// folder removed and created again under the same name is a new folder.
    fn rewatch(&mut self, sources: &Sources) {
        for old in std::mem::take(&mut self.watched) {
            // A folder that was removed is no longer watched anyway.
            let _ = self.watcher.unwatch(&old);
        }
        let mut watched = BTreeSet::new();
        for folder in sources.folders_to_watch() {
            match self.watcher.watch(&folder, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(folder = %folder.display(), "watching");
                    watched.insert(folder);
                }
                Err(error) => tracing::warn!(folder = %folder.display(), %error, "cannot watch; reload it with SIGHUP"),
            }
        }
        self.watched = watched;
    }
}

/// Whether an event can mean new content: not reads (loading the configuration
/// reads every file it watches).
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}
