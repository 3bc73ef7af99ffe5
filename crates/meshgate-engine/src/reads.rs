//! What a planned query reads: each product, the columns it reads as the principal
//! sees them (which of them masked), and the policy rules that governed the read.
//! The audit log and lineage record it; nothing here is ever sent to a non-steward.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::optimize_projections::OptimizeProjections;
use datafusion::optimizer::{Optimizer, OptimizerContext};
use meshgate_policy::model::Effect;
use meshgate_policy::{Action, GovernedTable, PolicySet, Principal};

/// One product a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRead {
    pub domain: String,
    pub product: String,
    pub version: String,
    /// For a Delta product: the Delta version read (the current one, or the one a
    /// `@v=`/`@ts=` pin named).
    pub delta_version: Option<u64>,
    /// Columns read, by the names the principal sees, in the product's order.
    pub columns: Vec<String>,
    /// The columns read that are served masked.
    pub masked: Vec<String>,
    /// Ids of the rules that governed the read: permit grants, row filters, and the
    /// column rules of the columns read.
    pub rules: Vec<String>,
}

/// The products `plan` reads (subqueries included), one entry per product, sorted.
pub(crate) fn product_reads(plan: &LogicalPlan, policy: &PolicySet, principal: &Principal) -> Vec<ProductRead> {
    // With the projections pushed into the scans first, the columns the query reads
    // (not every column the table has).
    let pruned = pruned_projections(plan);
    let plan = &pruned;
    // (domain, product, version, Delta version) → the table and the column names read
    type Key = (String, String, String, Option<u64>);
    let mut scans: BTreeMap<Key, (Arc<dyn TableProvider>, Vec<String>)> = BTreeMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<GovernedTable>()
        {
            let schema = scan.source.schema();
            let names: Vec<String> = match &scan.projection {
                Some(indices) => {
                    indices.iter().filter_map(|&i| schema.fields().get(i)).map(|f| f.name().clone()).collect()
                }
                None => schema.fields().iter().map(|f| f.name().clone()).collect(),
            };
            let entry = table.product();
            let product = &entry.product;
            let key = (product.domain.clone(), product.name.clone(), product.version.clone(), entry.delta_version);
            scans.entry(key).or_insert_with(|| (Arc::clone(&provider), Vec::new())).1.extend(names);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut reads = Vec::with_capacity(scans.len());
    for ((domain, product, version, delta_version), (provider, mut columns)) in scans {
        let Some(table) = provider.downcast_ref::<GovernedTable>() else { continue };
        let decision = policy.decide(principal, table.product());
        // In the product's order, once each.
        let order: Vec<&str> = decision.columns.iter().map(|c| c.name.as_str()).collect();
        columns.sort_by_key(|name| order.iter().position(|o| o == name).unwrap_or(usize::MAX));
        columns.dedup();
        let mut rules: Vec<String> = decision
            .grants
            .iter()
            .filter(|(_, effect)| *effect == Effect::Permit)
            .map(|(id, _)| id.clone())
            .chain(decision.permissive.iter().map(|(id, _)| id.clone()))
            .chain(decision.restrictive.iter().map(|(id, _)| id.clone()))
            .collect();
        let mut masked = Vec::new();
        for column in decision.columns.iter().filter(|c| columns.contains(&c.name)) {
            if matches!(column.action, Action::Mask(_)) {
                masked.push(column.name.clone());
            }
            rules.extend(column.rule.clone());
        }
        rules.sort();
        rules.dedup();
        reads.push(ProductRead { domain, product, version, delta_version, columns, masked, rules });
    }
    reads
}

/// `plan` with DataFusion's projection pushdown alone applied (as `plan` itself when it
/// cannot be).
fn pruned_projections(plan: &LogicalPlan) -> LogicalPlan {
    let optimizer = Optimizer::with_rules(vec![Arc::new(OptimizeProjections::new())]);
    optimizer.optimize(plan.clone(), &OptimizerContext::new(), |_, _| {}).unwrap_or_else(|_| plan.clone())
}
