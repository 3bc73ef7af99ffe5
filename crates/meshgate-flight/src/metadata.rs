//! Answers to the Flight SQL catalog commands, from the mesh snapshot: catalog
//! `mesh`, one schema per domain, one table per product.

use arrow::array::RecordBatch;
use arrow_flight::sql::{CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables};
use meshgate_catalog::MeshSnapshot;

use crate::error::FlightError;
use crate::results::wire_schema;

/// The only table type meshgate serves.
pub const TABLE_TYPE: &str = "TABLE";

fn encode_error(error: impl std::fmt::Display) -> FlightError {
    FlightError::Encode(error.to_string())
}

pub fn catalogs(snapshot: &MeshSnapshot, command: CommandGetCatalogs) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    builder.append(snapshot.catalog_name());
    builder.build().map_err(encode_error)
}

pub fn db_schemas(snapshot: &MeshSnapshot, command: CommandGetDbSchemas) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    for domain in snapshot.domain_names() {
        builder.append(snapshot.catalog_name(), domain);
    }
    builder.build().map_err(encode_error)
}

pub fn tables(snapshot: &MeshSnapshot, command: CommandGetTables) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    for entry in snapshot.products() {
        let schema = wire_schema(&datafusion::catalog::TableProvider::schema(entry.table.as_ref()));
        builder
            .append(snapshot.catalog_name(), &entry.product.domain, &entry.product.name, TABLE_TYPE, &schema)
            .map_err(encode_error)?;
    }
    builder.build().map_err(encode_error)
}

pub fn table_types(command: CommandGetTableTypes) -> Result<RecordBatch, FlightError> {
    let mut builder = command.into_builder();
    builder.append(TABLE_TYPE);
    builder.build().map_err(encode_error)
}
