//! Which physical filters may run below a row filter that hides rows: those that
//! cannot fail on any row and read only unmasked columns. Such a filter evaluated on
//! a hidden row can only drop it, which the row filter does anyway: nothing about
//! the row reaches the query (no error, no value). Everything else stays above the
//! barrier.
//!
//! The allowlist is small: columns, literals, comparisons and boolean logic, IS NULL,
//! IN lists, casts that widen, and the dynamic filters DataFusion derives from joins,
//! TopK and aggregates over such expressions (bounds, IN lists and hash lookups over
//! their children, which are checked like any other expression).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, DynamicFilterPhysicalExpr, InListExpr, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
};

/// Whether `expr`, over `schema`, cannot fail on any row and reads only the columns
/// `unmasked` marks.
pub(crate) fn cannot_fail(expr: &Arc<dyn PhysicalExpr>, schema: &Schema, unmasked: &[bool]) -> bool {
    // The type of a value compared: one whose comparisons cannot fail, or `None`.
    let compared = |expr: &Arc<dyn PhysicalExpr>| expr.data_type(schema).ok().filter(plain);
    if let Some(column) = expr.downcast_ref::<Column>() {
        return unmasked.get(column.index()).copied().unwrap_or(false)
            && schema.fields().get(column.index()).is_some_and(|field| field.name() == column.name());
    }
    if expr.downcast_ref::<Literal>().is_some() {
        return true;
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        let (left, right) = (binary.left(), binary.right());
        let operands = cannot_fail(left, schema, unmasked) && cannot_fail(right, schema, unmasked);
        return operands
            && match binary.op() {
                Operator::And | Operator::Or => true,
                Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom => {
                    compared(left).is_some_and(|ty| right.data_type(schema).is_ok_and(|other| other == ty))
                }
                _ => false,
            };
    }
    if let Some(not) = expr.downcast_ref::<NotExpr>() {
        return cannot_fail(not.arg(), schema, unmasked);
    }
    if let Some(is_null) = expr.downcast_ref::<IsNullExpr>() {
        return cannot_fail(is_null.arg(), schema, unmasked);
    }
    if let Some(is_not_null) = expr.downcast_ref::<IsNotNullExpr>() {
        return cannot_fail(is_not_null.arg(), schema, unmasked);
    }
    if let Some(in_list) = expr.downcast_ref::<InListExpr>() {
        let Some(ty) = compared(in_list.expr()) else { return false };
        return cannot_fail(in_list.expr(), schema, unmasked)
            && in_list.list().iter().all(|item| {
                item.downcast_ref::<Literal>().is_some() && item.data_type(schema).is_ok_and(|other| other == ty)
            });
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return cast.expr().data_type(schema).is_ok_and(|from| widens(&from, cast.cast_type()))
            && cannot_fail(cast.expr(), schema, unmasked);
    }
    if expr.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
        // What it will compare (its children) is fixed now; the bounds, lists and hash
        // lookups it is filled with at run time compare those with values of their type.
        let children = expr.children();
        return !children.is_empty()
            && children.iter().all(|child| compared(child).is_some() && cannot_fail(child, schema, unmasked));
    }
    false
}

