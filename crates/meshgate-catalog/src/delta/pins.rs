//! Pinned Delta versions of a snapshot's products: opened on first use, the last few
//! kept, so a training run that reads `events@v=42` again does not read the log again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::execution::context::SessionContext;

use super::log::{commits, version_at};
use super::{DeltaPin, entry_at, load, load_problem};
use crate::config::Format;
use crate::error::{PinError, ProblemKind, ProductError};
use crate::health::strip_location;
use crate::snapshot::{MeshSnapshot, ProductEntry};

/// How many pinned versions a snapshot keeps open.
const PINNED_KEPT: usize = 16;

/// (domain, product, descriptor version, Delta version)
type PinKey = (String, String, String, u64);

/// The pinned versions opened last, newest first.
#[derive(Debug, Default)]
pub(crate) struct PinCache {
    entries: Mutex<VecDeque<(PinKey, Arc<ProductEntry>)>>,
}

impl PinCache {
    fn get(&self, key: &PinKey) -> Option<Arc<ProductEntry>> {
        let mut entries = self.entries.lock().ok()?;
        let position = entries.iter().position(|(k, _)| k == key)?;
        let found = entries.remove(position)?;
        let entry = Arc::clone(&found.1);
        entries.push_front(found);
        Some(entry)
    }

    fn put(&self, key: PinKey, entry: Arc<ProductEntry>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(k, _)| *k != key);
            entries.push_front((key, entry));
            entries.truncate(PINNED_KEPT);
        }
    }
}

impl MeshSnapshot {
    /// The product `name` (as [`MeshSnapshot::product`] reads it, descriptor pin
    /// included) at the Delta version `pin` names; `None` when there is no such product.
    /// A timestamp is resolved once, to the version current then; the entry records
    /// that version ([`ProductEntry::delta_version`]).
    pub async fn delta_pin(
        &self,
        domain: &str,
        name: &str,
        pin: DeltaPin,
    ) -> Result<Option<Arc<ProductEntry>>, PinError> {
        let Some(entry) = self.product(domain, name) else { return Ok(None) };
        let product = &entry.product;
        let qualified = product.qualified_name();
        if product.format != Format::Delta {
            return Err(PinError::Invalid(format!(
                "{qualified} is a {} product, not a Delta table: @v= and @ts= pin versions of Delta products",
                product.format.name()
            )));
        }
        if let Some(problem) = entry.table.refusal() {
            return Err(problem.into());
        }
        let Some(current) = entry.delta_table() else {
            return Err(PinError::Invalid(format!("{qualified} has no Delta log loaded")));
        };
        let log_store = current.log_store();
        let unavailable = |error: &dyn std::fmt::Display| {
            PinError::Product(ProductError {
                product: qualified.clone(),
                kind: ProblemKind::Unavailable,
                detail: format!(
                    "its Delta log cannot be listed: {}",
                    strip_location(&error.to_string(), product.location.as_str())
                ),
            })
        };
        let version = match pin {
            DeltaPin::Version(version) => {
                if entry.delta_version.is_none_or(|loaded| version > loaded) {
                    let latest = current.get_latest_version().await.map_err(|error| unavailable(&error))?;
                    if version > latest {
                        return Err(PinError::NotFound(format!(
                            "{qualified} has no Delta version {version} (its latest is {latest})"
                        )));
                    }
                }
                version
            }
            DeltaPin::Timestamp(at) => {
                let commits = commits(log_store.as_ref()).await.map_err(|error| unavailable(&error))?;
                version_at(&commits, at.timestamp_millis()).ok_or_else(|| {
                    let first = commits
                        .first()
                        .map(|commit| format!(" (version {}, at {})", commit.version, rfc3339(commit.at_ms)))
                        .unwrap_or_default();
                    PinError::NotFound(format!(
                        "{qualified} has no Delta version at {}: that is before its first commit{first}",
                        at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                    ))
                })?
            }
        };
        if entry.delta_version == Some(version) {
            return Ok(Some(Arc::clone(entry)));
        }
        let key = (product.domain.clone(), product.name.clone(), product.version.clone(), version);
        if let Some(pinned) = self.pins().get(&key) {
            return Ok(Some(pinned));
        }
        let table = load(self.runtime(), &product.location, Some(version)).await.map_err(|error| match error {
            deltalake_core::DeltaTableError::InvalidVersion(_) => {
                PinError::NotFound(format!("{qualified} has no Delta version {version} in its log"))
            }
            error => PinError::Product(load_problem(product, &error)),
        })?;
        let state =
            SessionContext::new_with_config_rt(self.session_config().clone(), Arc::clone(self.runtime())).state();
        let pinned = Arc::new(entry_at(&state, product.clone(), table));
        self.pins().put(key, Arc::clone(&pinned));
        Ok(Some(pinned))
    }
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |time| time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}
