//! Constructs that parse but that DataFusion would ignore or compute wrongly, so a
//! query using them would get a wrong answer without an error. Each is refused with
//! what to write instead; the two quantified comparisons that have an exact
//! equivalent are rewritten to it (`= ANY (subquery)` is `IN`, `<> ALL` is `NOT IN`).
//! The differential corpus (tests/python/differential) checks the rest of the SQL
//! surface against DuckDB.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Join, JoinConstraint, JoinOperator, Query, Select, SetExpr, SetOperator,
    SetQuantifier, Statement, TableFactor, Visit, Visitor, visit_expressions_mut,
};

use crate::error::EngineError;

/// Rewrites exact equivalents, then refuses what would be answered wrongly.
pub fn check_supported(statement: &mut Statement) -> Result<(), EngineError> {
    rewrite_quantified(statement);
    match statement.visit(&mut Unsupported) {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `x = ANY (subquery)` → `x IN (subquery)`; `x <> ALL (subquery)` → `x NOT IN
/// (subquery)`. The SQL standard defines IN by these, NULLs included.
fn rewrite_quantified(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        let negated = match expr {
            Expr::AnyOp { compare_op: BinaryOperator::Eq, right, .. } if is_subquery(right) => false,
            Expr::AllOp { compare_op: BinaryOperator::NotEq, right, .. } if is_subquery(right) => true,
            _ => return ControlFlow::<()>::Continue(()),
        };
        let taken = std::mem::replace(expr, Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()));
        let (left, right) = match taken {
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => (left, right),
            other => {
                *expr = other;
                return ControlFlow::Continue(());
            }
        };
        let Expr::Subquery(subquery) = *right else { unreachable!("checked above") };
        *expr = Expr::InSubquery { expr: left, subquery, negated };
        ControlFlow::Continue(())
    });
}

fn is_subquery(expr: &Expr) -> bool {
    matches!(expr, Expr::Subquery(_))
}

fn unsupported(what: &str, instead: &str) -> ControlFlow<EngineError> {
    ControlFlow::Break(EngineError::Unsupported { what: what.to_owned(), instead: instead.to_owned() })
}

struct Unsupported;

