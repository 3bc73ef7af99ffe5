//! Contracts in descriptors and ODCS files: what is read, and every mistake by path.

use std::path::Path;
use std::time::Duration;

use super::contract::{Condition, Rule};
use super::{Product, Role, load_mesh_str};
use crate::config::contract::{OnFailure, Severity};

fn mesh(product: &str) -> String {
    format!(
        "domains:\n  sales:\n    owner: a@b.c\n    products:\n{}",
        product.lines().map(|line| format!("      {line}\n")).collect::<String>()
    )
}

const ORDERS: &str = "\
- name: orders
  location: /data/orders/
  format: parquet
  schema:
    - { name: o_orderkey, type: int64, key: true, role: entity_key }
    - { name: o_custkey, type: int64 }
    - { name: o_status, type: utf8 }
    - { name: o_total, type: float64, role: label, unit: USD }
    - { name: o_date, type: date32, role: event_time }
";

fn load(quality: &str) -> Result<Product, Vec<String>> {
    load_in(quality, Path::new("/"))
}

fn load_in(extra: &str, base: &Path) -> Result<Product, Vec<String>> {
    let text = mesh(&format!("{ORDERS}{}", extra.lines().map(|l| format!("  {l}\n")).collect::<String>()));
    match load_mesh_str(&text, base) {
        Ok(config) => Ok(config.products().next().cloned().expect("one product")),
        Err(errors) => Err(errors.0.iter().map(ToString::to_string).collect()),
    }
}

fn errors(extra: &str) -> Vec<String> {
    load(extra).expect_err("must be refused")
}

#[test]
fn a_full_contract_is_read() {
    let product = load(
        "\
quality:
  - { type: row_count, min: 1, max: 1000 }
  - { type: not_null, column: o_orderkey, severity: error, description: every order has a key }
  - { type: unique, columns: [o_orderkey, o_custkey] }
  - { type: allowed_values, column: o_status, values: [F, O, P], severity: warn }
  - { type: range, column: o_total, min: 0, max: 600000 }
  - { type: regex, column: o_status, pattern: '^[A-Z]$' }
  - { type: sql, name: positive, expression: o_total >= 0 }
  - { type: sql, name: few_big, query: 'SELECT count(*) FROM orders WHERE o_total > 500000', mustBeLessThan: 10 }
  - { type: not_null, column: o_custkey, must_be_less_or_equal_to: 5 }
  - { type: not_null, column: o_orderkey }
freshness: { column: o_date, max_age: 36h }
schedule: 15m
on_failure: block
upstream: [crm.customers, 'kafka://orders-topic']
",
    )
    .expect("valid");
    let contract = &product.contract;
    let names: Vec<&str> = contract.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "row_count",
            "not_null_o_orderkey",
            "unique_o_orderkey_o_custkey",
            "allowed_values_o_status",
            "range_o_total",
            "regex_o_status",
            "positive",
            "few_big",
            "not_null_o_custkey",
            "not_null_o_orderkey_2",
        ]
    );
    assert_eq!(contract.checks[0].expect.0, [Condition::Ge(1.0), Condition::Le(1000.0)]);
    assert_eq!(contract.checks[1].expect.0, [Condition::Eq(0.0)]);
    assert_eq!(contract.checks[1].expectation_text(), "o_orderkey is not null");
    assert_eq!(contract.checks[3].severity, Severity::Warn);
    assert_eq!(
        contract.checks[3].rule,
        Rule::AllowedValues { column: "o_status".into(), values: vec!["'F'".into(), "'O'".into(), "'P'".into()] }
    );
    assert_eq!(contract.checks[7].expect.0, [Condition::Lt(10.0)]);
    assert_eq!(contract.checks[8].expectation_text(), "o_custkey is not null (violating rows <= 5)");
    let freshness = contract.freshness.as_ref().expect("freshness");
    assert_eq!((freshness.column.as_deref(), freshness.max_age), (Some("o_date"), Duration::from_secs(129_600)));
    assert_eq!(freshness.severity, Severity::Error);
    assert_eq!(contract.schedule, Some(Duration::from_secs(900)));
    assert_eq!(contract.on_failure, OnFailure::Block);
    assert_eq!(contract.upstream, ["crm.customers", "kafka://orders-topic"]);
    let schema = product.schema.as_ref().expect("schema");
    assert_eq!(schema[0].role, Some(Role::EntityKey));
    assert_eq!((schema[3].role, schema[3].unit.as_deref()), (Some(Role::Label), Some("USD")));
}

