//! `Engine`: plans and runs SQL over one mesh snapshot in a locked DataFusion session
//! built per request and bound to the asking principal: only the products they may
//! read are in its catalog, each governed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::common::DataFusionError;
use datafusion::common::runtime::SpawnedTask;
use futures::StreamExt;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionState;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig};
use datafusion::sql::parser::{ExplainStatement, Statement};
use meshgate_catalog::MeshSnapshot;
use meshgate_catalog::quality::QualityBook;
use meshgate_policy::{MeshView, PolicyError, PolicySet, Principal, render_physical, verify_plan};

use crate::balance::{BalanceFilters, balance_boolean_chains};
use crate::complexity::check_complexity;
use crate::contracts::contract_warnings;
use crate::distributed::{Distribution, SpreadSlot};
use crate::error::EngineError;
use crate::lineage::{ColumnSource, column_sources};
use crate::partitions::independent_partitions;
use crate::physical_reuse::Reuse;
use crate::plan_cache::PlanCache;
use crate::point_in_time::rewrite_point_in_time;
use crate::reads::{ProductRead, product_reads};
use crate::sql_guard::{check_statement, is_url_table, rewrite_show_schemas};
use crate::substrait::{decode_substrait, substrait_to_plan};
use crate::system::{CatalogWithSystem, SYSTEM_SCHEMA, SystemSources, SystemTable};
use crate::unsupported::check_supported;
use crate::yielding::YieldInJoins;

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
    // Spreading one partition's batches over the others costs more than it gains for
    // the small products point queries read (p50 2.52 → 2.33 ms, TPC-H unchanged;
    // BENCHMARKS.md). Large files are still split into byte ranges.
    options.optimizer.enable_round_robin_repartition = false;
    // Zone-aware values (TIMESTAMPTZ literals and casts, now(), to_timestamp) keep a
    // zone: UTC unless the server or the session says otherwise.
    options.execution.time_zone = Some(DEFAULT_TIME_ZONE.to_owned());
    config
}

/// The time zone sessions start in.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// What a call asks of planning beyond its statement: a session's options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanSettings {
    /// The schema unqualified names resolve in.
    pub default_schema: Option<String>,
    /// The time zone zone-aware values take (the server's when `None`).
    pub time_zone: Option<String>,
    /// The call's own timeout; the engine's applies whichever is shorter.
    pub timeout: Option<Duration>,
    /// Products carry the provenance columns `_source_file` and `_source_row`.
    pub provenance: bool,
}

impl PlanSettings {
    fn apply_time_zone(&self, state: &mut SessionState) {
        let Some(zone) = &self.time_zone else { return };
        state.config_mut().options_mut().execution.time_zone = Some(zone.clone());
        // Functions that read the zone (now(), to_timestamp(), …) took it when they
        // were registered: register them again under the new one, as SET does.
        let options = state.config().options();
        let updated: Vec<_> = state
            .scalar_functions()
            .values()
            .filter_map(|udf| udf.inner().with_updated_config(options).map(Arc::new))
            .collect();
        for udf in updated {
            // Replacing a registered function cannot fail.
            let _ = state.register_udf(udf);
        }
    }
}

/// Whether `zone` is a time zone meshgate accepts: an IANA name (`Europe/Paris`),
/// `UTC`, or an offset (`+02:00`). Returns the message for one it refuses.
pub fn check_time_zone(zone: &str) -> Result<(), String> {
    zone.parse::<datafusion::arrow::array::timezone::Tz>().map(|_| ()).map_err(|_| {
        format!("'{zone}' is not a time zone (use an IANA name such as Europe/Paris, UTC, or an offset such as +02:00)")
    })
}

/// How a planned result can be read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultShape {
    /// Independent partitions (`None`: one stream).
    pub independent_partitions: Option<usize>,
    /// Rows in the result, exactly or as estimated, when known.
    pub rows: Precision<usize>,
}

/// Plans and executes queries against one snapshot under one policy set.
#[derive(Debug, Clone)]
pub struct Engine {
    snapshot: Arc<MeshSnapshot>,
    policy: Arc<PolicySet>,
    state: Arc<SessionState>,
    plans: Arc<PlanCache>,
    /// How long a query may take from planning to its last batch.
    query_timeout: Option<Duration>,
    /// Results of the products' quality checks: degraded products are refused or
    /// served with a warning, as their contracts say.
    quality: Arc<QualityBook>,
    /// The recorded queries (query log, usage, consumers in lineage).
    audit: meshgate_audit::Audit,
    /// The workers queries may be spread over (none: every query runs here).
    distribution: Option<Arc<Distribution>>,
}

