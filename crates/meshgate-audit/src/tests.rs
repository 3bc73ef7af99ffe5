//! The audit as a whole: records and events written, rotation, rebuild on open.

use std::path::Path;
use std::time::SystemTime;

use super::*;

fn start<'a>(principal: &'a str, sql: &'a str) -> QueryStart<'a> {
    QueryStart {
        training_set: None,
        catalog: "mesh",
        principal,
        groups: vec!["analyst".into()],
        principal_domain: Some("marketing".into()),
        purpose: Some("churn model".into()),
        prepared: false,
        statement: Statement::Sql(sql),
    }
}

fn orders() -> Planned {
    Planned {
        products: vec![ProductRead {
            domain: "sales".into(),
            product: "orders".into(),
            version: "1.0.0".into(),
            delta_version: None,
            columns: vec!["o_orderkey".into()],
            masked: vec![],
            rules: vec!["readers".into()],
        }],
        outputs: vec![OutputColumn {
            name: "o_orderkey".into(),
            source: Some(SourceColumn {
                domain: "sales".into(),
                product: "orders".into(),
                column: "o_orderkey".into(),
            }),
        }],
    }
}

fn ok(rows: u64) -> QueryEnd {
    QueryEnd { rows, bytes: rows * 8, outcome: Outcome::Ok, error_code: None, error: None }
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn a_query_is_recorded_and_its_events_follow_its_life() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        dir: Some(dir.path().join("audit")),
        lineage_file: Some(dir.path().join("lineage.jsonl")),
        ..Default::default()
    };
    let audit = Audit::open(&options).unwrap();
    let mut query = audit.begin(start("ana", "SELECT o_orderkey FROM sales.orders WHERE o_totalprice > 1000"));
    let id = query.id().to_owned();
    query.planned(orders());
    query.end(ok(3));
    let refused = audit.begin(start("ana", "SELECT * FROM customers.secret"));
    refused.end(QueryEnd {
        rows: 0,
        bytes: 0,
        outcome: Outcome::Refused,
        error_code: Some("NOT_FOUND".into()),
        error: Some("table customers.secret not found".into()),
    });
    audit.sync();

    let lines = json_lines(&dir.path().join("audit").join("audit.jsonl"));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["query_id"], id.as_str());
    assert_eq!(lines[0]["sql"], "SELECT o_orderkey FROM sales.orders WHERE o_totalprice > 1000");
    assert_eq!(lines[0]["products"][0]["rules"][0], "readers");
    assert_eq!(lines[0]["purpose"], "churn model");
    assert_eq!((lines[0]["rows"].as_u64(), lines[0]["outcome"].as_str()), (Some(3), Some("ok")));
    assert_eq!(lines[1]["outcome"], "refused");
    assert_eq!(lines[1]["error_code"], "NOT_FOUND");

    let events = json_lines(&dir.path().join("lineage.jsonl"));
    let kinds: Vec<(&str, &str)> =
        events.iter().map(|e| (e["run"]["runId"].as_str().unwrap(), e["eventType"].as_str().unwrap())).collect();
    let other = lines[1]["query_id"].as_str().unwrap();
    assert_eq!(kinds, [(id.as_str(), "START"), (id.as_str(), "COMPLETE"), (other, "START"), (other, "FAIL")]);
    assert_eq!(
        events[0]["job"]["facets"]["sql"]["query"],
        "SELECT o_orderkey FROM sales.orders WHERE o_totalprice > ?"
    );
    assert_eq!(events[3]["run"]["facets"]["errorMessage"]["message"], "table customers.secret not found");
    assert!(events[3].get("inputs").is_none());

    assert_eq!(audit.recent().len(), 2);
    let usage = audit.usage(SystemTime::now());
    assert_eq!(usage.len(), 4);
    assert!(usage.iter().all(|row| row.queries == 1 && row.rows == 3 && row.consuming_domains == 1));
    audit.shutdown();
}

#[test]
fn reopening_rebuilds_the_query_log_and_usage_from_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        dir: Some(dir.path().to_owned()),
        rotation: Some(Rotation { max_bytes: 2000, keep: 100 }),
        ..Default::default()
    };
    let audit = Audit::open(&options).unwrap();
    for n in 0..20 {
        let principal = format!("user{}", n % 4);
        let mut query = audit.begin(start(&principal, "SELECT o_orderkey FROM sales.orders"));
        query.planned(orders());
        query.end(ok(n));
    }
    audit.shutdown();
    let rotated = file::rotated_files(&dir.path().join(log::FILE_NAME));
    assert!(rotated.len() >= 3, "{rotated:?}");
    for file in &rotated {
        assert!(std::fs::metadata(file).unwrap().len() <= 2000);
    }
    // A crash left half a line behind.
    let current = dir.path().join(log::FILE_NAME);
    let mut text = std::fs::read_to_string(&current).unwrap();
    text.push_str("{\"time\":\"2026-");
    std::fs::write(&current, text).unwrap();

    let reopened = Audit::open(&options).unwrap();
    assert_eq!(reopened.rebuilt(), Rebuilt { records: 20, malformed: 1 });
    let recent = reopened.recent();
    assert_eq!(recent.len(), 20);
    assert_eq!(recent.iter().map(|r| r.rows).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    let all = reopened.usage(SystemTime::now()).into_iter().find(|row| row.window == Window::All).unwrap();
    assert_eq!((all.queries, all.rows, all.principals), (20, 190, 4));

    // New records follow on a line of their own.
    let mut query = reopened.begin(start("ana", "SELECT 1"));
    query.planned(Planned::default());
    query.end(ok(1));
    reopened.shutdown();
    let again = Audit::open(&options).unwrap();
    assert_eq!(again.rebuilt(), Rebuilt { records: 21, malformed: 1 });
}

#[test]
fn retention_keeps_the_newest_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        dir: Some(dir.path().to_owned()),
        rotation: Some(Rotation { max_bytes: 1, keep: 3 }),
        ..Default::default()
    };
    let audit = Audit::open(&options).unwrap();
    for n in 0..10 {
        audit.begin(start("ana", "SELECT 1")).end(ok(n));
    }
    audit.shutdown();
    let rotated = file::rotated_files(&dir.path().join(log::FILE_NAME));
    assert_eq!(rotated.len(), 3);
    let rows: Vec<u64> = rotated
        .iter()
        .chain([&dir.path().join(log::FILE_NAME)])
        .flat_map(|file| json_lines(file))
        .map(|line| line["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [6, 7, 8, 9]);
}

#[test]
fn substrait_plans_are_fingerprinted_by_their_bytes() {
    let audit = Audit::default();
    let plan = [1u8, 2, 3];
    let query = audit.begin(QueryStart { statement: Statement::Substrait(&plan), ..start("ana", "") });
    query.end(ok(0));
    let record = audit.recent().pop().unwrap();
    assert_eq!(record.kind, QueryKind::Substrait);
    assert_eq!(record.sql, "");
    assert_eq!(record.fingerprint.len(), 64);
}

#[test]
fn bad_options_are_refused() {
    let error = Audit::open(&AuditOptions { lineage_url: Some("nope".into()), ..Default::default() }).unwrap_err();
    assert!(matches!(error, AuditError::LineageUrl { .. }), "{error}");
    let zero = AuditOptions { rotation: Some(Rotation { max_bytes: 0, keep: 1 }), ..Default::default() };
    assert!(matches!(Audit::open(&zero), Err(AuditError::MaxBytes)));
}
