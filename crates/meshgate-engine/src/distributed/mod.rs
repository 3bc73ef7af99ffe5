//! Distributed execution on datafusion-distributed (docs/distributed.md).
//!
//! The gateway authenticates, plans, governs and verifies every query as on one node;
//! only then, when the plan reads enough data and every node of it can travel, is it
//! cut into stages at its shuffles (datafusion-distributed's planner) and verified
//! again: no network boundary may sit between a product's scan and its barrier, so the
//! raw rows a worker reads are filtered and masked in the same task. Workers execute;
//! they trust only requests carrying a stage token signed with the gateway's secret.

mod codec;
mod token;
mod worker;
mod workers;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionState;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion_distributed::grpc::DefaultChannelResolver;
use datafusion_distributed::{
    DistributedCodec, DistributedExec, DistributedExt, NetworkBoundaryExt, SessionStateBuilderExt,
};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue};

pub use token::{StageTokens, TokenRefusal, WORKER_TOKEN_HEADER};
pub use worker::{WorkerOptions, serve_worker};
pub use workers::{BadWorkerAddress, WorkerSet};

use codec::MeshCodec;

/// How the gateway spreads queries.
pub struct DistributionOptions {
    pub workers: WorkerSet,
    /// Queries reading fewer bytes of files than this run on the gateway.
    pub min_bytes: u64,
    /// Bytes of files each partition of a distributed scan reads: a scan runs on
    /// `bytes / partition_bytes / target partitions` workers (at most all of them).
    pub partition_bytes: usize,
    /// `MESHGATE_TICKET_SECRET`, shared with the workers.
    pub secret: Vec<u8>,
}

/// The gateway's side of distributed execution; one for the process, shared by
/// every engine a reload builds.
pub struct Distribution {
    workers: WorkerSet,
    min_bytes: u64,
    partition_bytes: usize,
    tokens: StageTokens,
    codec: Arc<MeshCodec>,
    channels: DefaultChannelResolver,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution").field("workers", &self.workers).field("min_bytes", &self.min_bytes).finish()
    }
}

/// How a query ran: on how many workers, in how many stages. The default is how a
/// query that was not distributed ran: one stage, on the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub workers: usize,
    pub stages: usize,
}

impl Default for Spread {
    fn default() -> Self {
        Self { workers: 0, stages: 1 }
    }
}

impl Distribution {
    pub fn new(options: DistributionOptions) -> Self {
        Self {
            workers: options.workers,
            min_bytes: options.min_bytes,
            partition_bytes: options.partition_bytes.max(1),
            tokens: StageTokens::new(&options.secret),
            codec: Arc::new(MeshCodec::default()),
            channels: DefaultChannelResolver::default(),
        }
    }

    pub fn workers(&self) -> &WorkerSet {
        &self.workers
    }

