//! What a training set's manifest records of the data behind a query: each product
//! it reads with the files (or Delta version) that version holds right now, and a
//! fingerprint of the rules that govern the reads for this principal and purpose.
//! Read again later, a different answer means the rows may differ (docs/ml.md).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use meshgate_catalog::ProductFile;
use meshgate_policy::{GovernedTable, Principal};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, PlanSettings};
use crate::error::EngineError;

/// One product a query reads, as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductSnapshot {
    pub domain: String,
    pub product: String,
    pub version: String,
    pub delta_version: Option<u64>,
    /// The files, one by one; `None` when a row filter hides rows from the caller:
    /// sizes would say how much data it hides.
    pub files: Option<Vec<ProductFile>>,
    /// SHA-256 (hex) of every file's path, size, modification time and ETag: changes
    /// whenever the files do, and tells nothing without them.
    pub files_digest: String,
}

/// The data and rules behind a query, for a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSnapshot {
    pub products: Vec<ProductSnapshot>,
    /// SHA-256 (hex) of the governing rules of every read, sorted.
    pub policy_fingerprint: String,
}

impl Engine {
    /// Plans `sql` as `principal` (with `settings`) and records what it reads now.
    pub async fn training_snapshot(
        &self,
        principal: &Arc<Principal>,
        sql: &str,
        settings: &PlanSettings,
    ) -> Result<TrainingSnapshot, EngineError> {
        let query = self.plan_with(principal, sql, settings).await?;
        let plan =
            query.logical().ok_or_else(|| EngineError::InvalidSql("EXPLAIN reads no data to snapshot".into()))?;
        let (mut rules, hiding) = governing_rules(plan);
        rules.sort();
        rules.dedup();
        let mut digest = Sha256::new();
        for rule in &rules {
            digest.update(rule.as_bytes());
            digest.update([0]);
        }
        let policy_fingerprint = digest.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
        let mut products = Vec::new();
        for read in query.reads() {
            let entry = self
                .snapshot()
                .version_of(&read.domain, &read.product, &read.version)
                .filter(|entry| entry.delta_version == read.delta_version);
            let files = match entry {
                Some(entry) => self.snapshot().product_files(entry).await?,
                // A pinned Delta version: its version number says it all.
                None => Vec::new(),
            };
            let hidden = hiding.contains(&(read.domain.clone(), read.product.clone()));
            products.push(ProductSnapshot {
                domain: read.domain.clone(),
                product: read.product.clone(),
                version: read.version.clone(),
                delta_version: read.delta_version,
                files_digest: files_digest(&files),
                files: (!hidden).then_some(files),
            });
        }
        Ok(TrainingSnapshot { products, policy_fingerprint })
    }
}

/// The rules text of every governed table `plan` scans (subqueries included), and
/// the products whose row filter may hide rows from the caller.
fn governing_rules(plan: &LogicalPlan) -> (Vec<String>, BTreeSet<(String, String)>) {
    let mut rules = Vec::new();
    let mut hiding = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<GovernedTable>()
        {
            rules.push(table.rules_text());
            if table.hides_rows() {
                let product = &table.product().product;
                hiding.insert((product.domain.clone(), product.name.clone()));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (rules, hiding)
}

fn files_digest(files: &[ProductFile]) -> String {
    let mut digest = Sha256::new();
    for file in files {
        digest.update(file.path.as_bytes());
        digest.update([0]);
        digest.update(file.size.to_be_bytes());
        digest.update(file.modified_ms.to_be_bytes());
        digest.update(file.e_tag.as_deref().unwrap_or_default().as_bytes());
        digest.update([0]);
    }
    digest.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}
