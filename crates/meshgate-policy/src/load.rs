//! Loading policies: the `governance` section, mesh-wide and domain policy files,
//! each rule checked against the mesh (products, columns, tags, attribute types,
//! expression types). Every mistake is reported with its path.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::ExprSchemable;
use meshgate_catalog::config::Product;
use meshgate_catalog::{ConfigError, ConfigErrors, MeshConfig, MeshSnapshot};
use serde::de::DeserializeOwned;

use crate::condition::Condition;
use crate::identity::{UserSpec, configured_principal};
use crate::masks::{KeyedHash, Mask};
use crate::model::{
    ActionSpec, ColumnSelectSpec, GovernanceSpec, MaskKind, MaskSpec, PlainAction, PolicySpec, PrincipalSpec,
    SelectorSpec,
};
use crate::policy_expr::PolicyExpr;
use crate::policy_set::PolicySet;
use crate::principal::{AttrType, Principal};
use crate::rules::{Action, ColumnRule, ColumnSelect, Grant, Level, PolicyTest, RowFilter, RuleHead};
use crate::selector::{Selector, all_match, any_tag_matches};

const TRUNCATE_UNITS: [&str; 6] = ["year", "quarter", "month", "week", "day", "hour"];

/// Loads every policy of the mesh and checks it against the snapshot's products.
pub fn load_policies(config: &MeshConfig, snapshot: &MeshSnapshot) -> Result<PolicySet, ConfigErrors> {
    let mut loader = Loader::new(config, snapshot);
    let governance: GovernanceSpec = match &config.governance {
        Some(value) => loader.parse(value.clone(), "governance").unwrap_or_default(),
        None => GovernanceSpec::default(),
    };
    for (name, ty) in &governance.attributes {
        if crate::principal::built_in_attribute(name).is_some() {
            loader.error(
                format!("governance.attributes.{name}"),
                format!("'{name}' is built in (principal.{name} is always a utf8 attribute); remove it here"),
            );
            continue;
        }
        match AttrType::parse(ty) {
            Some(ty) => {
                loader.attributes.insert(name.clone(), ty);
            }
            None => loader.error(
                format!("governance.attributes.{name}"),
                format!("unknown type '{ty}' (use utf8, int64, float64 or boolean)"),
            ),
        }
    }
    for (index, source) in governance.policies.iter().enumerate() {
        loader.source(source, &format!("governance.policies[{index}]"), Level::Mesh);
    }
    for domain in &config.domains {
        for (index, source) in domain.policies.iter().enumerate() {
            loader.source(
                source,
                &format!("domains.{}.policies[{index}]", domain.name),
                Level::Domain(domain.name.clone()),
            );
        }
    }
    loader.resolve_test_principals();
    loader.finish(governance.stewards)
}

/// Configured users as principals (for policy tests and `policy explain --as`).
pub fn configured_users(config: &MeshConfig, attributes: &BTreeMap<String, AttrType>) -> BTreeMap<String, Principal> {
    // Only `users` is read: a mistake elsewhere in `auth` is reported by the
    // authenticator with its path, rather than hidden behind every test's unknown user.
    let Some(users) = config.auth.as_ref().and_then(|auth| auth.get("users")) else { return BTreeMap::new() };
    let Ok(users) = serde_norway::from_value::<Vec<UserSpec>>(users.clone()) else { return BTreeMap::new() };
    users
        .iter()
        .map(|user| (user.name.clone(), configured_principal(&user.name, &user.groups, &user.attributes, attributes).0))
        .collect()
}

struct Loader<'a> {
    config: &'a MeshConfig,
    snapshot: &'a MeshSnapshot,
    state: SessionState,
    errors: Vec<ConfigError>,
    attributes: BTreeMap<String, AttrType>,
    ids: BTreeSet<String>,
    grants: Vec<Grant>,
    row_filters: Vec<RowFilter>,
    columns: Vec<ColumnRule>,
    tests: Vec<(String, PrincipalSpec, PolicyTest)>,
}

impl<'a> Loader<'a> {
    fn new(config: &'a MeshConfig, snapshot: &'a MeshSnapshot) -> Self {
        let mut session = snapshot.session_config().clone();
        session.options_mut().catalog.create_default_catalog_and_schema = false;
        let state = SessionStateBuilder::new().with_config(session).with_default_features().build();
        Self {
            config,
            snapshot,
            state,
            errors: Vec::new(),
            attributes: BTreeMap::new(),
            ids: BTreeSet::new(),
            grants: Vec::new(),
            row_filters: Vec::new(),
            columns: Vec::new(),
            tests: Vec::new(),
        }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    fn parse<T: DeserializeOwned>(&mut self, value: serde_norway::Value, path: &str) -> Option<T> {
        match serde_path_to_error::deserialize(value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                let inner = error.path().to_string();
                let full = if inner == "." { path.to_owned() } else { format!("{path}.{inner}") };
                self.error(full, error.into_inner().to_string());
                None
            }
        }
    }

