//! Policy files and the `governance` section as written by people: parsed strictly
//! (`deny_unknown_fields`); [`crate::compile`] checks them against the mesh.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The mesh file's `governance` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceSpec {
    /// Principal attribute name → type (utf8, int64, float64, boolean).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Groups whose members see full EXPLAIN output.
    #[serde(default)]
    pub stewards: Vec<String>,
    /// Mesh-wide policies: file paths or inline policies.
    #[serde(default)]
    pub policies: Vec<serde_norway::Value>,
}

/// One policy file (or inline policy).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The products every rule of the file applies to, unless a rule narrows them.
    pub products: Option<SelectorSpec>,
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
    #[serde(default)]
    pub row_filters: Vec<RowFilterSpec>,
    #[serde(default)]
    pub columns: Vec<ColumnRuleSpec>,
    #[serde(default)]
    pub tests: Vec<PolicyTestSpec>,
}

/// Which products a rule applies to: a list of names, or criteria that must all match.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SelectorSpec {
    Names(Vec<String>),
    Criteria(CriteriaSpec),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriteriaSpec {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub column_tags: Vec<String>,
    #[serde(default)]
    pub status: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Permit,
    Forbid,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    pub id: String,
    pub effect: Effect,
    pub products: Option<SelectorSpec>,
    pub when: Option<String>,
    pub unless: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    Permissive,
    Restrictive,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilterSpec {
    pub id: String,
    pub mode: FilterMode,
    pub products: Option<SelectorSpec>,
    pub when: Option<String>,
    pub unless: Option<String>,
    pub filter: String,
}

/// Which columns a column rule covers: `"*"`, a list of names, or tags.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ColumnSelectSpec {
    All(String),
    Names(Vec<String>),
    Tags(TagSelectSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSelectSpec {
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRuleSpec {
    pub id: Option<String>,
    pub products: Option<SelectorSpec>,
    pub select: ColumnSelectSpec,
    pub action: ActionSpec,
    pub when: Option<String>,
    pub unless: Option<String>,
}

/// `allow`, `deny`, or `{ mask: KIND, ...parameters }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ActionSpec {
    Plain(PlainAction),
    Mask(MaskSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlainAction {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    pub mask: MaskKind,
    pub n: Option<usize>,
    pub value: Option<serde_norway::Value>,
    pub unit: Option<String>,
    pub width: Option<f64>,
    pub sql: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    Null,
    Redact,
    ShowFirst,
    ShowLast,
    KeyedHash,
    Truncate,
    Bucket,
    Expression,
}

/// A policy test case: who asks, what, and what they must get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTestSpec {
    pub name: String,
    pub principal: PrincipalSpec,
    pub sql: String,
    pub expect_rows: Option<Vec<Vec<serde_norway::Value>>>,
    pub expect_error: Option<String>,
}

/// A configured user's name, or a principal written out.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PrincipalSpec {
    User(String),
    Inline(InlinePrincipalSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlinePrincipalSpec {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_norway::Value>,
}
