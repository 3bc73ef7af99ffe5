//! `QualityBook`: the latest results of every product's checks, a bounded history,
//! and each product's status. One book serves the whole process and survives
//! reloads; [`QualityBook::sync`] brings it in line with each new snapshot.

use std::collections::{BTreeMap, VecDeque};
use std::sync::RwLock;

use super::result::{CheckResult, FreshnessStatus, ProductKey, ProductQuality, QualityStatus};
use crate::config::Product;
use crate::config::contract::{OnFailure, Severity};
use crate::snapshot::MeshSnapshot;

/// Results kept per check, newest last.
pub const HISTORY_PER_CHECK: usize = 50;

/// The name freshness results are recorded under.
pub const FRESHNESS_CHECK: &str = "freshness";

#[derive(Debug)]
pub struct QualityBook {
    products: RwLock<BTreeMap<ProductKey, Entry>>,
    /// Counts recorded results: [`QualityBook::subscribe`] wakes on each.
    recorded: tokio::sync::watch::Sender<u64>,
}

impl Default for QualityBook {
    fn default() -> Self {
        Self { products: RwLock::default(), recorded: tokio::sync::watch::Sender::new(0) }
    }
}

#[derive(Debug)]
struct Entry {
    /// The contract the results are for; a changed contract starts over.
    fingerprint: String,
    on_failure: OnFailure,
    /// Check names in contract order (freshness last).
    checks: Vec<String>,
    latest: BTreeMap<String, CheckResult>,
    history: BTreeMap<String, VecDeque<CheckResult>>,
}

/// What a product's quality does to a query on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Clear,
    /// Served, with this warning for the client.
    Warn(String),
    /// Refused with this message (`on_failure: block`).
    Block(String),
}

impl QualityBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every product of `snapshot` that has a contract to check, forgets
    /// products no longer in it, and forgets the latest results of a product whose
    /// contract changed (its status is unknown until its checks run again). History
    /// of checks that remain is kept.
    pub fn sync(&self, snapshot: &MeshSnapshot) {
        let Ok(mut products) = self.products.write() else { return };
        let mut current = BTreeMap::new();
        for entry in snapshot.products() {
            let product = &entry.product;
            if !product.contract.has_checks() {
                continue;
            }
            let key = key_of(product);
            let fingerprint = fingerprint(product);
            let checks = check_names(product);
            let entry = match products.remove(&key) {
                Some(mut old) if old.fingerprint == fingerprint => {
                    old.on_failure = product.contract.on_failure;
                    old
                }
                Some(old) => Entry {
                    fingerprint,
                    on_failure: product.contract.on_failure,
                    latest: BTreeMap::new(),
                    history: old.history.into_iter().filter(|(name, _)| checks.contains(name)).collect(),
                    checks,
                },
                None => Entry {
                    fingerprint,
                    on_failure: product.contract.on_failure,
                    checks,
                    latest: BTreeMap::new(),
                    history: BTreeMap::new(),
                },
            };
            current.insert(key, entry);
        }
        *products = current;
    }

    /// Records a result for `product` as loaded; dropped if the book now holds another
    /// contract for it (a run that outlived a reload).
    pub(crate) fn record(&self, product: &Product, result: CheckResult) {
        let Ok(mut products) = self.products.write() else { return };
        let Some(entry) = products.get_mut(&key_of(product)) else { return };
        if entry.fingerprint != fingerprint(product) {
            return;
        }
        let history = entry.history.entry(result.check.clone()).or_default();
        if history.len() >= HISTORY_PER_CHECK {
            history.pop_front();
        }
        history.push_back(result.clone());
        entry.latest.insert(result.check.clone(), result);
        drop(products);
        self.recorded.send_modify(|count| *count += 1);
    }

    /// A receiver that changes each time a result is recorded (for pages that follow
    /// the checks live, and for tests that wait for them).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// The latest result of every check of every product, by product then in
    /// contract order.
    pub fn latest(&self) -> Vec<CheckResult> {
        self.collect(|_, entry| entry.ordered_latest())
    }

    /// The latest results of one product (all its versions).
    pub fn latest_of(&self, domain: &str, product: &str) -> Vec<CheckResult> {
        self.collect(|key, entry| if is(key, domain, product) { entry.ordered_latest() } else { Vec::new() })
    }

    /// Every kept result, by product, check, then time (oldest first).
    pub fn history(&self) -> Vec<CheckResult> {
        self.collect(|_, entry| entry.ordered_history())
    }

    /// The kept results of one product (all its versions).
    pub fn history_of(&self, domain: &str, product: &str) -> Vec<CheckResult> {
        self.collect(|key, entry| if is(key, domain, product) { entry.ordered_history() } else { Vec::new() })
    }

    /// The quality of a product's newest version with a contract (`None`: no contract).
    pub fn status(&self, domain: &str, product: &str) -> Option<ProductQuality> {
        let products = self.products.read().ok()?;
        let (key, entry) = products
            .iter()
            .filter(|(key, _)| is(key, domain, product))
            .max_by(|(a, _), (b, _)| version_order(&a.version, &b.version))?;
        Some(entry.quality(key))
    }

    /// The quality of one product version (`None`: it has no contract).
    pub fn status_of(&self, key: &ProductKey) -> Option<ProductQuality> {
        let products = self.products.read().ok()?;
        products.get(key).map(|entry| entry.quality(key))
    }

    /// The quality of every product version with a contract.
    pub fn statuses(&self) -> Vec<ProductQuality> {
        let Ok(products) = self.products.read() else { return Vec::new() };
        products.iter().map(|(key, entry)| entry.quality(key)).collect()
    }

    /// What the product's quality does to a query on it: a degraded product is
    /// refused (`on_failure: block`) or served with a warning, and one whose `warn`
    /// checks fail is served with a warning.
    pub fn gate(&self, domain: &str, product: &str, version: &str) -> Gate {
        let key = ProductKey { domain: domain.to_owned(), product: product.to_owned(), version: version.to_owned() };
        let Some(quality) = self.status_of(&key) else { return Gate::Clear };
        let name = key.qualified_name();
        let failures = |severity: Severity| {
            let messages: Vec<String> = quality
                .failing
                .iter()
                .filter(|result| result.severity == severity)
                .map(CheckResult::failure_message)
                .collect();
            messages.join("; ")
        };
        match (quality.status, quality.on_failure) {
            (QualityStatus::Degraded, OnFailure::Block) => Gate::Block(format!(
                "product {name} is degraded and blocked by its contract: {}",
                failures(Severity::Error)
            )),
            (QualityStatus::Degraded, OnFailure::Warn) => {
                Gate::Warn(format!("product {name} is degraded: {}", failures(Severity::Error)))
            }
            (QualityStatus::Warning, _) => {
                Gate::Warn(format!("product {name} has failing warn-level checks: {}", failures(Severity::Warn)))
            }
            _ => Gate::Clear,
        }
    }

    fn collect(&self, pick: impl Fn(&ProductKey, &Entry) -> Vec<CheckResult>) -> Vec<CheckResult> {
        let Ok(products) = self.products.read() else { return Vec::new() };
        products.iter().flat_map(|(key, entry)| pick(key, entry)).collect()
    }
}