#[test]
fn no_contract_is_an_empty_one() {
    let product = load("").expect("valid");
    assert!(!product.contract.has_checks());
    assert_eq!(product.contract.on_failure, OnFailure::Warn);
}

fn assert_error(extra: &str, path: &str, needle: &str) {
    let errors = errors(extra);
    assert!(
        errors.iter().any(|e| e.starts_with(&format!("{path}: ")) && e.contains(needle)),
        "no error at {path} containing '{needle}' in {errors:#?}"
    );
}

#[test]
fn unknown_columns_are_errors_by_path() {
    let p = "domains.sales.products.orders";
    assert_error("quality: [{ type: not_null, column: o_nope }]", &format!("{p}.quality.[0].column"), "o_nope");
    assert_error(
        "quality: [{ name: k, type: unique, columns: [o_orderkey, o_nope] }]",
        &format!("{p}.quality.k.columns.[1]"),
        "unknown column 'o_nope'",
    );
    assert_error("freshness: { column: o_when, max_age: 1d }", &format!("{p}.freshness.column"), "o_when");
}

#[test]
fn bad_regexes_are_errors_by_path() {
    assert_error(
        "quality: [{ name: phone, type: regex, column: o_status, pattern: '^(+' }]",
        "domains.sales.products.orders.quality.phone.pattern",
        "invalid regular expression",
    );
}

#[test]
fn sql_reading_another_product_is_an_error_by_path() {
    let p = "domains.sales.products.orders.quality";
    assert_error(
        "quality: [{ name: x, type: sql, query: 'SELECT count(*) = 0 FROM sales.lineitem' }]",
        &format!("{p}.x.query"),
        "reads sales.lineitem",
    );
    assert_error(
        "quality: [{ name: x, type: sql, expression: 'o_custkey IN (SELECT c_custkey FROM customers.customer)' }]",
        &format!("{p}.x.expression"),
        "subqueries",
    );
    assert_error(
        "quality: [{ name: x, type: sql, query: 'SELECT count(*) = 0 FROM orders o JOIN customers.customer c ON true' }]",
        &format!("{p}.x.query"),
        "customers.customer",
    );
}

#[test]
fn sql_that_does_not_parse_is_an_error_by_path() {
    let p = "domains.sales.products.orders.quality";
    assert_error("quality: [{ name: x, type: sql, query: 'SELEKT 1' }]", &format!("{p}.x.query"), "does not parse");
    assert_error(
        "quality: [{ name: x, type: sql, expression: 'o_total >' }]",
        &format!("{p}.x.expression"),
        "does not parse",
    );
}

#[test]
fn other_mistakes_are_errors_by_path() {
    let p = "domains.sales.products.orders";
    assert_error(
        "quality: [{ type: not_null, column: o_status, pattern: x }]",
        &format!("{p}.quality.[0].pattern"),
        "does not apply",
    );
    assert_error("quality: [{ type: row_count }]", &format!("{p}.quality.[0]"), "needs min, max");
    assert_error("quality: [{ type: row_count, min: -1 }]", &format!("{p}.quality.[0].min"), "whole number");
    assert_error("quality: [{ type: sql }]", &format!("{p}.quality.[0]"), "expression");
    assert_error(
        "quality: [{ type: allowed_values, column: o_status, values: [] }]",
        &format!("{p}.quality.[0]"),
        "non-empty",
    );
    assert_error(
        "quality: [{ name: a, type: not_null, column: o_status }, { name: a, type: row_count, min: 1 }]",
        &format!("{p}.quality.a"),
        "used twice",
    );
    assert_error(
        "quality: [{ name: freshness, type: row_count, min: 1 }]",
        &format!("{p}.quality.freshness.name"),
        "freshness",
    );
    assert_error(
        "quality: [{ type: not_null, column: o_status, must_be: lots }]",
        &format!("{p}.quality.[0].must_be"),
        "number",
    );
    assert_error(
        "quality: [{ type: not_null, column: o_status, must_be_between: [5, 1] }]",
        &format!("{p}.quality.[0].must_be_between"),
        "first bound",
    );
    assert_error("freshness: { max_age: 36 hours }", &format!("{p}.freshness.max_age"), "not a duration");
    assert_error("schedule: soon", &format!("{p}.schedule"), "not a duration");
    assert_error("on_failure: explode", &format!("{p}.on_failure"), "unknown variant");
    assert_error("quality: [{ type: nonsense }]", &format!("{p}.quality[0].type"), "unknown variant");
    assert_error("upstream: ['']", &format!("{p}.upstream.[0]"), "empty");
}

