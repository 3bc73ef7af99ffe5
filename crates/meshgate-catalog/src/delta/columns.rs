//! A Delta product with a declared schema serves its declared columns, in their
//! declared order, as the table stores them (type and nullability from the table):
//! like a Parquet product, columns the table has beyond the contract are not served.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::config::Column;

/// The schema of the declared columns the table has and the table serving them; the
/// table itself when it has exactly those columns in that order. (A declared column
/// the table lacks is schema drift, reported by the caller.)
pub(super) fn declared(
    declared: &[Column],
    found: &SchemaRef,
    table: Arc<dyn TableProvider>,
) -> (SchemaRef, Arc<dyn TableProvider>) {
    let columns: Vec<usize> = declared.iter().filter_map(|column| found.index_of(&column.name).ok()).collect();
    if columns.iter().copied().eq(0..found.fields().len()) {
        return (Arc::clone(found), table);
    }
    let schema = Arc::new(Schema::new_with_metadata(
        columns.iter().map(|&index| Arc::clone(&found.fields()[index])).collect::<Vec<_>>(),
        found.metadata().clone(),
    ));
    (Arc::clone(&schema), Arc::new(DeclaredColumns { table, schema, columns }))
}

/// Serves some of a table's columns: column `i` here is column `columns[i]` there.
#[derive(Debug)]
struct DeclaredColumns {
    table: Arc<dyn TableProvider>,
    schema: SchemaRef,
    columns: Vec<usize>,
}

#[async_trait]
impl TableProvider for DeclaredColumns {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection = match projection {
            None => self.columns.clone(),
            Some(indices) => indices
                .iter()
                .map(|&index| {
                    self.columns.get(index).copied().ok_or_else(|| {
                        DataFusionError::Internal(format!("column {index} is not one of the product's columns"))
                    })
                })
                .collect::<Result<_>>()?,
        };
        self.table.scan(state, Some(&projection), filters, limit).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters name columns, which keep their names here.
        self.table.supports_filters_pushdown(filters)
    }
}
