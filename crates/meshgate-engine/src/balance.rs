//! Long AND / OR chains become balanced trees before planning.
//!
//! SQL's parser builds `a AND b AND c AND …` as a left-deep tree, and DataFusion
//! evaluates it with cost quadratic in its length (each level asks the whole chain
//! below it for its type, on every batch): 2,000 conditions took 45 CPU-seconds on a
//! small product. AND and OR are associative in SQL's three-valued logic, so the same
//! conditions in a balanced tree mean the same, nest log₂(n) deep and cost n.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Statement, VisitMut, VisitorMut};

/// Chains shorter than this are left as written (plans of ordinary queries, and
/// DataFusion's own rewrites of short OR chains, stay as they were).
const MIN_CHAIN: usize = 32;

/// Rebalances every AND / OR chain of at least [`MIN_CHAIN`] operands in `statement`.
pub fn balance_boolean_chains(statement: &mut Statement) {
    let _ = statement.visit(&mut Balance);
}

struct Balance;

impl VisitorMut for Balance {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::BinaryOp { op: op @ (BinaryOperator::And | BinaryOperator::Or), .. } = expr else {
            return ControlFlow::Continue(());
        };
        let op = op.clone();
        // The length of the left spine: a chain as parsed, or (short) a tree balanced here.
        let mut spine = 1;
        let mut node: &Expr = expr;
        while let Expr::BinaryOp { left, op: inner, .. } = node
            && *inner == op
        {
            spine += 1;
            node = left;
        }
        if spine < MIN_CHAIN {
            return ControlFlow::Continue(());
        }
        let taken = std::mem::replace(expr, Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()));
        *expr = balanced(flatten(taken, &op), &op);
        ControlFlow::Continue(())
    }
}

/// The operands of a chain of `op`, in order, without recursion.
fn flatten(expr: Expr, op: &BinaryOperator) -> Vec<Expr> {
    let mut operands = Vec::new();
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::BinaryOp { left, op: inner, right } if inner == *op => {
                pending.push(*right);
                pending.push(*left);
            }
            operand => operands.push(operand),
        }
    }
    operands
}

fn left_deep(operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    let mut operands = operands.into_iter();
    let first = operands.next().unwrap_or_else(|| Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()));
    operands.fold(first, |left, right| Expr::BinaryOp { left: Box::new(left), op: op.clone(), right: Box::new(right) })
}

/// A balanced tree over `operands` (in order); recursion depth log₂ of their count.
fn balanced(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    if operands.len() <= 2 {
        return left_deep(operands, op);
    }
    let right = operands.split_off(operands.len() / 2);
    Expr::BinaryOp { left: Box::new(balanced(operands, op)), op: op.clone(), right: Box::new(balanced(right, op)) }
}

/// The same for the predicates of physical filters: DataFusion's optimizer splits
/// conjunctions and joins them again left-deep (pushing filters down), so a chain
/// balanced in SQL reaches execution left-deep, where evaluating it costs the square
/// of its length on every batch.
#[derive(Debug, Default)]
pub struct BalanceFilters;

impl PhysicalOptimizerRule for BalanceFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else { return Ok(Transformed::no(node)) };
            let predicate = balance_physical(Arc::clone(filter.predicate()))?;
            if !predicate.transformed {
                return Ok(Transformed::no(node));
            }
            let rebuilt = FilterExecBuilder::from(filter).with_predicate(predicate.data).build()?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "meshgate_balance_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn balance_physical(expr: Arc<dyn PhysicalExpr>) -> datafusion::common::Result<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.transform_down(|expr| {
        let Some(op) = chain_operator(&expr) else { return Ok(Transformed::no(expr)) };
        let mut spine = 1;
        let mut node = Arc::clone(&expr);
        while let Some(binary) = node.downcast_ref::<BinaryExpr>()
            && *binary.op() == op
        {
            spine += 1;
            let left = Arc::clone(binary.left());
            node = left;
        }
        if spine < MIN_CHAIN {
            return Ok(Transformed::no(expr));
        }
        let mut operands = Vec::new();
        let mut pending = vec![expr];
        while let Some(expr) = pending.pop() {
            match expr.downcast_ref::<BinaryExpr>() {
                Some(binary) if *binary.op() == op => {
                    pending.push(Arc::clone(binary.right()));
                    pending.push(Arc::clone(binary.left()));
                }
                _ => operands.push(expr),
            }
        }
        Ok(Transformed::yes(balanced_physical(operands, op)))
    })
}

