//! Building every accelerated product's copy when a snapshot is loaded, and keeping
//! them fresh while it serves: `on_change` looks at the product's files at every
//! listing TTL, `every D` at that interval, `manual` only at a reload. A copy is
//! built again only when the files it was read from changed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use datafusion::execution::context::SessionContext;
use tokio::task::{JoinHandle, JoinSet};

use super::build::{BuildError, Limits, build, files_digest};
use super::copy::AcceleratedCopy;
use super::memory::AccelerationMemory;
use super::status::Problem;
use crate::config::acceleration::format_bytes;
use crate::config::{Refresh, Status};
use crate::snapshot::{MeshSnapshot, ProductEntry};

/// Builds the copy of every accelerated product of `snapshot`, one at a time. A copy
/// of the same product version in `previous` (the snapshot serving until now) is
/// taken over when it was read from the same files.
pub async fn accelerate(snapshot: &MeshSnapshot, memory: &Arc<AccelerationMemory>, previous: Option<&MeshSnapshot>) {
    memory.set_budget(snapshot.config().acceleration_budget);
    for entry in accelerated(snapshot) {
        let product = &entry.product;
        let current = previous
            .and_then(|previous| previous.version_of(&product.domain, &product.name, &product.version))
            .and_then(|previous| previous.table.accelerated());
        guarded_refresh(snapshot, entry, memory, current).await;
    }
}

/// [`refresh`], with a panic while reading the files (a decoder bug on a malformed
/// file) taken as a failed refresh: the previous copy keeps serving, and the product
/// keeps being refreshed.
async fn guarded_refresh(
    snapshot: &MeshSnapshot,
    entry: &ProductEntry,
    memory: &Arc<AccelerationMemory>,
    current: Option<Arc<AcceleratedCopy>>,
) {
    use futures::FutureExt;
    let attempt = std::panic::AssertUnwindSafe(refresh(snapshot, entry, memory, current.clone()));
    if let Err(panic) = attempt.catch_unwind().await {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        let name = entry.product.qualified_name();
        let message = format!("{name} could not be accelerated: reading its files failed unexpectedly ({detail})");
        failed(entry, current, false, message, None);
    }
}

fn accelerated(snapshot: &MeshSnapshot) -> impl Iterator<Item = &Arc<ProductEntry>> {
    snapshot
        .all_versions()
        .filter(|entry| entry.product.acceleration.is_some() && entry.product.status != Status::Retired)
}

/// Builds `entry`'s copy again if its files changed since `current` was read; on
/// failure `current` keeps serving.
pub(crate) async fn refresh(
    snapshot: &MeshSnapshot,
    entry: &ProductEntry,
    memory: &Arc<AccelerationMemory>,
    current: Option<Arc<AcceleratedCopy>>,
) {
    let name = entry.product.qualified_name();
    let data = entry.table.data();
    let acceleration = entry.product.acceleration.as_ref();
    let spill = snapshot
        .config()
        .acceleration_spill
        .clone()
        .filter(|_| acceleration.is_some_and(|acceleration| acceleration.spill));
    // A spilled copy is kept only where spilling is still allowed, to the same place,
    // within the budget (a reload may have changed any of them).
    let current = current.filter(|copy| {
        copy.schema() == &data.schema()
            && copy.spilled_in().is_none_or(|directory| {
                spill.as_ref().is_some_and(|spill| spill.directory == directory && copy.disk_bytes() <= spill.budget)
            })
    });
    let ctx = SessionContext::new_with_config_rt(snapshot.session_config().clone(), Arc::clone(snapshot.runtime()));
    let state = ctx.state();
    let planned = async {
        let scan = data.scan_files(&state, None, &[], None).await?;
        let files = files_digest(&scan, entry.delta_version)?;
        Ok::<_, datafusion::error::DataFusionError>((scan, files))
    };
    let (scan, files) = match planned.await {
        Ok(planned) => planned,
        Err(error) => return failed(entry, current, false, format!("{name} could not be read: {error}"), None),
    };
    if let Some(copy) = current.as_ref().filter(|copy| copy.files == files) {
        return serve(entry, Arc::clone(copy), files);
    }
    let outcome = entry.acceleration.outcome();
    if current.is_none() && outcome.attempted == Some(files) && outcome.problem.as_ref().is_some_and(|p| p.refused) {
        return; // Refused for these very files: only a change can make it fit.
    }
    let limits = Limits {
        memory,
        max_bytes: acceleration.and_then(|acceleration| acceleration.max_bytes),
        replaces: current.as_ref().map_or(0, |copy| copy.bytes()),
        replaces_disk: current.as_ref().map_or(0, |copy| copy.disk_bytes()),
        spill,
    };
    match build(&name, scan, data.schema(), files, &state, limits).await {
        Ok(copy) if copy.spilled_in().is_some() => {
            tracing::info!(
                product = %name,
                rows = copy.rows(),
                disk_bytes = copy.disk_bytes(),
                seconds = copy.build_time().as_secs_f64(),
                spilled = %format_bytes(memory.spilled()),
                "accelerated: served from local files (its data does not fit in memory)"
            );
            serve(entry, Arc::new(copy), files);
        }
        Ok(copy) => {
            tracing::info!(
                product = %name,
                rows = copy.rows(),
                bytes = copy.bytes(),
                seconds = copy.build_time().as_secs_f64(),
                held = %format_bytes(memory.held()),
                budget = %format_bytes(memory.budget()),
                "accelerated: served from memory"
            );
            serve(entry, Arc::new(copy), files);
        }
        Err(BuildError::Refused(message)) => failed(entry, current, true, message, Some(files)),
        Err(BuildError::Failed(error)) => {
            failed(entry, current, false, format!("{name} could not be accelerated: {error}"), Some(files))
        }
    }
}