/// A planned query.
#[derive(Debug)]
pub struct Query {
    kind: QueryKind,
    /// The products it reads and the rules that govern them (for the audit log).
    reads: Vec<ProductRead>,
    /// Warnings for the client (a degraded product served anyway, …).
    warnings: Vec<String>,
    /// When the query must have finished (the engine's query timeout).
    deadline: Option<(Instant, Duration)>,
    /// The workers it may be spread over, and how it was (set when it starts).
    distribution: Option<Arc<Distribution>>,
    spread: SpreadSlot,
    /// Where its physical plan is kept between runs, when it can be.
    reuse: Option<Arc<Reuse>>,
}

#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per request, moved, never stored in bulk")]
enum QueryKind {
    Plan {
        plan: LogicalPlan,
        state: SessionState,
    },
    /// EXPLAIN, rendered at planning with governed scans collapsed for non-stewards.
    Rendered(RecordBatch),
}

impl Query {
    /// The schema the result's batches have.
    pub fn schema(&self) -> SchemaRef {
        match &self.kind {
            QueryKind::Plan { plan, .. } => Arc::clone(plan.schema().inner()),
            QueryKind::Rendered(batch) => batch.schema(),
        }
    }

    /// The products the query reads, the columns it reads of each (masked or not)
    /// and the policy rules that governed them. Empty for EXPLAIN.
    pub fn reads(&self) -> &[ProductRead] {
        &self.reads
    }

