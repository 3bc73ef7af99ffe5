//! Point-in-time feature joins, as a table function any SQL client can call:
//!
//! ```sql
//! SELECT * FROM point_in_time('<entities>', '<event time column>', '<features>' [, '<ttl>'])
//! ```
//!
//! For each entity row, each feature's row with the latest event time at or before the
//! entity's event time (and not older than the TTL); NULL when there is none. The
//! feature products' descriptors say how to join (docs/ml.md): `role: entity_key`
//! columns are the join keys (the entities have columns of the same names),
//! `role: event_time` the feature's time (a product without one is static), and
//! `role: created_at` breaks ties between rows of the same event time.
//!
//! The call is rewritten before anything else looks at the statement: each feature
//! product becomes a marker, a derived table that names the entities and the product
//! as ordinary SQL (`SELECT * FROM <entities> CROSS JOIN <product>`), so the statement
//! guard, table checks, governance (row filters, masks, barriers), audit and lineage
//! treat them like tables written by hand. When the statement is planned, each marker
//! becomes an as-of join ([`crate::asof`]): one pass over the entities, each row
//! looking up its feature row in an index of the product's rows sorted by key and time.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::catalog::TableProvider;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, ObjectName, Query, Statement as SqlStatement, TableAlias, TableFactor,
    Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use meshgate_catalog::config::Role;
use meshgate_policy::MeshView;

use crate::asof::{AsOfSpec, MARKER, Marker};
use crate::error::EngineError;

/// The table function's name.
const FUNCTION: &str = "point_in_time";
/// Names meshgate uses in the SQL it writes; user SQL may not use them.
const RESERVED_PREFIX: &str = "__mesh_";

/// Rewrites every `point_in_time(...)` in `statement` (parsed from `sql`) into its
/// markers; returns them, for [`crate::asof::AsOfRelations`] to plan.
pub(crate) fn rewrite_point_in_time(
    statement: &mut SqlStatement,
    sql: &str,
    view: &MeshView,
) -> Result<Vec<Marker>, EngineError> {
    check_reserved(sql)?;
    let mut rewriter = Rewriter { view, markers: Vec::new(), error: None };
    let _ = statement.visit(&mut rewriter);
    match rewriter.error {
        Some(error) => Err(error),
        None => Ok(rewriter.markers),
    }
}

/// Refuses identifiers in meshgate's reserved namespace: the rewrite relies on them
/// meaning what it wrote.
fn check_reserved(sql: &str) -> Result<(), EngineError> {
    // Every statement passes here: searched in place, without a lowercased copy.
    let prefix = RESERVED_PREFIX.as_bytes();
    if sql.as_bytes().windows(prefix.len()).any(|window| window.eq_ignore_ascii_case(prefix)) {
        return Err(EngineError::InvalidSql(format!(
            "names starting with {RESERVED_PREFIX} are reserved for meshgate's own SQL"
        )));
    }
    Ok(())
}

struct Rewriter<'a> {
    view: &'a MeshView,
    markers: Vec<Marker>,
    error: Option<EngineError>,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, args: Some(args), .. } = factor else { return ControlFlow::Continue(()) };
        if !is_function(name) {
            return ControlFlow::Continue(());
        }
        let alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: true,
            name: Ident::new(FUNCTION),
            columns: Vec::new(),
            at: None,
        });
        let rewritten = call(&args.args).and_then(|call| call.to_factor(self.view, &mut self.markers, alias));
        match rewritten {
            Ok(marker) => {
                *factor = marker;
                ControlFlow::Continue(())
            }
            Err(error) => {
                self.error = Some(error);
                ControlFlow::Break(())
            }
        }
    }
}

fn is_function(name: &ObjectName) -> bool {
    name.0.len() == 1 && name.0[0].as_ident().is_some_and(|ident| ident.value.eq_ignore_ascii_case(FUNCTION))
}

/// The table factor `factor` (SQL text) stands for.
fn parse_factor(factor: &str) -> Result<TableFactor, EngineError> {
    let wrong =
        |problem: String| EngineError::Internal(format!("point_in_time wrote SQL that does not parse: {problem}"));
    let query: Box<Query> = Parser::new(&GenericDialect {})
        .try_with_sql(&format!("SELECT * FROM {factor}"))
        .and_then(|mut parser| parser.parse_query())
        .map_err(|error| wrong(error.to_string()))?;
    match *query.body {
        datafusion::sql::sqlparser::ast::SetExpr::Select(select) => {
            select.from.into_iter().next().map(|tables| tables.relation).ok_or_else(|| wrong("no FROM".into()))
        }
        _ => Err(wrong("not a SELECT".into())),
    }
}

