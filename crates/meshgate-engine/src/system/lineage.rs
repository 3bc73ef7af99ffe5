//! `mesh_catalog.lineage`: where each product the principal may read comes from (the
//! `upstream` sources its descriptor declares) and who reads it (from the recorded
//! queries that completed). Consumers are named to stewards and to themselves;
//! others see another principal's reads as their consuming domain, or `principal`.
//! A declared source that is a mesh product the principal may not read is left out.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use meshgate_audit::Outcome;
use meshgate_policy::MeshView;

use super::SystemSources;
use super::rows::{Cell, Rows, text, time};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("source_kind"),
        text("source"),
        text("target_kind"),
        text("target"),
        text("relation"),
        Field::new("queries", DataType::Int64, true),
        time("last_seen", true),
    ]))
});

pub(super) fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// (source kind, source, target kind, target, relation) → (queries, last seen)
type Edges = BTreeMap<(&'static str, String, &'static str, String, &'static str), (Option<i64>, Option<i64>)>;

pub(super) fn rows(view: &MeshView, sources: &SystemSources) -> Result<RecordBatch> {
    let mut edges: Edges = BTreeMap::new();
    let steward = view.policy().is_steward(view.principal());
    for entry in view.all_versions() {
        let product = &entry.product;
        for upstream in &product.contract.upstream {
            let kind = match upstream.split_once('.') {
                Some((domain, name)) if view.snapshot().product(domain, name).is_some() => {
                    if view.product(domain, name).is_none() {
                        continue;
                    }
                    "product"
                }
                _ => "external",
            };
            edges.insert((kind, upstream.clone(), "product", product.qualified_name(), "derives"), (None, None));
        }
    }
    for record in sources.audit.recent() {
        if record.outcome != Outcome::Ok {
            continue;
        }
        let consumer = if steward || record.principal == view.principal().name {
            ("principal", record.principal.clone())
        } else {
            match &record.principal_domain {
                Some(domain) => ("domain", domain.clone()),
                None => ("principal", "another principal".to_owned()),
            }
        };
        for read in &record.products {
            if view.product(&read.domain, &read.product).is_none() {
                continue;
            }
            let key = ("product", format!("{}.{}", read.domain, read.product), consumer.0, consumer.1.clone(), "reads");
            let edge = edges.entry(key).or_insert((Some(0), None));
            edge.0 = Some(edge.0.unwrap_or(0) + 1);
            edge.1 = edge.1.max(record.time_ms());
        }
    }
    let mut rows = Rows::new(schema());
    for ((source_kind, source, target_kind, target, relation), (queries, last_seen)) in &edges {
        rows.push(vec![
            text(source_kind),
            text(source),
            text(target_kind),
            text(target),
            text(relation),
            Cell::Int(*queries),
            Cell::Time(*last_seen),
        ])?;
    }
    rows.finish()
}
