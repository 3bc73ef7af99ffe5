//! SQL through the statement guard and governed planning, as each demo user (a steward,
//! analysts with row filters and masks, a contractor): the input is one principal
//! byte, then the statement. Invariants:
//! - every plan that comes out passes the plan verifier, and independently of it,
//!   every file scan sits under a barrier;
//! - every statement that is not a read-only query is refused;
//! - execution ends with rows or an error within the query timeout, never a panic.

use crate::harness;
use crate::plans::assert_scans_under_barriers;
use futures::StreamExt;
use meshgate_engine::EngineError;
use meshgate_policy::PolicyError;

/// Enough batches to run past the first operators of any plan, few enough to keep
/// runs short.
const MAX_BATCHES: usize = 64;

pub fn run(data: &[u8]) {
    let Some((&who, sql)) = data.split_first() else { return };
    let Ok(sql) = std::str::from_utf8(sql) else { return };
    let harness = harness();
    let principals: Vec<_> = harness.principals.values().collect();
    let principal = principals[usize::from(who) % principals.len()];
    let must_refuse = refused_kind(sql);
    harness.runtime.block_on(async {
        let query = match harness.engine.plan(principal, sql).await {
            Ok(query) => query,
            Err(_) => return,
        };
        if let Some(kind) = &must_refuse {
            panic!("{kind} was planned: {sql:?}");
        }
        match query.physical_plan().await {
            Ok(Some(plan)) => assert_scans_under_barriers(&plan, sql),
            Ok(None) => {}
            Err(EngineError::Governance(PolicyError::Unverified)) => {
                panic!("governed planning produced a plan the verifier refuses: {sql:?}")
            }
            Err(_) => return,
        }
        let Ok(mut stream) = query.execute().await else { return };
        let mut batches = 0;
        while let Some(batch) = stream.next().await {
            batches += 1;
            if batch.is_err() || batches >= MAX_BATCHES {
                break;
            }
        }
    });
}

/// What kind of statement `sql` is when it is one meshgate must refuse (anything but
/// one read-only query, EXPLAIN or SHOW), read with DataFusion's parser.
fn refused_kind(sql: &str) -> Option<String> {
    use datafusion::sql::parser::{DFParser, Statement};
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    let statements = DFParser::parse_sql(sql).ok()?;
    if statements.len() != 1 {
        return Some(format!("{} statements", statements.len()));
    }
    let statement = statements.front()?;
    let read_only = |inner: &Sql| {
        matches!(
            inner,
            Sql::Query(_)
                | Sql::Explain { .. }
                | Sql::ExplainTable { .. }
                | Sql::ShowTables { .. }
                | Sql::ShowColumns { .. }
                | Sql::ShowVariable { .. }
                | Sql::ShowSchemas { .. }
                | Sql::ShowDatabases { .. }
        )
    };
    match statement {
        Statement::Statement(inner) if read_only(inner) => None,
        Statement::Explain(_) => None,
        other => Some(format!("{:?}", std::mem::discriminant(other))),
    }
}