    /// What the client should know about the result: a product read despite failing
    /// quality checks, … Sent in FlightInfo's app_metadata and as DoGet trailers.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Adds a warning for the client.
    pub fn add_warning(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// For each result column, the table column it passes through unchanged, if any.
    pub fn column_sources(&self) -> Vec<Option<ColumnSource>> {
        match &self.kind {
            QueryKind::Plan { plan, state } => column_sources(plan, state.config_options()),
            QueryKind::Rendered(batch) => vec![None; batch.num_columns()],
        }
    }

    /// The statement's parameters `$1, $2, …` in order, with the types DataFusion
    /// inferred from their use (Null when it could not).
    pub fn parameter_fields(&self) -> Result<Vec<Field>, EngineError> {
        let QueryKind::Plan { plan, .. } = &self.kind else { return Ok(Vec::new()) };
        let mut types: Vec<(usize, String, DataType)> = plan
            .get_parameter_types()?
            .into_iter()
            .map(|(id, ty)| {
                let position = id.trim_start_matches('$').parse().unwrap_or(usize::MAX);
                (position, id, ty.unwrap_or(DataType::Null))
            })
            .collect();
        types.sort();
        Ok(types.into_iter().map(|(_, id, ty)| Field::new(id, ty, true)).collect())
    }

    /// Binds `values` to `$1, $2, …`, each cast to the parameter's inferred type. A
    /// wrong count or a value that cannot take the type is an error naming the parameter.
    pub fn bind(self, values: Vec<ScalarValue>) -> Result<Self, EngineError> {
        let fields = self.parameter_fields()?;
        if values.len() != fields.len() {
            return Err(EngineError::InvalidSql(format!(
                "the statement has {} parameter{}, {} bound",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" },
                values.len()
            )));
        }
        if values.is_empty() {
            return Ok(self);
        }
        let QueryKind::Plan { plan, state } = self.kind else {
            return Err(EngineError::InvalidSql("EXPLAIN takes no parameters".into()));
        };
        let mut typed = Vec::with_capacity(values.len());
        for (value, field) in values.into_iter().zip(&fields) {
            let ty = field.data_type();
            let value = if *ty == DataType::Null || value.data_type() == *ty {
                value
            } else {
                let refused = || {
                    EngineError::InvalidSql(format!(
                        "parameter {} takes {ty}; the bound value {value} ({}) cannot be one",
                        field.name(),
                        value.data_type()
                    ))
                };
                let cast = value.cast_to(ty).map_err(|_| refused())?;
                // Numbers must convert exactly: 7.5 is not an Int64.
                let lossy = value.data_type().is_numeric()
                    && ty.is_numeric()
                    && cast.cast_to(&value.data_type()).ok().as_ref() != Some(&value);
                if lossy {
                    return Err(refused());
                }
                cast
            };
            typed.push(value);
        }
        let plan = plan.with_param_values(typed)?;
        let kind = QueryKind::Plan { plan, state };
        // The kept physical plan is the statement's, whatever its parameters.
        Ok(Self { kind, reuse: None, ..self })
    }

    /// How the result can be read: how many independent streams, and how many rows
    /// it has when the plan knows. Plans physically; the plan is verified like any
    /// other. Governed products report no statistics, so their row counts stay unknown.
    pub async fn shape(&self) -> Result<ResultShape, EngineError> {
        let QueryKind::Plan { plan, state } = &self.kind else {
            return Ok(ResultShape { independent_partitions: None, rows: Precision::Absent });
        };
        let physical = physical_within(state, plan, self.deadline).await?;
        let rows = StatisticsContext::new()
            .compute(physical.as_ref(), &StatisticsArgs::new())
            .map(|stats| stats.num_rows)
            .unwrap_or(Precision::Absent);
        Ok(ResultShape { independent_partitions: independent_partitions(&physical), rows })
    }

    /// Executes partition `index` of a result that
    /// [`Query::independent_partitions`] said has `count` independent partitions.
    pub async fn execute_partition(self, index: usize, count: usize) -> Result<SendableRecordBatchStream, EngineError> {
        let QueryKind::Plan { plan, mut state } = self.kind else {
            return Err(EngineError::InvalidSql("this statement is not partitioned".into()));
        };
        // Sibling file streams otherwise steal each other's files: executed alone, one
        // partition would read them all.
        state.config_mut().options_mut().execution.enable_file_stream_work_stealing = false;
        let physical = physical_within(&state, &plan, self.deadline).await?;
        if independent_partitions(&physical) != Some(count) || index >= count {
            return Err(EngineError::PartitioningChanged);
        }
        Ok(with_deadline(physical.execute(index, state.task_ctx())?, self.deadline))
    }

    /// Checks that the result can be read as `count` shards (docs/ml.md) and returns
    /// the fingerprint of the driving product's files the shards divide; each shard's
    /// ticket carries it, so a shard read after the files changed is refused.
    pub async fn shard_fingerprint(&self, count: usize) -> Result<Vec<u8>, EngineError> {
        let (plan, state) = self.shardable()?;
        let driving = crate::shards::driving_product(plan)
            .ok_or_else(|| EngineError::NotShardable("it reads no product".into()))?;
        let physical = physical_within(state, plan, self.deadline).await?;
        let (sharded, fingerprint) = crate::shards::shard(&physical, &driving, 0, count)?;
        verify_plan(&sharded)?;
        Ok(fingerprint)
    }

    /// Executes shard `index` of `count`, refused when the driving product's files no
    /// longer match `fingerprint`. The sharded plan is verified like any other.
    pub async fn execute_shard(
        self,
        index: usize,
        count: usize,
        fingerprint: &[u8],
    ) -> Result<SendableRecordBatchStream, EngineError> {
        let (plan, state) = self.shardable()?;
        let driving = crate::shards::driving_product(plan)
            .ok_or_else(|| EngineError::NotShardable("it reads no product".into()))?;
        let physical = physical_within(state, plan, self.deadline).await?;
        let (sharded, current) = crate::shards::shard(&physical, &driving, index, count)?;
        if current != fingerprint {
            return Err(EngineError::ShardsChanged(driving));
        }
        verify_plan(&sharded)?;
        Ok(with_deadline(execute_stream(sharded, state.task_ctx())?, self.deadline))
    }

    fn shardable(&self) -> Result<(&LogicalPlan, &SessionState), EngineError> {
        let QueryKind::Plan { plan, state } = &self.kind else {
            return Err(EngineError::NotShardable("EXPLAIN output is one result".into()));
        };
        crate::shards::check_unordered(plan)?;
        Ok((plan, state))
    }

    /// The verified physical plan `execute` would run (none for a rendered EXPLAIN);
    /// for tools that inspect plans, such as the fuzz targets' invariant checks.
    pub async fn physical_plan(&self) -> Result<Option<Arc<dyn ExecutionPlan>>, EngineError> {
        match &self.kind {
            QueryKind::Plan { plan, state } => physical_within(state, plan, self.deadline).await.map(Some),
            QueryKind::Rendered(_) => Ok(None),
        }
    }

    /// The logical plan (none for a rendered EXPLAIN).
    pub(crate) fn logical(&self) -> Option<&LogicalPlan> {
        match &self.kind {
            QueryKind::Plan { plan, .. } => Some(plan),
            QueryKind::Rendered(_) => None,
        }
    }

    /// Stops the query after `limit` if that comes before the engine's own timeout
    /// (a client's per-query timeout never extends the server's).
    pub fn limit_time(self, limit: Duration) -> Self {
        self.limit_time_from(Instant::now(), limit)
    }

    /// [`Query::limit_time`] counted from `started` (when planning began).
    pub fn limit_time_from(mut self, started: Instant, limit: Duration) -> Self {
        let candidate = (started + limit, limit);
        self.deadline = Some(match self.deadline {
            Some(current) if current.0 <= candidate.0 => current,
            _ => candidate,
        });
        self
    }

    /// How the query ran once it started: on how many workers, in how many stages.
    pub fn spread(&self) -> SpreadSlot {
        Arc::clone(&self.spread)
    }

    /// Starts execution; batches stream as the plan produces them. The physical plan
    /// is verified first: a product scan outside a barrier fails the query. With
    /// workers, a plan that reads enough is cut into stages over them and verified again.
    pub async fn execute(self) -> Result<SendableRecordBatchStream, EngineError> {
        let deadline = self.deadline;
        match self.kind {
            QueryKind::Plan { plan, state } => {
                // Plans that read only accelerated copies are never distributed: the
                // copies are this process's.
                if let Some(reuse) = &self.reuse
                    && let Some(data) = reuse.current()
                {
                    let physical = match reuse.take(&data) {
                        Some(kept) => {
                            tracing::debug!("physical plan reused");
                            kept
                        }
                        None => {
                            let physical = physical_within(&state, &plan, self.deadline).await?;
                            reuse.keep(&data, &physical);
                            physical
                        }
                    };
                    return Ok(with_deadline(execute_stream(physical, state.task_ctx())?, deadline));
                }
                let physical = physical_within(&state, &plan, self.deadline).await?;
                if let Some(distribution) = &self.distribution
                    && let Some((staged, staged_state)) =
                        distribution.distribute(&physical, &state, token_ttl(deadline)).await?
                {
                    let spread = crate::distributed::spread(&staged);
                    tracing::debug!(workers = spread.workers, stages = spread.stages, "query distributed");
                    let _ = self.spread.set(spread);
                    return Ok(with_deadline(distribution.execute(staged, &staged_state)?, deadline));
                }
                Ok(with_deadline(execute_stream(physical, state.task_ctx())?, deadline))
            }
            QueryKind::Rendered(batch) => {
                let schema = batch.schema();
                let stream = futures::stream::iter([Ok(batch)]);
                Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
            }
        }
    }
}

impl Engine {
    pub fn new(snapshot: Arc<MeshSnapshot>, policy: Arc<PolicySet>) -> Self {
        let mut state = SessionStateBuilder::new()
            .with_config(snapshot.session_config().clone())
            .with_runtime_env(Arc::clone(snapshot.runtime()))
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(BalanceFilters))
            .with_physical_optimizer_rule(Arc::new(YieldInJoins))
            .with_query_planner(Arc::new(crate::asof::MeshQueryPlanner))
            .build();
        if let Err(error) = crate::functions::register_dialect(&mut state, snapshot.catalog_name()) {
            tracing::error!(%error, "cannot register meshgate's SQL functions");
        }
        Self {
            snapshot,
            policy,
            state: Arc::new(state),
            plans: Arc::default(),
            query_timeout: None,
            quality: Arc::default(),
            audit: meshgate_audit::Audit::default(),
            distribution: None,
        }
    }

