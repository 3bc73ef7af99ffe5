//! As-of joins: what `point_in_time(...)` runs as (see [`crate::point_in_time`]).
//!
//! The rewrite leaves, for each feature product, a marker in the statement: a derived
//! table `(SELECT * FROM <entities> CROSS JOIN <feature product> AS __mesh_f) AS
//! __mesh_asof_<n>`. Both tables are ordinary SQL there, so every check of a
//! statement sees them. When DataFusion plans the statement, [`AsOfRelations`] plans
//! each marker's two tables as usual (governed scans, barriers) and joins them with an
//! [`node::AsOfJoinNode`] instead of the cross join, which the physical planner turns
//! into an [`exec::AsOfJoinExec`].

mod exec;
mod index;
mod node;

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::planner::{PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning};
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::sql::sqlparser::ast::{SetExpr, TableAlias, TableFactor};

pub(crate) use exec::AsOfJoinExec;
pub(crate) use node::{AsOfSpec, MeshQueryPlanner};

/// The alias prefix of the markers.
pub(crate) const MARKER: &str = "__mesh_asof_";

/// One marker's join, before the entity columns are known.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    pub spec: AsOfSpec,
    /// The product's own name, for features renamed `<product>__<column>`.
    pub product_name: String,
    /// The alias the planned relation takes (the user's, on the outermost marker).
    pub alias: Option<TableAlias>,
}

/// Plans the markers of one statement.
#[derive(Debug)]
pub(crate) struct AsOfRelations {
    markers: Vec<Marker>,
}

impl AsOfRelations {
    pub fn new(markers: Vec<Marker>) -> Self {
        Self { markers }
    }
}

impl RelationPlanner for AsOfRelations {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let marker = match &relation {
            TableFactor::Derived { alias: Some(alias), .. } => alias
                .name
                .value
                .strip_prefix(MARKER)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| self.markers.get(n)),
            _ => None,
        };
        let Some(marker) = marker else { return Ok(RelationPlanning::Original(Box::new(relation))) };
        let TableFactor::Derived { subquery, .. } = relation else { unreachable!("matched above") };
        let malformed = || DataFusionError::Internal("a point_in_time marker lost its shape".into());
        let SetExpr::Select(select) = *subquery.body else { return Err(malformed()) };
        let mut from = select.from.into_iter();
        let (Some(tables), None) = (from.next(), from.next()) else { return Err(malformed()) };
        let [join] = <[_; 1]>::try_from(tables.joins).map_err(|_| malformed())?;
        let entities = context.plan(tables.relation)?;
        let features = context.plan(join.relation)?;
        let has = |name: &str| entities.schema().index_of_column_by_name(None, name).is_some();
        let spec = &marker.spec;
        if let Some(key) = spec.keys.iter().find(|key| !has(key)) {
            return Err(DataFusionError::Plan(format!(
                "point_in_time: the entities have no column {key}, the entity key of {}; give them one \
                 (SELECT ..., <column> AS {key} FROM ...)",
                spec.product
            )));
        }
        if !has(&spec.entity_time) {
            return Err(DataFusionError::Plan(format!(
                "point_in_time: the entities have no column {}, named as their event time",
                spec.entity_time
            )));
        }
        let spec = with_free_names(spec, &marker.product_name, &entities);
        let node = node::AsOfJoinNode::try_new(entities, features, Arc::new(spec))?;
        let plan = LogicalPlan::Extension(Extension { node: Arc::new(node) });
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(plan, marker.alias.clone()))))
    }
}

/// `spec` with each output named by its column, or `<product>__<column>` when the
/// entities already have a column of that name.
fn with_free_names(spec: &AsOfSpec, product: &str, entities: &LogicalPlan) -> AsOfSpec {
    let taken: Vec<String> = entities.schema().fields().iter().map(|f| f.name().to_ascii_lowercase()).collect();
    let mut spec = spec.clone();
    for (column, name) in &mut spec.outputs {
        if taken.contains(&column.to_ascii_lowercase()) {
            *name = format!("{product}__{column}");
        }
    }
    spec
}
