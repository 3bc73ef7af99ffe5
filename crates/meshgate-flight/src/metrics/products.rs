//! Each served product version's state, read from the serving snapshot and the
//! quality book: what `/readyz` lists and the product metrics report.

use std::collections::BTreeMap;
use std::time::SystemTime;

use meshgate_catalog::config::Status;
use meshgate_catalog::config::contract::OnFailure;
use meshgate_catalog::quality::{CheckResult, FRESHNESS_CHECK, FreshnessStatus, ProductKey, QualityStatus};

use crate::serving::Serving;

/// One product version that queries may name (retired versions are left out).
#[derive(Debug, Clone, PartialEq)]
pub struct ProductState {
    pub domain: String,
    pub product: String,
    pub version: String,
    /// Why its data cannot be served, found when the snapshot was loaded.
    pub problem: Option<String>,
    /// Its contract's status; `None` without a contract.
    pub quality: Option<QualityStatus>,
    pub freshness: FreshnessStatus,
    /// The age of its newest data now: the age measured by the latest freshness
    /// check plus the time since that check. `None` without a measured SLA.
    pub freshness_age_seconds: Option<f64>,
    /// The messages of its latest failing checks, `error` severity first.
    pub failing_checks: Vec<String>,
    /// A query on it is served: its data loaded and its contract does not block it.
    pub servable: bool,
}

impl ProductState {
    /// Not fully well: it cannot serve, or its checks fail, or its data is stale.
    pub fn degraded(&self) -> bool {
        self.problem.is_some()
            || matches!(self.quality, Some(QualityStatus::Degraded | QualityStatus::Warning))
            || self.freshness == FreshnessStatus::Stale
    }
}

/// The state of every product version `serving` serves, by domain, name, version.
pub fn product_states(serving: &Serving) -> Vec<ProductState> {
    let engine = &serving.engine;
    let book = engine.quality();
    let statuses: BTreeMap<ProductKey, _> =
        book.statuses().into_iter().map(|quality| (quality.key.clone(), quality)).collect();
    let freshness: BTreeMap<(String, String, String), CheckResult> = book
        .latest()
        .into_iter()
        .filter(|result| result.check == FRESHNESS_CHECK)
        .map(|result| ((result.domain.clone(), result.product.clone(), result.version.clone()), result))
        .collect();
    let now = SystemTime::now();
    engine
        .snapshot()
        .all_versions()
        .filter(|entry| entry.product.status != Status::Retired)
        .map(|entry| {
            let product = &entry.product;
            let key = ProductKey {
                domain: product.domain.clone(),
                product: product.name.clone(),
                version: product.version.clone(),
            };
            let quality = statuses.get(&key);
            let fresh = freshness.get(&(key.domain, key.product, key.version));
            let problem = entry.table.health().problem().map(ToString::to_string);
            let blocked = quality.is_some_and(|quality| {
                quality.status == QualityStatus::Degraded && quality.on_failure == OnFailure::Block
            });
            ProductState {
                domain: product.domain.clone(),
                product: product.name.clone(),
                version: product.version.clone(),
                servable: problem.is_none() && !blocked,
                problem,
                quality: quality.map(|quality| quality.status),
                freshness: quality.map_or(FreshnessStatus::Unknown, |quality| quality.freshness),
                freshness_age_seconds: fresh.and_then(|result| {
                    let since = now.duration_since(result.ran_at).unwrap_or_default();
                    Some(result.measured? + since.as_secs_f64())
                }),
                failing_checks: quality
                    .map(|quality| quality.failing.iter().map(CheckResult::failure_message).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}
