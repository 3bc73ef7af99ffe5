//! Checks as SQL over the raw product, in a private DataFusion session where the
//! product is the only table: the owner's checks see every row, ungoverned, and
//! can read nothing else.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::context::{SQLOptions, SessionContext};

use crate::config::contract::{Check, Rule};
use crate::snapshot::{MeshSnapshot, ProductEntry};

/// A session whose only table is the product, under its usual names (`orders`,
/// `sales.orders`, `mesh.sales.orders`), on the snapshot's runtime and settings.
pub(crate) fn private_context(
    snapshot: &MeshSnapshot,
    entry: &ProductEntry,
) -> Result<SessionContext, DataFusionError> {
    let product = &entry.product;
    let config = snapshot
        .session_config()
        .clone()
        .with_information_schema(false)
        .with_default_catalog_and_schema(snapshot.catalog_name(), &product.domain);
    let ctx = SessionContext::new_with_config_rt(config, Arc::clone(snapshot.runtime()));
    let schema = Arc::new(MemorySchemaProvider::new());
    schema.register_table(product.name.clone(), entry.table.clone())?;
    let catalog = Arc::new(MemoryCatalogProvider::new());
    catalog.register_schema(&product.domain, schema)?;
    ctx.register_catalog(snapshot.catalog_name(), catalog);
    Ok(ctx)
}

/// Checks run statements, nothing else.
fn options() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// The SQL that measures `check` on the product named `table`.
pub(crate) fn check_sql(check: &Check, table: &str) -> String {
    let t = ident(table);
    let violations = |condition: String| format!("SELECT count(*) FROM {t} WHERE {condition}");
    match &check.rule {
        Rule::RowCount => format!("SELECT count(*) FROM {t}"),
        Rule::NotNull { column } => violations(format!("{} IS NULL", ident(column))),
        Rule::Unique { columns } => {
            let keys: Vec<String> = columns.iter().map(|c| ident(c)).collect();
            let present: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
            format!(
                "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {t} WHERE {} GROUP BY {} HAVING count(*) > 1)",
                present.join(" AND "),
                keys.join(", ")
            )
        }
        Rule::AllowedValues { column, values } => {
            let c = ident(column);
            violations(format!("{c} IS NOT NULL AND {c} NOT IN ({})", values.join(", ")))
        }
        Rule::Range { column, min, max } => {
            let c = ident(column);
            let mut outside = Vec::new();
            if let Some(min) = min {
                outside.push(format!("{c} < {min}"));
            }
            if let Some(max) = max {
                outside.push(format!("{c} > {max}"));
            }
            violations(outside.join(" OR "))
        }
        Rule::Regex { column, pattern } => {
            let c = ident(column);
            let pattern = pattern.replace('\'', "''");
            violations(format!("{c} IS NOT NULL AND NOT regexp_like(CAST({c} AS VARCHAR), '{pattern}')"))
        }
        Rule::SqlExpression { expression } => violations(format!("({expression}) IS NOT TRUE")),
        Rule::SqlQuery { query } => query.clone(),
    }
}

/// The SQL giving the newest value of an event-time column.
pub(crate) fn newest_sql(column: &str, table: &str) -> String {
    format!("SELECT max({}) FROM {}", ident(column), ident(table))
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Plans `sql` in the private session without running it: the result's schema.
pub(crate) async fn plan(ctx: &SessionContext, sql: &str) -> Result<Arc<Schema>, DataFusionError> {
    let frame = ctx.sql_with_options(sql, options()).await?;
    Ok(Arc::new(frame.schema().as_arrow().clone()))
}

/// Why a planned check cannot be evaluated: its result is not one boolean or number,
/// or a number with nothing to compare it to.
pub(crate) fn result_problem(check: &Check, schema: &Schema) -> Option<String> {
    let [field] = schema.fields().as_ref() else {
        return Some(format!("returns {} columns; a check's query returns one value", schema.fields().len()));
    };
    match field.data_type() {
        DataType::Boolean => None,
        numeric if numeric.is_numeric() => check.expect.0.is_empty().then(|| {
            "returns a number: say what it must be (must_be, must_be_less_than, …) or return a boolean".to_owned()
        }),
        other => Some(format!("returns {other}; a check's query returns one boolean or number")),
    }
}

/// Runs `sql` and returns its one value: a number, or a boolean as 1 or 0.
pub(crate) async fn measure(ctx: &SessionContext, sql: &str) -> Result<f64, String> {
    let batches = run(ctx, sql).await?;
    let value = single_value(&batches)?;
    match value {
        ScalarValue::Boolean(Some(flag)) => Ok(if flag { 1.0 } else { 0.0 }),
        value if value.is_null() => Err("the query returned NULL".to_owned()),
        value => match value.cast_to(&DataType::Float64) {
            Ok(ScalarValue::Float64(Some(number))) => Ok(number),
            _ => Err(format!("the query returned {value}, not a number")),
        },
    }
}

/// Runs `sql` and returns its one value as it is.
pub(crate) async fn scalar(ctx: &SessionContext, sql: &str) -> Result<ScalarValue, String> {
    single_value(&run(ctx, sql).await?)
}

async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let collected = async { ctx.sql_with_options(sql, options()).await?.collect().await };
    collected.await.map_err(|error| message(&error))
}

fn single_value(batches: &[RecordBatch]) -> Result<ScalarValue, String> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err("the query returned no rows; a check's query returns one value".to_owned());
    };
    if rows > 1 || batch.num_columns() != 1 {
        return Err(format!(
            "the query returned {rows} rows of {} columns; a check's query returns one value",
            batch.num_columns()
        ));
    }
    ScalarValue::try_from_array(batch.column(0), 0).map_err(|error| message(&error))
}

/// A DataFusion error as users read it: the product's problem if it has one.
pub(crate) fn message(error: &DataFusionError) -> String {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(product) = current.downcast_ref::<crate::ProductError>() {
            return product.to_string();
        }
        if let Some(DataFusionError::External(inner)) = current.downcast_ref::<DataFusionError>()
            && let Some(product) = inner.downcast_ref::<crate::ProductError>()
        {
            return product.to_string();
        }
        match current.source() {
            Some(source) => current = source,
            None => return error.find_root().strip_backtrace(),
        }
    }
}