/// Types whose comparisons cannot fail: no nested values.
fn plain(ty: &DataType) -> bool {
    ty.is_primitive()
        || matches!(
            ty,
            DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// Casts that hold every value of `from`: integers to wider integers of a sign that
/// holds them, integers and decimals to decimals with as many digits on each side of
/// the point, floats to wider floats, strings between string types.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let strings = |ty: &DataType| matches!(ty, Utf8 | LargeUtf8 | Utf8View);
    if strings(from) && strings(to) {
        return true;
    }
    let bits = |ty: &DataType| match ty {
        Int8 | UInt8 => Some(8),
        Int16 | UInt16 => Some(16),
        Int32 | UInt32 => Some(32),
        Int64 | UInt64 => Some(64),
        _ => None,
    };
    let signed = |ty: &DataType| ty.is_signed_integer();
    // Digits left of the point a decimal holds, and an integer type needs.
    let decimal = |ty: &DataType| match ty {
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => Some((*p as i16, *s as i16)),
        _ => None,
    };
    let digits = |ty: &DataType| match ty {
        Int8 | UInt8 => Some(3),
        Int16 | UInt16 => Some(5),
        Int32 | UInt32 => Some(10),
        Int64 => Some(19),
        UInt64 => Some(20),
        _ => None,
    };
    match (bits(from), bits(to)) {
        // Signed to signed or unsigned to unsigned, wider or equal; unsigned to a
        // strictly wider signed integer.
        (Some(f), Some(t)) => (signed(from) == signed(to) && t >= f) || (!signed(from) && signed(to) && t > f),
        _ => match (decimal(from), decimal(to), digits(from)) {
            // Neither digits before the point nor after it lost.
            (Some((p1, s1)), Some((p2, s2)), _) => s2 >= s1 && p2 - s2 >= p1 - s1,
            (None, Some((p2, s2)), Some(needed)) => s2 >= 0 && p2 - s2 >= needed,
            _ => matches!((from, to), (Float16, Float32 | Float64) | (Float32, Float64)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{binary, col, in_list, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("salary", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ])
    }

    #[test]
    fn comparisons_of_unmasked_columns_with_literals_pass() {
        let schema = schema();
        let id = col("id", &schema).unwrap();
        let expr = binary(Arc::clone(&id), Operator::GtEq, lit(5i32), &schema).unwrap();
        let expr = binary(expr, Operator::And, binary(id, Operator::LtEq, lit(9i32), &schema).unwrap(), &schema);
        assert!(cannot_fail(&expr.unwrap(), &schema, &[true, true, true]));
    }

    #[test]
    fn masked_columns_arithmetic_and_narrowing_casts_stay_above() {
        let schema = schema();
        let salary = col("salary", &schema).unwrap();
        let plain = binary(Arc::clone(&salary), Operator::Gt, lit(100i64), &schema).unwrap();
        assert!(!cannot_fail(&plain, &schema, &[true, false, true]), "masked column");
        // 1 / (salary - 100000) fails on one salary: the classic one-bit oracle.
        let minus = binary(Arc::clone(&salary), Operator::Minus, lit(100_000i64), &schema).unwrap();
        let divide = binary(lit(1i64), Operator::Divide, minus, &schema).unwrap();
        let oracle = binary(divide, Operator::Gt, lit(0i64), &schema).unwrap();
        assert!(!cannot_fail(&oracle, &schema, &[true, true, true]));
        let narrowing: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(salary, DataType::Int32, None));
        let compared = binary(narrowing, Operator::Eq, lit(1i32), &schema).unwrap();
        assert!(!cannot_fail(&compared, &schema, &[true, true, true]));
        let name = col("name", &schema).unwrap();
        let parsed: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(name, DataType::Int64, None));
        let compared = binary(parsed, Operator::Eq, lit(1i64), &schema).unwrap();
        assert!(!cannot_fail(&compared, &schema, &[true, true, true]), "a string parsed as a number can fail");
    }

    #[test]
    fn decimal_casts_pass_only_when_no_digit_is_lost() {
        assert!(widens(&DataType::Decimal128(15, 2), &DataType::Decimal128(20, 2)));
        assert!(widens(&DataType::Int64, &DataType::Decimal128(20, 0)));
        assert!(!widens(&DataType::Decimal128(15, 2), &DataType::Decimal128(15, 3)), "one digit lost on the left");
        assert!(!widens(&DataType::Decimal128(15, 2), &DataType::Decimal128(20, 1)), "a digit lost on the right");
        assert!(!widens(&DataType::Int64, &DataType::Decimal128(18, 0)));
        assert!(!widens(&DataType::Int64, &DataType::Float64), "not a cast that widens here");
    }

    #[test]
    fn widening_casts_in_lists_and_dynamic_filters_pass() {
        let schema = schema();
        let id = col("id", &schema).unwrap();
        let wide: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(Arc::clone(&id), DataType::Int64, None));
        let compared = binary(Arc::clone(&wide), Operator::Eq, lit(1i64), &schema).unwrap();
        assert!(cannot_fail(&compared, &schema, &[true, true, true]));
        let list = in_list(Arc::clone(&id), vec![lit(1i32), lit(2i32)], &false, &schema).unwrap();
        assert!(cannot_fail(&list, &schema, &[true, true, true]));
        let mixed = in_list(Arc::clone(&id), vec![lit(ScalarValue::Int32(Some(1)))], &false, &schema).unwrap();
        assert!(cannot_fail(&mixed, &schema, &[true, false, false]));
        let dynamic: Arc<dyn PhysicalExpr> = Arc::new(DynamicFilterPhysicalExpr::new(vec![wide], lit(true)));
        assert!(cannot_fail(&dynamic, &schema, &[true, true, true]));
        assert!(!cannot_fail(&dynamic, &schema, &[false, true, true]), "its key is masked");
        let salary = col("salary", &schema).unwrap();
        let computed = binary(salary, Operator::Divide, lit(0i64), &schema).unwrap();
        let dynamic: Arc<dyn PhysicalExpr> = Arc::new(DynamicFilterPhysicalExpr::new(vec![computed], lit(true)));
        assert!(!cannot_fail(&dynamic, &schema, &[true, true, true]), "its key is computed and can fail");
    }
}
