//! The Flight SQL service: each RPC decodes, delegates to the engine or the
//! catalog, and encodes. Tickets and handles are signed and stateless.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::sql::DoPutPreparedStatementResult;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementSubstraitPlan, CommandStatementUpdate, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelStatus, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, Ticket,
};
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, stream};
use meshgate_engine::{Engine, PlanSettings};
use meshgate_policy::Principal;
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{authenticated_of, principal_of};
use crate::cancel::Cancellations;
use crate::error::FlightError;
use crate::keys::{foreign_keys_schema, no_foreign_keys, primary_keys, primary_keys_schema};
use crate::metadata;
use crate::metrics::Metrics;
use crate::parameters;
use crate::proto::{Purpose, StatementPayload};
use crate::results::{flight_stream, wire_schema};
use crate::serving::Current;
use crate::session::{CallSettings, Sessions};
use crate::sql_info::sql_info;
use crate::tickets::TicketSigner;
use crate::updates;
use crate::warnings;
use crate::xdbc_types::xdbc_type_info;

pub(crate) mod statements;

use statements::{acting_for, plan_statement, schema_bytes, substrait_bytes};

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

/// Settings of the service itself (the engine's are in its snapshot).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Send Utf8View/BinaryView as they are instead of casting them to Utf8/Binary
    /// (the engine produces views only when configured to).
    pub view_types: bool,
    /// A result estimated to have fewer rows stays one endpoint even when the client
    /// asks for partitions.
    pub partition_min_rows: usize,
    /// Where every query is recorded (audit log, query log and usage, lineage).
    pub audit: meshgate_audit::Audit,
    /// What queries and authentication are counted in (`/metrics`).
    pub metrics: Arc<Metrics>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            view_types: false,
            partition_min_rows: 100_000,
            audit: meshgate_audit::Audit::default(),
            metrics: Arc::default(),
        }
    }
}

/// meshgate's Flight SQL service.
#[derive(Clone)]
pub struct MeshFlightSqlService {
    current: Current,
    signer: TicketSigner,
    pub(crate) sessions: Sessions,
    pub(crate) cancellations: Cancellations,
    options: ServiceOptions,
    sql_info: Arc<SqlInfoData>,
    xdbc_types: Arc<XdbcTypeInfoData>,
}

impl MeshFlightSqlService {
    pub fn new(current: Current, signer: TicketSigner, options: ServiceOptions) -> Result<Self, FlightError> {
        let sql_info = Arc::new(sql_info(current.get().engine.session_state())?);
        let xdbc_types = Arc::new(xdbc_type_info()?);
        let sessions = Sessions::new(signer.clone());
        Ok(Self { current, signer, sessions, cancellations: Cancellations::default(), options, sql_info, xdbc_types })
    }

    /// The engine serving now (one snapshot, one policy set).
    pub(crate) fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.current.get().engine)
    }

    pub fn current(&self) -> &Current {
        &self.current
    }

    pub(crate) fn signer(&self) -> &TicketSigner {
        &self.signer
    }

    pub(crate) fn audit(&self) -> &meshgate_audit::Audit {
        &self.options.audit
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.options.metrics
    }

    /// The call's settings (session options, then call headers).
    pub(crate) fn settings<T>(
        &self,
        request: &Request<T>,
        principal: &Arc<Principal>,
    ) -> Result<CallSettings, FlightError> {
        let visible = |schema: &str| {
            self.engine().view(Arc::clone(principal)).domain_names().iter().any(|domain| domain == schema)
        };
        self.sessions.settings(request, principal, visible)
    }

    /// The schema results travel in.
    fn wire(&self, schema: &Schema) -> SchemaRef {
        wire_schema(schema, self.options.view_types)
    }
}

/// A descriptor without a Flight SQL command is malformed; a command meshgate does
/// not serve (ingestion, transactions) is unimplemented, by name.
fn unknown_command(type_url: &str) -> FlightError {
    if type_url.rsplit_once('/').is_none_or(|(_, name)| name.is_empty()) {
        return FlightError::BadRequest("the request carries no Flight SQL command (an Any with a type URL)".into());
    }
    FlightError::Unsupported(format!(
        "command '{type_url}' is not supported by meshgate (a read-only gateway); query with \
         CommandStatementQuery, a prepared statement or CommandStatementSubstraitPlan"
    ))
}

