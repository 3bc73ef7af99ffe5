//! A principal's row filter, typed and reduced before it is planned into the scan:
//! only rewrites that keep exactly the same rows and cannot add an error.
//!
//! - Subexpressions without columns are evaluated (the principal's attributes are
//!   literals by now): `'analytics' <> 'ml_training'` is `true`, `CAST(0 AS
//!   DECIMAL(22,2))` a decimal literal. One that fails is left for execution.
//! - `true AND x` is `x`, `false AND x` is `false`, `true OR x` is `true`, `false OR
//!   x` is `x` (SQL's three-valued logic agrees).
//! - A widening cast that type coercion put on a column compared with a literal moves
//!   to the literal when the literal survives the trip exactly: `CAST(l_quantity AS
//!   DECIMAL(22,2)) >= 0.00` becomes `l_quantity >= 0.00`, compared as stored.
//!
//! DataFusion's own simplifier is not used: it turns CASE into AND/OR (whose branches
//! then run on rows the WHEN would have skipped, so errors could tell about hidden
//! rows), moves narrowing casts off columns, and folds on declared nullability.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, Operator, Volatility};

/// `filter`, coerced for `raw` and reduced as the module says.
pub(crate) fn fold(state: &SessionState, filter: Expr, raw: &DFSchema) -> Result<Expr> {
    let context = datafusion::logical_expr::simplify::SimplifyContext::builder()
        .with_schema(Arc::new(raw.clone()))
        .with_config_options(Arc::clone(state.config_options()))
        .build();
    let coerced = datafusion::optimizer::simplify_expressions::ExprSimplifier::new(context).coerce(filter, raw)?;
    let constants = coerced
        .transform_down(|expr| {
            if matches!(expr, Expr::Literal(..)) || !constant(&expr) {
                return Ok(Transformed::no(expr));
            }
            Ok(match evaluate(state, &expr) {
                Some(value) => Transformed::new(Expr::Literal(value, None), true, TreeNodeRecursion::Jump),
                None => Transformed::no(expr),
            })
        })?
        .data;
    Ok(constants
        .transform_up(|expr| Ok(logic(expr).unwrap_or_else(|expr| Transformed::no(unwrap_cast(expr, raw)))))?
        .data)
}

/// No column, no subquery, no placeholder, no function whose result may change.
fn constant(expr: &Expr) -> bool {
    let mut constant = true;
    let _ = expr.apply(|expr| {
        constant = match expr {
            Expr::Column(_)
            | Expr::OuterReferenceColumn(..)
            | Expr::ScalarVariable(..)
            | Expr::Placeholder(_)
            | Expr::ScalarSubquery(_)
            | Expr::Exists(_)
            | Expr::InSubquery(_)
            | Expr::AggregateFunction(_)
            | Expr::WindowFunction(_) => false,
            // Only immutable functions: a filter is kept with its cached plan.
            Expr::ScalarFunction(function) => function.func.signature().volatility == Volatility::Immutable,
            _ => true,
        };
        Ok(if constant { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    });
    constant
}

/// The value of a constant expression, evaluated as execution would; `None` when it fails.
fn evaluate(state: &SessionState, expr: &Expr) -> Option<ScalarValue> {
    let physical = state.create_physical_expr(expr.clone(), &DFSchema::empty()).ok()?;
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .ok()?;
    match physical.evaluate(&one_row).ok()? {
        ColumnarValue::Scalar(value) => Some(value),
        ColumnarValue::Array(array) if array.len() == 1 => ScalarValue::try_from_array(&array, 0).ok(),
        ColumnarValue::Array(_) => None,
    }
}

/// AND and OR with a boolean literal on either side.
fn logic(expr: Expr) -> Result<Transformed<Expr>, Expr> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else { return Err(expr) };
    let truth = |side: &Expr| match side {
        Expr::Literal(ScalarValue::Boolean(Some(value)), _) => Some(*value),
        _ => None,
    };
    let literal = |value: bool| Expr::Literal(ScalarValue::Boolean(Some(value)), None);
    match (op, truth(&left), truth(&right)) {
        (Operator::And, Some(true), _) | (Operator::Or, Some(false), _) => Ok(Transformed::yes(*right)),
        (Operator::And, _, Some(true)) | (Operator::Or, _, Some(false)) => Ok(Transformed::yes(*left)),
        (Operator::And, Some(false), _) | (Operator::And, _, Some(false)) => Ok(Transformed::yes(literal(false))),
        (Operator::Or, Some(true), _) | (Operator::Or, _, Some(true)) => Ok(Transformed::yes(literal(true))),
        _ => Err(Expr::BinaryExpr(BinaryExpr { left, op, right })),
    }
}

/// `CAST(column AS wider) op literal` as `column op literal'` (see the module's notes).
fn unwrap_cast(expr: Expr, raw: &DFSchema) -> Expr {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else { return expr };
    if !matches!(op, Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq) {
        return expr;
    }
    let unwrapped = match (left.as_ref(), right.as_ref()) {
        (Expr::Cast(cast), Expr::Literal(value, _)) => {
            narrowed(cast, value, raw).map(|(column, value)| (column, *op, value))
        }
        (Expr::Literal(value, _), Expr::Cast(cast)) => {
            narrowed(cast, value, raw).map(|(column, value)| (value, *op, column))
        }
        _ => None,
    };
    match unwrapped {
        Some((left, op, right)) => Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right))),
        None => expr,
    }
}

