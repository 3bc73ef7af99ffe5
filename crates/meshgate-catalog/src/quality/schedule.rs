//! Checks in the background: every product's checks run once when a snapshot is
//! loaded (at start and after each reload), and again on the product's schedule.
//! Queries never wait for them; a few checks run at once, the rest queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::book::{QualityBook, key_of};
use super::result::{CheckResult, QualityStatus};
use super::runner::ProductChecks;
use crate::snapshot::{MeshSnapshot, ProductEntry};

/// Checks running at once, over all products.
const CONCURRENT_CHECKS: usize = 2;

/// A check still running after this fails (its product only) and the next one runs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(600);

/// The background checks of one snapshot; dropping it stops them.
#[derive(Debug)]
pub struct QualityTask {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for QualityTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl QualityTask {
    /// Brings `book` in line with `snapshot` and starts checking its products. Call it
    /// again with the next snapshot after a reload, dropping the previous task.
    pub fn start(book: Arc<QualityBook>, snapshot: Arc<MeshSnapshot>) -> Self {
        book.sync(&snapshot);
        let handle = tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(CONCURRENT_CHECKS));
            let mut products = JoinSet::new();
            for entry in snapshot.products() {
                if entry.product.contract.has_checks() {
                    let run = keep_checking(
                        Arc::clone(&book),
                        Arc::clone(&snapshot),
                        Arc::clone(entry),
                        Arc::clone(&permits),
                    );
                    products.spawn(run);
                }
            }
            while products.join_next().await.is_some() {}
        });
        Self { handle }
    }
}

async fn keep_checking(
    book: Arc<QualityBook>,
    snapshot: Arc<MeshSnapshot>,
    entry: Arc<ProductEntry>,
    permits: Arc<Semaphore>,
) {
    let product = &entry.product;
    let name = product.qualified_name();
    loop {
        match ProductChecks::new(&snapshot, &entry) {
            Ok(checks) => run_all(&book, &checks, &permits).await,
            Err(error) => tracing::warn!(product = %name, %error, "cannot run quality checks"),
        }
        if let Some(quality) = book.status_of(&key_of(product)) {
            let failing: Vec<String> = quality.failing.iter().map(CheckResult::failure_message).collect();
            let status = quality.status.as_str();
            let freshness = quality.freshness.as_str();
            if quality.status == QualityStatus::Passing {
                tracing::info!(product = %name, version = %product.version, status, freshness, "quality checks finished");
            } else {
                let failing = failing.join("; ");
                tracing::warn!(product = %name, version = %product.version, status, freshness, %failing, "quality checks finished");
            }
        }
        match product.contract.schedule {
            Some(every) => tokio::time::sleep(every).await,
            None => return,
        }
    }
}

/// Runs `entry`'s checks once now, outside its schedule: a product that has just
/// become readable (its store came back) is judged on its data, not on the failures
/// recorded while it could not be read.
pub(crate) async fn check_now(book: &QualityBook, snapshot: &MeshSnapshot, entry: &Arc<ProductEntry>) {
    if !entry.product.contract.has_checks() {
        return;
    }
    match ProductChecks::new(snapshot, entry) {
        Ok(checks) => run_all(book, &checks, &Semaphore::new(CONCURRENT_CHECKS)).await,
        Err(error) => tracing::warn!(product = %entry.product.qualified_name(), %error, "cannot run quality checks"),
    }
}

async fn run_all(book: &QualityBook, checks: &ProductChecks, permits: &Semaphore) {
    let product = &checks.entry().product;
    for check in checks.checks() {
        let Ok(_permit) = permits.acquire().await else { return };
        let result = match tokio::time::timeout(CHECK_TIMEOUT, checks.run_check(check)).await {
            Ok(result) => result,
            Err(_) => checks.failed(check, format!("did not finish within {} s", CHECK_TIMEOUT.as_secs())),
        };
        book.record(product, result);
    }
    if product.contract.freshness.is_some() {
        let Ok(_permit) = permits.acquire().await else { return };
        if let Ok(Some(result)) = tokio::time::timeout(CHECK_TIMEOUT, checks.run_freshness()).await {
            book.record(product, result);
        }
    }
}
