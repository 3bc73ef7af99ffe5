//! Compiled policy rules: what [`crate::PolicySet`] holds after a successful load.

use crate::condition::Condition;
use crate::masks::Mask;
use crate::model::{Effect, FilterMode};
use crate::policy_expr::PolicyExpr;
use crate::principal::Principal;
use crate::selector::Selector;

/// Where a rule was written: mesh-wide or by a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    Mesh,
    Domain(String),
}

/// What every rule has: its id, where it came from, which products, and conditions.
#[derive(Debug, Clone)]
pub struct RuleHead {
    pub id: String,
    /// The policy file (or inline policy path) the rule is in.
    #[expect(dead_code, reason = "kept for explain output and error messages")]
    pub source: String,
    pub level: Level,
    pub selectors: Vec<Selector>,
    pub when: Option<Condition>,
    pub unless: Option<Condition>,
}

impl RuleHead {
    /// Whether the rule applies to `principal`. A rule that loosens access applies
    /// only when its conditions are known to hold; a rule that tightens access applies
    /// unless they are known not to (a missing attribute never loosens).
    pub fn applies(&self, principal: &Principal, loosens: bool) -> bool {
        let when = self.when.as_ref().map_or(Some(true), |c| c.eval(principal));
        let unless = self.unless.as_ref().map_or(Some(false), |c| c.eval(principal));
        if loosens { when == Some(true) && unless == Some(false) } else { when != Some(false) && unless != Some(true) }
    }
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub head: RuleHead,
    pub effect: Effect,
}

#[derive(Debug, Clone)]
pub struct RowFilter {
    pub head: RuleHead,
    pub mode: FilterMode,
    pub filter: PolicyExpr,
}

/// Which columns a column rule covers.
#[derive(Debug, Clone)]
pub enum ColumnSelect {
    All,
    Names(Vec<String>),
    Tags(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum Action {
    Allow,
    Mask(Mask),
    Deny,
}

impl Action {
    /// deny > mask (by mask strictness) > allow.
    pub fn strictness(&self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Mask(mask) => 1 + mask.strictness(),
            Action::Deny => 100,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ColumnRule {
    pub head: RuleHead,
    pub select: ColumnSelect,
    pub action: Action,
}

/// A policy test case, ready to run.
#[derive(Debug, Clone)]
pub struct PolicyTest {
    pub source: String,
    pub name: String,
    pub principal: Principal,
    pub sql: String,
    pub expect_rows: Option<Vec<Vec<serde_norway::Value>>>,
    pub expect_error: Option<String>,
}
