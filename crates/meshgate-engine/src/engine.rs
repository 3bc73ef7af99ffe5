//! `Engine`: plans and runs SQL over one mesh snapshot in a locked, per-request
//! DataFusion session.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::{SQLOptions, SessionConfig};
use meshgate_catalog::{MeshCatalog, MeshSnapshot};

use crate::error::EngineError;
use crate::sql_guard::{check_statement, is_url_table};

/// The schema name no domain may take; unqualified names resolve against it and fail
/// with a hint.
const NO_DEFAULT_SCHEMA: &str = "__meshgate_no_default_schema";

/// DataFusion settings meshgate runs with (also used to open the products' files).
pub fn session_config(catalog: &str) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(catalog, NO_DEFAULT_SCHEMA)
        .with_create_default_catalog_and_schema(false);
    let options = config.options_mut();
    // Plain Utf8/Binary reach every Flight SQL client; view types do not.
    options.execution.parquet.schema_force_view_types = false;
    options.sql_parser.map_string_types_to_utf8view = false;
    config
}

/// Plans and executes queries against one snapshot.
#[derive(Debug, Clone)]
pub struct Engine {
    snapshot: Arc<MeshSnapshot>,
    state: SessionState,
}

/// A planned query: its logical plan and the schema of its result.
#[derive(Debug)]
pub struct Query {
    plan: LogicalPlan,
    state: SessionState,
}

impl Query {
    /// The schema the result's batches have.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(self.plan.schema().inner())
    }

    /// Starts execution; batches stream as the plan produces them.
    pub async fn execute(self) -> Result<SendableRecordBatchStream, EngineError> {
        let physical = self.state.create_physical_plan(&self.plan).await?;
        Ok(execute_stream(physical, self.state.task_ctx())?)
    }
}

impl Engine {
    pub fn new(snapshot: Arc<MeshSnapshot>) -> Self {
        let state = SessionStateBuilder::new()
            .with_config(snapshot.session_config().clone())
            .with_runtime_env(Arc::clone(snapshot.runtime()))
            .with_default_features()
            .build();
        state
            .catalog_list()
            .register_catalog(snapshot.catalog_name().to_owned(), Arc::new(MeshCatalog::new(Arc::clone(&snapshot))));
        Self { snapshot, state }
    }

    pub fn snapshot(&self) -> &Arc<MeshSnapshot> {
        &self.snapshot
    }

    /// The session every query starts from (functions, settings, catalog).
    pub fn session_state(&self) -> &SessionState {
        &self.state
    }

    /// Parses, checks and plans `sql`. Refuses anything but read-only queries over the
    /// mesh's tables; names unknown tables and unreadable products.
    pub async fn plan(&self, sql: &str) -> Result<Query, EngineError> {
        let mut state = self.state.clone();
        // Fixes now() and friends for this query, as SessionContext::sql does.
        state.mark_start_execution();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).map_err(EngineError::from)?;
        check_statement(&statement, sql)?;
        for reference in state.resolve_table_references(&statement)? {
            self.check_table(&reference)?;
        }
        let plan = state.statement_to_plan(statement).await?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|error| EngineError::Refused { what: error.find_root().strip_backtrace() })?;
        Ok(Query { plan, state })
    }

    /// A table reference must name a product of this mesh (or information_schema).
    fn check_table(&self, reference: &TableReference) -> Result<(), EngineError> {
        if is_url_table(reference) {
            return Err(EngineError::Refused {
                what: format!("URL table '{}' (reading files by URL or path)", reference.table()),
            });
        }
        let not_found = |hint: &str| EngineError::TableNotFound { name: reference.to_string(), hint: hint.to_owned() };
        if let Some(catalog) = reference.catalog()
            && catalog != self.snapshot.catalog_name()
        {
            return Err(not_found(""));
        }
        let Some(schema) = reference.schema() else {
            // Data-generating table functions such as generate_series read no files.
            if self.state.table_functions().contains_key(reference.table()) {
                return Ok(());
            }
            return Err(not_found("; name products as domain.product, for example sales.orders"));
        };
        if schema == "information_schema" {
            return Ok(());
        }
        let entry = self.snapshot.product(schema, reference.table()).ok_or_else(|| not_found(""))?;
        match entry.table.refusal() {
            Some(problem) => Err(EngineError::Product(problem)),
            None => Ok(()),
        }
    }
}
