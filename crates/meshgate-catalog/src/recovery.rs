//! Products whose store was unavailable when the snapshot was loaded are opened
//! again in the background, with exponential backoff and jitter, until they can be
//! read; then they serve from the same snapshot, without a reload. Only
//! unavailability is retried (a store that cannot be reached, a location without
//! files yet): files that differ from the declared schema or cannot be decoded need
//! a change to the data or the descriptor, which a reload picks up. A recovered
//! product's quality checks run again at once.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::context::SessionContext;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::Format;
use crate::error::ProblemKind;
use crate::quality::{QualityBook, check_now};
use crate::snapshot::{MeshSnapshot, ProductEntry, open_product};

/// How long to wait before each attempt: `first`, doubling up to `max`, each wait
/// jittered by ±25% so products sharing a store do not retry in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

/// Retries a snapshot's unavailable products; dropping it stops the retries (when
/// the snapshot is replaced).
#[derive(Debug)]
pub struct RecoveryTask {
    handle: JoinHandle<()>,
}

impl Drop for RecoveryTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl RecoveryTask {
    /// Starts retrying `snapshot`'s unavailable products; the checks of those that
    /// recover are recorded in `quality`.
    pub fn start(snapshot: Arc<MeshSnapshot>, backoff: Backoff, quality: Arc<QualityBook>) -> Self {
        let handle = tokio::spawn(async move {
            let mut retries = JoinSet::new();
            for entry in snapshot.all_versions().filter(|entry| retried(entry)) {
                tracing::info!(
                    product = %entry.product.qualified_name(),
                    "unavailable: opening it again in the background until it can be read"
                );
                let (snapshot, entry, quality) = (Arc::clone(&snapshot), Arc::clone(entry), Arc::clone(&quality));
                retries.spawn(async move {
                    if reopen_until_readable(&snapshot, &entry, backoff).await {
                        check_now(&quality, &snapshot, &entry).await;
                    }
                });
            }
            while retries.join_next().await.is_some() {}
        });
        Self { handle }
    }
}

/// Whether `entry` is retried: unavailable, and not a Delta table (whose log is
/// read again at the next reload).
fn retried(entry: &ProductEntry) -> bool {
    entry.product.format != Format::Delta
        && entry.table.health().problem().is_some_and(|problem| problem.kind == ProblemKind::Unavailable)
}

/// Opens `entry` again until its store answers; whether it can be read now.
async fn reopen_until_readable(snapshot: &MeshSnapshot, entry: &ProductEntry, backoff: Backoff) -> bool {
    let name = entry.product.qualified_name();
    let mut wait = backoff.first;
    loop {
        tokio::time::sleep(jittered(wait)).await;
        let ctx = SessionContext::new_with_config_rt(snapshot.session_config().clone(), Arc::clone(snapshot.runtime()));
        let reopened = open_product(&ctx, entry.product.clone()).await;
        match reopened.table.health().problem() {
            Some(problem) if problem.kind == ProblemKind::Unavailable => {
                wait = (wait * 2).min(backoff.max);
                tracing::debug!(product = %name, retry_in_secs = wait.as_secs_f64(), "{problem}");
            }
            Some(problem) => {
                entry.table.take_opened(&reopened.table);
                tracing::warn!(product = %name, "its store is reachable again, but {problem}");
                return false;
            }
            None => {
                entry.table.take_opened(&reopened.table);
                tracing::info!(product = %name, "recovered: its store is readable again");
                return true;
            }
        }
    }
}

fn jittered(wait: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    // A factor in [0.75, 1.25).
    let factor = 0.75 + (random % 1000) as f64 / 2000.0;
    wait.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use datafusion::catalog::TableProvider;
    use datafusion::execution::runtime_env::RuntimeEnv;
    use datafusion::prelude::SessionConfig;

    use super::*;
    use crate::load_mesh_str;
    use crate::quality::QualityStatus;

    async fn snapshot(root: &Path) -> Arc<MeshSnapshot> {
        let text = format!(
            "domains:\n  d:\n    owner: a@b.c\n    products:\n      - {{ name: late, location: '{}/late/', format: csv, quality: [{{ type: row_count, min: 1 }}] }}\n      - {{ name: drifted, location: '{}/drifted/', format: csv, schema: [{{ name: x, type: int64 }}] }}\n",
            root.display(),
            root.display()
        );
        let config = load_mesh_str(&text, root).unwrap_or_else(|e| panic!("{e}"));
        let snapshot = MeshSnapshot::load(config, SessionConfig::new(), Arc::new(RuntimeEnv::default()));
        Arc::new(snapshot.await.unwrap_or_else(|e| panic!("{e}")))
    }

    #[tokio::test]
    async fn an_unavailable_product_recovers_in_place_and_a_drifted_one_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("drifted")).unwrap();
        std::fs::write(dir.path().join("drifted/a.csv"), "y\n1\n").unwrap();
        let snapshot = snapshot(dir.path()).await;
        let late = Arc::clone(snapshot.product("d", "late").unwrap());
        let drifted = snapshot.product("d", "drifted").unwrap();
        assert_eq!(late.table.refusal().unwrap().kind, ProblemKind::Unavailable);
        assert_eq!(drifted.table.refusal().unwrap().kind, ProblemKind::SchemaDrift);
        assert!(retried(&late) && !retried(drifted));

        // While it cannot be read, its check fails.
        let quality = Arc::new(QualityBook::new());
        quality.sync(&snapshot);
        check_now(&quality, &snapshot, &late).await;
        assert_eq!(quality.status("d", "late").unwrap().status, QualityStatus::Degraded);

        let backoff = Backoff { first: Duration::from_millis(20), max: Duration::from_millis(200) };
        let task = RecoveryTask::start(Arc::clone(&snapshot), backoff, Arc::clone(&quality));
        std::fs::create_dir(dir.path().join("late")).unwrap();
        std::fs::write(dir.path().join("late/a.csv"), "n,s\n1,one\n2,two\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while late.table.refusal().is_some() {
            assert!(Instant::now() < deadline, "not recovered: {:?}", late.table.refusal());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(late.table.health().problem().is_none());
        let schema = late.table.schema();
        assert_eq!(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["n", "s"]);
        let ctx = SessionContext::new();
        let plan = late.table.scan(&ctx.state(), None, &[], None).await.unwrap();
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        // Its check runs again at once, on its data.
        while quality.status("d", "late").unwrap().status != QualityStatus::Passing {
            assert!(Instant::now() < deadline, "checks not run again: {:?}", quality.status("d", "late"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(task);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(4));
            assert!(wait >= Duration::from_secs(3) && wait < Duration::from_secs(5), "{wait:?}");
        }
    }
}