/// `copy` serves `entry`: read from `files`, which were found as they are now.
fn serve(entry: &ProductEntry, copy: Arc<AcceleratedCopy>, files: u64) {
    entry.table.set_copy(Some(copy));
    entry.acceleration.record(|outcome| {
        outcome.problem = None;
        outcome.checked_at = Some(SystemTime::now());
        outcome.attempted = Some(files);
    });
}

fn failed(
    entry: &ProductEntry,
    current: Option<Arc<AcceleratedCopy>>,
    refused: bool,
    message: String,
    files: Option<u64>,
) {
    let kept = current.is_some();
    if kept {
        tracing::warn!(product = %entry.product.qualified_name(), "{message}; its previous copy keeps serving");
    } else {
        tracing::warn!(product = %entry.product.qualified_name(), "{message}; it is served from its files");
    }
    entry.table.set_copy(current);
    entry.acceleration.record(|outcome| {
        outcome.problem = Some(Problem { refused, message, at: SystemTime::now() });
        outcome.attempted = files;
    });
}

/// Keeps a snapshot's accelerated products fresh; dropping it stops (when the
/// snapshot is replaced).
#[derive(Debug)]
pub struct AccelerationTask {
    handle: JoinHandle<()>,
}

impl Drop for AccelerationTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl AccelerationTask {
    /// Starts refreshing `snapshot`'s accelerated products; `on_change` ones look at
    /// their files every `listing_ttl`.
    pub fn start(snapshot: Arc<MeshSnapshot>, memory: Arc<AccelerationMemory>, listing_ttl: Duration) -> Self {
        let handle = tokio::spawn(async move {
            let mut refreshes = JoinSet::new();
            for entry in accelerated(&snapshot) {
                let interval = match entry.product.acceleration.as_ref().map(|acceleration| acceleration.refresh) {
                    Some(Refresh::OnChange) => listing_ttl.max(Duration::from_millis(100)),
                    Some(Refresh::Every(interval)) => interval,
                    Some(Refresh::Manual) | None => continue,
                };
                let (snapshot, entry, memory) = (Arc::clone(&snapshot), Arc::clone(entry), Arc::clone(&memory));
                refreshes.spawn(async move {
                    loop {
                        tokio::time::sleep(interval).await;
                        guarded_refresh(&snapshot, &entry, &memory, entry.table.accelerated()).await;
                    }
                });
            }
            while refreshes.join_next().await.is_some() {}
        });
        Self { handle }
    }
}