    /// Gates queries on the quality results in `book` (which outlives reloads); a new
    /// engine starts with an empty book, where every product is unchecked.
    pub fn with_quality(mut self, book: Arc<QualityBook>) -> Self {
        self.quality = book;
        self
    }

    /// Reads the recorded queries from `audit` for the system tables (a new engine
    /// starts with an empty in-memory one).
    pub fn with_audit(mut self, audit: meshgate_audit::Audit) -> Self {
        self.audit = audit;
        self
    }

    /// Spreads queries that read enough over `distribution`'s workers (none: every
    /// query runs here). Uncorrelated scalar subqueries are then planned as joins,
    /// which distributed plans can carry.
    pub fn with_distribution(mut self, distribution: Option<Arc<Distribution>>) -> Self {
        if distribution.is_some() {
            let mut state = SessionState::clone(&self.state);
            state.config_mut().options_mut().optimizer.enable_physical_uncorrelated_scalar_subquery = false;
            self.state = Arc::new(state);
        }
        self.distribution = distribution;
        self
    }

    /// The workers queries may be spread over, when there are any.
    pub fn distribution(&self) -> Option<&Arc<Distribution>> {
        self.distribution.as_ref()
    }

    /// The products' quality results.
    pub fn quality(&self) -> &Arc<QualityBook> {
        &self.quality
    }

