//! Which result columns are a table's column passed through unchanged: followed down
//! the logical plan through projections (a column or an alias of one), filters,
//! sorts, limits, joins, group keys, window inputs and subquery aliases. Anything
//! computed (expressions, aggregates, unions, unnests) has no source.

use datafusion::common::{Column, DFSchema};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{Aggregate, Distinct, Expr, LogicalPlan};

/// The table column a result column is, by its resolved name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSource {
    pub catalog: String,
    pub schema: String,
    pub table: String,
    pub column: String,
}

/// One entry per output column of `plan`; table names resolve against the
/// session's default catalog and schema, as the plan's table scans did.
pub fn column_sources(plan: &LogicalPlan, options: &ConfigOptions) -> Vec<Option<ColumnSource>> {
    let defaults = &options.catalog;
    (0..plan.schema().fields().len())
        .map(|index| {
            source(plan, index).map(|(table, column)| {
                let table = table.resolve(&defaults.default_catalog, &defaults.default_schema);
                ColumnSource {
                    catalog: table.catalog.to_string(),
                    schema: table.schema.to_string(),
                    table: table.table.to_string(),
                    column,
                }
            })
        })
        .collect()
}

/// Bounds the walk (plans are already bounded in depth; this is a backstop).
const MAX_STEPS: usize = 256;

fn source(plan: &LogicalPlan, index: usize) -> Option<(datafusion::common::TableReference, String)> {
    let (mut plan, mut index) = (plan, index);
    for _ in 0..MAX_STEPS {
        let (input, input_index) = match plan {
            LogicalPlan::TableScan(scan) => {
                let field = scan.projected_schema.fields().get(index)?;
                return Some((scan.table_name.clone(), field.name().clone()));
            }
            LogicalPlan::Projection(projection) => {
                let column = plain_column(projection.expr.get(index)?)?;
                (projection.input.as_ref(), projection.input.schema().maybe_index_of_column(column)?)
            }
            LogicalPlan::Filter(filter) => (filter.input.as_ref(), index),
            LogicalPlan::Sort(sort) => (sort.input.as_ref(), index),
            LogicalPlan::Limit(limit) => (limit.input.as_ref(), index),
            LogicalPlan::Repartition(repartition) => (repartition.input.as_ref(), index),
            LogicalPlan::SubqueryAlias(alias) => (alias.input.as_ref(), index),
            LogicalPlan::Distinct(Distinct::All(input)) => (input.as_ref(), index),
            LogicalPlan::Window(window) => passed_through(plan.schema(), index, &window.input)?,
            LogicalPlan::Aggregate(aggregate) if index < group_columns(aggregate) => {
                passed_through(plan.schema(), index, &aggregate.input)?
            }
            LogicalPlan::Join(join) => passed_through(plan.schema(), index, &join.left)
                .or_else(|| passed_through(plan.schema(), index, &join.right))?,
            _ => return None,
        };
        (plan, index) = (input, input_index);
    }
    None
}

/// The column an expression is, unwrapping aliases.
fn plain_column(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::Column(column) => Some(column),
        Expr::Alias(alias) => plain_column(&alias.expr),
        _ => None,
    }
}

/// Output column `index` of a node whose output keeps its input's columns by
/// qualified name: the input and the index there.
fn passed_through<'a>(schema: &DFSchema, index: usize, input: &'a LogicalPlan) -> Option<(&'a LogicalPlan, usize)> {
    let (qualifier, field) = schema.qualified_field(index);
    let column = Column::new(qualifier.cloned(), field.name());
    Some((input, input.schema().maybe_index_of_column(&column)?))
}

/// How many output columns of an aggregate are its group keys (the rest are
/// aggregates).
fn group_columns(aggregate: &Aggregate) -> usize {
    aggregate.schema.fields().len().saturating_sub(aggregate.aggr_expr.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::empty::EmptyTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn sources(sql: &str) -> Vec<Option<String>> {
        let context = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        context.register_table("t", Arc::new(EmptyTable::new(Arc::clone(&schema)))).unwrap();
        context.register_table("u", Arc::new(EmptyTable::new(schema))).unwrap();
        let plan = context.state().create_logical_plan(sql).await.unwrap();
        column_sources(&plan, context.state().config_options())
            .into_iter()
            .map(|source| source.map(|s| format!("{}.{}.{}.{}", s.catalog, s.schema, s.table, s.column)))
            .collect()
    }

    fn some(names: &[&str]) -> Vec<Option<String>> {
        names.iter().map(|name| (!name.is_empty()).then(|| (*name).to_owned())).collect()
    }

    #[tokio::test]
    async fn columns_passed_through_keep_their_table() {
        let plain = sources("SELECT id, name AS label FROM t WHERE id > 1 ORDER BY name LIMIT 3").await;
        assert_eq!(plain, some(&["datafusion.public.t.id", "datafusion.public.t.name"]));
        let joined = sources("SELECT u.name, t.id FROM t JOIN u ON t.id = u.id").await;
        assert_eq!(joined, some(&["datafusion.public.u.name", "datafusion.public.t.id"]));
        let aliased = sources("SELECT x.id FROM (SELECT DISTINCT id FROM t) AS x").await;
        assert_eq!(aliased, some(&["datafusion.public.t.id"]));
        let grouped = sources("SELECT name, count(*) AS n FROM t GROUP BY name").await;
        assert_eq!(grouped, some(&["datafusion.public.t.name", ""]));
    }

    #[tokio::test]
    async fn computed_columns_have_no_source() {
        let computed = sources("SELECT id + 1 AS id, upper(name) AS name, 1 AS one FROM t").await;
        assert_eq!(computed, some(&["", "", ""]));
        let union = sources("SELECT id FROM t UNION ALL SELECT id FROM u").await;
        assert_eq!(union, some(&[""]));
        // An alias that reuses a column's name over a computed value is not the column.
        let shadowed = sources("SELECT id FROM (SELECT id * 2 AS id FROM t) AS t").await;
        assert_eq!(shadowed, some(&[""]));
    }
}
