//! `AsOfJoinExec`: for each entity row, the feature row of its key with the latest
//! event time at or before the entity's (within the TTL), or NULLs. The feature side
//! is read once per execution into a [`FeatureIndex`] (its memory reserved from the
//! query's pool); the entities stream through in their own partitions and order, so
//! the operator keeps entity rows apart and a result can be read as shards.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PlanProperties, execute_stream,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::index::{FeatureColumns, FeatureIndex};

/// How the two sides join, by column index.
#[derive(Debug, Clone)]
pub(crate) struct AsOfColumns {
    /// Entity key columns, paired with the feature's `features.keys`.
    pub entity_keys: Vec<usize>,
    pub entity_time: usize,
    pub features: FeatureColumns,
    /// Feature columns in the output, after every entity column.
    pub outputs: Vec<usize>,
    /// Oldest a feature row may be, in microseconds.
    pub ttl: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct AsOfJoinExec {
    entities: Arc<dyn ExecutionPlan>,
    features: Arc<dyn ExecutionPlan>,
    columns: AsOfColumns,
    /// The product the features come from (for EXPLAIN).
    product: String,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    index: Arc<OnceCell<Arc<Indexed>>>,
    metrics: ExecutionPlanMetricsSet,
}

/// What building the index reports (in EXPLAIN ANALYZE).
struct IndexMetrics {
    feature_rows: Count,
    build_time: Time,
}

/// The index and the memory it holds in the query's pool (released with it).
#[derive(Debug)]
struct Indexed {
    index: FeatureIndex,
    _reservation: MemoryReservation,
}

impl AsOfJoinExec {
    pub fn try_new(
        entities: Arc<dyn ExecutionPlan>,
        features: Arc<dyn ExecutionPlan>,
        columns: AsOfColumns,
        output_names: &[String],
        product: String,
    ) -> Result<Self> {
        let feature_schema = features.schema();
        let mut fields: Vec<Field> = entities.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        for (&index, name) in columns.outputs.iter().zip(output_names) {
            let field = feature_schema.field(index);
            fields.push(Field::new(name, field.data_type().clone(), true).with_metadata(field.metadata().clone()));
        }
        let schema = Arc::new(Schema::new(fields));
        let properties = Arc::new(Self::properties_for(&entities, &schema));
        Ok(Self {
            entities,
            features,
            columns,
            product,
            schema,
            properties,
            index: Arc::default(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn properties_for(entities: &Arc<dyn ExecutionPlan>, schema: &SchemaRef) -> PlanProperties {
        PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(schema)),
            entities.output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
    }

    /// The feature side, read and indexed once for all the entity partitions.
    async fn feature_index(
        features: Arc<dyn ExecutionPlan>,
        columns: AsOfColumns,
        context: Arc<TaskContext>,
        metrics: IndexMetrics,
    ) -> Result<Arc<Indexed>> {
        let reservation = MemoryConsumer::new("AsOfJoinExec[features]").register(context.memory_pool());
        let schema = features.schema();
        let mut stream = execute_stream(features, Arc::clone(&context))?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.try_next().await? {
            reservation.try_grow(batch.get_array_memory_size())?;
            batches.push(batch);
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        metrics.feature_rows.add(rows);
        reservation.try_grow(FeatureIndex::build_bytes(&schema, &batches, &columns.features))?;
        let index = {
            let _timer = metrics.build_time.timer();
            FeatureIndex::build(&schema, batches, &columns.features, &columns.outputs)?
        };
        reservation.try_resize(index.bytes())?;
        Ok(Arc::new(Indexed { index, _reservation: reservation }))
    }
}

impl DisplayAs for AsOfJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsOfJoinExec: features={}", self.product)?;
        if let Some(ttl) = self.columns.ttl {
            write!(f, ", ttl={}s", ttl / 1_000_000)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for AsOfJoinExec {
    fn name(&self) -> &str {
        "AsOfJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::UnspecifiedDistribution, Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true, false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.entities, &self.features]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [entities, features]: [Arc<dyn ExecutionPlan>; 2] =
            children.try_into().map_err(|_| DataFusionError::Internal("AsOfJoinExec takes two children".into()))?;
        let properties = match options.children_properties {
            ChildrenPropertiesMode::Keep => Arc::clone(&self.properties),
            ChildrenPropertiesMode::Recompute => Arc::new(Self::properties_for(&entities, &self.schema)),
        };
        Ok(Arc::new(Self {
            entities,
            features,
            columns: self.columns.clone(),
            product: self.product.clone(),
            schema: Arc::clone(&self.schema),
            properties,
            index: Arc::default(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let entities = self.entities.execute(partition, Arc::clone(&context))?;
        let (features, columns, cell) = (Arc::clone(&self.features), self.columns.clone(), Arc::clone(&self.index));
        let schema = Arc::clone(&self.schema);
        let key_types: Vec<DataType> =
            columns.features.keys.iter().map(|&key| features.schema().field(key).data_type().clone()).collect();
        let index_metrics = IndexMetrics {
            feature_rows: MetricBuilder::new(&self.metrics).global_counter("feature_rows"),
            build_time: MetricBuilder::new(&self.metrics).subset_time("index_build_time", partition),
        };
        let lookup_time = MetricBuilder::new(&self.metrics).elapsed_compute(partition);
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let stream = futures::stream::once(async move {
            let index = cell
                .get_or_try_init(|| Self::feature_index(features, columns.clone(), context, index_metrics))
                .await
                .map(Arc::clone)?;
            Ok::<_, DataFusionError>(entities.map(move |batch| {
                let _timer = lookup_time.timer();
                let batch = joined(&batch?, &index.index, &columns, &key_types, &schema)?;
                output_rows.add(batch.num_rows());
                Ok(batch)
            }))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), stream)))
    }
}

/// One entity batch with its feature columns. `key_types`: the feature keys' types.
fn joined(
    batch: &RecordBatch,
    index: &FeatureIndex,
    columns: &AsOfColumns,
    key_types: &[DataType],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let keys: Vec<ArrayRef> = columns
        .entity_keys
        .iter()
        .zip(key_types)
        .map(|(&entity, data_type)| cast(batch.column(entity), data_type))
        .collect::<std::result::Result<_, _>>()?;
    let found = index.lookup(&keys, batch.column(columns.entity_time), columns.ttl, columns.features.time.is_none())?;
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    arrays.extend(index.take(&found)?);
    Ok(RecordBatch::try_new(Arc::clone(schema), arrays)?)
}