    /// Queries planned by this engine fail with [`EngineError::TimedOut`] once they
    /// have run for `timeout`, wherever they are.
    pub fn with_query_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.query_timeout = timeout;
        self
    }

    pub fn snapshot(&self) -> &Arc<MeshSnapshot> {
        &self.snapshot
    }

    /// The session every query starts from (functions and settings; no catalog).
    pub fn session_state(&self) -> &SessionState {
        &self.state
    }

    pub fn policy(&self) -> &Arc<PolicySet> {
        &self.policy
    }

    /// A query planned from `started`: the engine's timeout counts from then.
    fn query_from(&self, kind: QueryKind, started: Instant) -> Query {
        Query {
            kind,
            reads: Vec::new(),
            warnings: Vec::new(),
            deadline: self.query_timeout.map(|timeout| (started + timeout, timeout)),
            distribution: self.distribution.clone(),
            spread: SpreadSlot::default(),
            reuse: None,
        }
    }

    /// [`Engine::query_from`] for a plan `principal` runs, with what it reads.
    fn planned(&self, principal: &Principal, plan: LogicalPlan, state: SessionState, started: Instant) -> Query {
        let reads = product_reads(&plan, &self.policy, principal);
        self.planned_reading(plan, state, reads, None, started)
    }

    /// [`Engine::planned`] with the products `plan` reads already known.
    fn planned_reading(
        &self,
        plan: LogicalPlan,
        mut state: SessionState,
        reads: Vec<ProductRead>,
        reuse: Option<Arc<Reuse>>,
        started: Instant,
    ) -> Query {
        state.config_mut().set_extension(Arc::new(meshgate_catalog::DataPins::default()));
        Query { reads, reuse, ..self.query_from(QueryKind::Plan { plan, state }, started) }
    }

    /// What `principal` sees of the mesh.
    pub fn view(&self, principal: Arc<Principal>) -> MeshView {
        MeshView::new(Arc::clone(&self.snapshot), Arc::clone(&self.policy), principal)
    }

    /// What the `mesh_catalog` tables read besides the snapshot.
    pub fn system_sources(&self) -> SystemSources {
        SystemSources { quality: Arc::clone(&self.quality), audit: self.audit.clone() }
    }

    /// `view` with the Delta versions `references` pin, opened now; `state`'s catalog
    /// becomes that view when there are any.
    async fn with_delta_pins(
        &self,
        view: MeshView,
        state: &SessionState,
        default_schema: Option<&str>,
        references: &[TableReference],
    ) -> Result<MeshView, EngineError> {
        let pins = crate::delta_pins::pinned_versions(&view, default_schema, references).await?;
        if pins.is_empty() {
            return Ok(view);
        }
        let view = view.with_pins(pins);
        let catalog = CatalogWithSystem::new(view.clone(), self.system_sources());
        state.catalog_list().register_catalog(self.snapshot.catalog_name().to_owned(), Arc::new(catalog));
        Ok(view)
    }

    /// A session whose only catalog is the principal's governed view of the mesh.
    fn session_for(&self, view: &MeshView) -> SessionState {
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        let state = SessionStateBuilder::new_from_existing(SessionState::clone(&self.state))
            .with_catalog_list(catalogs)
            .build();
        state.catalog_list().register_catalog(
            self.snapshot.catalog_name().to_owned(),
            Arc::new(CatalogWithSystem::new(view.clone(), self.system_sources())),
        );
        state
    }

    /// Parses, checks and plans `sql` as `principal`. Refuses anything but read-only
    /// queries over the products they may read; names unknown (or hidden) tables.
    pub async fn plan(&self, principal: &Arc<Principal>, sql: &str) -> Result<Query, EngineError> {
        self.plan_in(principal, None, sql).await
    }

    /// [`Engine::plan`] with unqualified table names resolved in `default_schema` (a
    /// session's schema), which resolves like any other: a hidden domain is unknown.
    pub async fn plan_in(
        &self,
        principal: &Arc<Principal>,
        default_schema: Option<&str>,
        sql: &str,
    ) -> Result<Query, EngineError> {
        let settings = PlanSettings { default_schema: default_schema.map(str::to_owned), ..PlanSettings::default() };
        self.plan_with(principal, sql, &settings).await
    }

    /// [`Engine::plan`] with a call's settings, under the query timeout (and the
    /// call's shorter one): the clock starts before planning, and planning runs as its
    /// own task, so a statement that plans for too long ends with
    /// [`EngineError::TimedOut`] on time.
    pub async fn plan_with(
        &self,
        principal: &Arc<Principal>,
        sql: &str,
        settings: &PlanSettings,
    ) -> Result<Query, EngineError> {
        let started = Instant::now();
        let engine = self.clone();
        let principal = Arc::clone(principal);
        let call = settings.clone();
        let sql = sql.to_owned();
        let planning = SpawnedTask::spawn(async move { engine.plan_sql(&principal, &sql, &call, started).await });
        self.gated(self.finish_planning(planning, started, settings.timeout).await?)
    }

    /// `query` under the contracts of the products it reads (checked at every
    /// planning, cached plans too, since results change in the background).
    fn gated(&self, mut query: Query) -> Result<Query, EngineError> {
        query.warnings.extend(contract_warnings(&self.quality, &query.reads)?);
        query.warnings.extend(self.acceleration_warnings(&query.reads));
        let deprecated: Vec<String> = query.reads.iter().filter_map(|read| self.deprecation(read)).collect();
        query.warnings.extend(deprecated);
        Ok(query)
    }

    /// Warnings for products answered from an accelerated copy that may be behind
    /// their files (its last refresh failed).
    fn acceleration_warnings(&self, reads: &[ProductRead]) -> Vec<String> {
        reads
            .iter()
            .filter_map(|read| self.snapshot.version_of(&read.domain, &read.product, &read.version))
            .filter_map(|entry| entry.acceleration_warning())
            .collect()
    }

    /// The warning for reading a deprecated product version: its sunset, and the
    /// version to move to when there is a newer one.
    fn deprecation(&self, read: &ProductRead) -> Option<String> {
        let entry = self.snapshot.version_of(&read.domain, &read.product, &read.version)?;
        let product = &entry.product;
        if product.status != meshgate_catalog::config::Status::Deprecated {
            return None;
        }
        let mut warning = format!("{} version {} is deprecated", product.qualified_name(), product.version);
        if let Some(sunset) = &product.sunset {
            warning.push_str(&format!(" and stops being served on {sunset}"));
        }
        if let Some(current) = self.snapshot.product(&read.domain, &read.product)
            && current.product.version != product.version
        {
            warning.push_str(&format!(
                "; move to {} (version {})",
                current.product.qualified_name(),
                current.product.version
            ));
        }
        Some(warning)
    }

    /// Waits for a planning task until the deadline; dropping the task (on timeout,
    /// or when the caller goes away) aborts it at its next await.
    async fn finish_planning(
        &self,
        planning: SpawnedTask<Result<Query, EngineError>>,
        started: Instant,
        limit: Option<Duration>,
    ) -> Result<Query, EngineError> {
        let limit = match (self.query_timeout, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let joined = match limit {
            None => planning.join().await,
            Some(limit) => match tokio::time::timeout_at((started + limit).into(), planning.join()).await {
                Ok(joined) => joined,
                Err(_) => return Err(EngineError::TimedOut(QueryTimedOut(limit).to_string())),
            },
        };
        let query =
            joined.map_err(|error| EngineError::Internal(format!("planning failed unexpectedly: {error}")))??;
        Ok(match limit {
            Some(limit) => query.limit_time_from(started, limit),
            None => query,
        })
    }

    async fn plan_sql(
        &self,
        principal: &Arc<Principal>,
        sql: &str,
        settings: &PlanSettings,
        started: Instant,
    ) -> Result<Query, EngineError> {
        let default_schema = settings.default_schema.as_deref();
        let key = PlanCache::key(principal, default_schema, settings, sql);
        if let Some((plan, mut state, reads, reuse)) = self.plans.get(&key) {
            state.mark_start_execution();
            return Ok(self.planned_reading(plan, state, reads, reuse, started));
        }
        let view = self.view(Arc::clone(principal)).with_provenance(settings.provenance);
        let mut state = self.session_for(&view);
        if let Some(schema) = default_schema {
            state.config_mut().options_mut().catalog.default_schema = schema.to_owned();
        }
        crate::functions::register_session(&mut state, &principal.name, default_schema)?;
        settings.apply_time_zone(&mut state);
        // Fixes now() and friends for this query, as SessionContext::sql does.
        state.mark_start_execution();
        check_complexity(sql)?;
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state.sql_to_statement(sql, &dialect).map_err(EngineError::from)?;
        number_question_marks(&mut statement);
        let markers = match &mut statement {
            Statement::Statement(inner) => rewrite_point_in_time(inner.as_mut(), sql, &view)?,
            Statement::Explain(explain) => match explain.statement.as_mut() {
                Statement::Statement(inner) => rewrite_point_in_time(inner.as_mut(), sql, &view)?,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if !markers.is_empty() {
            state.register_relation_planner(Arc::new(crate::asof::AsOfRelations::new(markers)))?;
        }
        rewrite_show_schemas(&mut statement)?;
        check_statement(&statement, sql)?;
        check_supported_statement(&mut statement)?;
        if let Statement::Statement(inner) = &mut statement {
            balance_boolean_chains(inner.as_mut());
        }
        let references = state.resolve_table_references(&statement)?;
        let view = self.with_delta_pins(view, &state, default_schema, &references).await?;
        for reference in references {
            self.check_table(&view, &state, &reference)?;
        }
        if let Statement::Explain(explain) = &statement {
            let steward = self.policy.is_steward(principal);
            if explain.options.analyze {
                if !steward {
                    return Err(PolicyError::ExplainAnalyzeRefused.into());
                }
            } else {
                return self.explain(&state, explain, steward, started).await;
            }
        }
        tokio::task::yield_now().await;
        let plan = state.statement_to_plan(statement).await?;
        tokio::task::yield_now().await;
        let plan = analyzed(&state, plan)?;
        verify_read_only(&plan)?;
        let reads = product_reads(&plan, &self.policy, principal);
        let reuse = Reuse::for_plan(&plan);
        self.plans.insert(key, (plan.clone(), state.clone(), reads.clone(), reuse.clone()));
        Ok(self.planned_reading(plan, state, reads, reuse, started))
    }

    /// Plans a serialized Substrait plan as `principal`, in the same governed session
    /// and with the same checks as SQL (see [`crate::substrait`]).
    pub async fn plan_substrait(&self, principal: &Arc<Principal>, plan: &[u8]) -> Result<Query, EngineError> {
        self.plan_substrait_with(principal, plan, &PlanSettings::default()).await
    }

    /// [`Engine::plan_substrait`] with a call's settings (its time zone and timeout;
    /// Substrait plans name their tables fully), as [`Engine::plan_with`].
    pub async fn plan_substrait_with(
        &self,
        principal: &Arc<Principal>,
        plan: &[u8],
        settings: &PlanSettings,
    ) -> Result<Query, EngineError> {
        let started = Instant::now();
        let engine = self.clone();
        let principal = Arc::clone(principal);
        let plan = plan.to_vec();
        let call = settings.clone();
        let planning =
            SpawnedTask::spawn(async move { engine.plan_substrait_now(&principal, &plan, &call, started).await });
        self.gated(self.finish_planning(planning, started, settings.timeout).await?)
    }

    async fn plan_substrait_now(
        &self,
        principal: &Arc<Principal>,
        plan: &[u8],
        settings: &PlanSettings,
        started: Instant,
    ) -> Result<Query, EngineError> {
        let view = self.view(Arc::clone(principal));
        let mut state = self.session_for(&view);
        crate::functions::register_session(&mut state, &principal.name, None)?;
        settings.apply_time_zone(&mut state);
        state.mark_start_execution();
        let (plan, tables) = decode_substrait(plan)?;
        let view = self.with_delta_pins(view, &state, None, &tables).await?;
        // Hidden products fail exactly like missing ones, as in SQL.
        for reference in &tables {
            self.check_table(&view, &state, reference)?;
        }
        let plan = analyzed(&state, substrait_to_plan(&state, &plan).await?)?;
        verify_read_only(&plan)?;
        Ok(self.planned(principal, plan, state, started))
    }

    /// The full physical plan of `sql` as `principal` would run it, barriers opened:
    /// for operators (`meshgate policy explain`), never served over Flight.
    pub async fn governed_plan_text(&self, principal: &Arc<Principal>, sql: &str) -> Result<String, EngineError> {
        let query = self.plan(principal, sql).await?;
        let QueryKind::Plan { plan, state } = query.kind else {
            return Err(EngineError::Refused { what: "EXPLAIN inside policy explain".into() });
        };
        let physical = verified_physical_plan(&state, &plan).await?;
        Ok(render_physical(&physical, true))
    }

    /// EXPLAIN: the optimized logical plan and the physical plan, whose governed scans
    /// show only their product unless the principal is a steward.
    async fn explain(
        &self,
        state: &SessionState,
        explain: &ExplainStatement,
        steward: bool,
        started: Instant,
    ) -> Result<Query, EngineError> {
        let plan = state.statement_to_plan(explain.statement.as_ref().clone()).await?;
        verify_read_only(&plan)?;
        // Optimized once: shown as the logical plan and planned physically as it is.
        let optimized = state.optimize(&plan)?;
        let mut physical = state.query_planner().create_physical_plan(&optimized, state).await?;
        verify_plan(&physical)?;
        // The plan as it would run: cut into stages when it would be distributed.
        if let Some(distribution) = &self.distribution
            && let Some((staged, _)) = distribution.distribute(&physical, state, token_ttl(None)).await?
        {
            physical = staged;
        }
        let logical = optimized.display_indent().to_string();
        let physical = render_physical(&physical, steward);
        let schema = Arc::new(Schema::new(vec![
            Field::new("plan_type", DataType::Utf8, false),
            Field::new("plan", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["logical_plan", "physical_plan"])),
                Arc::new(StringArray::from(vec![logical, physical])),
            ],
        )
        .map_err(|error| EngineError::Internal(error.to_string()))?;
        Ok(self.query_from(QueryKind::Rendered(batch), started))
    }

    /// A table reference must name a product the principal may read (or
    /// information_schema); a hidden product fails exactly like a missing one.
    fn check_table(
        &self,
        view: &MeshView,
        state: &SessionState,
        reference: &TableReference,
    ) -> Result<(), EngineError> {
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
        let default_schema = &state.config().options().catalog.default_schema;
        let schema = match reference.schema() {
            Some(schema) => schema,
            // Data-generating table functions such as generate_series read no files.
            None if state.table_functions().contains_key(reference.table()) => return Ok(()),
            None if default_schema != NO_DEFAULT_SCHEMA => default_schema.as_str(),
            None => {
                return Err(not_found(
                    "; name products as domain.product, for example sales.orders, or set the session's schema",
                ));
            }
        };
        if schema == "information_schema" {
            return Ok(());
        }
        if schema == SYSTEM_SCHEMA {
            return SystemTable::from_name(reference.table()).map(|_| ()).ok_or_else(|| not_found(""));
        }
        let Some(entry) = view.product(schema, reference.table()) else {
            return Err(not_found(&retired_hint(view, schema, reference.table())));
        };
        match entry.table.refusal() {
            Some(problem) => Err(EngineError::Product(problem)),
            None => Ok(()),
        }
    }
}

/// Why a table name reads nothing when it pins a retired version: the version, and
/// the current one to read instead. Only for a principal who may read the product
/// (otherwise it is absent like any other).
fn retired_hint(view: &MeshView, domain: &str, table: &str) -> String {
    let Some((retired, current)) = view.snapshot().retired(domain, table) else { return String::new() };
    let product = &retired.product;
    let readable =
        |entry: &Arc<meshgate_catalog::ProductEntry>| view.policy().can_read(view.principal(), &entry.product);
    match current.filter(|current| readable(current)) {
        Some(current) => format!(
            ": version {} of {} is retired; read {} (version {})",
            product.version,
            product.qualified_name(),
            current.product.qualified_name(),
            current.product.version
        ),
        None => String::new(),
    }
}

/// `plan` after DataFusion's analyzer (type coercion above all): its schema is the
/// one the result's batches will have. The plan straight from SQL can still say
/// otherwise: `SELECT 1 UNION ALL SELECT 2.5` is Int64 before coercion and Float64
/// after, and results cast to the former came back as 1, 2.
fn analyzed(state: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan, EngineError> {
    Ok(state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {})?)
}

/// Plans `plan` physically and verifies it: a product scan outside a barrier fails
/// the query closed.
async fn verified_physical_plan(
    state: &SessionState,
    plan: &LogicalPlan,
) -> Result<Arc<dyn ExecutionPlan>, EngineError> {
    let optimized = state.optimize(plan)?;
    // A stopped query's task is aborted where it yields: between the stages, at least.
    tokio::task::yield_now().await;
    let physical = state.query_planner().create_physical_plan(&optimized, state).await?;
    verify_plan(&physical)?;
    Ok(physical)
}

/// [`verified_physical_plan`] within the query's deadline: optimizing a large plan
/// can take seconds, and the timeout covers it like the rest of the query.
async fn physical_within(
    state: &SessionState,
    plan: &LogicalPlan,
    deadline: Option<(Instant, Duration)>,
) -> Result<Arc<dyn ExecutionPlan>, EngineError> {
    let Some((at, limit)) = deadline else { return verified_physical_plan(state, plan).await };
    let (state, plan) = (state.clone(), plan.clone());
    let planning = SpawnedTask::spawn(async move { verified_physical_plan(&state, &plan).await });
    match tokio::time::timeout_at(at.into(), planning.join()).await {
        Ok(joined) => {
            joined.map_err(|error| EngineError::Internal(format!("planning failed unexpectedly: {error}")))?
        }
        Err(_) => Err(EngineError::TimedOut(QueryTimedOut(limit).to_string())),
    }
}

/// Ends `stream` with [`QueryTimedOut`] once the deadline has passed.
fn with_deadline(
    stream: SendableRecordBatchStream,
    deadline: Option<(Instant, Duration)>,
) -> SendableRecordBatchStream {
    let Some((deadline, limit)) = deadline else { return stream };
    let schema = stream.schema();
    let timed = futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        let expired = || DataFusionError::External(Box::new(QueryTimedOut(limit)));
        if Instant::now() >= deadline {
            return Some((Err(expired()), None));
        }
        match tokio::time::timeout_at(deadline.into(), stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(expired()), None)),
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, timed))
}

