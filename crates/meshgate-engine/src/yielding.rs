//! Work that stops when its query does: joins yield to the runtime.
//!
//! A query stops (cancel, client gone, timeout) when its stream is dropped and its
//! tasks aborted, which takes effect only where a task yields. DataFusion makes scans
//! and exchanges cooperative, but a join that emits many batches per input batch (a
//! cross join, an equi-join with a large fan-out) feeding an aggregate kept one poll
//! going for seconds: the server went on computing a cancelled query for up to 7 s.
//! This rule puts each join under a [`CooperativeExec`], which spends tokio's
//! cooperative budget per batch and yields when it is used up, so a stopped query's
//! work ends within milliseconds. Rows and governance are untouched.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// Wraps every join (and unnest, which also multiplies rows) in a [`CooperativeExec`].
#[derive(Debug, Default)]
pub struct YieldInJoins;

impl PhysicalOptimizerRule for YieldInJoins {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if multiplies_rows(node.as_ref()) {
                let cooperative: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
                Ok(Transformed::yes(cooperative))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "meshgate_yield_in_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn multiplies_rows(plan: &dyn ExecutionPlan) -> bool {
    let name = plan.name();
    name.ends_with("JoinExec") || name == "UnnestExec"
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn joins_are_wrapped_and_results_unchanged() {
        let ctx = SessionContext::new();
        let sql = "SELECT count(*) FROM (VALUES (1), (2), (3)) a(x) CROSS JOIN (VALUES (1), (2)) b(y) \
                   JOIN (VALUES (1), (2)) c(z) ON b.y = c.z";
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let rewritten = YieldInJoins.optimize(plan, &ConfigOptions::default()).unwrap();
        let text = displayable(rewritten.as_ref()).indent(false).to_string();
        let joins = text.lines().filter(|line| line.contains("JoinExec")).count();
        let wrapped = text
            .lines()
            .zip(text.lines().skip(1))
            .filter(|(above, below)| above.trim_start().starts_with("CooperativeExec") && below.contains("JoinExec"));
        assert_eq!(wrapped.count(), joins, "{text}");
        let batches = datafusion::physical_plan::collect(rewritten, ctx.task_ctx()).await.unwrap();
        let count = batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
        assert_eq!(count.value(0), 6);
    }
}