fn metadata_info(any: Vec<u8>, schema: &Schema, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(FlightError::from)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(any)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn one_batch(batch: arrow::array::RecordBatch) -> Response<DoGetStream> {
    use futures::TryStreamExt;
    let stream = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(stream::once(async { Ok(batch) }))
        .map_err(|error| Status::from(FlightError::Encode(error.to_string())));
    Response::new(Box::pin(stream))
}

#[tonic::async_trait]
impl FlightSqlService for MeshFlightSqlService {
    type FlightService = MeshFlightSqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        // The interceptor has checked the credentials. Answer with one response and the
        // bearer token in the `authorization` header, as Flight SQL drivers expect. The
        // token records the call's credential and expires no later than it does.
        let authenticated = authenticated_of(&request)?;
        let token = self.current.get().auth.issue_token(&authenticated);
        let header =
            format!("Bearer {token}").parse().map_err(|_| Status::internal("cannot encode the bearer token"))?;
        let response = HandshakeResponse { protocol_version: 0, payload: token.into_bytes().into() };
        // The call ends once the client has finished sending (at most 10 s later): ended
        // while the client still sends, it would be reset, and some clients (pyarrow's
        // ClientAuthHandler) then lose the answer they had not read yet.
        let mut incoming = request.into_inner();
        let client_done = async move {
            let drain = async { while let Ok(Some(_)) = incoming.message().await {} };
            let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
            None
        };
        let answer =
            stream::once(async { Ok(response) }).chain(stream::once(client_done).filter_map(std::future::ready));
        let mut response = Response::new(Box::pin(answer) as _);
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        _message: arrow_flight::sql::Any,
    ) -> Result<Response<DoGetStream>, Status> {
        // A ticket we did not issue (garbage, or a tampered type name): a client error.
        Err(FlightError::InvalidTicket("ticket is not valid".into()).into())
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as arrow_flight::flight_service_server::FlightService>::DoActionStream>, Status> {
        self.other_action(request).await
    }

    async fn get_flight_info_fallback(
        &self,
        command: arrow_flight::sql::Command,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unknown_command(command.type_url()).into())
    }

    async fn do_put_fallback(
        &self,
        _request: Request<PeekableFlightDataStream>,
        message: arrow_flight::sql::Any,
    ) -> Result<Response<<Self as arrow_flight::flight_service_server::FlightService>::DoPutStream>, Status> {
        Err(unknown_command(&message.type_url).into())
    }

    async fn get_flight_info_substrait_plan(
        &self,
        command: CommandStatementSubstraitPlan,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = principal_of(&request)?;
        let statement = StatementPayload { substrait_plan: substrait_bytes(command.plan)?, ..Default::default() };
        let settings = self.settings(&request, &principal)?;
        Ok(Response::new(self.statement_info(&principal, statement, settings, request).await?))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = principal_of(&request)?;
        let settings = self.settings(&request, &principal)?;
        let default_schema = settings.schema.clone().unwrap_or_default();
        let statement = StatementPayload { sql: query.query, default_schema, ..Default::default() };
        Ok(Response::new(self.statement_info(&principal, statement, settings, request).await?))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = principal_of(&request)?;
        // The handle's SQL, parameters and schema: what it was prepared (and described) with.
        let payload = self.prepared(&command.prepared_statement_handle, &principal)?;
        let statement = StatementPayload {
            sql: payload.sql,
            parameters: payload.parameters,
            default_schema: payload.default_schema,
            substrait_plan: payload.substrait_plan,
            prepared: true,
            ..Default::default()
        };
        let settings = self.settings(&request, &principal)?;
        Ok(Response::new(self.statement_info(&principal, statement, settings, request).await?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = principal_of(&request)?;
        let notes = crate::audit::CallNotes::from_headers(|name| {
            request.metadata().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
        });
        let results = self.start_ticket(&principal, &ticket.statement_handle, notes).await?;
        let warnings = results.warnings.clone();
        let mut response: Response<DoGetStream> = Response::new(Box::pin(flight_stream(results)));
        warnings::append_metadata(response.metadata_mut(), &warnings);
        Ok(response)
    }

    async fn do_action_create_prepared_statement(
        &self,
        request: ActionCreatePreparedStatementRequest,
        action: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let principal = principal_of(&action)?;
        let settings = self.settings(&action, &principal)?;
        let default_schema = settings.schema.clone().unwrap_or_default();
        let started = Instant::now();
        let engine = self.engine();
        let plan_settings = PlanSettings {
            default_schema: settings.schema,
            time_zone: settings.time_zone,
            timeout: settings.query_timeout,
            provenance: settings.provenance,
        };
        let statement = StatementPayload {
            sql: request.query,
            default_schema,
            declared_purpose: settings.purpose.unwrap_or_default(),
            prepared: true,
            ..Default::default()
        };
        let acting = acting_for(&principal, &statement.declared_purpose);
        let query = engine
            .plan_with(&acting, &statement.sql, &plan_settings)
            .await
            .map_err(|error| self.refused(&engine, &principal, &statement, &FlightError::from(error), started))?;
        let dataset_schema = schema_bytes(&self.result_schema(&engine, &acting, &query))?;
        let parameter_schema = schema_bytes(&Schema::new(query.parameter_fields().map_err(FlightError::from)?))?;
        let statement = StatementPayload { declared_purpose: String::new(), prepared: false, ..statement };
        let handle = self.signer.seal(statement, &principal, Purpose::PreparedStatement);
        Ok(ActionCreatePreparedStatementResult { prepared_statement_handle: handle, dataset_schema, parameter_schema })
    }

    async fn do_put_prepared_statement_query(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        // Stateless: the bound values go into a new signed handle, which the client
        // uses from now on; nothing is kept here, so concurrent bindings never mix.
        let principal = principal_of(&request)?;
        let payload = self.prepared(&command.prepared_statement_handle, &principal)?;
        // Checked before arrow-ipc's reader, which panics on some malformed batches.
        let mut guard = crate::ipc_guard::IpcGuard::default();
        let stream = request.into_inner().map(move |data| {
            let data = data.map_err(|status| arrow_flight::error::FlightError::Tonic(Box::new(status)))?;
            guard.check(&data)?;
            Ok(data)
        });
        // arrow-data still asserts on some buffers too small for their batch (upstream);
        // such a panic is the client's malformed input, answered as such.
        let decoded = std::panic::AssertUnwindSafe(FlightRecordBatchStream::new_from_flight_data(stream).try_collect())
            .catch_unwind()
            .await
            .map_err(|_| {
                tracing::warn!("arrow's IPC reader panicked on bound parameters (above); refused as malformed");
                FlightError::BadRequest("cannot read the bound parameters: a malformed Arrow IPC batch".into())
            })?;
        let batches: Vec<arrow::array::RecordBatch> =
            decoded.map_err(|error| FlightError::BadRequest(format!("cannot read the bound parameters: {error}")))?;
        let parameters = parameters::encode(&batches)?;
        // Bind now, so a wrong count or type is reported at DoPut.
        let bound = StatementPayload { parameters: parameters.to_vec(), ..payload };
        plan_statement(&self.engine(), &principal, &bound).await?;
        for row in parameters::other_rows(&bound.parameters)? {
            plan_statement(&self.engine(), &principal, &StatementPayload { parameters: row, ..bound.clone() }).await?;
        }
        let handle = self.signer.seal(bound, &principal, Purpose::PreparedStatement);
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(handle) })
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = principal_of(&request)?;
        let planned = self.engine().plan(&principal, &command.query).await.map(drop);
        Err(updates::refuse_update(planned).into())
    }

    async fn do_put_substrait_plan(
        &self,
        command: CommandStatementSubstraitPlan,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = principal_of(&request)?;
        let plan = substrait_bytes(command.plan)?;
        let planned = self.engine().plan_substrait(&principal, &plan).await.map(drop);
        Err(updates::refuse_update(planned).into())
    }

    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        // Only queries can be prepared, so a valid handle is one.
        let principal = principal_of(&request)?;
        self.prepared(&command.prepared_statement_handle, &principal)?;
        Err(updates::query_as_update().into())
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(updates::refuse_ingest(&command).into())
    }

    async fn do_action_close_prepared_statement(
        &self,
        request: ActionClosePreparedStatementRequest,
        action: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are stateless: closing frees nothing, but a handle that is not ours is refused.
        let principal = principal_of(&action)?;
        self.prepared(&request.prepared_statement_handle, &principal)?;
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        command: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.into_builder().schema();
        metadata_info(command.as_any().encode_to_vec(), &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        command: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.clone().into_builder().schema();
        metadata_info(command.as_any().encode_to_vec(), &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        command: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.clone().into_builder().schema();
        metadata_info(command.as_any().encode_to_vec(), &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        command: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.into_builder().schema();
        metadata_info(command.as_any().encode_to_vec(), &schema, request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        command: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.clone().into_builder(&self.sql_info).schema();
        metadata_info(command.as_any().encode_to_vec(), &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        command: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let view = self.engine().view(principal_of(&request)?);
        Ok(one_batch(metadata::catalogs(&view, command)?))
    }

    async fn do_get_schemas(
        &self,
        command: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let view = self.engine().view(principal_of(&request)?);
        Ok(one_batch(metadata::db_schemas(&view, command)?))
    }

    async fn do_get_tables(
        &self,
        command: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let view = self.engine().view(principal_of(&request)?);
        Ok(one_batch(metadata::tables(&view, command, self.options.view_types)?))
    }

    async fn do_get_table_types(
        &self,
        command: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(one_batch(metadata::table_types(command)?))
    }

    async fn do_get_sql_info(
        &self,
        command: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch =
            command.into_builder(&self.sql_info).build().map_err(|error| FlightError::Encode(error.to_string()))?;
        Ok(one_batch(batch))
    }

    async fn get_flight_info_primary_keys(
        &self,
        command: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(command.as_any().encode_to_vec(), &primary_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_exported_keys(
        &self,
        command: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(command.as_any().encode_to_vec(), &foreign_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_imported_keys(
        &self,
        command: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(command.as_any().encode_to_vec(), &foreign_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_cross_reference(
        &self,
        command: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(command.as_any().encode_to_vec(), &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        command: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let view = self.engine().view(principal_of(&request)?);
        Ok(one_batch(primary_keys(&view, &command)?))
    }

    async fn do_get_exported_keys(
        &self,
        _command: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(one_batch(no_foreign_keys()))
    }

    async fn do_get_imported_keys(
        &self,
        _command: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(one_batch(no_foreign_keys()))
    }

    async fn do_get_cross_reference(
        &self,
        _command: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(one_batch(no_foreign_keys()))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        command: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.into_builder(&self.xdbc_types).schema();
        metadata_info(command.as_any().encode_to_vec(), &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        command: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch =
            command.into_builder(&self.xdbc_types).build().map_err(|error| FlightError::Encode(error.to_string()))?;
        Ok(one_batch(batch))
    }

    /// The deprecated Flight SQL CancelQuery action, as CancelFlightInfo.
    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let principal = principal_of(&request)?;
        let info = FlightInfo::decode(query.info.as_ref())
            .map_err(|_| FlightError::BadRequest("CancelQuery: the FlightInfo cannot be decoded".into()))?;
        // ActionCancelQueryResult.CancelResult (not exported by arrow-flight).
        const CANCELLED: i32 = 1;
        const NOT_CANCELLABLE: i32 = 3;
        let result = match self.cancel(&CancelFlightInfoRequest::new(info), &principal)? {
            CancelStatus::Cancelled => CANCELLED,
            _ => NOT_CANCELLABLE,
        };
        Ok(ActionCancelQueryResult { result })
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
