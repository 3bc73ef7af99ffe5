//! The memory limit: large sorts spill to stay under it; what cannot fit fails with
//! ResourceExhausted and the server keeps serving.

mod support;

use arrow::array::{Array, StringArray};
use support::{TestServer, demo_config, query, rows};
use tonic::Code;

const SORT: &str = "SELECT l_orderkey, l_comment FROM sales.lineitem ORDER BY l_comment, l_orderkey";

#[tokio::test]
async fn a_sort_under_a_tight_limit_spills_and_stays_ordered() {
    let spill = tempfile::tempdir().unwrap();
    let spill_dir = spill.path().to_str().unwrap();
    let server = TestServer::start_with(&demo_config(), &["--memory-limit", "32MiB", "--spill-dir", spill_dir]);
    let mut client = server.client().await;
    let batches = query(&mut client, SORT).await.expect("sort under 32 MiB");
    assert_eq!(rows(&batches), 60_125);
    let comments: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            (0..column.len()).map(|i| column.value(i).to_owned()).collect::<Vec<_>>()
        })
        .collect();
    assert!(comments.windows(2).all(|pair| pair[0] <= pair[1]), "result is ordered");
}

#[tokio::test]
async fn a_query_that_cannot_fit_gets_resource_exhausted() {
    let server = TestServer::start_with(&demo_config(), &["--memory-limit", "8MiB"]);
    let mut client = server.client().await;
    let status = query(&mut client, SORT).await.expect_err("sort cannot fit in 8 MiB");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("memory limit"), "{}", status.message());
    let after = query(&mut client, "SELECT count(*) FROM customers.region").await.expect("server keeps serving");
    assert_eq!(rows(&after), 1);
}