    /// A policy file path or an inline policy.
    fn source(&mut self, source: &serde_norway::Value, path: &str, level: Level) {
        let (label, value) = match source {
            serde_norway::Value::String(file) => {
                let full = self.config.base_dir.join(file);
                let text = match std::fs::read_to_string(&full) {
                    Ok(text) => text,
                    Err(error) => return self.error(path, format!("cannot read policy file {file}: {error}")),
                };
                match serde_norway::from_str::<serde_norway::Value>(&text) {
                    Ok(value) => (file.clone(), value),
                    Err(error) => return self.error(file.as_str(), format!("invalid YAML: {error}")),
                }
            }
            serde_norway::Value::Mapping(_) => (path.to_owned(), source.clone()),
            _ => return self.error(path, "expected a policy file path or an inline policy"),
        };
        let Some(spec) = self.parse::<PolicySpec>(value, &label) else { return };
        self.policy(&label, level, spec);
    }

    fn products_of(&self, selectors: &[Selector]) -> Vec<&'a Product> {
        self.config.products().filter(|product| all_match(selectors, product)).collect()
    }

    /// Checks what every rule has: a unique id, known products, valid conditions.
    fn head(
        &mut self,
        path: &str,
        source: &str,
        level: &Level,
        id: String,
        (file_products, products): (Option<&SelectorSpec>, Option<&SelectorSpec>),
        (when, unless): (Option<&String>, Option<&String>),
    ) -> Option<RuleHead> {
        let mut ok = true;
        if !self.ids.insert(id.clone()) {
            self.error(format!("{path}.id"), format!("duplicate rule id '{id}'"));
            ok = false;
        }
        let domain = match level {
            Level::Domain(domain) => Some(domain.as_str()),
            Level::Mesh => None,
        };
        let selectors = Selector::from_specs(domain, file_products, products);
        for (selector, field) in selectors.iter().zip(["products", "products"]) {
            for name in &selector.names {
                let known = self
                    .config
                    .products()
                    .any(|p| (p.name == *name || p.qualified_name() == *name) && domain.is_none_or(|d| d == p.domain));
                if !known {
                    let scope = domain.map(|d| format!(" in domain {d}")).unwrap_or_default();
                    self.error(format!("{path}.{field}"), format!("unknown product '{name}'{scope}"));
                    ok = false;
                }
            }
            for status in &selector.status {
                if !["draft", "active", "deprecated", "retired"].contains(&status.as_str()) {
                    self.error(format!("{path}.{field}.status"), format!("unknown status '{status}'"));
                    ok = false;
                }
            }
            for d in &selector.domains {
                if !self.config.domains.iter().any(|known| known.name == *d) {
                    self.error(format!("{path}.{field}.domains"), format!("unknown domain '{d}'"));
                    ok = false;
                }
            }
        }
        let when = self.condition(&format!("{path}.when"), when);
        let unless = self.condition(&format!("{path}.unless"), unless);
        let (Some(when), Some(unless)) = (when, unless) else { return None };
        ok.then(|| RuleHead { id, source: source.to_owned(), level: level.clone(), selectors, when, unless })
    }

    fn condition(&mut self, path: &str, text: Option<&String>) -> Option<Option<Condition>> {
        let Some(text) = text else { return Some(None) };
        match Condition::parse(text, &self.attributes) {
            Ok(condition) => Some(Some(condition)),
            Err(problem) => {
                self.error(path, format!("{problem} in condition \"{text}\""));
                None
            }
        }
    }

    fn policy(&mut self, source: &str, level: Level, spec: PolicySpec) {
        let file_products = spec.products.as_ref();
        for (index, grant) in spec.grants.into_iter().enumerate() {
            let path = format!("{source}: grants[{index}]");
            let head = self.head(
                &path,
                source,
                &level,
                grant.id,
                (file_products, grant.products.as_ref()),
                (grant.when.as_ref(), grant.unless.as_ref()),
            );
            if let Some(head) = head {
                self.grants.push(Grant { head, effect: grant.effect });
            }
        }
        for (index, filter) in spec.row_filters.into_iter().enumerate() {
            let path = format!("{source}: row_filters[{index}]");
            let head = self.head(
                &path,
                source,
                &level,
                filter.id,
                (file_products, filter.products.as_ref()),
                (filter.when.as_ref(), filter.unless.as_ref()),
            );
            let expr = match PolicyExpr::parse(&filter.filter, &self.attributes) {
                Ok(expr) => Some(expr),
                Err(problem) => {
                    self.error(format!("{path}.filter"), problem);
                    None
                }
            };
            let (Some(head), Some(expr)) = (head, expr) else { continue };
            for product in self.products_of(&head.selectors) {
                self.check_expr(&format!("{path}.filter"), product, &expr, Some(&DataType::Boolean));
            }
            self.row_filters.push(RowFilter { head, mode: filter.mode, filter: expr });
        }
        for (index, rule) in spec.columns.into_iter().enumerate() {
            let path = format!("{source}: columns[{index}]");
            let id = rule.id.clone().unwrap_or_else(|| format!("{source}#columns[{index}]"));
            let head = self.head(
                &path,
                source,
                &level,
                id,
                (file_products, rule.products.as_ref()),
                (rule.when.as_ref(), rule.unless.as_ref()),
            );
            let select = self.column_select(&format!("{path}.select"), &rule.select);
            let action = self.action(&format!("{path}.action"), &rule.action);
            let (Some(head), Some(select), Some(action)) = (head, select, action) else { continue };
            self.check_columns(&path, &head, &select, &action);
            self.columns.push(ColumnRule { head, select, action });
        }
        for (index, test) in spec.tests.into_iter().enumerate() {
            if test.expect_rows.is_none() == test.expect_error.is_none() {
                self.error(format!("{source}: tests[{index}]"), "give exactly one of expect_rows and expect_error");
                continue;
            }
            let case = PolicyTest {
                source: source.to_owned(),
                name: test.name,
                principal: Principal::default(),
                sql: test.sql,
                expect_rows: test.expect_rows,
                expect_error: test.expect_error,
            };
            self.tests.push((format!("{source}: tests[{index}].principal"), test.principal, case));
        }
    }

    fn column_select(&mut self, path: &str, select: &ColumnSelectSpec) -> Option<ColumnSelect> {
        match select {
            ColumnSelectSpec::All(star) if star == "*" => Some(ColumnSelect::All),
            ColumnSelectSpec::All(other) => {
                self.error(path, format!("'{other}': write \"*\", a list of column names, or {{ tags: [...] }}"));
                None
            }
            ColumnSelectSpec::Names(names) => Some(ColumnSelect::Names(names.clone())),
            ColumnSelectSpec::Tags(tags) => Some(ColumnSelect::Tags(tags.tags.clone())),
        }
    }

    fn action(&mut self, path: &str, action: &ActionSpec) -> Option<Action> {
        match action {
            ActionSpec::Plain(PlainAction::Allow) => Some(Action::Allow),
            ActionSpec::Plain(PlainAction::Deny) => Some(Action::Deny),
            ActionSpec::Mask(spec) => match self.mask(spec) {
                Ok(mask) => Some(Action::Mask(mask)),
                Err(problem) => {
                    self.error(path, problem);
                    None
                }
            },
        }
    }

    fn mask(&self, spec: &MaskSpec) -> Result<Mask, String> {
        let n = || spec.n.ok_or_else(|| "this mask needs n: the number of characters to show".to_owned());
        Ok(match spec.mask {
            MaskKind::Null => Mask::Null,
            MaskKind::Redact => Mask::Redact(match &spec.value {
                None => ScalarValue::Utf8(Some("****".into())),
                Some(serde_norway::Value::String(text)) => ScalarValue::Utf8(Some(text.clone())),
                Some(serde_norway::Value::Number(number)) => match number.as_i64() {
                    Some(int) => ScalarValue::Int64(Some(int)),
                    None => ScalarValue::Float64(number.as_f64()),
                },
                Some(serde_norway::Value::Bool(flag)) => ScalarValue::Boolean(Some(*flag)),
                Some(_) => return Err("redact value must be a string, number or boolean".into()),
            }),
            MaskKind::ShowFirst => Mask::ShowFirst(n()?),
            MaskKind::ShowLast => Mask::ShowLast(n()?),
            MaskKind::KeyedHash => Mask::KeyedHash,
            MaskKind::Truncate => {
                let unit = spec.unit.clone().ok_or("truncate needs unit: year, quarter, month, week, day or hour")?;
                if !TRUNCATE_UNITS.contains(&unit.as_str()) {
                    return Err(format!("unknown unit '{unit}' (use {})", TRUNCATE_UNITS.join(", ")));
                }
                Mask::Truncate(unit)
            }
            MaskKind::Bucket => match spec.width {
                Some(width) if width > 0.0 && width.is_finite() => Mask::Bucket(width),
                _ => return Err("bucket needs a positive width".into()),
            },
            MaskKind::Expression => {
                let sql = spec.sql.as_ref().ok_or("an expression mask needs sql")?;
                Mask::Expression(Box::new(PolicyExpr::parse(sql, &self.attributes)?))
            }
        })
    }

    fn check_columns(&mut self, path: &str, head: &RuleHead, select: &ColumnSelect, action: &Action) {
        let products = self.products_of(&head.selectors);
        match select {
            ColumnSelect::All => {}
            ColumnSelect::Names(names) => {
                for name in names {
                    if !products
                        .iter()
                        .any(|p| self.raw_schema(p).is_some_and(|s| s.field_with_unqualified_name(name).is_ok()))
                    {
                        let products: Vec<String> = products.iter().map(|p| p.qualified_name()).collect();
                        self.error(
                            format!("{path}.select"),
                            format!("unknown column '{name}' in {}", products.join(", ")),
                        );
                    }
                }
            }
            ColumnSelect::Tags(tags) => {
                let any = self
                    .config
                    .products()
                    .flat_map(|p| p.schema.iter().flatten())
                    .any(|c| c.tags.iter().any(|t| any_tag_matches(tags, t)));
                if !any {
                    self.error(
                        format!("{path}.select.tags"),
                        format!("no column of the mesh has a tag matching {}", tags.join(", ")),
                    );
                }
            }
        }
        let Action::Mask(mask) = action else { return };
        for product in products {
            let Some(schema) = self.raw_schema(product) else { continue };
            for field in schema.fields() {
                if !crate::policy_set::selects(select, product, field.name()) {
                    continue;
                }
                let where_ = format!("{path}.action");
                if let Err(problem) = mask.check_type(field.data_type()) {
                    self.error(
                        &where_,
                        format!("{} on {}.{}: {problem}", mask.describe(), product.qualified_name(), field.name()),
                    );
                } else if let Mask::Expression(expr) = mask {
                    self.check_expr(&where_, product, expr, None);
                }
            }
        }
    }

    fn raw_schema(&self, product: &Product) -> Option<DFSchema> {
        let entry = self.snapshot.version_of(&product.domain, &product.name, &product.version)?;
        let schema = datafusion::catalog::TableProvider::schema(entry.table.as_ref());
        if schema.fields().is_empty() {
            return None;
        }
        DFSchema::try_from(schema.as_ref().clone()).ok()
    }

    /// Plans `expr` over the product's columns with every attribute NULL of its type.
    fn check_expr(&mut self, path: &str, product: &Product, expr: &PolicyExpr, want: Option<&DataType>) {
        let Some(schema) = self.raw_schema(product) else { return };
        let checked = expr.to_expr(&self.state, &schema, None, &self.attributes).and_then(|logical| {
            let ty = logical.get_type(&schema)?;
            self.state.create_physical_expr(logical, &schema)?;
            Ok(ty)
        });
        let name = product.qualified_name();
        match checked {
            Ok(ty) => {
                if let Some(want) = want
                    && ty != *want
                    && ty != DataType::Null
                {
                    self.error(path, format!("\"{}\" on {name} is {ty}, not {want}", expr.text));
                }
            }
            Err(error) => {
                let message = error.strip_backtrace();
                let message = message.strip_prefix("Error during planning: ").unwrap_or(&message);
                self.error(path, format!("\"{}\" on {name}: {message}", expr.text));
            }
        }
    }

    fn resolve_test_principals(&mut self) {
        let users = configured_users(self.config, &self.attributes);
        let tests = std::mem::take(&mut self.tests);
        for (path, spec, mut case) in tests {
            match spec {
                PrincipalSpec::User(name) => match users.get(&name) {
                    Some(principal) => case.principal = principal.clone(),
                    None => {
                        self.error(path, format!("unknown user '{name}' (configured users are under auth.users)"));
                        continue;
                    }
                },
                PrincipalSpec::Inline(inline) => {
                    let (principal, problems) =
                        configured_principal(&inline.name, &inline.groups, &inline.attributes, &self.attributes);
                    for (attr, problem) in problems {
                        self.error(format!("{path}.attributes.{attr}"), problem);
                    }
                    case.principal = principal;
                }
            }
            self.tests.push((String::new(), PrincipalSpec::User(String::new()), case));
        }
    }

    fn finish(self, stewards: Vec<String>) -> Result<PolicySet, ConfigErrors> {
        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        let keys = crate::masks::domain_keys(self.config.domains.iter().map(|domain| domain.name.as_str()));
        let hashes = keys.into_iter().map(|(domain, key)| (domain, KeyedHash::udf(key.key, key.from_env))).collect();
        Ok(PolicySet {
            attributes: self.attributes,
            stewards,
            grants: self.grants,
            row_filters: self.row_filters,
            columns: self.columns,
            tests: self.tests.into_iter().map(|(_, _, case)| case).collect(),
            hashes,
            state: self.state,
        })
    }
}
