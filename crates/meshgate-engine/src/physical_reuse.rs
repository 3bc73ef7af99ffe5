//! Physical plans kept for statements that read only accelerated copies, so that a
//! repeated point query (a dashboard tile, a feature lookup) skips the optimizer and
//! physical planning, a quarter of its server time.
//!
//! A plan is kept with its statement's cached logical plan (so for one principal, SQL
//! and session settings) and only when running it again answers exactly what planning
//! anew would:
//! - every table it reads is a governed product served from its accelerated copy, and
//!   the copies are still the ones it was planned on (a refresh, a reload of the
//!   product or a change of health is a new plan); file listings, system tables and
//!   provenance columns, which planning reads afresh, are never kept;
//! - it calls only immutable functions (`now()` and `random()` are folded or drawn at
//!   planning) and was bound to no parameters;
//! - its operators keep no state a run could leave behind for the next: projections,
//!   filters, limits, repartitions, barriers and accelerated scans, nothing that builds
//!   a hash table or derives dynamic filters (joins, sorts, aggregates). Each run takes
//!   a fresh copy of the plan (`reset_plan_states`), with metrics of its own.
//!
//! The kept plan holds its copies released: it never keeps a refreshed-away copy in
//! memory.

use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use meshgate_catalog::acceleration::release_accelerated_copies;
use meshgate_catalog::{DataIdentity, ProductData, ProductTable};
use meshgate_policy::GovernedTable;

/// Operators that can run again once their state is reset, and derive nothing at run
/// time that a rerun could see.
const RERUNNABLE: &[&str] = &[
    "ProjectionExec",
    "FilterExec",
    "CoalesceBatchesExec",
    "CoalescePartitionsExec",
    "RepartitionExec",
    "GlobalLimitExec",
    "LocalLimitExec",
    "CooperativeExec",
    "BarrierExec",
    "ProductScanExec",
    "AcceleratedScanExec",
];

/// The physical plan of one cached statement, once planned, and the tables it reads.
#[derive(Debug)]
pub(crate) struct Reuse {
    tables: Vec<Arc<ProductTable>>,
    kept: Mutex<Option<Kept>>,
}

#[derive(Debug)]
struct Kept {
    data: Vec<DataIdentity>,
    plan: Arc<dyn ExecutionPlan>,
}

impl Reuse {
    /// Room for `plan`'s physical plan, when it reads only governed products (without
    /// provenance columns) and calls only immutable functions.
    pub fn for_plan(plan: &LogicalPlan) -> Option<Arc<Self>> {
        let mut tables = Vec::new();
        let mut reusable = true;
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let governed = source_as_provider(&scan.source).ok().and_then(|provider| {
                    provider.downcast_ref::<GovernedTable>().map(|t| (t.product().table.clone(), t.provenance()))
                });
                match governed {
                    Some((table, false)) => tables.push(table),
                    _ => reusable = false,
                }
            }
            let _ = node.apply_expressions(|expr| {
                expr.apply(|expr| {
                    if !immutable(expr) {
                        reusable = false;
                    }
                    Ok(if reusable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
                })
            });
            Ok(if reusable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
        });
        reusable.then(|| Arc::new(Self { tables, kept: Mutex::new(None) }))
    }

    /// What each table reads now, when every one is served from its accelerated copy.
    pub fn current(&self) -> Option<Vec<ProductData>> {
        self.tables
            .iter()
            .map(|table| Some(table.data()).filter(|data| data.accelerated().is_some() && data.refusal().is_none()))
            .collect()
    }

    /// A fresh copy of the plan kept for exactly `data`, if there is one.
    pub fn take(&self, data: &[ProductData]) -> Option<Arc<dyn ExecutionPlan>> {
        let kept = self.kept.lock().ok()?;
        let kept = kept.as_ref()?;
        let same = kept.data.len() == data.len() && kept.data.iter().zip(data).all(|(kept, now)| kept.is(now));
        if !same {
            return None;
        }
        reset_plan_states(Arc::clone(&kept.plan)).ok()
    }

    /// Keeps `plan`, planned on `data`, when its operators can run again.
    pub fn keep(&self, data: &[ProductData], plan: &Arc<dyn ExecutionPlan>) {
        if !rerunnable(plan) {
            return;
        }
        let Ok(released) = release_accelerated_copies(Arc::clone(plan)) else { return };
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(Kept { data: data.iter().map(ProductData::identity).collect(), plan: released });
        }
    }
}

fn immutable(expr: &Expr) -> bool {
    match expr {
        Expr::ScalarFunction(function) => function.func.signature().volatility == Volatility::Immutable,
        Expr::Placeholder(_) | Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => false,
        _ => true,
    }
}

fn rerunnable(plan: &Arc<dyn ExecutionPlan>) -> bool {
    RERUNNABLE.contains(&plan.name()) && plan.children().into_iter().all(rerunnable)
}
