//! Every kind of check run on real files, the book's statuses and gate, and planning
//! at load.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;

use super::*;
use crate::config::contract::OnFailure;
use crate::{MeshSnapshot, load_mesh_str};

const DATA: &str = "\
id,status,amount,day
1,F,10.5,2026-01-01
2,O,,2026-01-02
2,X,-3,2020-01-01
3,O,700,2026-01-03
";

const SCHEMA: &str = "[{ name: id, type: int64 }, { name: status, type: utf8 }, { name: amount, type: float64 }, { name: day, type: date32 }]";

async fn snapshot(products: &str) -> (tempfile::TempDir, Arc<MeshSnapshot>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("t")).expect("mkdir");
    std::fs::write(dir.path().join("t/part-0.csv"), DATA).expect("write");
    let text = format!("domains:\n  d:\n    owner: a@b.c\n    products:\n{products}");
    let config = load_mesh_str(&text, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let snapshot = MeshSnapshot::load(config, SessionConfig::new(), Arc::new(RuntimeEnv::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, Arc::new(snapshot))
}

fn product(name: &str, contract: &str) -> String {
    format!("      - {{ name: {name}, location: t/, format: csv, schema: {SCHEMA}, {contract} }}\n")
}

const ALL_KINDS: &str = "quality: [
    { type: row_count, min: 1, max: 3 },
    { type: not_null, column: amount },
    { type: unique, column: id },
    { type: unique, columns: [id, status] },
    { type: allowed_values, column: status, values: [F, O] },
    { type: range, column: amount, min: 0, max: 600 },
    { type: regex, column: status, pattern: '^[FO]$' },
    { type: sql, name: positive, expression: amount > 0 },
    { type: sql, name: statuses, query: 'SELECT count(DISTINCT status) FROM t', must_be: 3 },
    { type: sql, name: some_f, query: \"SELECT bool_or(status = 'F') FROM d.t\" },
    { type: not_null, column: id, severity: warn } ],
  freshness: { column: day, max_age: 1d }";

#[tokio::test]
async fn every_kind_measures_what_it_says() {
    let (_dir, snapshot) = snapshot(&product("t", ALL_KINDS)).await;
    plan_contracts(&snapshot).await.unwrap_or_else(|e| panic!("{e}"));
    let entry = snapshot.product("d", "t").expect("product");
    let checks = ProductChecks::new(&snapshot, entry).expect("context");
    let mut measured = Vec::new();
    for check in checks.checks() {
        let result = checks.run_check(check).await;
        assert_eq!(result.error, None, "{}", result.check);
        assert_eq!((result.files.files, result.files.bytes), (1, DATA.len() as u64));
        measured.push((result.check.clone(), result.measured, result.passed));
    }
    let expected = [
        ("row_count", Some(4.0), false),
        ("not_null_amount", Some(1.0), false),
        ("unique_id", Some(2.0), false),
        ("unique_id_status", Some(0.0), true),
        ("allowed_values_status", Some(1.0), false),
        ("range_amount", Some(2.0), false),
        ("regex_status", Some(1.0), false),
        ("positive", Some(2.0), false),
        ("statuses", Some(3.0), true),
        ("some_f", Some(1.0), true),
        ("not_null_id", Some(0.0), true),
    ];
    let expected: Vec<(String, Option<f64>, bool)> =
        expected.iter().map(|(n, m, p)| ((*n).to_owned(), *m, *p)).collect();
    assert_eq!(measured, expected);

    let freshness = checks.run_freshness().await.expect("an SLA");
    let newest = 20_456.0 * 86_400.0; // 2026-01-03
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    let age = freshness.measured.expect("measured");
    assert!((age - (now - newest)).abs() < 60.0, "age {age}");
    assert_eq!(freshness.passed, age <= 86_400.0);
    assert_eq!(freshness.expectation, "newest day at most 1d old");
}

#[tokio::test]
async fn file_freshness_and_failures_to_run() {
    let contract = "quality: [{ type: sql, name: boom, query: 'SELECT id = 1 FROM t' }], \
                    freshness: { max_age: 1h }";
    let (_dir, snapshot) = snapshot(&product("t", contract)).await;
    let entry = snapshot.product("d", "t").expect("product");
    let checks = ProductChecks::new(&snapshot, entry).expect("context");
    let fresh = checks.run_freshness().await.expect("an SLA");
    assert!(fresh.passed && fresh.measured.is_some_and(|age| age < 600.0), "{fresh:?}");
    let boom = checks.run_check(&checks.checks()[0]).await;
    assert!(!boom.passed && boom.measured.is_none());
    assert!(boom.error.as_deref().is_some_and(|e| e.contains("rows")), "{boom:?}");
}

#[tokio::test]
async fn checks_are_planned_against_the_files_schema_at_load() {
    let undeclared = "      - { name: u, location: t/, format: csv, \
                      quality: [{ name: nope, type: not_null, column: missing }, \
                                { name: num, type: sql, query: 'SELECT count(*) FROM u' }, \
                                { name: ok, type: sql, expression: amount > 0 }], \
                      freshness: { column: status, max_age: 1d } }\n";
    let (_dir, snapshot) = snapshot(undeclared).await;
    let errors = plan_contracts(&snapshot).await.expect_err("refused").0;
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "domains.d.products.u.quality.nope",
            "domains.d.products.u.quality.num",
            "domains.d.products.u.freshness.column"
        ],
        "{errors:?}"
    );
    assert!(errors[0].message.contains("missing"), "{}", errors[0].message);
    assert!(errors[1].message.contains("must_be"), "{}", errors[1].message);
    assert!(errors[2].message.contains("not a date or timestamp"), "{}", errors[2].message);
}

