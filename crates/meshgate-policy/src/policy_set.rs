//! `PolicySet`: every loaded rule, and the decisions it makes for one principal and
//! one product — may they read it, which rows, which columns and how masked.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable, ScalarUDF, lit};
use meshgate_catalog::ProductEntry;
use meshgate_catalog::config::Product;

use crate::model::{Effect, FilterMode};
use crate::principal::{AttrType, Principal};
use crate::rules::{Action, ColumnRule, ColumnSelect, Grant, Level, PolicyTest, RowFilter};
use crate::selector::{all_match, any_tag_matches};

/// The loaded, checked policies of a mesh.
#[derive(Debug)]
pub struct PolicySet {
    pub(crate) attributes: BTreeMap<String, AttrType>,
    pub(crate) stewards: Vec<String>,
    pub(crate) grants: Vec<Grant>,
    pub(crate) row_filters: Vec<RowFilter>,
    pub(crate) columns: Vec<ColumnRule>,
    pub(crate) tests: Vec<PolicyTest>,
    /// Domain → its keyed-hash function.
    pub(crate) hashes: BTreeMap<String, Arc<ScalarUDF>>,
    /// Plans policy expressions (functions and settings, no catalogs).
    pub(crate) state: SessionState,
}

/// How one column is served.
#[derive(Debug, Clone)]
pub struct ColumnDecision {
    pub name: String,
    pub action: Action,
    /// The rule that decided, or `None` when no rule covers the column (denied).
    pub rule: Option<String>,
}

/// Everything decided for one principal and one product.
#[derive(Debug, Clone)]
pub struct Decision {
    pub readable: bool,
    /// (rule id, effect) of every grant that applied.
    pub grants: Vec<(String, Effect)>,
    pub permissive: Vec<(String, String)>,
    pub restrictive: Vec<(String, String)>,
    pub columns: Vec<ColumnDecision>,
}

impl PolicySet {
    pub fn attributes(&self) -> &BTreeMap<String, AttrType> {
        &self.attributes
    }

    pub fn tests(&self) -> &[PolicyTest] {
        &self.tests
    }

    pub fn is_steward(&self, principal: &Principal) -> bool {
        self.stewards.iter().any(|group| principal.in_group(group))
    }

    /// Default deny: some permit applies and no forbid does.
    pub fn can_read(&self, principal: &Principal, product: &Product) -> bool {
        let mut permitted = false;
        for grant in self.grants.iter().filter(|g| all_match(&g.head.selectors, product)) {
            match grant.effect {
                Effect::Forbid if grant.head.applies(principal, false) => return false,
                Effect::Permit if grant.head.applies(principal, true) => permitted = true,
                _ => {}
            }
        }
        permitted
    }

    /// The full decision, for explain and for building the governed table.
    pub fn decide(&self, principal: &Principal, entry: &ProductEntry) -> Decision {
        let product = &entry.product;
        let grants = self
            .grants
            .iter()
            .filter(|g| all_match(&g.head.selectors, product) && g.head.applies(principal, g.effect == Effect::Permit))
            .map(|g| (g.head.id.clone(), g.effect))
            .collect();
        let mut permissive = Vec::new();
        let mut restrictive = Vec::new();
        for filter in self.row_filters.iter().filter(|f| all_match(&f.head.selectors, product)) {
            let loosens = filter.mode == FilterMode::Permissive;
            if filter.head.applies(principal, loosens) {
                let entry = (filter.head.id.clone(), filter.filter.text.clone());
                if loosens { permissive.push(entry) } else { restrictive.push(entry) }
            }
        }
        let schema = entry.table.schema();
        let columns = schema.fields().iter().map(|field| self.column(principal, product, field.name())).collect();
        Decision { readable: self.can_read(principal, product), grants, permissive, restrictive, columns }
    }

    /// Whether `entry` is readable by someone yet served to everyone without columns:
    /// a permit grant covers it, but no allow or mask rule covers any of its columns
    /// (or an unconditional deny also covers each such column). For any principal,
    /// stewards included, its rows would come back with zero columns.
    pub fn serves_no_columns(&self, entry: &ProductEntry) -> bool {
        let product = &entry.product;
        let readable = self.grants.iter().any(|g| g.effect == Effect::Permit && all_match(&g.head.selectors, product));
        let served = |column: &str| {
            let mut allowed = false;
            for rule in self.columns.iter() {
                if !all_match(&rule.head.selectors, product) || !selects(&rule.select, product, column) {
                    continue;
                }
                match rule.action {
                    Action::Deny if rule.head.when.is_none() && rule.head.unless.is_none() => return false,
                    Action::Deny => {}
                    Action::Allow | Action::Mask(_) => allowed = true,
                }
            }
            allowed
        };
        // A product without a schema (it could not be opened) has its own problem.
        let fields = entry.table.schema().fields().clone();
        readable && !fields.is_empty() && !fields.iter().any(|field| served(field.name()))
    }

    fn column(&self, principal: &Principal, product: &Product, column: &str) -> ColumnDecision {
        let mut best: Option<&ColumnRule> = None;
        for rule in &self.columns {
            if !all_match(&rule.head.selectors, product) || !selects(&rule.select, product, column) {
                continue;
            }
            let loosens = matches!(rule.action, Action::Allow);
            if !rule.head.applies(principal, loosens) {
                continue;
            }
            best = Some(match best {
                None => rule,
                Some(current) => stricter(current, rule),
            });
        }
        match best {
            Some(rule) => ColumnDecision {
                name: column.to_owned(),
                action: rule.action.clone(),
                rule: Some(rule.head.id.clone()),
            },
            None => ColumnDecision { name: column.to_owned(), action: Action::Deny, rule: None },
        }
    }

