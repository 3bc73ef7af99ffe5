//! GetPrimaryKeys (from columns declared `key: true` in descriptors) and the
//! foreign-key commands, which answer empty until descriptors declare relationships.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::CommandGetPrimaryKeys;
use meshgate_policy::MeshView;

use crate::error::FlightError;

/// The Flight SQL schema of GetPrimaryKeys.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The Flight SQL schema of GetExportedKeys, GetImportedKeys and GetCrossReference.
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// The declared key columns of the product the command names, in declaration order.
/// Only products the caller may read, and only key columns they can see.
pub fn primary_keys(view: &MeshView, command: &CommandGetPrimaryKeys) -> Result<RecordBatch, FlightError> {
    let catalog = view.snapshot().catalog_name();
    let catalog_matches = command.catalog.as_deref().is_none_or(|c| c == catalog);
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for entry in view.products().into_iter().filter(|_| catalog_matches) {
        let product = &entry.product;
        if product.name != command.table || command.db_schema.as_deref().is_some_and(|s| s != product.domain) {
            continue;
        }
        let Some(table) = view.table(&product.domain, &product.name)? else { continue };
        let visible = datafusion::catalog::TableProvider::schema(table.as_ref());
        let keys = product
            .schema
            .iter()
            .flatten()
            .filter(|column| column.key && visible.field_with_name(&column.name).is_ok());
        for column in keys {
            rows.push((
                product.domain.clone(),
                product.name.clone(),
                column.name.clone(),
                format!("{}_pkey", product.name),
            ));
        }
    }
    let column = |values: Vec<&str>| Arc::new(StringArray::from(values)) as ArrayRef;
    let sequence: Vec<i32> = rows
        .iter()
        .scan((String::new(), 0), |(table, n), row| {
            let key = format!("{}.{}", row.0, row.1);
            *n = if *table == key { *n + 1 } else { 1 };
            *table = key;
            Some(*n)
        })
        .collect();
    RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            column(rows.iter().map(|_| catalog).collect()),
            column(rows.iter().map(|r| r.0.as_str()).collect()),
            column(rows.iter().map(|r| r.1.as_str()).collect()),
            column(rows.iter().map(|r| r.2.as_str()).collect()),
            column(rows.iter().map(|r| r.3.as_str()).collect()),
            Arc::new(Int32Array::from(sequence)),
        ],
    )
    .map_err(FlightError::from)
}

/// An empty foreign-key answer: descriptors declare no relationships yet.
pub fn no_foreign_keys() -> RecordBatch {
    RecordBatch::new_empty(foreign_keys_schema())
}