/// The function's arguments.
#[derive(Debug)]
struct Call {
    entities: String,
    event_time: String,
    features: Vec<(String, String, String)>,
    /// TTL per feature product (`None` key: every product).
    ttl: BTreeMap<Option<(String, String)>, Interval>,
}

fn usage(problem: &str) -> EngineError {
    EngineError::InvalidSql(format!(
        "{FUNCTION}: {problem}; call it as {FUNCTION}('<entities: domain.product or a query>', \
         '<event time column>', '<domain.product.column, ...>' [, '<ttl, e.g. 30 days>'])"
    ))
}

fn call(args: &[FunctionArg]) -> Result<Call, EngineError> {
    let mut texts = Vec::new();
    for arg in args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value))) = arg else {
            return Err(usage("every argument must be a string literal"));
        };
        let (Value::SingleQuotedString(text) | Value::DoubleQuotedString(text)) = &value.value else {
            return Err(usage("every argument must be a string literal"));
        };
        texts.push(text.trim().to_owned());
    }
    let (entities, event_time, features, ttl) = match texts.as_slice() {
        [entities, event_time, features] => (entities, event_time, features, None),
        [entities, event_time, features, ttl] => (entities, event_time, features, Some(ttl)),
        _ => return Err(usage(&format!("it takes 3 or 4 arguments, not {}", texts.len()))),
    };
    if entities.is_empty() || event_time.is_empty() {
        return Err(usage("the entities and the event time column must not be empty"));
    }
    let mut parsed = Vec::new();
    for feature in features.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let parts: Vec<&str> = feature.split('.').map(str::trim).collect();
        let [domain, product, column] = parts.as_slice() else {
            return Err(usage(&format!("feature '{feature}' must be named domain.product.column")));
        };
        parsed.push(((*domain).to_owned(), (*product).to_owned(), (*column).to_owned()));
    }
    if parsed.is_empty() {
        return Err(usage("name at least one feature"));
    }
    Ok(Call {
        entities: entities.clone(),
        event_time: event_time.clone(),
        features: parsed,
        ttl: ttl.map(|text| parse_ttls(text)).transpose()?.unwrap_or_default(),
    })
}

/// A TTL: a count and a unit.
#[derive(Debug, Clone, PartialEq)]
struct Interval {
    count: u64,
    unit: &'static str,
}

impl Interval {
    fn micros(&self) -> i64 {
        let seconds: i64 = match self.unit {
            "seconds" => 1,
            "minutes" => 60,
            "hours" => 3_600,
            "days" => 86_400,
            _ => 7 * 86_400,
        };
        i64::try_from(self.count).unwrap_or(i64::MAX).saturating_mul(seconds).saturating_mul(1_000_000)
    }
}

/// `30 days` (every feature product) or `sales.f=30 days; customers.c=12 hours`.
fn parse_ttls(text: &str) -> Result<BTreeMap<Option<(String, String)>, Interval>, EngineError> {
    let mut ttls = BTreeMap::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (product, duration) = match part.split_once('=') {
            Some((product, duration)) => {
                let Some((domain, name)) = product.trim().split_once('.') else {
                    return Err(usage(&format!("ttl '{part}': name the feature product as domain.product")));
                };
                (Some((domain.trim().to_owned(), name.trim().to_owned())), duration)
            }
            None => (None, part),
        };
        ttls.insert(product, parse_interval(duration.trim())?);
    }
    Ok(ttls)
}

/// The longest TTL: 100 years.
const MAX_TTL_SECONDS: i64 = 100 * 366 * 86_400;