fn chain_operator(expr: &Arc<dyn PhysicalExpr>) -> Option<Operator> {
    let binary = expr.downcast_ref::<BinaryExpr>()?;
    matches!(binary.op(), Operator::And | Operator::Or).then(|| *binary.op())
}

fn balanced_physical(mut operands: Vec<Arc<dyn PhysicalExpr>>, op: Operator) -> Arc<dyn PhysicalExpr> {
    if operands.len() == 1 {
        return operands.remove(0);
    }
    let right = operands.split_off(operands.len() / 2);
    Arc::new(BinaryExpr::new(balanced_physical(operands, op), op, balanced_physical(right, op)))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn depth(expr: &Expr) -> usize {
        match expr {
            Expr::BinaryOp { left, right, .. } => 1 + depth(left).max(depth(right)),
            Expr::Nested(inner) => 1 + depth(inner),
            _ => 0,
        }
    }

    fn balance(sql: &str) -> Statement {
        let mut statement = Parser::parse_sql(&GenericDialect {}, sql).unwrap().remove(0);
        balance_boolean_chains(&mut statement);
        statement
    }

    fn selection(statement: &Statement) -> &Expr {
        let Statement::Query(query) = statement else { panic!("not a query") };
        let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.body.as_ref() else { panic!() };
        select.selection.as_ref().unwrap()
    }

    #[test]
    fn long_chains_become_shallow_and_keep_their_operands_in_order() {
        let conditions: Vec<String> = (0..1000).map(|i| format!("a <> {i}")).collect();
        let statement = balance(&format!("SELECT * FROM t WHERE {}", conditions.join(" AND ")));
        assert!(depth(selection(&statement)) <= 12, "{}", depth(selection(&statement)));
        let mut operands = Vec::new();
        let mut pending = vec![selection(&statement)];
        while let Some(expr) = pending.pop() {
            match expr {
                Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                    pending.push(right);
                    pending.push(left);
                }
                other => operands.push(other.to_string()),
            }
        }
        assert_eq!(operands, conditions);
    }

    fn physical_depth(expr: &Arc<dyn PhysicalExpr>) -> usize {
        match expr.downcast_ref::<BinaryExpr>() {
            Some(binary) => 1 + physical_depth(binary.left()).max(physical_depth(binary.right())),
            None => 0,
        }
    }

    #[tokio::test]
    async fn filters_reach_execution_balanced_with_the_same_rows() {
        let ctx = datafusion::prelude::SessionContext::new();
        let conditions: Vec<String> = (0..500).map(|i| format!("x <> {}", i * 2 + 1)).collect();
        let sql = format!("SELECT count(*) FROM (VALUES (0), (1), (2), (3)) t(x) WHERE {}", conditions.join(" AND "));
        let plan = ctx.sql(&sql).await.unwrap().create_physical_plan().await.unwrap();
        let balanced = BalanceFilters.optimize(plan, &ConfigOptions::default()).unwrap();
        let mut depths = Vec::new();
        let _ = balanced.apply(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                depths.push(physical_depth(filter.predicate()));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
        assert!(!depths.is_empty() && depths.iter().all(|depth| *depth <= 12), "{depths:?}");
        let batches = datafusion::physical_plan::collect(balanced, ctx.task_ctx()).await.unwrap();
        let count = batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
        assert_eq!(count.value(0), 2);
    }

    #[test]
    fn short_chains_and_mixed_operators_are_left_alone() {
        let sql = "SELECT * FROM t WHERE a = 1 AND b = 2 OR c = 3 AND d = 4";
        assert_eq!(balance(sql).to_string(), sql);
        let ors: Vec<String> = (0..100).map(|i| format!("a = {i}")).collect();
        let mixed = format!("SELECT * FROM t WHERE x > 0 AND ({})", ors.join(" OR "));
        let statement = balance(&mixed);
        assert!(depth(selection(&statement)) <= 12);
        assert!(statement.to_string().starts_with("SELECT * FROM t WHERE x > 0 AND ("));
    }
}
