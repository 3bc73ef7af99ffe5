//! The last check before a plan runs: every scan of product files must sit under a
//! [`BarrierExec`]. Anything else fails the query closed.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use meshgate_catalog::ProductScanExec;

use crate::barrier::BarrierExec;

pub fn verify_plan(plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
    if plan.is::<BarrierExec>() {
        return Ok(());
    }
    let reads_files = plan.is::<ProductScanExec>()
        || plan.downcast_ref::<DataSourceExec>().is_some_and(|source| source.data_source().is::<FileScanConfig>());
    if reads_files {
        return Err(DataFusionError::External(Box::new(crate::PolicyError::Unverified)));
    }
    plan.children().into_iter().try_for_each(verify_plan)
}
