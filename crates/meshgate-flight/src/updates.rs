//! The Flight SQL write paths (DoPut of CommandStatementUpdate,
//! CommandPreparedStatementUpdate, CommandStatementSubstraitPlan and
//! CommandStatementIngest), which a read-only gateway refuses with the README's
//! errors: DDL and DML by the statement's name (INVALID_ARGUMENT), a query sent as an
//! update with how to run it, bulk ingestion as a command meshgate does not serve.

use arrow_flight::sql::CommandStatementIngest;
use meshgate_engine::EngineError;

use crate::error::FlightError;

/// A query sent to an update path: it is valid, but answers rows and updates none.
pub fn query_as_update() -> FlightError {
    FlightError::BadRequest(
        "this statement is a query: it returns rows and updates nothing, so it cannot run as an update \
         (ADBC execute_update/executemany, JDBC executeUpdate/executeBatch); execute it as a query (ADBC \
         cursor.execute, with a table of parameter rows for several; JDBC executeQuery)"
            .into(),
    )
}

/// The answer to an update statement: the engine's refusal naming the statement when
/// it has one (DDL, DML, COPY, SET…), else that a query is not an update.
pub fn refuse_update(planned: Result<(), EngineError>) -> FlightError {
    match planned {
        Err(error) => FlightError::Engine(error),
        Ok(()) => query_as_update(),
    }
}

/// Bulk ingestion (ADBC `adbc_ingest`), refused by name with the table it was for.
pub fn refuse_ingest(command: &CommandStatementIngest) -> FlightError {
    let table = [command.catalog.as_deref(), command.schema.as_deref(), Some(command.table.as_str())]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    FlightError::Unsupported(format!(
        "bulk ingestion (CommandStatementIngest into '{table}') is not supported by meshgate, a read-only \
         gateway over the mesh's data products; a domain publishes data by writing its product's files"
    ))
}
