//! Statements: planning what a command, ticket or prepared-statement handle
//! carries, describing its result (schema, endpoints, signed tickets) and starting
//! its batches. The Flight SQL trait implementation in the parent module routes
//! statement calls here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::sql::{
    ActionCreatePreparedStatementResult, ActionCreatePreparedSubstraitPlanRequest, ProstMessageExt, SubstraitPlan,
    TicketStatementQuery,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket};
use datafusion::common::stats::Precision;
use meshgate_engine::{Engine, PlanSettings};
use meshgate_policy::Principal;
use prost::Message;
use tonic::{Request, Status};

use super::MeshFlightSqlService;
use crate::audit;
use crate::column_metadata;
use crate::error::{FlightError, to_status};
use crate::parameters;
use crate::proto::{Purpose, StatementPayload};
use crate::results::{QueryLog, Results};
use crate::session::{CallSettings, Endpoints};
use crate::warnings;

impl MeshFlightSqlService {
    /// The schema a query's results travel in, each column with its Flight SQL
    /// metadata (GetFlightInfo, prepared statements and DoGet announce the same).
    pub(super) fn result_schema(
        &self,
        engine: &Engine,
        principal: &Arc<Principal>,
        query: &meshgate_engine::Query,
    ) -> SchemaRef {
        let view = engine.view(Arc::clone(principal));
        column_metadata::result_schema(&view, &self.wire(&query.schema()), &query.column_sources())
    }

    /// Plans `statement` (SQL, bound parameters, default schema) and describes its
    /// result: schema and signed tickets, one per endpoint. A statement planning
    /// refuses is recorded in the audit log.
    pub(super) async fn statement_info(
        &self,
        principal: &Arc<Principal>,
        mut statement: StatementPayload,
        settings: CallSettings,
        request: Request<FlightDescriptor>,
    ) -> Result<FlightInfo, Status> {
        statement.timeout_ms = settings.query_timeout.map(|t| t.as_millis() as u64).unwrap_or_default();
        statement.time_zone = settings.time_zone.clone().unwrap_or_default();
        statement.declared_purpose = settings.purpose.clone().unwrap_or_default();
        statement.provenance = settings.provenance;
        let acting = acting_for(principal, &statement.declared_purpose);
        let descriptor = request.into_inner();
        let started = Instant::now();
        let engine = self.engine();
        let query = match plan_statement(&engine, &acting, &statement).await {
            Ok(query) => query,
            Err(error) => return Err(self.refused(&engine, principal, &statement, &error, started)),
        };
        let schema = parameters::result_schema(self.result_schema(&engine, &acting, &query), &statement.parameters)?;
        let mut info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(FlightError::from)?
            .with_descriptor(descriptor)
            .with_app_metadata(warnings::app_metadata(query.warnings()));
        // One endpoint unless the client asked for several, the result splits into
        // independent partitions and is not known to be small. Locations stay empty
        // so clients reuse the connection.
        if let Some(shards) = settings.shards {
            if parameters::several_rows(&statement.parameters)? {
                return Err(FlightError::BadRequest(
                    "a statement bound to several parameter rows cannot be read as shards".into(),
                )
                .into());
            }
            let shard_files = match query.shard_fingerprint(shards as usize).await {
                Ok(fingerprint) => fingerprint,
                Err(error) => {
                    let error = FlightError::from(error);
                    return Err(self.refused(&engine, principal, &statement, &error, started));
                }
            };
            for shard in 0..shards {
                let payload = StatementPayload { shard, shards, shard_files: shard_files.clone(), ..statement.clone() };
                let handle = self.signer.seal(payload, principal, Purpose::Ticket);
                let ticket = Ticket::new(TicketStatementQuery { statement_handle: handle }.as_any().encode_to_vec());
                info = info.with_endpoint(FlightEndpoint::new().with_ticket(ticket));
            }
            return Ok(info);
        }
        let mut endpoints: Vec<Option<(u32, u32)>> = vec![None];
        if settings.endpoints == Endpoints::Partitioned && !parameters::several_rows(&statement.parameters)? {
            let shape = query.shape().await.map_err(FlightError::from)?;
            if let Precision::Exact(rows) = shape.rows {
                info = info.with_total_records(rows as i64);
            }
            let small = shape.rows.get_value().is_some_and(|rows| *rows < self.options.partition_min_rows);
            if let Some(count) = shape.independent_partitions.and_then(|n| u32::try_from(n).ok())
                && !small
            {
                endpoints = (0..count).map(|index| Some((index, count))).collect();
            }
        }
        for endpoint in endpoints {
            let (partition, partitions) = endpoint.unwrap_or((0, 0));
            let payload = StatementPayload { partition, partitions, ..statement.clone() };
            let handle = self.signer.seal(payload, principal, Purpose::Ticket);
            let ticket = Ticket::new(TicketStatementQuery { statement_handle: handle }.as_any().encode_to_vec());
            info = info.with_endpoint(FlightEndpoint::new().with_ticket(ticket));
        }
        Ok(info)
    }

