//! Governance through the real server with arrow-flight's Flight SQL client: logins,
//! hidden products, tickets bound to their principal.

#![allow(clippy::unwrap_used, reason = "tests: a failed step should stop the test")]

mod support;

use support::{TestServer, demo_config, query, rows, to_status};
use tonic::Code;

async fn login(
    server: &TestServer,
    user: &str,
) -> arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel> {
    let mut client = server.anonymous_client().await;
    client.handshake(user, &format!("{user}-demo")).await.unwrap();
    client
}

#[tokio::test]
async fn calls_need_credentials_and_wrong_ones_all_look_the_same() {
    let server = TestServer::start(&demo_config());
    let mut anonymous = server.anonymous_client().await;
    let status = query(&mut anonymous, "SELECT 1").await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("credentials required"), "{status:?}");

    // The client's handshake reports the status as text.
    let wrong_password = server.anonymous_client().await.handshake("ana", "nope").await.unwrap_err().to_string();
    let unknown_user = server.anonymous_client().await.handshake("eve", "ana-demo").await.unwrap_err().to_string();
    assert!(
        wrong_password.contains("valid authentication credentials") && wrong_password.contains("invalid credentials"),
        "{wrong_password}"
    );
    assert_eq!(wrong_password, unknown_user);
}

#[tokio::test]
async fn a_forbidden_product_fails_exactly_like_a_missing_one() {
    let server = TestServer::start(&demo_config());
    let mut carl = login(&server, "carl").await;
    let hidden = query(&mut carl, "SELECT * FROM customers.customer").await.unwrap_err();
    let missing = query(&mut carl, "SELECT * FROM customers.customerz").await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(hidden.code(), missing.code());
    assert_eq!(
        hidden.message().replace("customers.customer", "X"),
        missing.message().replace("customers.customerz", "X")
    );
    let visible = query(
        &mut carl,
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_schema NOT IN ('information_schema', 'mesh_catalog')",
    )
    .await
    .unwrap();
    assert_eq!(rows(&visible), 1, "carl sees sales.orders only");
}

#[tokio::test]
async fn a_ticket_is_bound_to_the_principal_it_was_issued_to() {
    let server = TestServer::start(&demo_config());
    let mut ana = login(&server, "ana").await;
    let mut sam = login(&server, "sam").await;
    let info = ana.execute("SELECT count(*) FROM sales.orders".to_owned(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stolen = sam.do_get(ticket.clone()).await.map_err(to_status).unwrap_err();
    assert_eq!(stolen.code(), Code::Unauthenticated);
    assert!(ana.do_get(ticket).await.is_ok());
}

#[tokio::test]
async fn statistics_do_not_answer_counts_on_filtered_products() {
    let server = TestServer::start(&demo_config());
    let mut carl = login(&server, "carl").await;
    let mut stella = login(&server, "stella").await;
    let count = |batches: Vec<arrow::array::RecordBatch>| {
        batches[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0)
    };
    let all = count(query(&mut stella, "SELECT count(*) FROM sales.orders").await.unwrap());
    let governed = count(query(&mut carl, "SELECT count(*) FROM sales.orders").await.unwrap());
    let expected = count(
        query(&mut stella, "SELECT count(*) FROM sales.orders WHERE o_orderdate >= DATE '1997-01-01' AND o_orderpriority <> '1-URGENT'")
            .await
            .unwrap(),
    );
    assert!(governed < all);
    assert_eq!(governed, expected);
}