impl Visitor for Unsupported {
    type Break = EngineError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<EngineError> {
        if !query.locks.is_empty() {
            return unsupported(
                "FOR UPDATE / FOR SHARE",
                "meshgate serves read-only snapshots and takes no row locks; remove the locking clause",
            );
        }
        if query.for_clause.is_some() {
            return unsupported("FOR XML / FOR JSON / FOR BROWSE", "results are Arrow; remove the clause");
        }
        if query.settings.is_some() {
            return unsupported("SETTINGS", "query settings are not taken from SQL; remove the clause");
        }
        if query.format_clause.is_some() {
            return unsupported("FORMAT", "results are Arrow; remove the clause");
        }
        if !query.pipe_operators.is_empty() {
            return unsupported("pipe syntax (|>)", "write the query with SELECT … FROM … WHERE …");
        }
        set_operations(&query.body)
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<EngineError> {
        if select.prewhere.is_some() {
            return unsupported("PREWHERE", "write the condition in WHERE");
        }
        if !select.connect_by.is_empty() {
            return unsupported("START WITH / CONNECT BY", "write the hierarchy as a recursive CTE (WITH RECURSIVE)");
        }
        if select.value_table_mode.is_some() {
            return unsupported("SELECT AS STRUCT / AS VALUE", "select the columns, or build a struct with struct(…)");
        }
        let modifiers = match &select.group_by {
            GroupByExpr::All(modifiers) | GroupByExpr::Expressions(_, modifiers) => modifiers,
        };
        if !modifiers.is_empty() {
            return unsupported(
                "GROUP BY … WITH ROLLUP / CUBE / TOTALS",
                "write GROUP BY ROLLUP (a, b), GROUP BY CUBE (a, b) or GROUP BY GROUPING SETS (…)",
            );
        }
        select.from.iter().flat_map(|from| &from.joins).try_for_each(join)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<EngineError> {
        let sample = match factor {
            TableFactor::Table { sample, version, partitions, json_path, .. } => {
                if version.is_some() {
                    return unsupported(
                        "time travel (FOR SYSTEM_TIME AS OF, AT, BEFORE)",
                        "products are read as they are now; remove the clause",
                    );
                }
                if !partitions.is_empty() {
                    return unsupported("PARTITION (…) after a table", "filter on the partition columns in WHERE");
                }
                if json_path.is_some() {
                    return unsupported("a JSON path after a table", "select the fields in the query");
                }
                sample
            }
            TableFactor::Derived { sample, .. } => sample,
            TableFactor::NestedJoin { table_with_joins, .. } => {
                return table_with_joins.joins.iter().try_for_each(join);
            }
            _ => return ControlFlow::Continue(()),
        };
        if sample.is_some() {
            return unsupported(
                "TABLESAMPLE / SAMPLE",
                "sample with a filter such as WHERE random() < 0.1 (or ORDER BY random() LIMIT n)",
            );
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<EngineError> {
        if let Expr::BinaryOp { op: BinaryOperator::BitwiseXor, .. } = expr {
            return unsupported(
                "the ^ operator",
                "it would be a bitwise XOR here, not a power: write power(x, y) for x to the power y",
            );
        }
        let (compare_op, right, quantifier) = match expr {
            Expr::AnyOp { compare_op, right, is_some, .. } => {
                (compare_op, right, if *is_some { "SOME" } else { "ANY" })
            }
            Expr::AllOp { compare_op, right, .. } => (compare_op, right, "ALL"),
            _ => return ControlFlow::Continue(()),
        };
        if !is_subquery(right) {
            return ControlFlow::Continue(());
        }
        let instead = if quantifier == "ALL" {
            format!(
                "write NOT EXISTS (SELECT 1 FROM … WHERE NOT (x {compare_op} c) OR c IS NULL), or compare with the \
                 subquery's MIN or MAX (mind NULLs and empty results); x <> ALL (…) is supported as NOT IN"
            )
        } else {
            format!(
                "write EXISTS (SELECT 1 FROM … WHERE x {compare_op} c), or compare with the subquery's MIN or MAX \
                 (mind NULLs and empty results); x = {quantifier} (…) is supported as IN"
            )
        };
        unsupported(&format!("x {compare_op} {quantifier} (subquery)"), &instead)
    }
}

/// INTERSECT ALL and EXCEPT ALL would be answered as their DISTINCT forms' semi and
/// anti joins, ignoring how often a row occurs. Walks the set operations of one query
/// body (nested queries are visited on their own).
fn set_operations(body: &SetExpr) -> ControlFlow<EngineError> {
    let mut pending = vec![body];
    while let Some(body) = pending.pop() {
        if let SetExpr::SetOperation { op, set_quantifier, left, right } = body {
            let all = matches!(set_quantifier, SetQuantifier::All | SetQuantifier::AllByName);
            if all && matches!(op, SetOperator::Intersect | SetOperator::Except | SetOperator::Minus) {
                return unsupported(
                    "INTERSECT ALL / EXCEPT ALL",
                    "number each row's occurrences on both sides (row_number() OVER (PARTITION BY every \
                     column)) and use INTERSECT / EXCEPT on the numbered rows, or use the DISTINCT forms",
                );
            }
            pending.push(left);
            pending.push(right);
        }
    }
    ControlFlow::Continue(())
}

/// FULL and RIGHT joins with USING or NATURAL would return the left side's key, NULL
/// for rows only on the right, where SQL has COALESCE(left.k, right.k).
fn join(join: &Join) -> ControlFlow<EngineError> {
    let constraint = match &join.join_operator {
        JoinOperator::FullOuter(constraint)
        | JoinOperator::Right(constraint)
        | JoinOperator::RightOuter(constraint) => constraint,
        _ => return ControlFlow::Continue(()),
    };
    if matches!(constraint, JoinConstraint::Using(_) | JoinConstraint::Natural) {
        return unsupported(
            "FULL or RIGHT JOIN with USING or NATURAL",
            "write the join with ON a.k = b.k and select COALESCE(a.k, b.k) AS k",
        );
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn check(sql: &str) -> Result<String, String> {
        let mut statement = Parser::parse_sql(&GenericDialect {}, sql).unwrap().remove(0);
        check_supported(&mut statement).map(|()| statement.to_string()).map_err(|error| error.to_string())
    }

    #[test]
    fn exact_equivalents_are_rewritten() {
        assert_eq!(
            check("SELECT a FROM t WHERE a = ANY (SELECT b FROM s)").unwrap(),
            "SELECT a FROM t WHERE a IN (SELECT b FROM s)"
        );
        assert_eq!(
            check("SELECT a FROM t WHERE a = SOME (SELECT b FROM s)").unwrap(),
            "SELECT a FROM t WHERE a IN (SELECT b FROM s)"
        );
        assert_eq!(
            check("SELECT a FROM t WHERE a <> ALL (SELECT b FROM s)").unwrap(),
            "SELECT a FROM t WHERE a NOT IN (SELECT b FROM s)"
        );
        // Arrays are not subqueries.
        assert!(check("SELECT a FROM t WHERE a > ANY (make_array(1, 2))").is_ok());
    }

    #[test]
    fn wrong_answers_are_refused_with_a_rewrite() {
        for sql in [
            "SELECT a FROM t WHERE a > ANY (SELECT b FROM s)",
            "SELECT a FROM t WHERE a < ALL (SELECT b FROM s)",
            "SELECT a FROM t WHERE a = ALL (SELECT b FROM s)",
        ] {
            let error = check(sql).unwrap_err();
            assert!(error.contains("is not supported") && error.contains("EXISTS"), "{error}");
        }
        for (sql, what) in [
            ("SELECT count(*) FROM t TABLESAMPLE (10 PERCENT)", "TABLESAMPLE"),
            ("SELECT count(*) FROM t TABLESAMPLE BERNOULLI (1) REPEATABLE (3)", "TABLESAMPLE"),
            ("SELECT a FROM t PREWHERE a > 3", "PREWHERE"),
            ("SELECT a FROM t GROUP BY a WITH ROLLUP", "ROLLUP"),
            ("SELECT a FROM t FOR UPDATE", "FOR UPDATE"),
            ("SELECT a FROM t START WITH a = 1 CONNECT BY PRIOR a = b", "CONNECT BY"),
            ("SELECT a FROM t INTERSECT ALL SELECT b FROM s", "INTERSECT ALL"),
            ("SELECT a FROM t UNION ALL (SELECT b FROM s EXCEPT ALL SELECT c FROM u)", "EXCEPT ALL"),
            ("SELECT k FROM t FULL JOIN s USING (k)", "USING"),
            ("SELECT * FROM t NATURAL RIGHT JOIN s", "NATURAL"),
            ("SELECT * FROM (t FULL OUTER JOIN s USING (k))", "USING"),
            ("SELECT 2 ^ 10", "power"),
            ("SELECT a FROM (SELECT * FROM t WHERE a IN (SELECT b FROM s TABLESAMPLE (1 ROWS))) x", "TABLESAMPLE"),
        ] {
            let error = check(sql).unwrap_err();
            assert!(error.contains(what), "{sql}: {error}");
        }
        assert!(check("SELECT a FROM t WITH (NOLOCK) WHERE a IN (SELECT b FROM s)").is_ok());
        assert!(check("SELECT a FROM t UNION ALL SELECT b FROM s INTERSECT SELECT c FROM u").is_ok());
        assert!(check("SELECT k FROM t LEFT JOIN s USING (k) FULL JOIN u ON t.k = u.k").is_ok());
    }
}