    /// `plan` (verified, as planned for one node) cut into stages over the live
    /// workers and verified again, with the session to execute it in; `None` when it
    /// runs on the gateway:
    /// it reads less than the threshold, holds a node that cannot travel (an
    /// accelerated copy, a Delta scan, a point-in-time join, a mask whose key only
    /// this process knows), no worker answers, or the planner found nothing to spread.
    pub(crate) async fn distribute(
        &self,
        plan: &Arc<dyn ExecutionPlan>,
        state: &SessionState,
        token_ttl: Duration,
    ) -> Result<Option<(Arc<dyn ExecutionPlan>, SessionState)>> {
        let Some(bytes) = files_read(plan) else { return Ok(None) };
        if bytes < self.min_bytes {
            return Ok(None);
        }
        if self.workers.live_count() == 0 {
            tracing::warn!("no distributed worker is reachable: the query runs on the gateway");
            return Ok(None);
        }
        let mut headers = HeaderMap::new();
        let token = HeaderValue::from_str(&self.tokens.mint(token_ttl))
            .map_err(|error| DataFusionError::Internal(format!("stage token: {error}")))?;
        headers.insert(WORKER_TOKEN_HEADER, token);
        let staged = SessionStateBuilder::new_from_existing(state.clone())
            .with_query_planner(Arc::new(Planned(Arc::clone(plan))))
            .with_distributed_worker_resolver(self.workers.clone())
            .with_distributed_channel_resolver(self.channels.clone())
            .with_distributed_user_codec_arc(Arc::clone(&self.codec) as _)
            .with_distributed_passthrough_headers(headers)?
            .with_distributed_file_scan_config_bytes_per_partition(self.partition_bytes)?
            .with_distributed_planner()
            .build();
        let codec = DistributedCodec::new_combined_with_user(staged.config());
        if let Err(error) =
            datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(Arc::clone(plan), &codec)
        {
            tracing::debug!(error = %error.strip_backtrace(), "the query runs on the gateway: its plan cannot travel");
            return Ok(None);
        }
        let nothing =
            LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: false, schema: Arc::new(DFSchema::empty()) });
        let distributed = staged.query_planner().create_physical_plan(&nothing, &staged).await?;
        if !distributed.is::<DistributedExec>() {
            return Ok(None);
        }
        // Nothing below a barrier may cross the network: fails closed otherwise.
        meshgate_policy::verify_plan(&distributed)?;
        Ok(Some((distributed, staged)))
    }

    /// Executes a distributed plan; a failure while a worker is down names that worker
    /// (probed now, so the next queries avoid it).
    pub(crate) fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        state: &SessionState,
    ) -> Result<SendableRecordBatchStream> {
        let stream = execute_stream(plan, state.task_ctx())?;
        let schema = stream.schema();
        let workers = self.workers.clone();
        let named = stream.then(move |item| {
            let workers = workers.clone();
            async move {
                match item {
                    Err(error) => Err(failed(&workers, error).await),
                    ok => ok,
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, named)))
    }
}

/// How `plan` (distributed) is spread: its stages, and the most workers one stage runs on.
pub(crate) fn spread(plan: &Arc<dyn ExecutionPlan>) -> Spread {
    let mut spread = Spread::default();
    let _ = plan.apply(|node| {
        if let Some(boundary) = node.as_ref().as_network_boundary() {
            spread.stages += 1;
            spread.workers = spread.workers.max(boundary.input_stage().task_count());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    spread
}

/// A worker that did not answer: which one, as the probe finds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WorkerLost(pub String);

/// A distributed query failed with `error`: when a worker is down (probed now, so the
/// next queries avoid it), the failure is that worker's; a failure of the network with
/// every worker answering is said as such; any other error is the query's own.
async fn failed(workers: &WorkerSet, error: DataFusionError) -> DataFusionError {
    let network = is_network_failure(&error);
    // A worker that just died may still accept connections for a moment while its
    // process is torn down: after a network failure, probe a few times.
    let mut down: Vec<String> = Vec::new();
    for attempt in 0..if network { 5 } else { 1 } {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        down = workers.probe().await.into_iter().filter(|(_, live)| !live).map(|(url, _)| url.to_string()).collect();
        if !down.is_empty() {
            break;
        }
    }
    let detail = error.strip_backtrace();
    let message = match down.as_slice() {
        [] if !network => return error,
        [] => format!("a distributed worker connection failed: {detail}"),
        [one] => format!("distributed worker {one} is unreachable: {detail}"),
        many => format!("distributed workers {} are unreachable: {detail}", many.join(", ")),
    };
    DataFusionError::External(Box::new(WorkerLost(message)))
}

/// Whether `error` is the network failing (a worker gone, a connection reset), not
/// the query: a gRPC status of the transport rather than one a worker sent on purpose.
fn is_network_failure(error: &DataFusionError) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(status) = error.downcast_ref::<tonic::Status>() {
            return matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled);
        }
        if error.to_string().contains("Error connecting to Distributed DataFusion worker") {
            return true;
        }
        current = match error.downcast_ref::<DataFusionError>() {
            Some(DataFusionError::External(inner)) => Some(inner.as_ref()),
            Some(DataFusionError::Context(_, inner)) => Some(inner.as_ref()),
            Some(DataFusionError::Shared(inner)) => Some(inner.as_ref()),
            _ => error.source(),
        };
    }
    false
}