impl Entry {
    fn ordered_latest(&self) -> Vec<CheckResult> {
        self.checks.iter().filter_map(|name| self.latest.get(name).cloned()).collect()
    }

    fn ordered_history(&self) -> Vec<CheckResult> {
        self.checks.iter().filter_map(|name| self.history.get(name)).flat_map(|h| h.iter().cloned()).collect()
    }

    fn quality(&self, key: &ProductKey) -> ProductQuality {
        let latest = self.ordered_latest();
        let mut failing: Vec<CheckResult> = latest.iter().filter(|result| !result.passed).cloned().collect();
        failing.sort_by_key(|result| std::cmp::Reverse(result.severity));
        let status = if latest.is_empty() {
            QualityStatus::Unknown
        } else if failing.iter().any(|result| result.severity == Severity::Error) {
            QualityStatus::Degraded
        } else if !failing.is_empty() {
            QualityStatus::Warning
        } else {
            QualityStatus::Passing
        };
        let freshness = match self.latest.get(FRESHNESS_CHECK) {
            Some(result) if result.passed => FreshnessStatus::Fresh,
            Some(_) => FreshnessStatus::Stale,
            None => FreshnessStatus::Unknown,
        };
        ProductQuality {
            key: key.clone(),
            status,
            freshness,
            on_failure: self.on_failure,
            checks: self.checks.len(),
            checked_at: latest.iter().map(|result| result.ran_at + result.duration).max(),
            failing,
        }
    }
}

pub(crate) fn key_of(product: &Product) -> ProductKey {
    ProductKey { domain: product.domain.clone(), product: product.name.clone(), version: product.version.clone() }
}

fn fingerprint(product: &Product) -> String {
    format!("{:?}|{}", product.contract, product.location)
}

fn check_names(product: &Product) -> Vec<String> {
    let mut names: Vec<String> = product.contract.checks.iter().map(|check| check.name.clone()).collect();
    if product.contract.freshness.is_some() {
        names.push(FRESHNESS_CHECK.to_owned());
    }
    names
}

fn is(key: &ProductKey, domain: &str, product: &str) -> bool {
    key.domain == domain && key.product == product
}

/// Orders semantic versions by their numbers (`1.10.0` after `1.9.0`).
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let numbers = |v: &str| -> Vec<u64> {
        v.split(['-', '+']).next().unwrap_or_default().split('.').map(|n| n.parse().unwrap_or(0)).collect()
    };
    numbers(a).cmp(&numbers(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert_eq!(version_order("1.10.0", "1.9.0"), std::cmp::Ordering::Greater);
        assert_eq!(version_order("2.0.0", "2.0.0"), std::cmp::Ordering::Equal);
    }
}
