//! Substrait plans (Flight SQL `CommandStatementSubstraitPlan`), planned in the same
//! locked, governed session as SQL: the plan's named tables resolve in the
//! principal's view of the mesh (a hidden product is absent), and it must be a
//! read-only query over mesh products — a plan that reads files by path
//! (`LocalFiles`) or carries DDL/DML is refused.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{DataFusionError, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Filter, LogicalPlan};
use datafusion_substrait::logical_plan::consumer::from_substrait_plan;
use datafusion_substrait::substrait::proto::Plan;
use meshgate_policy::GovernedTable;
use prost::Message;

use crate::error::EngineError;

/// Decodes a serialized Substrait `Plan` and lists the tables it reads by name.
/// Any read that is not of a named table (files by path, extension tables) is refused.
pub(crate) fn decode_substrait(bytes: &[u8]) -> Result<(Plan, Vec<TableReference>), EngineError> {
    let plan = Plan::decode(bytes).map_err(|error| {
        // prost stops at 100 levels of nested messages, before any recursion can
        // exhaust a stack.
        if error.to_string().contains("recursion limit") {
            EngineError::TooComplex("the Substrait plan nests more than 100 messages deep".into())
        } else {
            EngineError::InvalidSql(format!("the Substrait plan cannot be decoded: {error}"))
        }
    })?;
    let json = serde_json::to_value(&plan)
        .map_err(|error| EngineError::InvalidSql(format!("the Substrait plan cannot be read: {error}")))?;
    let mut tables = Vec::new();
    reads(&json, &mut tables)?;
    Ok((plan, tables))
}

/// Walks the plan (as its canonical JSON) for `read` relations.
fn reads(node: &serde_json::Value, tables: &mut Vec<TableReference>) -> Result<(), EngineError> {
    match node {
        serde_json::Value::Object(fields) => {
            for (key, value) in fields {
                match key.as_str() {
                    "namedTable" => {
                        let names: Vec<String> = value
                            .get("names")
                            .and_then(|names| names.as_array())
                            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        tables.push(match names.as_slice() {
                            [table] => TableReference::bare(table.as_str()),
                            [schema, table] => TableReference::partial(schema.as_str(), table.as_str()),
                            [catalog, schema, table] => {
                                TableReference::full(catalog.as_str(), schema.as_str(), table.as_str())
                            }
                            _ => {
                                return Err(EngineError::InvalidSql(
                                    "a Substrait named table has no valid name".into(),
                                ));
                            }
                        });
                    }
                    "localFiles" | "extensionTable" | "icebergTable" => {
                        return Err(EngineError::Refused {
                            what: "a Substrait read that is not a mesh product (files by path, extension tables)"
                                .into(),
                        });
                    }
                    _ => reads(value, tables)?,
                }
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(|item| reads(item, tables)),
        _ => Ok(()),
    }
}

/// Plans a decoded Substrait plan in `state`.
pub(crate) async fn substrait_to_plan(state: &SessionState, plan: &Plan) -> Result<LogicalPlan, EngineError> {
    let logical = from_substrait_plan(state, plan).await.map_err(consumer_error)?;
    only_mesh_products(&logical)?;
    lift_scan_filters(logical)
}

/// Every table the plan reads is a governed mesh product (or information_schema).
fn only_mesh_products(plan: &LogicalPlan) -> Result<(), EngineError> {
    let mut refused = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let governed = datafusion::datasource::source_as_provider(&scan.source)
                .map(|provider| provider.is::<GovernedTable>())
                .unwrap_or(false);
            if !governed && scan.table_name.schema() != Some("information_schema") {
                refused = Some(scan.table_name.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match refused {
        Some(table) => Err(EngineError::Refused {
            what: format!("a Substrait read of '{table}' that is not a mesh product (files by path)"),
        }),
        None => Ok(()),
    }
}

/// The consumer puts a read's filter straight into its TableScan, where the provider
/// would have to apply it exactly; as a Filter above the scan, the optimizer pushes
/// it down only as far as the governed table allows.
fn lift_scan_filters(plan: LogicalPlan) -> Result<LogicalPlan, EngineError> {
    let lifted = plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::TableScan(mut scan) if !scan.filters.is_empty() => {
            let filters = std::mem::take(&mut scan.filters);
            let predicate = conjunction(filters).ok_or_else(|| DataFusionError::Internal("no filter".into()))?;
            let filter = Filter::try_new(predicate, Arc::new(LogicalPlan::TableScan(scan)))?;
            Ok(Transformed::yes(LogicalPlan::Filter(filter)))
        }
        other => Ok(Transformed::no(other)),
    })?;
    Ok(lifted.data)
}

/// A product the principal cannot see reads as "No table named …": NOT_FOUND, as in SQL.
fn consumer_error(error: DataFusionError) -> EngineError {
    let message = error.find_root().strip_backtrace();
    if let Some(rest) = message.split_once("No table named '").map(|(_, rest)| rest)
        && let Some((name, _)) = rest.split_once('\'')
    {
        return EngineError::TableNotFound { name: TableReference::from(name).to_string(), hint: String::new() };
    }
    EngineError::InvalidSql(format!("the Substrait plan cannot be planned: {message}"))
}

/// The Substrait version plans are read as (reported in GetSqlInfo).
pub fn substrait_version() -> String {
    let version = datafusion_substrait::substrait::version::version();
    format!("{}.{}.{}", version.major_number, version.minor_number, version.patch_number)
}
