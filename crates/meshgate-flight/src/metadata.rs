//! Answers to the Flight SQL catalog commands, from the caller's view of the mesh:
//! catalog `mesh`, one schema per domain with something visible, one table per
//! product they may read, with its post-policy schema.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::sql::{CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables};
use meshgate_engine::{SYSTEM_SCHEMA, SystemTable};
use meshgate_policy::MeshView;

use crate::column_metadata;
use crate::error::FlightError;
use crate::results::wire_schema;

/// The table type of data products.
pub const TABLE_TYPE: &str = "TABLE";

/// The table type of the `mesh_catalog` system tables.
pub const SYSTEM_TABLE_TYPE: &str = "SYSTEM TABLE";

fn encode_error(error: impl std::fmt::Display) -> FlightError {
    FlightError::Encode(error.to_string())
}

pub fn catalogs(view: &MeshView, command: CommandGetCatalogs) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    builder.append(view.snapshot().catalog_name());
    builder.build().map_err(encode_error)
}

pub fn db_schemas(view: &MeshView, command: CommandGetDbSchemas) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    for domain in view.domain_names() {
        builder.append(view.snapshot().catalog_name(), domain);
    }
    builder.append(view.snapshot().catalog_name(), SYSTEM_SCHEMA);
    builder.build().map_err(encode_error)
}

/// `view_types`: as the service sends results, so GetTables and DoGet agree. Table
/// schemas carry each column's metadata and descriptions ([`column_metadata`]).
pub fn tables(view: &MeshView, command: CommandGetTables, view_types: bool) -> Result<RecordBatch, FlightError> {
    let include_schema = command.include_schema;
    let mut builder = command.into_builder();
    let catalog = view.snapshot().catalog_name();
    for entry in view.products() {
        let product = &entry.product;
        let Some(table) = view.table(&product.domain, &product.name)? else { continue };
        let schema = if include_schema {
            let visible = wire_schema(&datafusion::catalog::TableProvider::schema(table.as_ref()), view_types);
            column_metadata::product_schema(catalog, product, &visible)
        } else {
            Schema::empty()
        };
        builder.append(catalog, &product.domain, &product.name, TABLE_TYPE, &schema).map_err(encode_error)?;
    }
    for table in SystemTable::ALL {
        let schema = if include_schema { column_metadata::system_schema(catalog, table) } else { Schema::empty() };
        builder.append(catalog, SYSTEM_SCHEMA, table.name(), SYSTEM_TABLE_TYPE, &schema).map_err(encode_error)?;
    }
    builder.build().map_err(encode_error)
}

pub fn table_types(command: CommandGetTableTypes) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    builder.append(TABLE_TYPE);
    builder.append(SYSTEM_TABLE_TYPE);
    builder.build().map_err(encode_error)
}
