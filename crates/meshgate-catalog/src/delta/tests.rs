//! Delta products on the demo table (testdata/data/supply/stock_movements: version 0
//! with 40 rows, version 1 appending 20): loading, declared columns, pins, inventory,
//! and the scan being known as a read of product data.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use datafusion::catalog::TableProvider;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::DeltaPin;
use crate::error::PinError;
use crate::{MeshSnapshot, load_mesh_str, reads_product_data};

fn demo_table() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data/supply/stock_movements");
    std::fs::canonicalize(path).expect("the demo Delta table").display().to_string()
}

async fn snapshot(schema: &str) -> MeshSnapshot {
    let text = format!(
        "domains:\n  supply:\n    owner: a@b.c\n    products:\n      - {{ name: moves, location: '{}', format: delta{schema} }}\n      - {{ name: flat, location: '{}', format: parquet }}\n",
        demo_table(),
        demo_table()
    );
    let config = load_mesh_str(&text, Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    // Plain strings, as the server sends them unless asked for views.
    let mut session = SessionConfig::new();
    session.options_mut().execution.parquet.schema_force_view_types = false;
    MeshSnapshot::load(config, session, Arc::new(RuntimeEnv::default())).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn rows(table: &dyn TableProvider) -> usize {
    let ctx = SessionContext::new();
    let plan = table.scan(&ctx.state(), None, &[], None).await.unwrap_or_else(|e| panic!("{e}"));
    collect(plan, ctx.task_ctx()).await.unwrap_or_else(|e| panic!("{e}")).iter().map(|b| b.num_rows()).sum()
}

fn data_scans(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut found: Vec<String> = plan.children().into_iter().flat_map(data_scans).collect();
    if reads_product_data(plan.as_ref()) {
        found.push(plan.name().to_owned());
    }
    found
}

#[tokio::test]
async fn a_delta_product_serves_its_newest_version_and_pins_older_ones() {
    let snapshot = snapshot("").await;
    let entry = snapshot.product("supply", "moves").expect("product");
    assert!(entry.table.refusal().is_none(), "{:?}", entry.table.refusal());
    assert_eq!(entry.delta_version, Some(1));
    assert_eq!(entry.product.version, "0.1.0", "the descriptor's version stays");
    assert_eq!(rows(entry.table.as_ref()).await, 60);
    let schema = entry.table.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["m_movementkey", "m_partkey", "m_suppkey", "m_quantity", "m_reason", "m_date"]);
    assert_eq!(schema.field(4).data_type(), &datafusion::arrow::datatypes::DataType::Utf8, "plain strings");
    let inventory = snapshot.inventory(entry).await.expect("inventory");
    assert_eq!((inventory.files, inventory.rows), (2, Some(60)));

    let v0 = snapshot.delta_pin("supply", "moves", DeltaPin::Version(0)).await.unwrap().expect("v0");
    assert_eq!(v0.delta_version, Some(0));
    assert_eq!(rows(v0.table.as_ref()).await, 40);
    assert_eq!(snapshot.inventory(&v0).await.expect("inventory").rows, Some(40));
    let again = snapshot.delta_pin("supply", "moves", DeltaPin::Version(0)).await.unwrap().expect("v0");
    assert!(Arc::ptr_eq(&v0, &again), "a pinned version is opened once");
    let current = snapshot.delta_pin("supply", "moves", DeltaPin::Version(1)).await.unwrap().expect("v1");
    assert!(Arc::ptr_eq(&current, entry), "pinning the current version reads the current entry");

    // The demo's commit files were written at 2026-11-01T08:00Z and 2026-11-15T08:00Z,
    // unless a checkout changed their times: then only the refusal before the first holds.
    let between = Utc.with_ymd_and_hms(2026, 11, 10, 0, 0, 0).single().expect("time");
    let pinned = snapshot.delta_pin("supply", "moves", DeltaPin::Timestamp(between)).await;
    let before = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().expect("time");
    match snapshot.delta_pin("supply", "moves", DeltaPin::Timestamp(before)).await {
        Err(PinError::NotFound(message)) => {
            assert!(message.starts_with("supply.moves has no Delta version at 2000-01-01T00:00:00Z"), "{message}");
            assert!(message.contains("that is before its first commit (version 0, at "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    if let Ok(Some(pinned)) = pinned
        && pinned.delta_version == Some(0)
    {
        assert_eq!(rows(pinned.table.as_ref()).await, 40);
    }
}

#[tokio::test]
async fn bad_pins_name_the_product() {
    let snapshot = snapshot("").await;
    match snapshot.delta_pin("supply", "moves", DeltaPin::Version(999)).await {
        Err(PinError::NotFound(message)) => {
            assert_eq!(message, "supply.moves has no Delta version 999 (its latest is 1)")
        }
        other => panic!("{other:?}"),
    }
    match snapshot.delta_pin("supply", "flat", DeltaPin::Version(0)).await {
        Err(PinError::Invalid(message)) => {
            assert!(message.starts_with("supply.flat is a parquet product"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(snapshot.delta_pin("supply", "nope", DeltaPin::Version(0)).await.unwrap().is_none());
}

#[tokio::test]
async fn declared_columns_are_served_in_their_order_and_drift_is_named() {
    let declared = ", schema: [{ name: m_reason, type: utf8 }, { name: m_movementkey, type: int64 }]";
    let served = snapshot(declared).await;
    let entry = served.product("supply", "moves").expect("product");
    assert!(entry.table.refusal().is_none(), "{:?}", entry.table.refusal());
    let schema = entry.table.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["m_reason", "m_movementkey"]);
    let ctx = SessionContext::new();
    let plan = entry.table.scan(&ctx.state(), Some(&vec![1, 0]), &[], None).await.unwrap_or_else(|e| panic!("{e}"));
    let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(batches[0].schema().field(0).name(), "m_movementkey");
    assert_eq!(batches[0].schema().field(1).name(), "m_reason");
    assert!(data_scans(&plan).iter().any(|name| name == "DeltaScanExec"), "{:?}", data_scans(&plan));

    let drifted = snapshot(", schema: [{ name: m_reason, type: int64 }, { name: gone, type: utf8 }]").await;
    let problem = drifted.product("supply", "moves").expect("product").table.refusal().expect("drift");
    assert_eq!(
        problem.detail,
        "column m_reason is declared int64 but the files have utf8; column gone is declared but missing from the files"
    );
}
