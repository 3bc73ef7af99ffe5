//! The last check before a plan runs: every scan of product data (files, Delta
//! tables, accelerated copies) must sit under a [`BarrierExec`], and in a distributed
//! plan nothing under a barrier may cross the network: the scan, its row filter, its
//! masks and the barrier run in one task. Anything else fails the query closed.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{DistributedExec, DistributedLeafExec, NetworkBoundaryExt};
use meshgate_catalog::reads_product_data;

use crate::barrier::BarrierExec;

pub fn verify_plan(plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
    if let Some(barrier) = plan.downcast_ref::<BarrierExec>() {
        return stays_in_one_task(barrier.product(), plan);
    }
    if reads_product_data(plan.as_ref()) {
        return Err(unverified());
    }
    leaf_variants(plan).iter().try_for_each(verify_plan)?;
    plan.children().into_iter().try_for_each(verify_plan)
}

/// A distributed leaf runs one of its variants in each task; they are not its children.
fn leaf_variants(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
    match plan.downcast_ref::<DistributedLeafExec>() {
        Some(leaf) => leaf.variants().iter().chain([leaf.original()]).cloned().collect(),
        None => Vec::new(),
    }
}

/// Nothing below a barrier may be a network boundary (or a nested distributed plan):
/// rows below it are raw, and must not leave the task that filters and masks them.
fn stays_in_one_task(product: &str, plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
    for child in plan.children().into_iter().cloned().chain(leaf_variants(plan)) {
        if child.as_ref().is_network_boundary() || child.is::<DistributedExec>() {
            tracing::error!(%product, node = child.name(), "a network boundary below a governed scan's barrier");
            return Err(unverified());
        }
        stays_in_one_task(product, &child)?;
    }
    Ok(())
}

fn unverified() -> DataFusionError {
    DataFusionError::External(Box::new(crate::PolicyError::Unverified))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use datafusion::catalog::TableProvider;
    use datafusion::execution::runtime_env::RuntimeEnv;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use meshgate_catalog::{MeshSnapshot, ProductScanExec, load_mesh_str};

    use super::*;

    /// The demo's Delta table (testdata/data/supply/stock_movements).
    async fn delta_scan() -> Arc<dyn ExecutionPlan> {
        let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data/supply/stock_movements");
        let table = std::fs::canonicalize(table).unwrap().display().to_string();
        let text = format!(
            "domains:\n  d:\n    owner: a@b.c\n    products:\n      - {{ name: m, location: '{table}', format: delta }}\n"
        );
        let config = load_mesh_str(&text, Path::new("/")).unwrap();
        let snapshot = MeshSnapshot::load(config, SessionConfig::new(), Arc::new(RuntimeEnv::default())).await.unwrap();
        let entry = snapshot.product("d", "m").unwrap();
        entry.table.scan(&SessionContext::new().state(), None, &[], None).await.unwrap()
    }

    #[tokio::test]
    async fn a_delta_scan_outside_a_barrier_fails_the_plan() {
        let product_scan = delta_scan().await;
        assert!(product_scan.is::<ProductScanExec>());
        let unverified = |plan: &Arc<dyn ExecutionPlan>| matches!(verify_plan(plan), Err(DataFusionError::External(e)) if e.to_string() == crate::PolicyError::Unverified.to_string());
        assert!(unverified(&product_scan));
        // The Delta scan itself, without the product's wrapper, is refused too.
        let delta = Arc::clone(product_scan.children()[0]);
        assert!(delta.name().starts_with("DeltaScan"), "{}", delta.name());
        assert!(unverified(&delta));
        let barrier: Arc<dyn ExecutionPlan> = Arc::new(BarrierExec::new("d.m".into(), delta, None));
        assert!(verify_plan(&barrier).is_ok());
    }

    #[tokio::test]
    async fn an_accelerated_scan_outside_a_barrier_fails_the_plan() {
        use meshgate_catalog::acceleration::{AcceleratedScanExec, AccelerationMemory, accelerate};
        let nation = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data/customers/nation");
        let nation = std::fs::canonicalize(nation).unwrap().display().to_string();
        let text = format!(
            "domains:\n  d:\n    owner: a@b.c\n    products:\n      - {{ name: n, location: '{nation}/', format: parquet, \
             acceleration: {{ refresh: manual }} }}\n"
        );
        let config = load_mesh_str(&text, Path::new("/")).unwrap();
        let snapshot = MeshSnapshot::load(config, SessionConfig::new(), Arc::new(RuntimeEnv::default())).await.unwrap();
        accelerate(&snapshot, &AccelerationMemory::new(), None).await;
        let entry = snapshot.product("d", "n").unwrap();
        assert!(entry.table.accelerated().is_some());
        let product_scan = entry.table.scan(&SessionContext::new().state(), None, &[], None).await.unwrap();
        assert!(product_scan.is::<ProductScanExec>());
        let copy = Arc::clone(product_scan.children()[0]);
        assert!(copy.is::<AcceleratedScanExec>(), "{}", copy.name());
        let unverified = |plan: &Arc<dyn ExecutionPlan>| matches!(verify_plan(plan), Err(DataFusionError::External(e)) if e.to_string() == crate::PolicyError::Unverified.to_string());
        assert!(unverified(&product_scan));
        assert!(unverified(&copy));
        let barrier: Arc<dyn ExecutionPlan> = Arc::new(BarrierExec::new("d.n".into(), product_scan, None));
        assert!(verify_plan(&barrier).is_ok());
    }
}
