//! How meshgate's own plan nodes travel to workers: the governed scan's
//! [`BarrierExec`] and [`ProductScanExec`] (DataFusion's nodes, the row filter and
//! the masks travel as datafusion-proto encodes them). Nothing else of meshgate's is
//! encoded: a plan holding an accelerated copy, a Delta scan or a point-in-time join
//! cannot be encoded, and runs on the gateway.
//!
//! `keyed_hash` masks never carry their key. The gateway refuses to send one whose
//! key it drew at random (no `MESHGATE_MASK_KEY_<DOMAIN>`: no other process could
//! compute the same values); a worker binds each barrier's `keyed_hash` to its
//! domain's key from its own environment, or fails the stage.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use meshgate_catalog::ProductScanExec;
use meshgate_policy::{BarrierExec, KeyedHash, mask_key_variable};
use serde::{Deserialize, Serialize};

const KEYED_HASH: &str = "keyed_hash";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "node", deny_unknown_fields)]
enum Node {
    Barrier { product: String, transparent: Option<Vec<bool>> },
    ProductScan { product: String, location: String },
}

/// Encodes meshgate's nodes on the gateway; decodes them on a worker, where `keys`
/// holds each domain's `keyed_hash` (from the worker's environment).
#[derive(Debug, Default)]
pub struct MeshCodec {
    keys: BTreeMap<String, Arc<ScalarUDF>>,
}

impl MeshCodec {
    pub fn with_keys(keys: BTreeMap<String, Arc<ScalarUDF>>) -> Self {
        Self { keys }
    }

    /// `plan` with its `keyed_hash` calls bound to `domain`'s key.
    fn bind_keyed_hash(&self, product: &str, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        if !uses_keyed_hash(&plan)? {
            return Ok(plan);
        }
        let domain = domain_of(product);
        let Some(udf) = self.keys.get(domain) else {
            return Err(DataFusionError::Execution(format!(
                "this worker cannot mask {product}: it was started without {}, the gateway's keyed_hash key for \
                 domain {domain}",
                mask_key_variable(domain)
            )));
        };
        plan.transform_up(|node| {
            let Some(projection) = node.downcast_ref::<ProjectionExec>() else { return Ok(Transformed::no(node)) };
            let schema = projection.input().schema();
            let mut changed = false;
            let mut exprs = Vec::with_capacity(projection.expr().len());
            for item in projection.expr() {
                let bound = Arc::clone(&item.expr).transform_up(|expr| {
                    let Some(call) = expr.downcast_ref::<ScalarFunctionExpr>().filter(|c| c.name() == KEYED_HASH)
                    else {
                        return Ok(Transformed::no(expr));
                    };
                    let field = call.return_field(&schema)?;
                    let options = Arc::new(call.config_options().clone());
                    let bound =
                        ScalarFunctionExpr::new(KEYED_HASH, Arc::clone(udf), call.args().to_vec(), field, options);
                    Ok(Transformed::yes(Arc::new(bound) as Arc<dyn PhysicalExpr>))
                })?;
                changed |= bound.transformed;
                exprs.push(ProjectionExpr { expr: bound.data, alias: item.alias.clone() });
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            let input = Arc::clone(projection.input());
            Ok(Transformed::yes(Arc::new(ProjectionExec::try_new(exprs, input)?) as Arc<dyn ExecutionPlan>))
        })
        .map(|bound| bound.data)
    }
}

/// The domain of a product named `domain.product`: whose keyed_hash key masks it.
fn domain_of(product: &str) -> &str {
    product.split_once('.').map_or(product, |(domain, _)| domain)
}

/// Whether a projection in `plan` calls `keyed_hash`.
fn uses_keyed_hash(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut found = false;
    keyed_hashes(plan, &mut |_| found = true)?;
    Ok(found)
}

/// Calls `each` with every `keyed_hash` function a projection in `plan` calls.
fn keyed_hashes(plan: &Arc<dyn ExecutionPlan>, each: &mut dyn FnMut(&ScalarUDF)) -> Result<()> {
    plan.apply(|node| {
        if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
            for item in projection.expr() {
                item.expr.apply(|expr| {
                    if let Some(call) = expr.downcast_ref::<ScalarFunctionExpr>().filter(|c| c.name() == KEYED_HASH) {
                        each(call.fun());
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map(|_| ())
}

impl PhysicalExtensionCodec for MeshCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node: Node = serde_json::from_slice(buf)
            .map_err(|error| DataFusionError::Internal(format!("undecodable meshgate plan node: {error}")))?;
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "a meshgate plan node takes one input, got {}",
                inputs.len()
            )));
        };
        Ok(match node {
            Node::Barrier { product, transparent } => {
                let input = self.bind_keyed_hash(&product, Arc::clone(input))?;
                Arc::new(BarrierExec::new(product.into(), input, transparent))
            }
            Node::ProductScan { product, location } => {
                Arc::new(ProductScanExec::new(product.into(), location.into(), Arc::clone(input)))
            }
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(barrier) = node.downcast_ref::<BarrierExec>() {
            let mut random_key = false;
            keyed_hashes(&node, &mut |udf| random_key |= KeyedHash::portable(udf) == Some(false))?;
            if random_key {
                return Err(DataFusionError::NotImplemented(format!(
                    "{} is masked with keyed_hash under a key drawn at random by this gateway (no {}): workers \
                     could not compute the same values",
                    barrier.product(),
                    mask_key_variable(domain_of(barrier.product()))
                )));
            }
            Node::Barrier {
                product: barrier.product().to_owned(),
                transparent: barrier.transparent().map(<[bool]>::to_vec),
            }
        } else if let Some(scan) = node.downcast_ref::<ProductScanExec>() {
            Node::ProductScan { product: scan.product().to_owned(), location: scan.location().to_owned() }
        } else {
            return Err(DataFusionError::NotImplemented(format!("{} does not run on workers", node.name())));
        };
        serde_json::to_writer(buf, &encoded)
            .map_err(|error| DataFusionError::Internal(format!("cannot encode a meshgate plan node: {error}")))
    }
}
