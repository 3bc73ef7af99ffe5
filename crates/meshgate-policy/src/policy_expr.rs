//! Row filters and custom masks: a restricted SQL subset over the product's columns,
//! with `principal.<attr>` bound as typed literals (never spliced into SQL text).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue, plan_err};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, Operator, Volatility};
use datafusion::sql::sqlparser::ast::{self, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::principal::{AttrType, Principal};

/// Pure scalar functions a policy expression may call.
const FUNCTIONS: &[&str] = &[
    "abs",
    "btrim",
    "ceil",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "date_part",
    "date_trunc",
    "ends_with",
    "floor",
    "greatest",
    "least",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "nullif",
    "nvl",
    "repeat",
    "replace",
    "right",
    "round",
    "rpad",
    "rtrim",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "trim",
    "trunc",
    "upper",
];

const PLACEHOLDER_PREFIX: &str = "$principal_";

/// A parsed, checked policy expression.
#[derive(Debug, Clone)]
pub struct PolicyExpr {
    pub text: String,
    ast: ast::Expr,
}

impl PolicyExpr {
    /// Parses `text`, replacing `principal.<attr>` by placeholders; attributes must be declared.
    pub fn parse(text: &str, attributes: &BTreeMap<String, AttrType>) -> Result<Self, String> {
        let mut parser = Parser::new(&GenericDialect {}).try_with_sql(text).map_err(|error| error.to_string())?;
        let mut ast = parser.parse_expr().map_err(|error| error.to_string())?;
        let next = parser.next_token().token;
        if next != Token::EOF {
            return Err(format!("unexpected '{next}' after the expression"));
        }
        let mut problem = None;
        let _ = visit_expressions_mut(&mut ast, |expr| {
            if let ast::Expr::CompoundIdentifier(parts) = expr
                && parts.len() == 2
                && parts[0].value.eq_ignore_ascii_case("principal")
            {
                let attr = parts[1].value.clone();
                if crate::principal::built_in_attribute(&attr).is_none() && !attributes.contains_key(&attr) {
                    problem = Some(if attr == "groups" {
                        "principal.groups is a list: test group membership in a when: condition".to_owned()
                    } else {
                        format!("unknown principal attribute '{attr}' (declare it under governance.attributes)")
                    });
                    return ControlFlow::Break(());
                }
                *expr = ast::Expr::Value(ast::Value::Placeholder(format!("{PLACEHOLDER_PREFIX}{attr}")).into());
            }
            ControlFlow::Continue(())
        });
        match problem {
            Some(problem) => Err(problem),
            None => Ok(Self { text: text.to_owned(), ast }),
        }
    }

    /// The expression over `schema` with principal attributes bound: a missing
    /// attribute becomes a NULL of its declared type. With no principal every
    /// attribute is NULL (used to type-check at load).
    pub fn to_expr(
        &self,
        state: &SessionState,
        schema: &DFSchema,
        principal: Option<&Principal>,
        attributes: &BTreeMap<String, AttrType>,
    ) -> Result<Expr> {
        let with_alias = ast::ExprWithAlias { expr: self.ast.clone(), alias: None };
        let expr = state.create_logical_expr_from_sql_expr(with_alias, schema)?;
        check_restricted(&expr, state)?;
        let bound = expr.transform(|expr| {
            let Expr::Placeholder(placeholder) = &expr else { return Ok(Transformed::no(expr)) };
            let Some(attr) = placeholder.id.strip_prefix(PLACEHOLDER_PREFIX) else {
                return plan_err!("placeholders are not allowed in policy expressions");
            };
            let value = if attr == "name" {
                ScalarValue::Utf8(principal.map(|p| p.name.clone()))
            } else {
                let ty = crate::principal::built_in_attribute(attr)
                    .or_else(|| attributes.get(attr).copied())
                    .unwrap_or(AttrType::Utf8);
                match principal.and_then(|p| p.attribute(attr)).filter(|v| v.attr_type() == ty) {
                    Some(value) => value.to_scalar(),
                    None => ScalarValue::try_from(ty.data_type())?,
                }
            };
            Ok(Transformed::yes(Expr::Literal(value, None)))
        })?;
        Ok(bound.data)
    }
}

/// Refuses anything outside the restricted subset: subqueries, aggregates, windows,
/// volatile or unlisted functions, placeholders other than principal attributes.
fn check_restricted(expr: &Expr, _state: &SessionState) -> Result<()> {
    let mut problem: Option<String> = None;
    expr.apply(|expr| {
        let refused = match expr {
            Expr::Column(_)
            | Expr::Literal(..)
            | Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotUnknown(_)
            | Expr::Negative(_)
            | Expr::Between(_)
            | Expr::Case(_)
            | Expr::Cast(_)
            | Expr::TryCast(_)
            | Expr::Like(_)
            | Expr::SimilarTo(_)
            | Expr::InList(_)
            | Expr::Alias(_) => None,
            Expr::Placeholder(placeholder) => {
                (!placeholder.id.starts_with(PLACEHOLDER_PREFIX)).then(|| "placeholders".to_owned())
            }
            Expr::BinaryExpr(binary) => match binary.op {
                Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::And
                | Operator::Or
                | Operator::Plus
                | Operator::Minus
                | Operator::Multiply
                | Operator::Divide
                | Operator::Modulo
                | Operator::StringConcat
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom => None,
                other => Some(format!("the operator {other}")),
            },
            Expr::ScalarFunction(function) => {
                let name = function.name();
                if function.func.signature().volatility == Volatility::Volatile {
                    Some(format!("the volatile function {name}()"))
                } else if !FUNCTIONS.contains(&name) {
                    Some(format!("the function {name}() (allowed: {})", FUNCTIONS.join(", ")))
                } else {
                    None
                }
            }
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Some("subqueries".to_owned()),
            Expr::AggregateFunction(_) => Some("aggregate functions".to_owned()),
            Expr::WindowFunction(_) => Some("window functions".to_owned()),
            other => Some(format!("'{}' expressions", other.variant_name())),
        };
        if let Some(refused) = refused {
            problem = Some(refused);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match problem {
        Some(problem) => plan_err!("{problem} may not appear in a policy expression"),
        None => Ok(()),
    }
}