    /// Starts the statement a ticket carries: its batches, ready to stream. The call's
    /// purpose header, if any, must be the ticket's (a ticket without one takes it);
    /// a training-set header is recorded.
    pub(crate) async fn start_ticket(
        &self,
        principal: &Arc<Principal>,
        handle: &[u8],
        mut notes: audit::CallNotes,
    ) -> Result<Results, Status> {
        let payload = self.signer.verify(handle, principal, Purpose::Ticket)?;
        // The purpose the ticket was planned for governs; a DoGet may say it again, not
        // change it (a ticket without one takes the DoGet's).
        let purpose = match (payload.declared_purpose.as_str(), notes.purpose.take()) {
            ("", purpose) => purpose,
            (issued, Some(said)) if said != issued => {
                return Err(FlightError::BadRequest(format!(
                    "this ticket was issued for purpose '{issued}', not '{said}'; request a new ticket for that purpose"
                ))
                .into());
            }
            (issued, _) => Some(issued.to_owned()),
        };
        let acting = acting_for(principal, purpose.as_deref().unwrap_or_default());
        let running = self.cancellations.start(handle, payload.expires_at_ms)?;
        // One engine for the whole call, even if a reload swaps it meanwhile.
        let engine = self.engine();
        notes.purpose = purpose;
        let audit = audit::begin(self.audit(), &engine, principal, &payload, notes);
        let pool = Arc::clone(&engine.snapshot().runtime().memory_pool);
        let log = QueryLog::new(&principal.name, &payload.sql, pool, audit, Arc::clone(self.metrics()));
        let started = async {
            let query = plan_statement(&engine, &acting, &payload).await?;
            log.planned(audit::planned(self.audit(), &query));
            log.spread(query.spread());
            let warnings = query.warnings().to_vec();
            let schema = parameters::result_schema(self.result_schema(&engine, &acting, &query), &payload.parameters)?;
            let batches = match (payload.shards, payload.partitions) {
                (0, 0) => execute_rows(query, &engine, &acting, &payload).await?,
                (0, count) => query.execute_partition(payload.partition as usize, count as usize).await?,
                (shards, _) => {
                    query.execute_shard(payload.shard as usize, shards as usize, &payload.shard_files).await?
                }
            };
            Ok::<_, FlightError>((batches, schema, warnings))
        }
        .await;
        match started {
            Ok((batches, schema, warnings)) => Ok(Results { batches, schema, log, running, warnings }),
            Err(error) => {
                let status = to_status(&error);
                log.refuse(&status);
                Err(status)
            }
        }
    }