fn parse_interval(text: &str) -> Result<Interval, EngineError> {
    let bad = || {
        EngineError::InvalidSql(format!(
            "{FUNCTION}: the ttl '{text}' does not parse; write a whole number and a unit: seconds, minutes, \
             hours, days or weeks (30 days, 12 hours)"
        ))
    };
    let mut words = text.split_whitespace();
    let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next()) else { return Err(bad()) };
    let count: u64 = count.parse().map_err(|_| bad())?;
    let unit = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" | "sec" => "seconds",
        "minute" | "min" => "minutes",
        "hour" | "h" => "hours",
        "day" | "d" => "days",
        "week" | "w" => "weeks",
        _ => return Err(bad()),
    };
    let interval = Interval { count, unit };
    if count == 0 || interval.micros() > MAX_TTL_SECONDS * 1_000_000 {
        return Err(EngineError::InvalidSql(format!(
            "{FUNCTION}: the ttl '{text}' must be more than zero and at most 100 years"
        )));
    }
    Ok(interval)
}

/// SQL identifier, double-quoted.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A name as given, quoted unless it already is (`"orders@0"`, a pinned version).
fn identifier(name: &str) -> String {
    let inner = name.strip_prefix('"').and_then(|rest| rest.strip_suffix('"'));
    match inner {
        Some(inner) if !inner.contains('"') => name.to_owned(),
        _ => quoted(name),
    }
}

/// Refuses entities that are not one query on their own: their syntax errors are the
/// caller's to fix (not a fault in the SQL meshgate writes around them).
fn check_entities_query(sql: &str) -> Result<(), EngineError> {
    match Parser::parse_sql(&GenericDialect {}, sql) {
        Ok(statements) if matches!(statements.as_slice(), [SqlStatement::Query(_)]) => Ok(()),
        Ok(_) => Err(usage("the entities must be a product name (domain.product) or one query")),
        Err(error) => Err(EngineError::InvalidSql(format!("{FUNCTION}: the entities query does not parse: {error}"))),
    }
}

/// How one feature product joins.
struct FeatureProduct {
    domain: String,
    product: String,
    keys: Vec<String>,
    event_time: Option<String>,
    created_at: Option<String>,
    columns: Vec<String>,
}

impl Call {
    /// The marker that stands for this call (one per feature product, nested), its
    /// joins recorded in `markers`.
    fn to_factor(
        &self,
        view: &MeshView,
        markers: &mut Vec<Marker>,
        alias: TableAlias,
    ) -> Result<TableFactor, EngineError> {
        let products = self.feature_products(view)?;
        for (domain, product) in self.ttl.keys().flatten() {
            if !products.iter().any(|p| &p.domain == domain && &p.product == product) {
                return Err(usage(&format!("the ttl names {domain}.{product}, which no feature comes from")));
            }
        }
        let entity_columns = self.entity_columns(view);
        let mut factor = if self.entities.split_whitespace().count() == 1 && self.entities.contains('.') {
            let (domain, name) = self.entities.split_once('.').unwrap_or_default();
            format!("{}.{} AS __mesh_e", identifier(domain.trim()), identifier(name.trim()))
        } else {
            check_entities_query(&self.entities)?;
            format!("({}) AS __mesh_e", self.entities)
        };
        let last = products.len() - 1;
        for (position, product) in products.iter().enumerate() {
            if !entity_columns.is_empty()
                && let Some(key) = product.keys.iter().find(|key| !entity_columns.contains(key))
            {
                return Err(EngineError::InvalidSql(format!(
                    "{FUNCTION}: the entities have no column {key}, the entity key of {}.{}; give them one \
                     (entities as a query: SELECT ..., <column> AS {key} FROM ...)",
                    product.domain, product.product
                )));
            }
            let ttl = self
                .ttl
                .get(&Some((product.domain.clone(), product.product.clone())))
                .or_else(|| self.ttl.get(&None))
                .filter(|_| product.event_time.is_some());
            let spec = AsOfSpec {
                product: format!("{}.{}", product.domain, product.product),
                keys: product.keys.clone(),
                entity_time: self.event_time.clone(),
                feature_time: product.event_time.clone(),
                created: product.created_at.clone(),
                outputs: product.columns.iter().map(|column| (column.clone(), column.clone())).collect(),
                ttl_micros: ttl.map(Interval::micros),
            };
            let number = markers.len();
            markers.push(Marker {
                spec,
                product_name: product.product.clone(),
                alias: (position == last).then(|| alias.clone()),
            });
            factor = format!(
                "(SELECT * FROM {factor} CROSS JOIN {}.{} AS __mesh_f) AS {MARKER}{number}",
                quoted(&product.domain),
                quoted(&product.product)
            );
        }
        parse_factor(&factor)
    }