#[test]
fn an_odcs_contract_supplies_schema_quality_and_sla() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("orders.odcs.yaml"),
        "\
apiVersion: v3.1.0
kind: DataContract
id: orders-contract
version: 1.0.0
status: active
schema:
  - name: orders
    physicalName: orders
    properties:
      - { name: o_orderkey, logicalType: integer, physicalType: int64, required: true, primaryKey: true, description: Order id,
          quality: [{ type: library, metric: nullValues, mustBe: 0 }, { metric: duplicateValues, mustBe: 0, severity: warning }] }
      - { name: o_status, logicalType: string, quality: [{ metric: invalidValues, arguments: { validValues: [F, O] } }] }
      - { name: o_total, logicalType: number, physicalType: 'decimal(15, 2)' }
      - { name: o_date, logicalType: date }
    quality:
      - { type: library, metric: rowCount, mustBeGreaterThan: 0, name: has_rows }
      - { type: sql, query: 'SELECT count(*) FROM ${object} WHERE o_total < 0', mustBe: 0 }
      - { type: text, description: Orders are never deleted }
slaProperties:
  - { property: latency, value: 2, unit: d, element: orders.o_date }
  - { property: retention, value: 1, unit: y }
",
    )
    .expect("write contract");
    let text = "domains:\n  sales:\n    owner: a@b.c\n    products:\n      - { name: orders, location: /data/orders/, format: parquet, contract: orders.odcs.yaml }\n";
    let config = load_mesh_str(text, dir.path()).expect("valid");
    let product = config.products().next().expect("product");
    let schema = product.schema.as_ref().expect("schema from the contract");
    let columns: Vec<(&str, bool, bool)> = schema.iter().map(|c| (c.name.as_str(), c.nullable, c.key)).collect();
    assert_eq!(
        columns,
        [("o_orderkey", false, true), ("o_status", true, false), ("o_total", true, false), ("o_date", true, false)]
    );
    assert_eq!(schema[2].data_type, datafusion::arrow::datatypes::DataType::Decimal128(15, 2));
    assert_eq!(schema[0].description, "Order id");
    let checks: Vec<(&str, &str, Severity)> =
        product.contract.checks.iter().map(|c| (c.name.as_str(), c.kind(), c.severity)).collect();
    assert_eq!(
        checks,
        [
            ("not_null_o_orderkey", "not_null", Severity::Error),
            ("unique_o_orderkey", "unique", Severity::Warn),
            ("allowed_values_o_status", "allowed_values", Severity::Error),
            ("has_rows", "row_count", Severity::Error),
            ("sql", "sql", Severity::Error),
        ]
    );
    assert_eq!(
        product.contract.checks[4].rule,
        Rule::SqlQuery { query: "SELECT count(*) FROM \"orders\" WHERE o_total < 0".into() }
    );
    let freshness = product.contract.freshness.as_ref().expect("sla");
    assert_eq!((freshness.column.as_deref(), freshness.max_age), (Some("o_date"), Duration::from_secs(172_800)));

    // What a contract asks for and meshgate cannot check is an error, by path.
    std::fs::write(
        dir.path().join("bad.odcs.yaml"),
        "apiVersion: v3.1.0\nschema:\n  - name: orders\n    properties:\n      - { name: a, logicalType: integer, quality: [{ metric: missingValues }] }\n",
    )
    .expect("write");
    let bad = text.replace("orders.odcs.yaml", "bad.odcs.yaml");
    let errors = load_mesh_str(&bad, dir.path()).expect_err("refused").0;
    assert!(
        errors
            .iter()
            .any(|e| e.path == "domains.sales.products.orders.contract.schema.orders.properties.a.quality.[0]"
                && e.message.contains("missingValues")),
        "{errors:?}"
    );
    let missing = text.replace("orders.odcs.yaml", "nope.odcs.yaml");
    let errors = load_mesh_str(&missing, dir.path()).expect_err("refused").0;
    assert_eq!(errors[0].path, "domains.sales.products.orders.contract");
}
