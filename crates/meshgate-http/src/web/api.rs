//! The JSON API the catalog page reads, every answer built from the `mesh_catalog`
//! system tables as the caller (see `query.rs`):
//!
//! - `GET /api/me`: who is logged in, and the Flight URI snippets connect to;
//! - `GET /api/catalog`: the domains and the products the caller may read, with
//!   what the page searches (names, descriptions, tags, column names);
//! - `GET /api/products/{domain}/{name}`: one product: versions, columns, latest
//!   quality results, lineage, usage and snippets. 404 when the caller may not read it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::query::{Row, select, text};
use super::session::Caller;
use super::snippets::snippets;
use crate::state::HttpState;

const PRODUCTS: &str = "SELECT domain, name, version, status, table_name, is_current, sunset, owner, description, \
     tags, format, delta_version, row_count, bytes, files, last_modified, health, problem, quality_status, \
     freshness_status, checked_at, ml_roles FROM mesh_catalog.products";

const COLUMNS: &str = "SELECT domain, product, column_name, ordinal_position, data_type, is_nullable, description, \
     tags, ml_role, unit, is_key, masked_for_you FROM mesh_catalog.columns";

pub async fn me(caller: Caller, State(state): State<HttpState>) -> Json<Value> {
    let principal = &caller.principal;
    Json(json!({
        "user": principal.name,
        "groups": principal.groups,
        "steward": caller.serving.engine.policy().is_steward(principal),
        "catalog": caller.serving.engine.snapshot().catalog_name(),
        "flight_uri": state.options.flight_uri,
    }))
}

pub async fn catalog(caller: Caller) -> Result<Json<Value>, ApiError> {
    let engine = &caller.serving.engine;
    let principal = &caller.principal;
    let versions = select(engine, principal, &format!("{PRODUCTS} ORDER BY domain, name"), &[]).await?;
    let columns = select(
        engine,
        principal,
        "SELECT domain, product, column_name, tags FROM mesh_catalog.columns ORDER BY domain, product, ordinal_position",
        &[],
    )
    .await?;
    let usage = select(
        engine,
        principal,
        "SELECT domain, product, queries FROM mesh_catalog.usage WHERE \"window\" = '7d'",
        &[],
    )
    .await?;

    let mut products: BTreeMap<(String, String), Value> = BTreeMap::new();
    for (key, rows) in group(versions, "name") {
        let mut product = Value::Object(current(&rows));
        product["versions"] = rows.iter().map(version).collect();
        product["columns"] = json!([]);
        product["column_tags"] = json!([]);
        product["queries_7d"] = json!(0);
        products.insert(key, product);
    }
    for column in &columns {
        let key = (text(column, "domain").to_owned(), text(column, "product").to_owned());
        let Some(product) = products.get_mut(&key) else { continue };
        push(&mut product["columns"], field(column, "column_name"));
        for tag in field(column, "tags").as_array().into_iter().flatten() {
            if !product["column_tags"].as_array().is_some_and(|tags| tags.contains(tag)) {
                push(&mut product["column_tags"], tag.clone());
            }
        }
    }
    for row in &usage {
        let key = (text(row, "domain").to_owned(), text(row, "product").to_owned());
        if let Some(product) = products.get_mut(&key) {
            product["queries_7d"] = field(row, "queries");
        }
    }

    // Domains with a product the caller may read, described as the mesh file does.
    let config = engine.snapshot().config();
    let domains: Vec<Value> = config
        .domains
        .iter()
        .filter_map(|domain| {
            let count = products.keys().filter(|(name, _)| *name == domain.name).count();
            (count > 0).then(|| {
                json!({ "name": domain.name, "owner": domain.owner, "description": domain.description, "products": count })
            })
        })
        .collect();
    Ok(Json(json!({
        "catalog": engine.snapshot().catalog_name(),
        "domains": domains,
        "products": products.into_values().collect::<Vec<_>>(),
    })))
}

pub async fn product(
    caller: Caller,
    State(state): State<HttpState>,
    Path((domain, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let engine = &caller.serving.engine;
    let principal = &caller.principal;
    let key: &[&str] = &[&domain, &name];
    let versions = select(engine, principal, &format!("{PRODUCTS} WHERE domain = $1 AND name = $2"), key).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("no product {domain}.{name} that you may read")));
    }
    let columns = select(
        engine,
        principal,
        &format!("{COLUMNS} WHERE domain = $1 AND product = $2 ORDER BY ordinal_position"),
        key,
    )
    .await?;
    let quality = select(
        engine,
        principal,
        "SELECT version, check_name, kind, severity, description, columns, ran_at, duration_ms, measured, \
         expectation, passed, error FROM mesh_catalog.quality_results \
         WHERE domain = $1 AND product = $2 AND is_latest ORDER BY check_name, version",
        key,
    )
    .await?;
    let qualified = format!("{domain}.{name}");
    let lineage = select(
        engine,
        principal,
        "SELECT source_kind, source, target_kind, target, relation, queries, last_seen FROM mesh_catalog.lineage \
         WHERE (source_kind = 'product' AND source = $1) OR (target_kind = 'product' AND target = $1) \
         ORDER BY relation, source, target",
        &[&qualified],
    )
    .await?;
    let usage = select(
        engine,
        principal,
        "SELECT \"window\", queries, rows, distinct_principals, distinct_groups, distinct_consuming_domains \
         FROM mesh_catalog.usage WHERE domain = $1 AND product = $2",
        key,
    )
    .await?;

    let (upstream, downstream): (Vec<Row>, Vec<Row>) = lineage
        .into_iter()
        .partition(|edge| text(edge, "target") == qualified && text(edge, "target_kind") == "product");
    let mut product = Value::Object(current(&versions));
    product["versions"] = versions.iter().map(version).collect();
    Ok(Json(json!({
        "product": product,
        "columns": columns,
        "quality": quality,
        "lineage": { "upstream": upstream, "downstream": downstream },
        "usage": usage,
        "snippets": snippets(state.options.flight_uri.as_deref(), &principal.name, &domain, &name),
    })))
}

/// Rows of `mesh_catalog.products` grouped by (domain, `name_column`), in order.
fn group(rows: Vec<Row>, name_column: &str) -> BTreeMap<(String, String), Vec<Row>> {
    let mut groups: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for row in rows {
        let key = (text(&row, "domain").to_owned(), text(&row, name_column).to_owned());
        groups.entry(key).or_default().push(row);
    }
    groups
}

/// The version the plain name reads, else the first listed (`versions` is never empty).
fn current(versions: &[Row]) -> Row {
    let current = versions.iter().find(|row| row.get("is_current") == Some(&Value::Bool(true)));
    current.or(versions.first()).cloned().unwrap_or_default()
}

/// A row's value in `column` (null when absent).
fn field(row: &Row, column: &str) -> Value {
    row.get(column).cloned().unwrap_or(Value::Null)
}

/// What the page shows of each version.
fn version(row: &Row) -> Value {
    json!({
        "version": field(row, "version"),
        "status": field(row, "status"),
        "sunset": field(row, "sunset"),
        "is_current": field(row, "is_current"),
        "table_name": field(row, "table_name"),
    })
}

fn push(list: &mut Value, item: Value) {
    if let Value::Array(items) = list {
        items.push(item);
    }
}