#[tokio::test]
async fn the_book_keeps_status_history_and_gates() {
    let contract = "quality: [{ name: keys, type: unique, column: id }, \
                    { name: st, type: allowed_values, column: status, values: [F, O], severity: warn }], \
                    on_failure: block";
    let (_dir, snapshot) = snapshot(&product("t", contract)).await;
    let book = QualityBook::new();
    book.sync(&snapshot);
    let quality = book.status("d", "t").expect("registered");
    assert_eq!((quality.status, quality.checks), (QualityStatus::Unknown, 2));
    assert_eq!(book.gate("d", "t", "0.1.0"), Gate::Clear);

    let entry = snapshot.product("d", "t").expect("product");
    let checks = ProductChecks::new(&snapshot, entry).expect("context");
    let warn_check = checks.run_check(&checks.checks()[1]).await;
    book.record(&entry.product, warn_check);
    assert_eq!(book.status("d", "t").map(|q| q.status), Some(QualityStatus::Warning));
    assert!(matches!(book.gate("d", "t", "0.1.0"), Gate::Warn(m) if m.contains("check st")));

    let keys = checks.run_check(&checks.checks()[0]).await;
    book.record(&entry.product, keys.clone());
    book.record(&entry.product, keys);
    let quality = book.status("d", "t").expect("registered");
    assert_eq!((quality.status, quality.on_failure), (QualityStatus::Degraded, OnFailure::Block));
    assert_eq!(quality.failing[0].check, "keys");
    assert_eq!(
        book.gate("d", "t", "0.1.0"),
        Gate::Block(
            "product d.t is degraded and blocked by its contract: check keys (id is unique) failed: 2 rows violate it"
                .into()
        )
    );
    assert_eq!(book.latest().len(), 2);
    assert_eq!(book.history().len(), 3);
    assert_eq!(book.history_of("d", "other").len(), 0);

    // A reload with the same contract keeps everything; a changed one starts over.
    book.sync(&snapshot);
    assert_eq!(book.latest().len(), 2);
    let (_dir2, changed) = self::snapshot(&product("t", "quality: [{ name: keys, type: unique, column: id }]")).await;
    book.sync(&changed);
    assert_eq!(book.status("d", "t").map(|q| q.status), Some(QualityStatus::Unknown));
    assert_eq!(book.history().len(), 2, "the history of checks that remain is kept");
    // A result from a run of the old contract is dropped.
    book.record(&entry.product, checks.run_check(&checks.checks()[0]).await);
    assert_eq!(book.latest().len(), 0);
}

#[tokio::test]
async fn the_background_task_fills_the_book() {
    let (_dir, snapshot) = snapshot(&product("t", "quality: [{ type: row_count, min: 1 }]")).await;
    let book = Arc::new(QualityBook::new());
    let mut recorded = book.subscribe();
    let _task = QualityTask::start(Arc::clone(&book), Arc::clone(&snapshot));
    let passing = recorded.wait_for(|_| book.status("d", "t").is_some_and(|q| q.status == QualityStatus::Passing));
    tokio::time::timeout(Duration::from_secs(30), passing).await.expect("a result within 30 s").expect("book alive");
}