    /// The entities' column names when they are a product (to name features apart).
    fn entity_columns(&self, view: &MeshView) -> Vec<String> {
        let Some((domain, name)) = self.entities.split_once('.') else { return Vec::new() };
        match view.table(domain.trim(), name.trim()) {
            Ok(Some(table)) => table.schema().fields().iter().map(|f| f.name().clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The feature products, in the order their features were first named, with
    /// their roles. A product the caller may not read is unknown, as everywhere.
    fn feature_products(&self, view: &MeshView) -> Result<Vec<FeatureProduct>, EngineError> {
        let mut products: Vec<FeatureProduct> = Vec::new();
        for (domain, product, column) in &self.features {
            let Some(entry) = view.product(domain, product) else {
                return Err(EngineError::TableNotFound { name: format!("{domain}.{product}"), hint: String::new() });
            };
            let declared = entry.product.schema.as_deref().unwrap_or_default();
            // The columns as the caller sees them: one hidden from them is unknown.
            let governed = view.table(domain, product).map_err(EngineError::from)?;
            if governed.is_none_or(|table| table.schema().field_with_name(column).is_err()) {
                return Err(EngineError::InvalidSql(format!("{FUNCTION}: {domain}.{product} has no column {column}")));
            }
            let with_role = |role: Role| -> Vec<String> {
                declared.iter().filter(|c| c.role == Some(role)).map(|c| c.name.clone()).collect()
            };
            if let Some(existing) = products.iter_mut().find(|p| &p.domain == domain && &p.product == product) {
                if !existing.columns.contains(column) {
                    existing.columns.push(column.clone());
                }
                continue;
            }
            let keys = with_role(Role::EntityKey);
            if keys.is_empty() {
                return Err(EngineError::InvalidSql(format!(
                    "{FUNCTION}: {domain}.{product} declares no entity key (a schema column with role: entity_key), \
                     so its features cannot be joined to entities"
                )));
            }
            let times = with_role(Role::EventTime);
            if times.len() > 1 {
                return Err(EngineError::InvalidSql(format!(
                    "{FUNCTION}: {domain}.{product} declares {} event_time columns; a feature product has at most one",
                    times.len()
                )));
            }
            let event_time = times.into_iter().next();
            products.push(FeatureProduct {
                domain: domain.clone(),
                product: product.clone(),
                keys,
                event_time,
                created_at: with_role(Role::CreatedAt).into_iter().next(),
                columns: vec![column.clone()],
            });
        }
        Ok(products)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_for_all_or_per_product() {
        assert_eq!(parse_interval("30 days").unwrap(), Interval { count: 30, unit: "days" });
        assert_eq!(parse_interval("1 hour").unwrap(), Interval { count: 1, unit: "hours" });
        assert_eq!(parse_interval("2592000 seconds").unwrap().micros(), 30 * 86_400 * 1_000_000);
        for bad in ["", "30", "thirty days", "30 fortnights", "0 days", "-1 days", "30 days ago", "6000 weeks"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        let per = parse_ttls("sales.f = 2 weeks; customers.c=12 hours").unwrap();
        assert_eq!(per.get(&Some(("sales".into(), "f".into()))), Some(&Interval { count: 2, unit: "weeks" }));
        assert!(parse_ttls("f=2 weeks").is_err());
    }

    #[test]
    fn product_names_keep_their_quotes_and_entity_queries_must_parse() {
        assert_eq!(identifier("orders"), "\"orders\"");
        assert_eq!(identifier("\"orders@0\""), "\"orders@0\"");
        assert_eq!(identifier("\"a\"b\""), "\"\"\"a\"\"b\"\"\"");
        assert!(check_entities_query("SELECT o_orderkey FROM sales.orders").is_ok());
        for bad in [
            "SELECT o_orderkey o_custkey AS c_custkey FROM sales.orders",
            "SELECT 1) AS x, (SELECT 2",
            "SELECT 1; SELECT 2",
        ] {
            let error = check_entities_query(bad).expect_err(bad);
            assert!(matches!(error, EngineError::InvalidSql(_)), "{bad}: {error:?}");
        }
    }
}
