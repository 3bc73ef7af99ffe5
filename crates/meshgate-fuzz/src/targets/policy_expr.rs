//! Policy conditions (`when:`) and row-filter and mask expressions: any text is parsed
//! against the demo's attributes; what parses is evaluated for every demo user and
//! bound to a product's schema, refused with a message or accepted, never a panic.

use crate::harness;
use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use meshgate_policy::{Condition, PolicyExpr};

pub fn run(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let harness = harness();
    let attributes = harness.engine.policy().attributes();
    if which % 2 == 0 {
        if let Ok(condition) = Condition::parse(text, attributes) {
            for principal in harness.principals.values() {
                let _ = condition.eval(principal);
            }
        }
        return;
    }
    let Ok(expr) = PolicyExpr::parse(text, attributes) else { return };
    let products: Vec<_> = harness.engine.snapshot().products().collect();
    let entry = products[usize::from(which / 2) % products.len()];
    let Ok(schema) = DFSchema::try_from_qualified_schema(entry.product.name.as_str(), &entry.table.schema()) else {
        return;
    };
    let state = harness.engine.session_state();
    for principal in harness.principals.values() {
        let _ = expr.to_expr(state, &schema, Some(principal), attributes);
    }
    let _ = expr.to_expr(state, &schema, None, attributes);
}
