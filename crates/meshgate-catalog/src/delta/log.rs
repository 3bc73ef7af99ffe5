//! A Delta table's commits as its store lists them (version and time, for pins by
//! timestamp), and the log stores deltalake-core needs for the stores meshgate builds.

use std::sync::{Arc, Once};

use deltalake_core::DeltaResult;
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use futures::TryStreamExt;
use url::Url;

/// One commit of a Delta table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Commit {
    pub version: u64,
    /// When its log file was written, milliseconds since the epoch (the commit's time in
    /// the Delta protocol for tables without in-commit timestamps).
    pub at_ms: i64,
}

/// The commits whose log files (`_delta_log/NNNNNNNNNNNNNNNNNNNN.json`) are present,
/// oldest first.
pub(crate) async fn commits(log_store: &dyn LogStore) -> Result<Vec<Commit>, object_store::Error> {
    let store = log_store.object_store(None);
    let prefix = log_store.log_path().clone();
    let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    let mut commits: Vec<Commit> = listed
        .iter()
        // Files in sub-folders of the log are not commits.
        .filter(|meta| meta.location.prefix_match(&prefix).is_some_and(|rest| rest.count() == 1))
        .filter_map(|meta| {
            let version = commit_version(meta.location.filename()?)?;
            Some(Commit { version, at_ms: meta.last_modified.timestamp_millis() })
        })
        .collect();
    commits.sort_by_key(|commit| commit.version);
    Ok(commits)
}

/// The version of a commit file's name (`00000000000000000042.json` → 42).
fn commit_version(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// The version current at `at_ms`: the newest commit made at or before it, with commit
/// times made increasing as the Delta protocol does (a commit is never earlier than
/// the one before it). `None` when `at_ms` is before the first commit.
pub(crate) fn version_at(commits: &[Commit], at_ms: i64) -> Option<u64> {
    let mut latest = None;
    let mut previous = i64::MIN;
    for commit in commits {
        let at = commit.at_ms.max(previous.saturating_add(1));
        previous = at;
        if at > at_ms {
            break;
        }
        latest = Some(commit.version);
    }
    latest
}

/// Lets deltalake-core open tables on object stores meshgate built for s3, gs and az
/// locations (it knows local files by itself). Reads need nothing more than the
/// default log store.
pub(crate) fn register_log_stores() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        let factories = logstore_factories();
        for scheme in ["s3://", "gs://", "az://"] {
            if let Ok(url) = Url::parse(scheme)
                && !factories.contains_key(&url)
            {
                factories.insert(url, Arc::new(DefaultLogStores));
            }
        }
    });
}

struct DefaultLogStores;

impl LogStoreFactory for DefaultLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(version: u64, at_ms: i64) -> Commit {
        Commit { version, at_ms }
    }

    #[test]
    fn commit_files_are_named_by_version() {
        assert_eq!(commit_version("00000000000000000042.json"), Some(42));
        assert_eq!(commit_version("00000000000000000042.checkpoint.parquet"), None);
        assert_eq!(commit_version("_last_checkpoint"), None);
        assert_eq!(commit_version("0042.json"), None);
    }

    #[test]
    fn a_time_reads_the_version_current_then() {
        let commits = [commit(0, 1_000), commit(1, 2_000), commit(2, 3_000)];
        assert_eq!(version_at(&commits, 999), None, "before the first commit");
        assert_eq!(version_at(&commits, 1_000), Some(0));
        assert_eq!(version_at(&commits, 2_500), Some(1));
        assert_eq!(version_at(&commits, 3_000), Some(2));
        assert_eq!(version_at(&commits, i64::MAX), Some(2));
        // A log cleaned up before version 5: its first commit still bounds time travel.
        assert_eq!(version_at(&[commit(5, 1_000), commit(6, 2_000)], 1_500), Some(5));
        // A commit whose file is older than the one before it counts as just after it.
        let skewed = [commit(0, 1_000), commit(1, 5_000), commit(2, 4_000)];
        assert_eq!(version_at(&skewed, 4_500), Some(0));
        assert_eq!(version_at(&skewed, 5_001), Some(2));
    }
}