/// The column under a widening `cast`, and `value` in the column's type, when the
/// value converts there and back unchanged.
fn narrowed(cast: &Cast, value: &ScalarValue, raw: &DFSchema) -> Option<(Expr, Expr)> {
    let Expr::Column(_) = cast.expr.as_ref() else { return None };
    let from = cast.expr.get_type(raw).ok()?;
    let to = cast.field.data_type();
    if !widening(&from, to) || value.is_null() || value.data_type() != *to {
        return None;
    }
    let narrow = value.cast_to(&from).ok()?;
    (narrow.cast_to(to).ok()? == *value && !narrow.is_null())
        .then(|| (cast.expr.as_ref().clone(), Expr::Literal(narrow, None)))
}

/// Casts that keep every value and its order.
fn widening(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let rank = |ty: &DataType| match ty {
        Int8 => Some((true, 1)),
        Int16 => Some((true, 2)),
        Int32 => Some((true, 4)),
        Int64 => Some((true, 8)),
        UInt8 => Some((false, 1)),
        UInt16 => Some((false, 2)),
        UInt32 => Some((false, 4)),
        UInt64 => Some((false, 8)),
        _ => None,
    };
    match (from, to) {
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        _ => match (rank(from), rank(to)) {
            (Some((signed_from, from_bytes)), Some((signed_to, to_bytes))) => {
                (signed_from == signed_to && to_bytes >= from_bytes)
                    || (!signed_from && signed_to && to_bytes > from_bytes)
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Field;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn folded(sql: &str) -> String {
        let schema = Schema::new(vec![
            Field::new("qty", DataType::Decimal128(15, 2), true),
            Field::new("id", DataType::Int32, false),
            Field::new("consent", DataType::Boolean, true),
            Field::new("name", DataType::Utf8, true),
        ]);
        let raw = DFSchema::try_from(schema).unwrap();
        let context = SessionContext::new();
        let expr = context.parse_sql_expr(sql, &raw).unwrap();
        fold(&context.state(), expr, &raw).unwrap().to_string()
    }

    #[test]
    fn constants_and_boolean_literals_fold() {
        assert_eq!(folded("consent OR 'analytics' <> 'ml_training'"), "Boolean(true)");
        assert_eq!(folded("consent OR 'ml_training' <> 'ml_training'"), "consent");
        assert_eq!(folded("1 = 1 AND id > 3"), "id > Int32(3)");
        assert_eq!(folded("false AND id > 3"), "Boolean(false)");
    }

    #[test]
    fn a_widening_cast_moves_to_the_literal_only_when_it_survives_the_trip() {
        assert_eq!(folded("qty >= 0"), "qty >= Decimal128(0.00,15,2)");
        assert_eq!(folded("id < CAST(7 AS BIGINT)"), "id < Int32(7)");
        // 0.005 is not a DECIMAL(15,2): the column keeps its cast.
        assert!(folded("qty >= 0.005").contains("CAST(qty AS"), "{}", folded("qty >= 0.005"));
        // 2^40 is not an Int32.
        assert!(folded("id < 1099511627776").contains("CAST(id AS"), "{}", folded("id < 1099511627776"));
    }

    #[test]
    fn narrowing_casts_case_and_nullability_are_left_as_written() {
        assert!(folded("CAST(qty AS DECIMAL(10,0)) < 5").contains("CAST(qty AS Decimal128(10, 0))"));
        assert!(folded("TRY_CAST(id AS SMALLINT) < 5").contains("TRY_CAST(id AS Int16)"));
        let case = folded("CASE WHEN qty <> 0 THEN 10 / qty > 1 ELSE false END");
        assert!(case.starts_with("CASE WHEN"), "{case}");
        // `id` is declared NOT NULL, but files may not say the same.
        assert_eq!(folded("id IS NOT NULL"), "id IS NOT NULL");
        // 1/0 fails: left for execution, where it fails the query on any row.
        assert!(folded("id > 1 / 0").contains("Int64(1) / Int64(0)"), "{}", folded("id > 1 / 0"));
    }
}
