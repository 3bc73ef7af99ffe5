//! The real server, over Flight SQL, with arrow-flight's client.

mod support;

use arrow::array::{Array, Int64Array};
use arrow::util::pretty::pretty_format_batches;
use arrow_flight::sql::CommandGetTables;
use futures::TryStreamExt;
use support::{TestServer, demo_config, query, rows};
use tonic::Code;

#[tokio::test]
async fn cross_domain_join_streams_results() {
    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let batches = query(
        &mut client,
        "SELECT r.r_name, count(*) AS orders
         FROM sales.orders o
         JOIN customers.customer c ON o.o_custkey = c.c_custkey
         JOIN customers.nation n ON c.c_nationkey = n.n_nationkey
         JOIN customers.region r ON n.n_regionkey = r.r_regionkey
         GROUP BY r.r_name ORDER BY r.r_name",
    )
    .await
    .expect("query");
    assert_eq!(rows(&batches), 5, "{}", pretty_format_batches(&batches).unwrap());
    let total: i64 = batches
        .iter()
        .map(|b| b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().iter().flatten().sum::<i64>())
        .sum();
    let all = query(&mut client, "SELECT count(*) FROM sales.orders").await.unwrap();
    let orders = all[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
    assert_eq!(total, orders, "every order has exactly one customer, nation and region");
}

#[tokio::test]
async fn bad_input_gets_the_right_code_and_the_server_keeps_serving() {
    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let cases = [
        ("SELEC 1", Code::InvalidArgument, "SELEC"),
        ("SELECT * FROM sales.nope", Code::NotFound, "sales.nope"),
        ("SELECT * FROM orders", Code::NotFound, "domain.product"),
        ("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp'", Code::InvalidArgument, "CREATE EXTERNAL TABLE"),
        ("CREATE VIEW v AS SELECT 1", Code::InvalidArgument, "CREATE VIEW"),
        ("COPY (SELECT 1) TO '/tmp/x.parquet'", Code::InvalidArgument, "COPY"),
        ("SET datafusion.execution.batch_size = 1", Code::InvalidArgument, "SET"),
        ("INSERT INTO sales.orders VALUES (1)", Code::InvalidArgument, "INSERT"),
        ("SELECT * FROM 's3://bucket/x.parquet'", Code::InvalidArgument, "s3://bucket/x.parquet"),
        ("SELECT no_such_column FROM sales.orders", Code::InvalidArgument, "no_such_column"),
    ];
    for (sql, code, named) in cases {
        let status = query(&mut client, sql).await.expect_err(sql);
        assert_eq!(status.code(), code, "{sql}: {status:?}");
        assert!(status.message().contains(named), "{sql}: {}", status.message());
        let after = query(&mut client, "SELECT count(*) FROM customers.region").await.expect("next query");
        assert_eq!(rows(&after), 1);
    }
}

#[tokio::test]
async fn get_tables_lists_every_product_with_its_schema() {
    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let info =
        client.get_tables(CommandGetTables { include_schema: true, ..Default::default() }).await.expect("get tables");
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = client.do_get(ticket).await.unwrap().try_collect().await.unwrap();
    let text = pretty_format_batches(&batches).unwrap().to_string();
    let products = [
        "orders",
        "lineitem",
        "customer_features",
        "customer",
        "nation",
        "region",
        "part",
        "partsupp",
        "supplier",
        "stock_movements",
    ];
    for product in products {
        assert!(text.contains(product), "{product} missing from\n{text}");
    }
    // The products, plus the six mesh_catalog system tables.
    let system = ["products", "columns", "quality_results", "lineage", "query_log", "usage"];
    for table in system {
        assert!(text.contains("mesh_catalog") && text.contains(table), "{table} missing from\n{text}");
    }
    assert_eq!(rows(&batches), products.len() + system.len());
    assert!(batches[0].column(4).null_count() == 0, "include_schema fills table_schema");
}

#[tokio::test]
async fn forged_and_tampered_tickets_are_refused() {
    use arrow_flight::Ticket;
    use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
    use prost::Message;

    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let forged = TicketStatementQuery { statement_handle: b"SELECT * FROM customers.customer".to_vec().into() };
    let status = client
        .do_get(Ticket::new(forged.as_any().encode_to_vec()))
        .await
        .map(|_| ())
        .map_err(support::to_status)
        .expect_err("forged ticket");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("ticket is not valid"), "{}", status.message());

    let info = client.execute("SELECT count(*) FROM customers.region".to_owned(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut bytes = ticket.ticket.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let status = client.do_get(Ticket::new(bytes)).await.map(|_| ()).map_err(support::to_status).expect_err("tampered");
    assert!(matches!(status.code(), Code::InvalidArgument), "{status:?}");

    let batches: Vec<_> = client.do_get(ticket).await.unwrap().try_collect().await.unwrap();
    assert_eq!(rows(&batches), 1, "the genuine ticket still works");
}

#[tokio::test]
async fn primary_keys_come_from_descriptors_and_foreign_keys_answer_empty() {
    use arrow::array::{Int32Array, StringArray};
    use arrow_flight::sql::{CommandGetExportedKeys, CommandGetPrimaryKeys};

    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let command = CommandGetPrimaryKeys { catalog: None, db_schema: Some("sales".into()), table: "lineitem".into() };
    let info = client.get_primary_keys(command).await.expect("primary keys");
    let batches: Vec<_> =
        client.do_get(info.endpoint[0].ticket.clone().unwrap()).await.unwrap().try_collect().await.unwrap();
    let columns = batches[0].column_by_name("column_name").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    let sequence = batches[0].column_by_name("key_sequence").unwrap().as_any().downcast_ref::<Int32Array>().unwrap();
    assert_eq!(columns.iter().flatten().collect::<Vec<_>>(), ["l_orderkey", "l_linenumber"]);
    assert_eq!(sequence.values().to_vec(), [1, 2]);

    let command = CommandGetExportedKeys { catalog: None, db_schema: Some("sales".into()), table: "orders".into() };
    let info = client.get_exported_keys(command).await.expect("exported keys, not unimplemented");
    let batches: Vec<_> =
        client.do_get(info.endpoint[0].ticket.clone().unwrap()).await.unwrap().try_collect().await.unwrap();
    assert_eq!(rows(&batches), 0);
}

#[tokio::test]
async fn now_is_the_time_the_query_started() {
    use arrow::array::TimestampNanosecondArray;
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, TimeUnit};

    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let batches = query(&mut client, "SELECT now()").await.expect("now()");
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let column = cast(batches[0].column(0), &DataType::Timestamp(TimeUnit::Nanosecond, None)).unwrap();
    let now = column.as_any().downcast_ref::<TimestampNanosecondArray>().unwrap().value(0);
    assert!(before - 1_000_000 <= now && now <= after, "{before} <= {now} <= {after}");
}

#[tokio::test]
async fn xdbc_type_info_lists_the_types_results_use() {
    use arrow::array::StringArray;
    use arrow_flight::sql::CommandGetXdbcTypeInfo;

    let server = TestServer::start(&demo_config());
    let mut client = server.client().await;
    let info = client.get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None }).await.expect("type info");
    let batches: Vec<_> =
        client.do_get(info.endpoint[0].ticket.clone().unwrap()).await.unwrap().try_collect().await.unwrap();
    let names = batches[0].column_by_name("type_name").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    let names: Vec<_> = names.iter().flatten().collect();
    for expected in ["BIGINT", "DECIMAL", "VARCHAR", "DATE", "TIMESTAMP", "DOUBLE"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let filtered = client.get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: Some(-5) }).await.unwrap();
    let batches: Vec<_> =
        client.do_get(filtered.endpoint[0].ticket.clone().unwrap()).await.unwrap().try_collect().await.unwrap();
    assert_eq!(rows(&batches), 1, "filtered to BIGINT");
}
