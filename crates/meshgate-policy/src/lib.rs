//! meshgate-policy: governance. Principals, policies as code (loaded strictly and
//! type-checked against the mesh), the decisions they make, and their enforcement
//! inside planning: [`GovernedTable`] scans end in a [`BarrierExec`], and
//! [`verify_plan`] fails any plan with a product scan outside one.

mod barrier;
mod cannot_fail;
mod catalog;
mod condition;
mod error;
mod explain;
mod filter_fold;
mod governed_table;
pub mod identity;
mod load;
mod masks;
pub mod model;
mod policy_expr;
mod policy_set;
mod principal;
mod rules;
mod selector;
mod verifier;

pub use barrier::BarrierExec;
pub use catalog::{GovernedCatalog, MeshView};
pub use condition::Condition;
pub use error::PolicyError;
pub use explain::render_physical;
pub use governed_table::GovernedTable;
pub use load::{configured_users, load_policies};
pub use masks::{KeyedHash, keyed_hash_from_env, mask_key_variable};
pub use policy_expr::PolicyExpr;
pub use policy_set::{ColumnDecision, Decision, PolicySet};
pub use principal::{AttrType, AttrValue, PURPOSE_ATTRIBUTE, Principal};
pub use rules::{Action, PolicyTest};
pub use verifier::verify_plan;
