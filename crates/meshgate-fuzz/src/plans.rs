//! The governance invariant of a physical plan, checked independently of meshgate's
//! own verifier: every scan of files sits under a `BarrierExec`.

use std::sync::Arc;

use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use meshgate_catalog::ProductScanExec;
use meshgate_policy::BarrierExec;

/// Panics naming the first file scan (or product scan) that no barrier covers.
pub fn assert_scans_under_barriers(plan: &Arc<dyn ExecutionPlan>, sql: &str) {
    if plan.is::<BarrierExec>() {
        return;
    }
    if reads_files(plan.as_ref()) {
        panic!("a scan outside any barrier ({}) in the plan of {sql:?}", plan.name());
    }
    for child in plan.children() {
        assert_scans_under_barriers(child, sql);
    }
}

fn reads_files(plan: &dyn ExecutionPlan) -> bool {
    if plan.is::<ProductScanExec>() {
        return true;
    }
    let Some(source) = plan.downcast_ref::<DataSourceExec>() else { return false };
    source.data_source().is::<FileScanConfig>()
}