    /// The row filter over the product's raw columns: (OR of permissive) AND (AND of
    /// restrictive); FALSE when no permissive filter applies. Also whether it keeps
    /// every row (a permissive `true` and nothing restrictive): then the principal may
    /// see all rows and nothing is hidden from them.
    pub(crate) fn row_filter(
        &self,
        principal: &Principal,
        entry: &ProductEntry,
        raw: &DFSchema,
    ) -> Result<(Expr, bool)> {
        let product = &entry.product;
        let mut permissive: Option<Expr> = None;
        let mut restrictive: Option<Expr> = None;
        let mut keeps_all = false;
        for filter in self.row_filters.iter().filter(|f| all_match(&f.head.selectors, product)) {
            let loosens = filter.mode == FilterMode::Permissive;
            if !filter.head.applies(principal, loosens) {
                continue;
            }
            let expr = filter.filter.to_expr(&self.state, raw, Some(principal), &self.attributes)?;
            if loosens && matches!(&expr, Expr::Literal(ScalarValue::Boolean(Some(true)), _)) {
                keeps_all = true;
            }
            // NULL counts as false: a filter keeps only rows where it is true, and an
            // AND or OR of conditions is true exactly when the same AND or OR of their
            // `IS TRUE` forms is. So only a condition that is not boolean (which fails
            // planning, as it should) keeps the `IS TRUE`.
            let expr = if matches!(expr.get_type(raw), Ok(DataType::Boolean)) { expr } else { expr.is_true() };
            if loosens {
                permissive = Some(match permissive {
                    None => expr,
                    Some(previous) => previous.or(expr),
                });
            } else {
                restrictive = Some(match restrictive {
                    None => expr,
                    Some(previous) => previous.and(expr),
                });
            }
        }
        let permissive = permissive.unwrap_or_else(|| lit(false));
        let (filter, keeps_all) = match restrictive {
            Some(restrictive) => (permissive.and(restrictive), false),
            None => (permissive, keeps_all),
        };
        // A filter that cannot be typed here fails at the scan, with the query's own error.
        let filter = crate::filter_fold::fold(&self.state, filter.clone(), raw).unwrap_or(filter);
        // A filter that folds to `true` (the principal's attributes are literals by now) hides nothing.
        let keeps_all = keeps_all || matches!(&filter, Expr::Literal(ScalarValue::Boolean(Some(true)), _));
        Ok((filter, keeps_all))
    }

    /// The governed table of `entry` for `principal`, or `None` when they may not read it.
    pub fn governed_table(
        &self,
        principal: &Principal,
        entry: &Arc<ProductEntry>,
    ) -> Result<Option<crate::GovernedTable>> {
        if !self.can_read(principal, &entry.product) {
            return Ok(None);
        }
        let raw_schema = entry.table.schema();
        let raw = DFSchema::try_from(raw_schema.as_ref().clone())?;
        let (filter, all_rows) = self.row_filter(principal, entry, &raw)?;
        let hash = self
            .hashes
            .get(&entry.product.domain)
            .cloned()
            .unwrap_or_else(|| crate::masks::KeyedHash::udf(Arc::from(vec![0u8; 0]), false));
        let mut outputs = Vec::new();
        let mut fields = Vec::new();
        for (index, field) in raw_schema.fields().iter().enumerate() {
            let decision = self.column(principal, &entry.product, field.name());
            let (expr, unmasked) = match &decision.action {
                Action::Deny => continue,
                Action::Allow => {
                    (datafusion::logical_expr::col(datafusion::common::Column::from_name(field.name())), true)
                }
                Action::Mask(mask) => {
                    let custom = match mask {
                        crate::masks::Mask::Expression(expr) => {
                            Some(expr.to_expr(&self.state, &raw, Some(principal), &self.attributes)?)
                        }
                        _ => None,
                    };
                    (mask.to_expr(field.name(), field.data_type(), &hash, custom)?, false)
                }
            };
            let physical = self.state.create_physical_expr(expr.clone(), &raw)?;
            let data_type = physical.data_type(raw_schema.as_ref())?;
            let nullable = if unmasked { field.is_nullable() } else { true };
            fields.push(Field::new(field.name(), data_type, nullable));
            outputs.push(crate::governed_table::Output {
                name: field.name().clone(),
                expr,
                raw_index: index,
                unmasked,
            });
        }
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        Ok(Some(crate::GovernedTable::new(Arc::clone(entry), schema, filter, all_rows, outputs)))
    }
}

/// Whether a column rule's selection covers `column` of `product`.
pub(crate) fn selects(select: &ColumnSelect, product: &Product, column: &str) -> bool {
    match select {
        ColumnSelect::All => true,
        ColumnSelect::Names(names) => names.iter().any(|name| name == column),
        ColumnSelect::Tags(tags) => product
            .schema
            .iter()
            .flatten()
            .find(|c| c.name == column)
            .is_some_and(|c| c.tags.iter().any(|tag| any_tag_matches(tags, tag))),
    }
}

/// The stricter of two applicable column rules; ties go to mesh-wide rules, then to
/// the smaller rule id, so rule order never matters.
fn stricter<'a>(a: &'a ColumnRule, b: &'a ColumnRule) -> &'a ColumnRule {
    let key = |rule: &ColumnRule| (rule.action.strictness(), rule.head.level == Level::Mesh);
    match key(a).cmp(&key(b)) {
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Equal => {
            if a.head.id <= b.head.id {
                a
            } else {
                b
            }
        }
    }
}
