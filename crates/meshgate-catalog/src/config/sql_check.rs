//! SQL in quality checks, checked at load: it must parse (DataFusion's parser) and
//! read nothing but its own product: no subqueries, no other table.

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{self, ObjectName, ObjectNamePart, Visit, Visitor};

/// Placeholders for the product's table in a check's query (ODCS v3 writes `${object}`).
const OBJECT_PLACEHOLDERS: [&str; 2] = ["${object}", "{object}"];

/// Where a check's SQL runs: the product it may read.
pub(crate) struct Scope<'a> {
    pub catalog: &'a str,
    pub domain: &'a str,
    pub product: &'a str,
}

/// Checks a check's aggregate query; returns it with placeholders replaced by the
/// product's name.
pub(crate) fn check_query(sql: &str, scope: &Scope<'_>) -> Result<String, String> {
    let sql = OBJECT_PLACEHOLDERS
        .iter()
        .fold(sql.to_owned(), |sql, placeholder| sql.replace(placeholder, &format!("\"{}\"", scope.product)));
    let mut statements = DFParser::parse_sql(&sql).map_err(|error| format!("does not parse: {}", strip(&error)))?;
    let statement = match (statements.pop_front(), statements.is_empty()) {
        (Some(statement), true) => statement,
        (None, _) => return Err("is empty".to_owned()),
        (Some(_), false) => return Err("holds more than one statement".to_owned()),
    };
    let Statement::Statement(inner) = statement else {
        return Err("must be a SELECT over the product".to_owned());
    };
    let ast::Statement::Query(query) = inner.as_ref() else {
        return Err("must be a SELECT over the product".to_owned());
    };
    let mut queries = QueryCounter(0);
    let _ = query.visit(&mut queries);
    if queries.0 > 1 {
        return Err("may not use subqueries or WITH: a check reads its own product only".to_owned());
    }
    let mut foreign = None;
    let _ = ast::visit_relations(query.as_ref(), |name| {
        if !names_product(name, scope) {
            foreign = Some(name.to_string());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if let Some(name) = foreign {
        return Err(format!(
            "reads {name}: a check may read only its own product ({}.{}, written {} or ${{object}})",
            scope.domain, scope.product, scope.product
        ));
    }
    Ok(sql)
}

/// Checks a check's row expression (a boolean over one row of the product).
pub(crate) fn check_expression(sql: &str) -> Result<(), String> {
    let expr = DFParser::parse_sql_into_expr(sql).map_err(|error| format!("does not parse: {}", strip(&error)))?;
    let subquery = ast::visit_expressions(&expr.expr, |expr| match expr {
        ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    if subquery.is_break() {
        return Err("may not use subqueries: a check reads its own product only".to_owned());
    }
    if expr.alias.is_some() {
        return Err("must be an expression, without AS".to_owned());
    }
    Ok(())
}

struct QueryCounter(usize);

impl Visitor for QueryCounter {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &ast::Query) -> ControlFlow<()> {
        self.0 += 1;
        ControlFlow::Continue(())
    }
}

/// Whether `name` is the product: `orders`, `sales.orders` or `mesh.sales.orders`.
fn names_product(name: &ObjectName, scope: &Scope<'_>) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) if ident.quote_style.is_some() => ident.value.clone(),
            ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
            ObjectNamePart::Function(function) => format!("{}()", function.name),
        })
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        [product] => *product == scope.product,
        [domain, product] => *domain == scope.domain && *product == scope.product,
        [catalog, domain, product] => *catalog == scope.catalog && *domain == scope.domain && *product == scope.product,
        _ => false,
    }
}

fn strip(error: &datafusion::common::DataFusionError) -> String {
    error.find_root().strip_backtrace()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> = Scope { catalog: "mesh", domain: "sales", product: "orders" };

    #[test]
    fn queries_read_their_product_only() {
        assert!(check_query("SELECT count(*) = 0 FROM orders WHERE o_totalprice < 0", &SCOPE).is_ok());
        assert!(check_query("SELECT max(o_orderdate) FROM sales.orders", &SCOPE).is_ok());
        assert!(check_query("select count(*) from MESH.Sales.ORDERS", &SCOPE).is_ok());
        assert_eq!(
            check_query("SELECT count(*) FROM ${object}", &SCOPE).as_deref(),
            Ok("SELECT count(*) FROM \"orders\"")
        );
        let other = check_query("SELECT count(*) FROM sales.lineitem", &SCOPE).unwrap_err();
        assert!(other.contains("reads sales.lineitem"), "{other}");
        let join = check_query("SELECT count(*) FROM orders JOIN customers.customer ON true", &SCOPE).unwrap_err();
        assert!(join.contains("customers.customer"), "{join}");
        let sub = check_query("SELECT count(*) FROM orders WHERE o_custkey IN (SELECT 1)", &SCOPE).unwrap_err();
        assert!(sub.contains("subqueries"), "{sub}");
        let cte = check_query("WITH o AS (SELECT * FROM orders) SELECT count(*) FROM o", &SCOPE).unwrap_err();
        assert!(cte.contains("subqueries"), "{cte}");
        assert!(check_query("SELEC count(*) FROM orders", &SCOPE).unwrap_err().starts_with("does not parse"));
        assert!(check_query("DROP TABLE orders", &SCOPE).unwrap_err().contains("SELECT"));
        assert!(check_query("SELECT 1; SELECT 2", &SCOPE).unwrap_err().contains("more than one"));
        assert!(check_query("SELECT * FROM generate_series(1, 3)", &SCOPE).is_err());
    }

    #[test]
    fn expressions_are_one_row() {
        assert!(check_expression("o_totalprice >= 0 AND o_orderstatus <> 'X'").is_ok());
        assert!(check_expression("o_custkey IN (SELECT c_custkey FROM customers.customer)").is_err());
        assert!(check_expression("EXISTS (SELECT 1)").is_err());
        assert!(check_expression("o_totalprice >=").unwrap_err().starts_with("does not parse"));
    }
}