/// How long a distributed query's stage token stays valid: its deadline and a minute,
/// or six hours for a query without one.
fn token_ttl(deadline: Option<(Instant, Duration)>) -> Duration {
    match deadline {
        Some((at, _)) => at.saturating_duration_since(Instant::now()) + Duration::from_secs(60),
        None => Duration::from_secs(6 * 3600),
    }
}

/// A query ran past the engine's query timeout.
#[derive(Debug, thiserror::Error)]
#[error("the query ran longer than the {}-second query timeout and was stopped", .0.as_secs_f64())]
pub struct QueryTimedOut(pub Duration);

/// JDBC and ODBC applications write `?` placeholders; DataFusion binds `$1, $2, …`.
/// Numbers the `?`s in the order they appear (a statement mixing both styles is left
/// as it is, and fails to bind with a clear message).
fn number_question_marks(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions, visit_expressions_mut};
    use std::ops::ControlFlow;
    let Statement::Statement(inner) = statement else { return };
    let mut numbered = false;
    let _ = visit_expressions(inner.as_ref(), |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &value.value
            && name.starts_with('$')
        {
            numbered = true;
        }
        ControlFlow::<()>::Continue(())
    });
    if numbered {
        return;
    }
    let mut next = 0;
    let _ = visit_expressions_mut(inner.as_mut(), |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &mut value.value
            && name == "?"
        {
            next += 1;
            *name = format!("${next}");
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Refuses (or rewrites to an exact equivalent) what DataFusion would answer wrongly,
/// in the statement and in what an EXPLAIN explains.
fn check_supported_statement(statement: &mut Statement) -> Result<(), EngineError> {
    match statement {
        Statement::Statement(inner) => check_supported(inner.as_mut()),
        Statement::Explain(explain) => check_supported_statement(explain.statement.as_mut()),
        _ => Ok(()),
    }
}

fn verify_read_only(plan: &LogicalPlan) -> Result<(), EngineError> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|error| EngineError::Refused { what: error.find_root().strip_backtrace() })
}
