//! The as-of join in the logical plan, and how it becomes an [`AsOfJoinExec`].

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::Field;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use super::exec::{AsOfColumns, AsOfJoinExec};
use super::index::FeatureColumns;

/// How one feature product joins its entities, by column name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AsOfSpec {
    /// `domain.product` of the features.
    pub product: String,
    pub keys: Vec<String>,
    pub entity_time: String,
    pub feature_time: Option<String>,
    pub created: Option<String>,
    /// Feature columns and their names in the result.
    pub outputs: Vec<(String, String)>,
    pub ttl_micros: Option<i64>,
}

/// Entities (first input) with, for each row, the as-of feature row of `features`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AsOfJoinNode {
    entities: LogicalPlan,
    features: LogicalPlan,
    spec: Arc<AsOfSpec>,
    schema: DFSchemaRef,
}

impl AsOfJoinNode {
    pub fn try_new(entities: LogicalPlan, features: LogicalPlan, spec: Arc<AsOfSpec>) -> Result<Self> {
        let mut fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> =
            entities.schema().iter().map(|(qualifier, field)| (qualifier.cloned(), Arc::clone(field))).collect();
        for (column, name) in &spec.outputs {
            let (_, field) = features.schema().qualified_field_with_unqualified_name(column)?;
            fields.push((None, Arc::new(Field::new(name, field.data_type().clone(), true))));
        }
        let schema = Arc::new(DFSchema::new_with_metadata(fields, Default::default())?);
        Ok(Self { entities, features, spec, schema })
    }

    fn index(plan: &LogicalPlan, name: &str) -> Result<usize> {
        plan.schema()
            .index_of_column_by_name(None, name)
            .ok_or_else(|| DataFusionError::Plan(format!("point_in_time: no column {name} to join on")))
    }
}

impl PartialOrd for AsOfJoinNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

impl UserDefinedLogicalNodeCore for AsOfJoinNode {
    fn name(&self) -> &str {
        "AsOfJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.entities, &self.features]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "AsOfJoin: features={} keys={:?}", self.spec.product, self.spec.keys)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let [entities, features]: [LogicalPlan; 2] =
            inputs.try_into().map_err(|_| DataFusionError::Internal("AsOfJoin takes two inputs".into()))?;
        Self::try_new(entities, features, Arc::clone(&self.spec))
    }

    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        // Every entity column passes through; of the features, what joins and what is output.
        let entities = (0..self.entities.schema().fields().len()).collect();
        let spec = &self.spec;
        let names =
            spec.keys.iter().chain(&spec.feature_time).chain(&spec.created).chain(spec.outputs.iter().map(|(c, _)| c));
        let mut features: Vec<usize> = names.filter_map(|name| Self::index(&self.features, name).ok()).collect();
        features.sort_unstable();
        features.dedup();
        Some(vec![entities, features])
    }
}

/// Plans [`AsOfJoinNode`]s; everything else is DataFusion's.
#[derive(Debug, Default)]
pub(crate) struct MeshQueryPlanner;

#[async_trait]
impl QueryPlanner for MeshQueryPlanner {
    async fn create_physical_plan(&self, plan: &LogicalPlan, session: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(AsOfPlanner)])
            .create_physical_plan(plan, session)
            .await
    }
}

struct AsOfPlanner;

#[async_trait]
impl ExtensionPlanner for AsOfPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _context: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<AsOfJoinNode>() else { return Ok(None) };
        let ([entities, features], [entity_plan, feature_plan]) = (logical_inputs, physical_inputs) else {
            return Err(DataFusionError::Internal("AsOfJoin takes two inputs".into()));
        };
        let spec = &node.spec;
        let entity = |name: &str| AsOfJoinNode::index(entities, name);
        let feature = |name: &str| AsOfJoinNode::index(features, name);
        let columns = AsOfColumns {
            entity_keys: spec.keys.iter().map(|key| entity(key)).collect::<Result<_>>()?,
            entity_time: entity(&spec.entity_time)?,
            features: FeatureColumns {
                keys: spec.keys.iter().map(|key| feature(key)).collect::<Result<_>>()?,
                time: spec.feature_time.as_deref().map(feature).transpose()?,
                created: spec.created.as_deref().map(feature).transpose()?,
            },
            outputs: spec.outputs.iter().map(|(column, _)| feature(column)).collect::<Result<_>>()?,
            ttl: spec.ttl_micros,
        };
        let names: Vec<String> = spec.outputs.iter().map(|(_, name)| name.clone()).collect();
        let exec = AsOfJoinExec::try_new(
            Arc::clone(entity_plan),
            Arc::clone(feature_plan),
            columns,
            &names,
            spec.product.clone(),
        )?;
        Ok(Some(Arc::new(exec)))
    }
}
