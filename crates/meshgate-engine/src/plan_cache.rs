//! Logical plans of recent statements, per principal: Flight SQL clients plan a
//! statement up to three times per execution (prepare, GetFlightInfo, DoGet). A plan
//! holds the principal's governed tables, so the key includes the whole principal and
//! a plan never serves anyone else. Optimization and physical planning still run per
//! execution, so `now()` and file listings are fresh. The products each plan reads
//! (and the rules that applied) are kept with it: they follow from the plan and the
//! principal. A plan that reads only accelerated copies also keeps its physical plan
//! (see [`crate::physical_reuse`]). The cache lives in the engine, which a reload
//! replaces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use meshgate_policy::Principal;

use crate::physical_reuse::Reuse;
use crate::reads::ProductRead;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 512;

#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    plans: Mutex<HashMap<Key, Entry>>,
}

/// A plan, its session, the products it reads and room for its physical plan.
pub(crate) type Entry = (LogicalPlan, SessionState, Vec<ProductRead>, Option<Arc<Reuse>>);

/// Principal, default schema, time zone, provenance, SQL.
type Key = (String, Option<String>, Option<String>, bool, String);

impl PlanCache {
    pub fn key(principal: &Principal, default_schema: Option<&str>, settings: &crate::PlanSettings, sql: &str) -> Key {
        // Debug quotes every name, so two different principals (or purposes) never
        // share a key.
        let time_zone = settings.time_zone.clone();
        (format!("{principal:?}"), default_schema.map(str::to_owned), time_zone, settings.provenance, sql.to_owned())
    }

    pub fn get(&self, key: &Key) -> Option<Entry> {
        let plans = self.plans.lock().ok()?;
        plans.get(key).cloned()
    }

    pub fn insert(&self, key: Key, entry: Entry) {
        if let Ok(mut plans) = self.plans.lock() {
            if plans.len() >= CAPACITY {
                plans.clear();
            }
            plans.insert(key, entry);
        }
    }
}
