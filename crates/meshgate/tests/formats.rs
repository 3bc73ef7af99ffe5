//! CSV and NDJSON products, and schema drift, on meshes written by the test.

mod support;

use arrow::array::{Int64Array, StringArray};
use support::{OPEN_GOVERNANCE, TestServer, query, write};
use tonic::Code;

#[tokio::test]
async fn ndjson_products_are_queryable_and_drift_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("data/events/day1.json"),
        "{\"id\": 1, \"kind\": \"click\"}\n{\"id\": 2, \"kind\": \"view\"}\n{\"id\": 3, \"kind\": \"click\"}\n",
    );
    write(
        &dir.path().join("mesh.yaml"),
        &(r#"
domains:
  web:
    owner: web@corp.example
    products:
      - name: events
        version: 1.0.0
        location: data/events/
        format: ndjson
        schema:
          - { name: id, type: int64 }
          - { name: kind, type: utf8 }
      - name: events_drifted
        version: 1.0.0
        location: data/events/
        format: ndjson
        schema:
          - { name: id, type: int64 }
          - { name: user_id, type: int64 }
"#
        .to_owned()
            + OPEN_GOVERNANCE),
    );
    let server = TestServer::start(&dir.path().join("mesh.yaml"));
    let mut client = server.client().await;
    let batches = query(&mut client, "SELECT kind, count(*) AS n FROM web.events GROUP BY kind ORDER BY kind")
        .await
        .expect("ndjson query");
    let kinds = batches[0].column(0).as_any().downcast_ref::<StringArray>().unwrap();
    let counts = batches[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!((kinds.value(0), counts.value(0)), ("click", 2));
    assert_eq!((kinds.value(1), counts.value(1)), ("view", 1));

    let status = query(&mut client, "SELECT * FROM web.events_drifted").await.expect_err("drifted product");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("web.events_drifted"), "{}", status.message());
    assert!(status.message().contains("user_id"), "{}", status.message());
    assert!(query(&mut client, "SELECT count(*) FROM web.events").await.is_ok(), "the rest keeps serving");
}

#[tokio::test]
async fn files_added_to_a_product_become_visible() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("data/events/day1.json"), "{\"id\": 1}\n{\"id\": 2}\n");
    write(
        &dir.path().join("mesh.yaml"),
        &("domains:\n  web:\n    owner: web@corp.example\n    products:\n      - { name: events, location: data/events/, format: ndjson }\n".to_owned()
            + OPEN_GOVERNANCE),
    );
    let server = TestServer::start_with(&dir.path().join("mesh.yaml"), &["--listing-ttl-secs", "0"]);
    let mut client = server.client().await;
    let count = |batches: Vec<arrow::array::RecordBatch>| {
        batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    };
    assert_eq!(count(query(&mut client, "SELECT count(*) FROM web.events").await.unwrap()), 2);
    write(&dir.path().join("data/events/day2.json"), "{\"id\": 3}\n");
    assert_eq!(count(query(&mut client, "SELECT count(*) FROM web.events").await.unwrap()), 3);
}
