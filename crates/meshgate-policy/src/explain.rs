//! EXPLAIN for governed plans: everything above each barrier is shown; what is below
//! (the policy filter, the masks, the files) only to stewards.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, displayable};

use crate::barrier::BarrierExec;

/// The physical plan, one operator per line, collapsed at barriers unless `full`.
pub fn render_physical(plan: &Arc<dyn ExecutionPlan>, full: bool) -> String {
    let mut out = String::new();
    render(plan, 0, full, &mut out);
    out
}

fn render(plan: &Arc<dyn ExecutionPlan>, depth: usize, full: bool, out: &mut String) {
    let line = displayable(plan.as_ref()).one_line().to_string();
    let _ = writeln!(out, "{:indent$}{}", "", line.trim_end(), indent = depth * 2);
    if !full && plan.is::<BarrierExec>() {
        return;
    }
    for child in plan.children() {
        render(child, depth + 1, full, out);
    }
}