    /// CreatePreparedSubstraitPlan (arrow-flight's dispatcher drops the result of its
    /// trait method, so the wrapper service routes the action here).
    pub(crate) async fn prepare_substrait(
        &self,
        request: ActionCreatePreparedSubstraitPlanRequest,
        principal: &Arc<Principal>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let plan = substrait_bytes(request.plan)?;
        let statement = StatementPayload { substrait_plan: plan, prepared: true, ..Default::default() };
        let started = Instant::now();
        let engine = self.engine();
        let query = plan_statement(&engine, principal, &statement)
            .await
            .map_err(|error| self.refused(&engine, principal, &statement, &error, started))?;
        let dataset_schema = schema_bytes(&self.result_schema(&engine, principal, &query))?;
        let parameter_schema = schema_bytes(&Schema::new(query.parameter_fields().map_err(FlightError::from)?))?;
        let handle = self.signer.seal(statement, principal, Purpose::PreparedStatement);
        Ok(ActionCreatePreparedStatementResult { prepared_statement_handle: handle, dataset_schema, parameter_schema })
    }

    /// The statement a prepared-statement handle carries, for its principal.
    pub(super) fn prepared(&self, handle: &[u8], principal: &Principal) -> Result<StatementPayload, FlightError> {
        self.signer.verify(handle, principal, Purpose::PreparedStatement)
    }
}

/// `principal` acting for the purpose a statement was issued for (none when empty):
/// what policies see as `principal.purpose`.
pub(crate) fn acting_for(principal: &Arc<Principal>, purpose: &str) -> Arc<Principal> {
    if purpose.is_empty() && principal.purpose().is_none() {
        return Arc::clone(principal);
    }
    Arc::new(Principal::clone(principal).with_purpose(Some(purpose).filter(|p| !p.is_empty())))
}

/// Plans what a ticket or handle carries: its Substrait plan or its SQL (in its
/// default schema), with its bound parameters.
pub(super) async fn plan_statement(
    engine: &Engine,
    principal: &Arc<Principal>,
    statement: &StatementPayload,
) -> Result<meshgate_engine::Query, FlightError> {
    // The client's timeout covers planning too (the server's always applies).
    let settings = PlanSettings {
        default_schema: Some(statement.default_schema.clone()).filter(|s| !s.is_empty()),
        time_zone: Some(statement.time_zone.clone()).filter(|zone| !zone.is_empty()),
        timeout: Some(Duration::from_millis(statement.timeout_ms)).filter(|limit| !limit.is_zero()),
        provenance: statement.provenance,
    };
    let query = if statement.substrait_plan.is_empty() {
        engine.plan_with(principal, &statement.sql, &settings).await?
    } else {
        engine.plan_substrait_with(principal, &statement.substrait_plan, &settings).await?
    };
    Ok(query.bind(parameters::decode(&statement.parameters)?)?)
}

/// Executes a planned statement bound to its first parameter row, then the
/// statement bound to each other row in turn (see [`parameters::chain_rows`]).
pub(super) async fn execute_rows(
    query: meshgate_engine::Query,
    engine: &Arc<Engine>,
    principal: &Arc<Principal>,
    payload: &StatementPayload,
) -> Result<datafusion::execution::SendableRecordBatchStream, FlightError> {
    let others = parameters::other_rows(&payload.parameters)?;
    let first = query.execute().await?;
    if others.is_empty() {
        return Ok(first);
    }
    let (engine, principal, payload) = (Arc::clone(engine), Arc::clone(principal), payload.clone());
    Ok(parameters::chain_rows(first, others, move |row| {
        let (engine, principal) = (Arc::clone(&engine), Arc::clone(&principal));
        let statement = StatementPayload { parameters: row, ..payload.clone() };
        async move {
            let mut query = plan_statement(&engine, &principal, &statement).await?;
            if statement.timeout_ms > 0 {
                query = query.limit_time(Duration::from_millis(statement.timeout_ms));
            }
            Ok(query.execute().await?)
        }
    }))
}

/// The plan bytes of a Substrait command.
pub(super) fn substrait_bytes(plan: Option<SubstraitPlan>) -> Result<Vec<u8>, FlightError> {
    match plan {
        Some(plan) if !plan.plan.is_empty() => Ok(plan.plan.to_vec()),
        _ => Err(FlightError::BadRequest("the Substrait command carries no plan".into())),
    }
}

pub(super) fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, FlightError> {
    let IpcMessage(bytes) =
        SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into().map_err(FlightError::from)?;
    Ok(bytes)
}
