//! Provenance columns: where each row of a product comes from. With provenance on,
//! a product's scan also yields `_source_file` (the file's path in its store) and
//! `_source_row` (the row's 0-based position in that file), computed by the file
//! reader itself, so pruning, filters and byte-range splits never shift them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::projection::ProjectionExec;

use crate::ProductScanExec;

/// The column holding the path of the file a row was read from.
pub const SOURCE_FILE: &str = "_source_file";
/// The column holding a row's 0-based position in its file.
pub const SOURCE_ROW: &str = "_source_row";

/// The provenance columns, as they are appended to a product's schema.
pub fn provenance_fields() -> [Field; 2] {
    [Field::new(SOURCE_FILE, DataType::Utf8, false), Field::new(SOURCE_ROW, DataType::Int64, false)]
}

/// `scan` (a product's scan, as [`crate::ProductTable`] returns it) with the two
/// provenance columns after its own. Only file scans can say where a row is: a
/// product whose rows do not come from such a scan is refused by name.
pub fn with_provenance(scan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(product_scan) = scan.downcast_ref::<ProductScanExec>() else {
        return Err(unavailable("this table", "it is not read from files"));
    };
    let product = product_scan.product().to_owned();
    let input = Arc::clone(product_scan.children()[0]);
    let Some(files) = input.downcast_ref::<DataSourceExec>().filter(|s| s.data_source().is::<FileScanConfig>()) else {
        return Err(unavailable(
            &product,
            "its rows are not read straight from its files (Delta products are not yet)",
        ));
    };
    let parquet = files
        .data_source()
        .downcast_ref::<FileScanConfig>()
        .is_some_and(|config| config.file_source().file_type() == "parquet");
    if !parquet {
        return Err(unavailable(&product, "row positions are known for Parquet files only"));
    }
    let schema = files.schema();
    let mut expressions: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| (Arc::new(Column::new(field.name(), index)) as _, field.name().clone()))
        .collect();
    let config = Arc::new(ConfigOptions::default());
    for (udf, field) in [datafusion::functions::core::input_file_name(), datafusion::functions::core::file_row_index()]
        .into_iter()
        .zip(provenance_fields())
    {
        let name = field.name().clone();
        let function_name = udf.name().to_owned();
        let expr = ScalarFunctionExpr::new(&function_name, udf, vec![], Arc::new(field), Arc::clone(&config));
        expressions.push((Arc::new(expr), name));
    }
    let projection = ProjectionExec::try_new(expressions, Arc::clone(&input))?;
    let Some(pushed) = files.try_swapping_with_projection(&projection)? else {
        return Err(unavailable(&product, "its file format cannot say where a row is"));
    };
    let pushed_schema = pushed.schema();
    let has = |name: &str, ty: &DataType| pushed_schema.field_with_name(name).is_ok_and(|f| f.data_type() == ty);
    if !has(SOURCE_FILE, &DataType::Utf8) || !has(SOURCE_ROW, &DataType::Int64) {
        return Err(unavailable(&product, "its file format cannot say where a row is"));
    }
    let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
    Arc::new(product_scan.clone()).replace_children(vec![pushed], options)
}

fn unavailable(product: &str, why: &str) -> DataFusionError {
    DataFusionError::Plan(format!("provenance columns are not available for {product}: {why}"))
}
