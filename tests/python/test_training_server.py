"""The server side of governed training data (docs/ml.md), through the real binary
with pyarrow.flight: shards, provenance columns, split hashes, the training snapshot
action, and the call's purpose as `principal.purpose` in policies.

The Python package (python/meshgate) is tested on top of these in test_ml_loader.py;
here each feature is checked as any Flight SQL client sees it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
import yaml

import mgtest
from mgtest import (
    DATA,
    TESTDATA,
    cmd_statement_query,
    flight_client,
    flight_grpc_code,
    server_message,
    write_yaml,
)


def options(**headers: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(
        headers=[(f"x-meshgate-{name.replace('_', '-')}".encode(), value.encode()) for name, value in headers.items()]
    )


def describe(client: flight.FlightClient, sql: str, **headers: str) -> flight.FlightInfo:
    descriptor = flight.FlightDescriptor.for_command(cmd_statement_query(sql))
    return client.get_flight_info(descriptor, options(**headers))


def shard_tables(client: flight.FlightClient, sql: str, shards: int, **headers: str) -> list[pa.Table]:
    info = describe(client, sql, shards=str(shards), **headers)
    assert len(info.endpoints) == shards
    return [client.do_get(endpoint.ticket, options(**headers)).read_all() for endpoint in info.endpoints]


def read(client: flight.FlightClient, sql: str, **headers: str) -> pa.Table:
    info = describe(client, sql, **headers)
    return pa.concat_tables([client.do_get(e.ticket, options(**headers)).read_all() for e in info.endpoints])


def rows(table: pa.Table) -> list[tuple]:
    return sorted(mgtest.table_rows(table).rows, key=mgtest._sort_key)


def refusal(call) -> tuple[str, str]:
    with pytest.raises(Exception) as caught:
        call()
    return flight_grpc_code(caught.value), server_message(caught.value)


@pytest.fixture
def stella(demo_server):
    client = flight_client(demo_server.uri, "stella")
    yield client
    client.close()


# ---------------------------------------------------------------------------- shards


@pytest.mark.parametrize("count", [1, 3, 8, 40])
def test_shards_are_disjoint_and_together_exactly_the_result(stella, count):
    sql = "SELECT l_orderkey, l_linenumber, l_quantity FROM sales.lineitem WHERE l_quantity > 10"
    whole = read(stella, sql)
    parts = shard_tables(stella, sql, count)
    keys = [(k, n) for part in parts for k, n in zip(part["l_orderkey"].to_pylist(), part["l_linenumber"].to_pylist())]
    assert len(keys) == len(set(keys)) == whole.num_rows
    assert rows(pa.concat_tables(parts)) == rows(whole)
    if count == 40:  # more shards than row groups: some are empty, none is lost
        assert any(part.num_rows == 0 for part in parts)


def test_the_same_files_give_the_same_shards(stella):
    sql = "SELECT l_orderkey, l_linenumber FROM sales.lineitem"
    first = [rows(part) for part in shard_tables(stella, sql, 5)]
    again = [rows(part) for part in shard_tables(stella, sql, 5)]
    assert first == again
    assert sum(1 for part in first if part) >= 3  # the rows really are spread


def test_a_join_shards_by_the_product_named_first_and_stays_governed(demo_server):
    # ana: customers of her market segment only (a row filter), names keyed-hashed (a
    # mask). A join of orders and customers read as shards equals her unsharded result.
    ana = flight_client(demo_server.uri, "ana")
    sql = (
        "SELECT o.o_orderkey, o.o_totalprice, c.c_name, c.c_mktsegment FROM sales.orders o "
        "JOIN customers.customer c ON o.o_custkey = c.c_custkey"
    )
    whole = read(ana, sql)
    assert whole.num_rows > 0
    assert set(whole["c_mktsegment"].to_pylist()) == {"BUILDING"}
    assert not any(name.startswith("Customer#") for name in whole["c_name"].to_pylist())
    assert rows(pa.concat_tables(shard_tables(ana, sql, 4))) == rows(whole)
    ana.close()
    # carl: orders since 1997 only; customers are forbidden to him, and look absent.
    carl = flight_client(demo_server.uri, "carl")
    sql = "SELECT o_orderkey, o_orderdate FROM sales.orders WHERE o_orderpriority <> '5-LOW'"
    whole = read(carl, sql)
    assert min(whole["o_orderdate"].to_pylist()).year >= 1997
    assert rows(pa.concat_tables(shard_tables(carl, sql, 3))) == rows(whole)
    code, message = refusal(lambda: describe(carl, "SELECT * FROM customers.customer", shards="2"))
    assert code == "NOT_FOUND" and "customers.customer" in message
    carl.close()


@pytest.mark.parametrize(
    "sql, says",
    [
        ("SELECT l_orderkey FROM sales.lineitem ORDER BY l_orderkey", "ORDER BY"),
        ("SELECT l_orderkey FROM sales.lineitem LIMIT 10", "LIMIT"),
        ("SELECT l_orderkey, count(*) FROM sales.lineitem GROUP BY l_orderkey", "Aggregate"),
        ("SELECT DISTINCT l_orderkey FROM sales.lineitem", "Aggregate"),
        ("SELECT l_orderkey, row_number() OVER (ORDER BY l_orderkey) FROM sales.lineitem", "window"),
        ("SELECT l_orderkey FROM sales.lineitem UNION ALL SELECT o_orderkey FROM sales.orders", "Union"),
        (
            "SELECT n.n_name, o.o_orderkey FROM sales.orders o RIGHT JOIN customers.nation n "
            "ON o.o_custkey = n.n_nationkey",
            "join",
        ),
    ],
)
def test_queries_that_need_the_whole_result_are_refused_by_name(stella, sql, says):
    code, message = refusal(lambda: describe(stella, sql, shards="4"))
    assert code == "INVALID_ARGUMENT", message
    assert message.startswith("this query cannot be read as shards"), message
    assert says.lower() in message.lower(), message
    assert read(stella, "SELECT count(*) AS n FROM customers.region")["n"][0].as_py() == 5  # still serving


@pytest.mark.parametrize("value", ["0", "1025", "-1", "many", "2.5"])
def test_a_shard_count_out_of_range_is_a_clear_error(stella, value):
    code, message = refusal(lambda: describe(stella, "SELECT * FROM sales.lineitem", shards=value))
    assert code == "INVALID_ARGUMENT" and "x-meshgate-shards" in message and "1 to 1024" in message


def test_a_shard_read_after_its_files_changed_is_refused(start_server, tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate*.py", "__pycache__"))
    # Listings are not reused, so the new file shows at the next DoGet.
    server = start_server(root / "mesh.yaml", name="shards-changed", args=("--no-watch", "--listing-ttl-secs", "0"))
    client = flight_client(server.uri, "stella")
    sql = "SELECT l_orderkey FROM sales.lineitem"
    info = describe(client, sql, shards="3")
    first = client.do_get(info.endpoints[0].ticket).read_all()
    folder = root / "data" / "sales" / "lineitem"
    shutil.copy(folder / "part-1.parquet", folder / "part-2.parquet")
    with pytest.raises(Exception) as caught:
        client.do_get(info.endpoints[1].ticket).read_all()
    assert flight_grpc_code(caught.value) == "FAILED_PRECONDITION"
    assert "the files of sales.lineitem changed since the shards were planned" in server_message(caught.value)
    # Planned again, the shards cover the new file too.
    again = sum(t.num_rows for t in shard_tables(client, sql, 3))
    assert again == read(client, "SELECT count(*) AS n FROM sales.lineitem")["n"][0].as_py() > first.num_rows
    client.close()
    server.stop()


# ------------------------------------------------------------------------ provenance


def test_provenance_points_at_the_row_in_its_file(stella):
    table = read(
        stella,
        "SELECT l_orderkey, l_linenumber, l_comment, _source_file, _source_row FROM sales.lineitem "
        "WHERE l_linenumber = 3",
        provenance="true",
        shards="3",
    )
    assert table.num_rows > 1000
    assert table.schema.field("_source_row").type == pa.int64()
    files: dict[str, pa.Table] = {}
    for row in table.to_pylist():
        path = "/" + row["_source_file"]
        assert path.startswith(str(DATA / "sales" / "lineitem")), path
        if path not in files:
            files[path] = pq.read_table(path, columns=["l_orderkey", "l_linenumber", "l_comment"])
        at = files[path].slice(row["_source_row"], 1).to_pylist()[0]
        assert at == {k: row[k] for k in ("l_orderkey", "l_linenumber", "l_comment")}
    assert len(files) == 2


def test_provenance_of_a_hive_partitioned_product(stella):
    table = read(stella, "SELECT o_orderkey, o_year, _source_file FROM sales.orders", provenance="true")
    for row in table.slice(0, 200).to_pylist():
        assert f"o_year={row['o_year']}/" in row["_source_file"]


def test_without_provenance_there_are_no_provenance_columns(stella):
    code, message = refusal(lambda: read(stella, "SELECT _source_file FROM sales.lineitem"))
    assert code == "INVALID_ARGUMENT" and "_source_file" in message


@pytest.mark.parametrize(
    "user, product, why",
    [
        ("carl", "sales.orders", "a row filter applies to you"),
        ("ana", "customers.customer", "a row filter applies to you"),
        ("stella", "supply.supplier", "Parquet files only"),
    ],
)
def test_provenance_is_refused_where_it_would_tell_more_than_the_rows(demo_server, user, product, why):
    client = flight_client(demo_server.uri, user)
    code, message = refusal(lambda: read(client, f"SELECT _source_row FROM {product}", provenance="true"))
    assert code == "INVALID_ARGUMENT", message
    assert f"provenance columns are not available for {product}" in message and why in message, message
    client.close()


# ------------------------------------------------------------------------ split hash


def split_hash(salt: str, *keys) -> float:
    data = salt.encode()
    for key in keys:
        data += b"\x1f" + (b"\x00" if key is None else str(key).encode())
    (value,) = struct.unpack(">Q", hashlib.sha256(data).digest()[:8])
    return (value >> 11) / 2**53


def test_split_hash_is_the_documented_function(stella):
    table = read(
        stella,
        "SELECT c_custkey, c_mktsegment, mesh_split_hash('salt-1', c_custkey) AS one, "
        "mesh_split_hash('salt-1', c_custkey, c_mktsegment) AS two, "
        "mesh_split_hash('salt-2', CAST(NULL AS BIGINT)) AS null_key FROM customers.customer",
    )
    for row in table.slice(0, 300).to_pylist():
        assert row["one"] == split_hash("salt-1", row["c_custkey"])
        assert row["two"] == split_hash("salt-1", row["c_custkey"], row["c_mktsegment"])
        assert row["null_key"] == split_hash("salt-2", None)
    values = table["one"].to_pylist()
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.7 < sum(v < 0.8 for v in values) / len(values) < 0.9  # spread evenly


def test_splits_partition_the_rows(stella):
    sql = "SELECT c_custkey FROM customers.customer WHERE mesh_split_hash('s', c_custkey) >= {lo} AND mesh_split_hash('s', c_custkey) < {hi}"
    parts = [read(stella, sql.format(lo=lo, hi=hi))["c_custkey"].to_pylist() for lo, hi in [(0, 0.8), (0.8, 0.9), (0.9, 1.0)]]
    everyone = read(stella, "SELECT c_custkey FROM customers.customer")["c_custkey"].to_pylist()
    assert sorted(parts[0] + parts[1] + parts[2]) == sorted(everyone)


def test_split_hash_needs_a_text_salt_and_a_key(stella):
    for sql in ["SELECT mesh_split_hash('s') FROM customers.region", "SELECT mesh_split_hash(1, r_regionkey) FROM customers.region"]:
        code, message = refusal(lambda: read(stella, sql))
        assert code == "INVALID_ARGUMENT" and "mesh_split_hash" in message


# -------------------------------------------------------------------------- snapshot


def snapshot(client: flight.FlightClient, sql: str, **headers: str) -> dict:
    action = flight.Action("meshgate.training_snapshot", json.dumps({"sql": sql}).encode())
    results = list(client.do_action(action, options(**headers)))
    assert len(results) == 1
    return json.loads(results[0].body.to_pybytes())


def test_the_snapshot_lists_each_products_files_as_they_are(stella):
    shot = snapshot(stella, "SELECT * FROM sales.lineitem l JOIN sales.orders o ON l.l_orderkey = o.o_orderkey")
    products = {(p["domain"], p["product"]): p for p in shot["products"]}
    assert set(products) == {("sales", "lineitem"), ("sales", "orders")}
    lineitem = products[("sales", "lineitem")]
    on_disk = sorted((DATA / "sales" / "lineitem").glob("*.parquet"))
    assert [f["path"] for f in lineitem["files"]] == [str(p).lstrip("/") for p in on_disk]
    assert [f["size"] for f in lineitem["files"]] == [p.stat().st_size for p in on_disk]
    assert all(f["modified"].endswith("Z") for f in lineitem["files"])
    assert len(products[("sales", "orders")]["files"]) == 7
    assert len(shot["policy_fingerprint"]) == 64 and len(lineitem["files_digest"]) == 64


def test_the_snapshot_keeps_file_sizes_from_whom_rows_are_hidden(demo_server):
    carl = flight_client(demo_server.uri, "carl")
    shot = snapshot(carl, "SELECT o_orderkey FROM sales.orders")
    (orders,) = shot["products"]
    assert orders["files"] is None and len(orders["files_digest"]) == 64
    code, message = refusal(lambda: snapshot(carl, "SELECT * FROM customers.customer"))
    assert code == "NOT_FOUND" and "customers.customer" in message
    carl.close()


def test_the_policy_fingerprint_follows_the_rules_that_apply(demo_server):
    clients = {user: flight_client(demo_server.uri, user) for user in ("ana", "sam", "stella")}
    sql = "SELECT c_custkey, c_phone FROM customers.customer"
    prints = {user: snapshot(client, sql)["policy_fingerprint"] for user, client in clients.items()}
    assert len(set(prints.values())) == 3  # a segment filter, a raw column, all rows: three rule sets
    assert snapshot(clients["ana"], sql)["policy_fingerprint"] == prints["ana"]
    region = {user: snapshot(client, "SELECT * FROM customers.region")["policy_fingerprint"] for user, client in clients.items()}
    # Every region row and column, for an analyst by one rule and a steward by two:
    # governed alike, one fingerprint.
    assert region["ana"] == region["stella"]
    for client in clients.values():
        client.close()


def test_a_bad_snapshot_request_is_a_clear_error(stella):
    for body, says in [(b"not json", "must be JSON"), (b'{"query": "SELECT 1"}', 'no "sql"')]:
        code, message = refusal(lambda: list(stella.do_action(flight.Action("meshgate.training_snapshot", body))))
        assert code == "INVALID_ARGUMENT" and says in message


# --------------------------------------------------------------------------- purpose


@pytest.fixture(scope="module")
def purpose_server(start_server, tmp_path_factory):
    """The demo mesh plus two purpose rules: PII is NULL for training, and training
    sees only customers with a non-negative balance."""
    root = tmp_path_factory.mktemp("purpose") / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate*.py", "__pycache__"))
    mesh_wide = root / "policies" / "mesh-wide.yaml"
    doc = yaml.safe_load(mesh_wide.read_text())
    doc["columns"].append({
        "id": "no-pii-for-training",
        "select": {"tags": ["pii.*"]},
        "action": {"mask": "null"},
        "when": "principal.purpose = 'ml_training'",
    })
    doc["row_filters"].append({
        "id": "training-solvent-only",
        "mode": "restrictive",
        "products": ["customers.customer"],
        "filter": "c_acctbal >= 0 OR principal.purpose <> 'ml_training'",
    })
    write_yaml(mesh_wide, doc)
    server = start_server(root / "mesh.yaml", name="purpose")
    yield server
    server.stop()


def customers(client, **headers) -> pa.Table:
    return read(client, "SELECT c_custkey, c_phone, c_acctbal FROM customers.customer", **headers)


def test_purpose_based_policies_hide_what_they_should(purpose_server):
    sam = flight_client(purpose_server.uri, "sam")  # a PII reader
    analytics = customers(sam, purpose="analytics")
    training = customers(sam, purpose="ml_training")
    unsaid = customers(sam)
    assert analytics.num_rows > training.num_rows > 0
    assert all(phone is not None and "-" in phone for phone in analytics["c_phone"].to_pylist())
    assert set(training["c_phone"].to_pylist()) == {None}
    assert min(training["c_acctbal"].to_pylist()) >= 0
    # No purpose is unknown, and unknown never loosens: both rules apply.
    assert rows(unsaid) == rows(training)
    sam.close()


def test_a_ticket_keeps_the_purpose_it_was_issued_for(purpose_server):
    sam = flight_client(purpose_server.uri, "sam")
    sql = "SELECT c_custkey, c_phone FROM customers.customer"
    info = describe(sam, sql, purpose="ml_training")
    code, message = refusal(lambda: sam.do_get(info.endpoints[0].ticket, options(purpose="analytics")).read_all())
    assert code == "INVALID_ARGUMENT" and "issued for purpose 'ml_training'" in message
    same = sam.do_get(info.endpoints[0].ticket, options(purpose="ml_training")).read_all()
    assert set(same["c_phone"].to_pylist()) == {None}
    # A ticket issued without a purpose takes the one its DoGet states.
    plain = describe(sam, sql)
    said = sam.do_get(plain.endpoints[0].ticket, options(purpose="analytics")).read_all()
    assert None not in said["c_phone"].to_pylist()
    sam.close()


def test_purpose_is_recorded_and_cannot_be_declared_as_an_attribute(purpose_server, start_server, tmp_path):
    stella = flight_client(purpose_server.uri, "stella")
    read(stella, "SELECT count(*) FROM customers.nation /* purpose-probe */", purpose="ml_training")
    log = read(stella, "SELECT purpose FROM mesh_catalog.query_log WHERE sql LIKE '%purpose-probe%' AND purpose IS NOT NULL")
    assert "ml_training" in log["purpose"].to_pylist()
    stella.close()
    root = tmp_path / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate*.py", "__pycache__"))
    doc = yaml.safe_load((root / "mesh.yaml").read_text())
    doc["governance"]["attributes"]["purpose"] = "utf8"
    config = write_yaml(root / "mesh.yaml", doc)
    result = mgtest.run_meshgate(mgtest.meshgate_bin_path(), "check", "--config", str(config))
    assert result.returncode != 0
    assert "governance.attributes.purpose" in result.stdout + result.stderr


# ---------------------------------------------------------------- lineage of a training run


def test_a_shard_read_records_its_training_set_and_purpose(start_server, tmp_path):
    events_file = tmp_path / "lineage.jsonl"
    server = start_server(mgtest.DEMO_CONFIG, name="training-lineage", args=[
        "--audit-dir", str(tmp_path / "audit"), "--lineage-file", str(events_file)])
    client = flight_client(server.uri, "stella")
    info = describe(client, "SELECT r_regionkey, r_name FROM customers.region", shards="2", purpose="ml_training")
    tag = "9c1e0d/train/1-of-2"
    client.do_get(info.endpoints[1].ticket, options(training_set=tag)).read_all()
    client.close()
    server.stop()
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    tagged = [e for e in events if "meshgate_training_set" in e["run"].get("facets", {})]
    assert {e["eventType"] for e in tagged} == {"START", "COMPLETE"}
    for event in tagged:
        facets = event["run"]["facets"]
        assert facets["meshgate_training_set"]["trainingSet"] == tag
        assert facets["meshgate_purpose"]["purpose"] == "ml_training"
        assert facets["meshgate_training_set"]["_schemaURL"].endswith("docs/ml.md#training-set-run-facet")
    assert [i["name"] for i in tagged[-1]["inputs"]] == ["customers.region"]
    records = [json.loads(line) for path in (tmp_path / "audit").glob("*") for line in path.read_text().splitlines()]
    assert [r["training_set"] for r in records if "training_set" in r] == [tag]