/// Bytes of files `plan` scans, when every leaf is a file scan (or produces rows of
/// its own, such as `SELECT 1`) and there is at least one.
fn files_read(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let mut bytes = 0u64;
    let mut scans = 0usize;
    let mut other = false;
    let _ = plan.apply(|node| {
        if !node.children().is_empty() {
            return Ok(TreeNodeRecursion::Continue);
        }
        if let Some(files) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|source| source.data_source().downcast_ref::<FileScanConfig>())
        {
            scans += 1;
            bytes +=
                files.file_groups.iter().flat_map(|group| group.iter()).map(|file| file.object_meta.size).sum::<u64>();
        } else if !(node.is::<EmptyExec>() || node.is::<PlaceholderRowExec>()) {
            other = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (!other && scans > 0).then_some(bytes)
}

/// A query planner that answers with a plan already made: the distributed planner
/// wraps it, so it cuts the plan meshgate planned and verified.
#[derive(Debug)]
struct Planned(Arc<dyn ExecutionPlan>);

#[async_trait]
impl QueryPlanner for Planned {
    async fn create_physical_plan(
        &self,
        _plan: &LogicalPlan,
        _session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::clone(&self.0))
    }
}

/// One query's [`Spread`], set when it starts executing.
pub type SpreadSlot = Arc<OnceLock<Spread>>;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_plan::Partitioning;
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use meshgate_policy::{BarrierExec, PolicyError, verify_plan};

    use super::*;

    fn distribution() -> Distribution {
        let workers = WorkerSet::parse(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]).unwrap();
        Distribution::new(DistributionOptions { workers, min_bytes: 0, partition_bytes: 1, secret: b"s".to_vec() })
    }

    /// A hash shuffle of `input` on its first column.
    fn shuffled(input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let key = col(input.schema().field(0).name(), &input.schema()).unwrap();
        Arc::new(RepartitionExec::try_new(input, Partitioning::Hash(vec![key], 4)).unwrap())
    }

    fn governed(input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(BarrierExec::new("customers.nation".into(), input, None))
    }

    #[tokio::test]
    async fn a_shuffle_between_a_scan_and_its_barrier_fails_verification_one_above_it_passes() {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let nation = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data/customers/nation/");
        let nation = std::fs::canonicalize(nation).unwrap().display().to_string() + "/";
        let scan = ctx.read_parquet(nation, ParquetReadOptions::default()).await.unwrap();
        let scan = scan.create_physical_plan().await.unwrap();
        let distribution = distribution();
        let state = ctx.state();
        let ttl = Duration::from_secs(60);

        let split: Arc<dyn ExecutionPlan> =
            Arc::new(CoalescePartitionsExec::new(governed(shuffled(Arc::clone(&scan)))));
        verify_plan(&split).unwrap();
        // The planner puts a network boundary below the barrier; the staged plan fails verification.
        let error = distribution.distribute(&split, &state, ttl).await.expect_err("a network boundary below a barrier");
        assert!(matches!(&error, DataFusionError::External(e) if e.to_string() == PolicyError::Unverified.to_string()));

        let whole: Arc<dyn ExecutionPlan> = Arc::new(CoalescePartitionsExec::new(shuffled(governed(scan))));
        let (staged, _) = distribution.distribute(&whole, &state, ttl).await.unwrap().expect("a distributed plan");
        assert!(staged.is::<DistributedExec>());
        verify_plan(&staged).unwrap();
        assert!(spread(&staged).stages >= 2, "{}", datafusion_distributed::display_plan_ascii(staged.as_ref(), false));
    }

    #[tokio::test]
    async fn plans_below_the_threshold_or_without_files_stay_on_the_gateway() {
        let ctx = SessionContext::new();
        let plan = ctx.sql("SELECT 1").await.unwrap().create_physical_plan().await.unwrap();
        assert!(distribution().distribute(&plan, &ctx.state(), Duration::from_secs(60)).await.unwrap().is_none());
    }
}
