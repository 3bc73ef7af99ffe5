"""The meshgate Python package (python/) as an ML engineer uses it, through the real
server and real torch (CPU): training sets, manifests, shards, splits, provenance,
purpose, the PyTorch loader across ranks and DataLoader workers, resume, and errors.

The first tests read "hand-made" shards: one real ticket per `l_orderkey % 12 = i`
query, ordered, so the loader's own guarantees (assignment, shuffle, resume) are checked
on data whose shards are known. The later ones plan training sets with the server's
shards, snapshot and split hash (docs/ml.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

import meshgate
from meshgate.manifest import Manifest, Shard
from meshgate.torch_dataset import POSITION_KEY, TorchDataset
from mgtest import DATA, TESTDATA, duckdb_expected, wait_for

STEWARD = ("stella", "stella-demo")
HAND_SHARDS = 12
HAND_COLUMNS = "l_orderkey, l_linenumber, l_quantity, l_discount, l_shipdate, l_returnflag"


@pytest.fixture(scope="module")
def client(demo_server):
    c = meshgate.connect(demo_server.uri, username=STEWARD[0], password=STEWARD[1])
    yield c
    c.close()


@pytest.fixture(scope="module")
def hand_shards(client, demo_server):
    """12 shards of sales.lineitem (l_orderkey % 12 = i, each in key order), their schema."""
    shards, schema = [], None
    for i in range(HAND_SHARDS):
        sql = (f"SELECT {HAND_COLUMNS} FROM sales.lineitem WHERE l_orderkey % {HAND_SHARDS} = {i} "
               "ORDER BY l_orderkey, l_linenumber")
        info = client.flight_info(sql)
        assert len(info.endpoints) == 1
        shards.append(Shard(demo_server.uri, "all", i, HAND_SHARDS, info.endpoints[0].ticket.ticket))
        schema = info.schema
    return shards, schema


@pytest.fixture(scope="module")
def all_lines(client):
    """Every (l_orderkey, l_linenumber) of sales.lineitem."""
    t = client.sql("SELECT l_orderkey, l_linenumber FROM sales.lineitem")
    keys = list(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))
    assert len(keys) == len(set(keys)) > 50_000
    return keys


def hand_dataset(client, hand_shards, **kwargs) -> TorchDataset:
    shards, schema = hand_shards
    kwargs.setdefault("batch_size", 500)
    return TorchDataset(client, shards, schema=schema, manifest_id="hand-made", **kwargs)


def keys_of(batch) -> list[tuple[int, int]]:
    if isinstance(batch, dict):
        return list(zip(batch["l_orderkey"].tolist(), batch["l_linenumber"].tolist()))
    return list(zip(batch.column("l_orderkey").to_pylist(), batch.column("l_linenumber").to_pylist()))


def epoch_keys(dataset, **loader_kwargs) -> list[tuple[int, int]]:
    out = []
    for batch in dataset.loader(**loader_kwargs):
        out += keys_of(batch)
    return out


# --------------------------------------------------------------------------------------
# the loader on hand-made shards
# --------------------------------------------------------------------------------------


def test_two_ranks_of_three_workers_read_disjoint_and_complete_data(client, hand_shards, all_lines):
    by_reader: dict[int, list[tuple[int, int]]] = {}
    for rank in (0, 1):
        dataset = hand_dataset(client, hand_shards, rank=rank, world_size=2, positions=True)
        for batch in dataset.loader(num_workers=3):
            reader, readers, rows, epoch = batch.pop(POSITION_KEY).tolist()
            assert (readers, epoch) == (6, 0)
            assert reader // 3 == rank, f"rank {rank} got a batch of reader {reader}"
            by_reader.setdefault(reader, []).extend(keys_of(batch))
            assert rows == len(by_reader[reader])
    assert sorted(by_reader) == list(range(6))
    everything = [k for keys in by_reader.values() for k in keys]
    assert len(everything) == len(set(everything)), "a row was read twice"
    assert sorted(everything) == sorted(all_lines), "rows are missing"
    # reader r (rank r // 3, worker r % 3) reads shards r and r + 6: l_orderkey % 12 in {r, r + 6}
    for reader, keys in by_reader.items():
        assert {k % HAND_SHARDS for k, _ in keys} == {reader, reader + 6}


def test_rank_and_world_size_come_from_the_environment(client, hand_shards, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    dataset = hand_dataset(client, hand_shards, batch_size=2000)
    keys = epoch_keys(dataset, num_workers=2)  # readers 2 and 3 of 8: shards 2, 10 and 3, 11
    assert {k % HAND_SHARDS for k, _ in keys} == {2, 3, 10, 11}
    monkeypatch.setenv("RANK", "3")
    assert {k % HAND_SHARDS for k, _ in epoch_keys(dataset)} == {3, 7, 11}  # reader 3 of 4, no workers


def test_more_readers_than_shards_warns_and_the_extra_readers_get_nothing(client, hand_shards):
    dataset = hand_dataset(client, hand_shards, rank=12, world_size=13)
    with pytest.warns(UserWarning, match=r"13 readers .* for 12 shards: reader 12 gets no shard"):
        assert list(dataset) == []
    busy = hand_dataset(client, hand_shards, rank=11, world_size=13)
    assert {k % HAND_SHARDS for b in busy for k, _ in keys_of(b)} == {11}


def test_batches_are_tensors_without_copies_where_arrow_allows(client, hand_shards):
    dataset = hand_dataset(client, hand_shards, batch_size=300)
    batch = next(iter(dataset))
    assert batch["l_orderkey"].dtype == torch.int64 and batch["l_orderkey"].shape == (300,)
    assert batch["l_linenumber"].dtype == torch.int32
    assert batch["l_quantity"].dtype == torch.float64  # decimal(15, 2)
    assert batch["l_shipdate"].dtype == torch.int32  # days since 1970-01-01
    assert isinstance(batch["l_returnflag"], list) and set(batch["l_returnflag"]) <= {"R", "A", "N"}
    first = hand_shards[0][0].read(client).read_all().slice(0, 300)
    assert batch["l_orderkey"].tolist() == first.column("l_orderkey").to_pylist()
    assert batch["l_shipdate"].tolist() == [(d - first.column("l_shipdate")[0].as_py()).days + batch["l_shipdate"][0].item()
                                            for d in first.column("l_shipdate").to_pylist()]
    # the tensor is a view of the Arrow buffer the batch arrived in
    arrow = next(iter(hand_dataset(client, hand_shards, batch_size=300, output="arrow")))
    column = arrow.column("l_orderkey")
    tensor = meshgate.batching.tensor_columns(arrow)["l_orderkey"]
    assert torch.from_numpy(tensor).data_ptr() == column.buffers()[1].address + column.offset * 8


def test_nulls_become_nan_in_a_float_tensor(client, demo_server):
    info = client.flight_info("SELECT l_orderkey, CASE WHEN l_linenumber = 1 THEN NULL ELSE l_linenumber END AS n "
                              "FROM sales.lineitem WHERE l_orderkey < 100 ORDER BY l_orderkey, l_linenumber")
    shard = Shard(demo_server.uri, "all", 0, 1, info.endpoints[0].ticket.ticket)
    dataset = TorchDataset(client, [shard], schema=info.schema, manifest_id="nulls", batch_size=10_000)
    batch = next(iter(dataset))
    assert batch["n"].dtype == torch.float64
    expected = client.sql("SELECT CASE WHEN l_linenumber = 1 THEN NULL ELSE l_linenumber END AS n FROM sales.lineitem "
                          "WHERE l_orderkey < 100 ORDER BY l_orderkey, l_linenumber").column(0).to_pylist()
    got = [None if np.isnan(v) else int(v) for v in batch["n"].tolist()]
    assert got == expected and None in got


def test_shuffle_is_the_same_for_a_seed_and_epoch_and_differs_across_epochs(client, hand_shards, all_lines):
    def run(seed, epoch):
        dataset = hand_dataset(client, hand_shards, shuffle_buffer=4000, seed=seed)
        dataset.set_epoch(epoch)
        return epoch_keys(dataset)

    first = run(7, 0)
    assert sorted(first) == sorted(all_lines)
    assert run(7, 0) == first
    assert run(7, 1) != first and sorted(run(7, 1)) == sorted(all_lines)
    assert run(8, 0) != first
    unshuffled = epoch_keys(hand_dataset(client, hand_shards))
    assert first != unshuffled
    # rows really move: few keep their neighbour from the unshuffled order
    neighbour = {unshuffled[i]: unshuffled[i + 1] for i in range(len(unshuffled) - 1)}
    kept = sum(1 for a, b in zip(first, first[1:]) if neighbour.get(a) == b)
    assert kept < len(first) // 100, kept


def test_resume_mid_epoch_gives_exactly_the_rest(client, hand_shards):
    def dataset():
        d = hand_dataset(client, hand_shards, shuffle_buffer=3000, seed=3, batch_size=256)
        d.set_epoch(2)
        return d

    full = [keys_of(b) for b in dataset()]
    interrupted = dataset()
    seen = []
    for i, batch in enumerate(interrupted):
        seen.append(keys_of(batch))
        if i == 40:
            break
    state = json.loads(json.dumps(interrupted.state_dict()))  # as saved in a checkpoint
    assert state["epoch"] == 2 and state["rows"] == {"0": 41 * 256}
    resumed = dataset()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a resumed training loop sets the epoch it is in: the state stays
    rest = [keys_of(b) for b in resumed]
    assert seen + rest == full
    other = hand_dataset(client, hand_shards, shuffle_buffer=3000, seed=4, batch_size=256)
    with pytest.raises(ValueError, match="another loader: seed 3"):
        other.load_state_dict(state)


def test_resume_with_stateful_dataloader_workers(client, hand_shards, all_lines):
    def loader():
        d = hand_dataset(client, hand_shards, shuffle_buffer=2000, seed=11, batch_size=400)
        d.set_epoch(1)
        return d.loader(num_workers=2, stateful=True)

    full = [keys_of(b) for b in loader()]
    first = loader()
    seen = []
    for i, batch in enumerate(first):
        seen.append(keys_of(batch))
        if i == 30:
            break
    state = first.state_dict()
    del first
    second = loader()
    second.load_state_dict(state)
    rest = [keys_of(b) for b in second]
    flat = [k for b in seen + rest for k in b]
    assert len(flat) == len(set(flat)), "a row was repeated"
    assert sorted(flat) == sorted(all_lines), "a row was skipped"
    assert seen + rest == full


def test_resume_with_a_plain_dataloader_and_recorded_positions(client, hand_shards, all_lines):
    def dataset():
        return hand_dataset(client, hand_shards, shuffle_buffer=1000, seed=5, batch_size=300, positions=True)

    interrupted = dataset()
    seen = []
    for i, batch in enumerate(interrupted.loader(num_workers=2)):
        interrupted.record(batch)
        assert POSITION_KEY not in batch
        seen += keys_of(batch)
        if i == 25:
            break  # the workers had prefetched more than this: they do not count
    state = interrupted.state_dict()
    assert sum(state["rows"].values()) == len(seen) and state["readers"] == 2
    resumed = dataset()
    resumed.load_state_dict(state)
    rest = []
    for batch in resumed.loader(num_workers=2):
        rest += keys_of(resumed.record(batch))
    assert len(seen + rest) == len(set(seen + rest)), "a row was repeated"
    assert sorted(seen + rest) == sorted(all_lines), "a row was skipped"
    with pytest.raises(ValueError, match="2 readers .* this run has 3"):
        again = dataset()
        again.load_state_dict(state)
        next(iter(again.loader(num_workers=3)))


def test_arrow_batches_carry_their_position_in_metadata(client, hand_shards):
    dataset = hand_dataset(client, hand_shards, output="arrow", positions=True, batch_size=1000)
    loaded = 0
    for i, batch in enumerate(dataset.loader(num_workers=2)):
        assert isinstance(batch, pa.RecordBatch)
        loaded += dataset.record(batch).num_rows
        if i == 6:
            break
    state = dataset.state_dict()
    assert sum(state["rows"].values()) == loaded == 7000 and state["readers"] == 2
    with pytest.raises(ValueError, match="positions=True"):
        hand_dataset(client, hand_shards).record(next(iter(hand_dataset(client, hand_shards, output="arrow"))))

def test_a_forked_worker_is_refused_with_a_clear_error(client, hand_shards):
    dataset = hand_dataset(client, hand_shards)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1, multiprocessing_context="fork")
    with pytest.raises(meshgate.MeshgateError, match="forked .* multiprocessing_context='forkserver'") as err:
        next(iter(loader))
    assert err.value.code == "FAILED_PRECONDITION"


def test_manifest_tampering_is_detected(tmp_path, hand_shards):
    import base64

    shards, schema = hand_shards
    body = {"format": Manifest.FORMAT, "server": shards[0].uri, "principal": "stella", "purpose": None,
            "sql": {"all": "SELECT 1"}, "seed": 0, "shards": len(shards),
            "tickets": {"all": [base64.b64encode(s.ticket).decode() for s in shards]},
            "schema": meshgate.manifest.schema_record(schema)}
    manifest = Manifest.seal(body)
    path = manifest.save(tmp_path / "manifest.json")
    loaded = Manifest.load(path)
    assert loaded.id == manifest.id and loaded.schema.equals(schema)
    assert [s.ticket for s in loaded.shards()] == [s.ticket for s in shards]
    for edit in (lambda d: d["sql"].update(all="SELECT 2"), lambda d: d["tickets"]["all"].reverse(),
                 lambda d: d.update(principal="ana"), lambda d: d.update(id="0" * 64)):
        doc = json.loads(path.read_text())
        edit(doc)
        (tmp_path / "edited.json").write_text(json.dumps(doc))
        with pytest.raises(meshgate.ManifestTampered, match="modified after it was planned") as err:
            Manifest.load(tmp_path / "edited.json")
        assert err.value.code == "INVALID_ARGUMENT"


def test_reading_ahead_keeps_the_order_and_raises_a_shards_error_at_that_shard(client, hand_shards):
    """Shards streaming ahead (on threads) change nothing a reader sees: the same batches in
    the same order for read_ahead 0, 1 and 5; a forged ticket in the 4th shard fails only
    when the reader reaches it, after every row of the first three; a reader that stops
    early leaves no stream or thread behind."""
    import threading

    orders = [epoch_keys(hand_dataset(client, hand_shards, read_ahead=ahead)) for ahead in (0, 1, 5)]
    assert orders[0] == orders[1] == orders[2]
    shards, schema = hand_shards
    bad = [*shards[:3], dataclasses.replace(shards[3], ticket=b"forged"), *shards[4:]]
    before_bad = [k for s in shards[:3] for k in keys_of(s.read(client).read_all())]
    seen = []
    dataset = TorchDataset(client, bad, schema=schema, manifest_id="hand-made", batch_size=500, read_ahead=3)
    with pytest.raises(meshgate.MeshgateError) as err:
        for batch in dataset:
            seen += keys_of(batch)
    assert err.value.code == "INVALID_ARGUMENT"
    assert seen == before_bad[: len(seen)] and len(before_bad) - len(seen) < 500, (
        "the rows before the bad shard were not all delivered first")
    stream = iter(hand_dataset(client, hand_shards, read_ahead=4))
    next(stream)
    stream.close()
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == "meshgate-readahead"],
             "the read-ahead threads to end with their reader", timeout=10)
    with pytest.raises(ValueError, match="read_ahead"):
        hand_dataset(client, hand_shards, read_ahead=-1)


def test_server_errors_carry_their_grpc_code_and_message(client, demo_server, hand_shards):
    with pytest.raises(meshgate.MeshgateError) as err:
        client.sql("SELECT * FROM sales.no_such_product")
    assert err.value.code == "NOT_FOUND" and err.value.message == "table sales.no_such_product not found"
    with pytest.raises(meshgate.MeshgateError) as err:
        client.sql("SELEC 1")
    assert err.value.code == "INVALID_ARGUMENT" and "SELEC" in err.value.message
    with pytest.raises(meshgate.MeshgateError) as err:
        meshgate.connect(demo_server.uri, username="ana", password="wrong")
    assert (err.value.code, err.value.message) == ("UNAUTHENTICATED", "invalid credentials")
    ana = meshgate.connect(demo_server.uri, username="ana", password="ana-demo")
    with pytest.raises(meshgate.MeshgateError) as err:
        hand_shards[0][0].read(ana).read_all()  # stella's ticket
    assert err.value.code == "UNAUTHENTICATED" and "another principal" in err.value.message
    with pytest.raises(meshgate.MeshgateError) as err:
        ana.read_ticket(b"not a ticket").read_all()
    assert err.value.code == "INVALID_ARGUMENT"
    ana.close()


def test_a_pickled_client_carries_the_token_not_the_password(client):
    import pickle

    raw = pickle.dumps(client)
    assert b"stella-demo" not in raw
    again = pickle.loads(raw)
    assert again.principal() == "stella"


# --------------------------------------------------------------------------------------
# training sets planned with the server's shards, snapshot, splits and provenance
# --------------------------------------------------------------------------------------

SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def split_hash(salt: str, *keys) -> float:
    """mesh_split_hash as docs/ml.md defines it (SHA-256, the first 53 bits as a fraction),
    written out here independently of the package's meshgate.split_hash."""
    data = salt.encode()
    for key in keys:
        data += b"\x1f" + (b"\x00" if key is None else str(key).encode())
    return (int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 11) / 2**53


def lines_of(table: pa.Table) -> list[tuple[int, int]]:
    return list(zip(table.column("l_orderkey").to_pylist(), table.column("l_linenumber").to_pylist()))


def descriptor_version(product_file: Path) -> str:
    import yaml

    return str(yaml.safe_load(product_file.read_text())["version"])


@pytest.fixture(scope="module")
def planned(client):
    """sales.lineitem for training: three splits by order, 8 shards each, with provenance."""
    return client.training_set(
        products="sales.lineitem", columns=["l_orderkey", "l_linenumber", "l_quantity", "l_comment"],
        purpose="ml_training", splits=SPLITS, split_key="l_orderkey", split_salt="churn-v1",
        shards=8, provenance=True, seed=42,
    ).plan()


@pytest.fixture(scope="module")
def split_tables(planned):
    return {name: planned.to_arrow(name) for name in SPLITS}


def test_a_planned_training_set_reads_every_row_once_in_its_split(planned, split_tables, all_lines):
    assert planned["format"] == Manifest.FORMAT and planned.principal == "stella"
    assert planned.purpose == "ml_training" and planned.seed == 42 and planned.shard_count == 8
    assert planned.split_names == list(SPLITS)
    assert all(len(planned["tickets"][name]) == 8 for name in SPLITS)
    (lineitem,) = planned.snapshot["products"]
    assert (lineitem["domain"], lineitem["product"]) == ("sales", "lineitem")
    on_disk = sorted((DATA / "sales" / "lineitem").glob("*.parquet"))
    assert [f["size"] for f in lineitem["files"]] == [p.stat().st_size for p in on_disk]
    assert planned.schema.names == ["l_orderkey", "l_linenumber", "l_quantity", "l_comment", "_source_file",
                                    "_source_row", "_source_domain", "_source_product", "_source_version"]
    everything = []
    for (name, table), (lo, hi) in zip(split_tables.items(), [(0, 0.8), (0.8, 0.9), (0.9, 1.0)]):
        assert all(lo <= split_hash("churn-v1", k) < hi for k in set(table.column("l_orderkey").to_pylist())), name
        shards = [s.read(planned.client).read_all() for s in planned.shards(name)]
        keys = [k for t in shards for k in lines_of(t)]
        assert sorted(keys) == sorted(lines_of(table)) and len(keys) == len(set(keys))
        assert sum(1 for t in shards if t.num_rows) >= 2  # the split really is spread over shards
        everything += keys
    assert sorted(everything) == sorted(all_lines)
    assert 0.75 < split_tables["train"].num_rows / len(all_lines) < 0.85
    # the package tells a key's split without the server, as the server decided it
    for name, table in split_tables.items():
        for key in table.column("l_orderkey").to_pylist()[:300]:
            assert planned.split_of(key) == name
    hashed = planned.client.sql("SELECT l_orderkey, l_shipdate, l_returnflag, mesh_split_hash('s', l_orderkey, "
                                "l_shipdate, l_returnflag, CAST(NULL AS BIGINT)) AS h FROM sales.lineitem LIMIT 200")
    for row in hashed.to_pylist():
        assert meshgate.split_hash("s", row["l_orderkey"], row["l_shipdate"], row["l_returnflag"], None) == row["h"]
    with pytest.raises(TypeError, match="ask the server"):
        meshgate.split_hash("s", 1.5)


def test_provenance_columns_point_at_the_rows_in_their_files(split_tables):
    table = split_tables["validation"]
    version = descriptor_version(TESTDATA / "domains" / "sales" / "products" / "lineitem.yaml")
    assert set(zip(table.column("_source_domain").to_pylist(), table.column("_source_product").to_pylist(),
                   table.column("_source_version").to_pylist())) == {("sales", "lineitem", version)}
    files: dict[str, pa.Table] = {}
    for row in table.to_pylist():
        path = "/" + row["_source_file"]
        if path not in files:
            files[path] = pq.read_table(path, columns=["l_orderkey", "l_linenumber", "l_comment"])
        assert files[path].slice(row["_source_row"], 1).to_pylist()[0] == {
            k: row[k] for k in ("l_orderkey", "l_linenumber", "l_comment")}
    assert sorted(files) == sorted(str(p) for p in (DATA / "sales" / "lineitem").glob("*.parquet"))


def test_the_torch_loader_divides_a_manifests_shards_over_ranks_and_workers(planned, split_tables):
    expected = sorted(lines_of(split_tables["train"]))
    seen: list[tuple[int, int]] = []
    for rank in (0, 1):
        dataset = planned.to_torch("train", batch_size=700, shuffle_buffer=2000, rank=rank, world_size=2,
                                   columns=["l_orderkey", "l_linenumber", "l_quantity"])
        dataset.set_epoch(3)
        for batch in dataset.loader(num_workers=3):
            assert set(batch) == {"l_orderkey", "l_linenumber", "l_quantity"}
            seen += keys_of(batch)
    assert len(seen) == len(set(seen)) and sorted(seen) == expected
    # Arrow batches, and an exact resume on the server's shards
    def arrow_dataset():
        d = planned.to_torch("train", batch_size=512, shuffle_buffer=4096, output="arrow")
        d.set_epoch(1)
        return d

    full = [keys_of(b) for b in arrow_dataset()]
    assert all(isinstance(b, pa.RecordBatch) for b in arrow_dataset())
    first = arrow_dataset()
    part = [keys_of(b) for _, b in zip(range(30), first)]
    resumed = arrow_dataset()
    resumed.load_state_dict(first.state_dict())
    assert part + [keys_of(b) for b in resumed] == full


def test_pandas_polars_and_hugging_face_read_the_same_rows(planned, split_tables):
    from datasets.distributed import split_dataset_by_node

    expected = sorted(lines_of(split_tables["test"]))
    frame = planned.to_pandas("test")
    assert sorted(zip(frame["l_orderkey"], frame["l_linenumber"])) == expected
    polars_frame = planned.to_polars("test")
    assert sorted(zip(polars_frame["l_orderkey"].to_list(), polars_frame["l_linenumber"].to_list())) == expected
    hf = planned.to_hf("test")
    assert hf.num_shards == 8
    assert sorted((r["l_orderkey"], r["l_linenumber"]) for r in hf) == expected
    halves = [split_dataset_by_node(hf, rank=r, world_size=2) for r in (0, 1)]
    assert [h.num_shards for h in halves] == [4, 4]
    rows = [(r["l_orderkey"], r["l_linenumber"]) for h in halves for r in h]
    assert sorted(rows) == expected
    # HF's own DataLoader workers each take whole shards
    loader = torch.utils.data.DataLoader(hf, batch_size=None, num_workers=2, multiprocessing_context="forkserver")
    assert sorted((int(r["l_orderkey"]), int(r["l_linenumber"])) for r in loader) == expected


def test_from_manifest_reads_the_same_rows_again(planned, split_tables, client, tmp_path):
    path = planned.save(tmp_path / "manifest.json")
    again = meshgate.from_manifest(client, path)
    assert again["replanned_from"] == planned.id and again.id != planned.id
    assert again.sql == planned.sql and again.schema.equals(planned.schema)
    for name in SPLITS:
        assert lines_of(again.to_arrow(name)) == lines_of(split_tables[name])  # the same rows in the same order
    ana = meshgate.connect(planned.client.uri, username="ana", password="ana-demo")
    with pytest.raises(meshgate.SnapshotChanged) as other:
        meshgate.from_manifest(ana, path)  # planned by stella: what ana may read is another matter
    assert "planned by principal 'stella', now read by 'ana'" in other.value.changes
    ana.close()
    doc = json.loads(path.read_text())
    doc["sql"]["train"] = doc["sql"]["train"].replace("0.8", "0.9")
    path.write_text(json.dumps(doc))
    with pytest.raises(meshgate.ManifestTampered):
        meshgate.from_manifest(client, path)


@pytest.fixture
def mesh_copy(tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate*.py", "__pycache__"))
    return root


def copy_server(start_server, root, name):
    # listings are not reused, so a file added to a product is seen by the next call
    return start_server(root / "mesh.yaml", name=name, args=("--no-watch", "--listing-ttl-secs", "0"))


def test_a_file_added_to_a_product_fails_from_manifest_naming_it_and_keeps_splits(start_server, mesh_copy):
    server = copy_server(start_server, mesh_copy, "ml-files")
    client = meshgate.connect(server.uri, username="stella", password="stella-demo")

    def training_set():
        return client.training_set(products="sales.lineitem", columns=["l_orderkey", "l_linenumber"],
                                   splits={"train": 0.7, "test": 0.3}, split_key="l_orderkey", shards=4)

    before = training_set().plan()
    split_of = {k: name for name in ("train", "test") for k in before.to_arrow(name).column("l_orderkey").to_pylist()}
    folder = mesh_copy / "data" / "sales" / "lineitem"
    extra = pq.read_table(folder / "part-1.parquet")
    extra = extra.set_column(0, "l_orderkey", pa.compute.add(extra.column("l_orderkey"), 10_000_000))
    pq.write_table(extra.slice(0, 5000), folder / "part-2.parquet")
    with pytest.raises(meshgate.SnapshotChanged) as changed:
        meshgate.from_manifest(client, before)
    assert changed.value.changes == [f"sales.lineitem: file {str(folder / 'part-2.parquet').lstrip('/')} added"]
    assert changed.value.code == "FAILED_PRECONDITION"
    with pytest.raises(meshgate.MeshgateError) as stale:
        before.shards("train")[0].read(client).read_all()  # the server refuses the old shards too
    assert stale.value.code == "FAILED_PRECONDITION" and "changed since the shards were planned" in stale.value.message
    after = training_set().plan()
    moved = [(k, name) for name in ("train", "test") for k in after.to_arrow(name).column("l_orderkey").to_pylist()
             if k in split_of and split_of[k] != name]
    assert moved == [], "rows changed split when a file was added"
    new_keys = {k for name in ("train", "test") for k in after.to_arrow(name).column("l_orderkey").to_pylist()}
    assert len(new_keys - set(split_of)) > 500
    client.close()
    server.stop()


def test_a_policy_change_fails_from_manifest(start_server, mesh_copy):
    import yaml

    server = copy_server(start_server, mesh_copy, "ml-policies")
    client = meshgate.connect(server.uri, username="sam", password="sam-demo")
    manifest = client.training_set(products="customers.customer", columns=["c_custkey", "c_phone"],
                                   purpose="ml_training", shards=2).plan()
    assert meshgate.from_manifest(client, manifest).to_arrow().num_rows == manifest.to_arrow().num_rows
    policies = mesh_copy / "policies" / "mesh-wide.yaml"
    doc = yaml.safe_load(policies.read_text())
    doc["columns"].append({"id": "no-pii-for-training", "select": {"tags": ["pii.*"]}, "action": {"mask": "null"},
                           "when": "principal.purpose = 'ml_training'"})
    policies.write_text(yaml.safe_dump(doc, sort_keys=False))
    mark = len(server.stderr_text())
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in server.stderr_text()[mark:], "the reload")
    with pytest.raises(meshgate.SnapshotChanged) as changed:
        meshgate.from_manifest(client, manifest)
    assert changed.value.changes == ["policies that govern this data changed"]
    client.close()
    server.stop()


@pytest.fixture(scope="module")
def purpose_server(start_server, tmp_path_factory):
    """The demo mesh plus purpose rules: PII is NULL for training, and training sees
    only customers with a non-negative balance."""
    import yaml

    root = tmp_path_factory.mktemp("ml-purpose") / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate*.py", "__pycache__"))
    policies = root / "policies" / "mesh-wide.yaml"
    doc = yaml.safe_load(policies.read_text())
    doc["columns"].append({"id": "no-pii-for-training", "select": {"tags": ["pii.*"]}, "action": {"mask": "null"},
                           "when": "principal.purpose = 'ml_training'"})
    doc["row_filters"].append({"id": "training-solvent-only", "mode": "restrictive", "products": ["customers.customer"],
                               "filter": "c_acctbal >= 0 OR principal.purpose <> 'ml_training'"})
    policies.write_text(yaml.safe_dump(doc, sort_keys=False))
    server = start_server(root / "mesh.yaml", name="ml-purpose")
    yield server
    server.stop()


def test_purpose_based_policies_hide_what_they_should(purpose_server):
    sam = meshgate.connect(purpose_server.uri, username="sam", password="sam-demo")  # a PII reader

    def customers(purpose):
        return sam.training_set(products="customers.customer", columns=["c_custkey", "c_phone", "c_acctbal"],
                                purpose=purpose, shards=3).plan()

    training, analytics = customers("ml_training"), customers("analytics")
    train_rows, analytics_rows = training.to_arrow(), analytics.to_arrow()
    assert analytics_rows.num_rows > train_rows.num_rows > 0
    assert set(train_rows.column("c_phone").to_pylist()) == {None}
    assert min(train_rows.column("c_acctbal").to_pylist()) >= 0
    assert None not in analytics_rows.column("c_phone").to_pylist()
    assert training.snapshot["policy_fingerprint"] != analytics.snapshot["policy_fingerprint"]
    other_purpose = dataclasses.replace(training.shards()[0], purpose="analytics")
    with pytest.raises(meshgate.MeshgateError) as refused:
        other_purpose.read(sam).read_all()
    assert refused.value.code == "INVALID_ARGUMENT" and "issued for purpose 'ml_training'" in refused.value.message
    sam.close()


def test_the_servers_refusals_reach_the_caller_with_their_codes(demo_server, client):
    with pytest.raises(meshgate.MeshgateError) as err:
        client.training_set("SELECT l_orderkey FROM sales.lineitem ORDER BY l_orderkey").plan()
    assert err.value.code == "INVALID_ARGUMENT"
    assert err.value.message.startswith("this query cannot be read as shards") and "ORDER BY" in err.value.message
    carl = meshgate.connect(demo_server.uri, username="carl", password="carl-demo")
    with pytest.raises(meshgate.MeshgateError) as err:
        carl.training_set(products="customers.customer").plan()  # forbidden to him: absent
    assert err.value.code == "NOT_FOUND" and "customers.customer" in err.value.message
    ana = meshgate.connect(demo_server.uri, username="ana", password="ana-demo")
    with pytest.raises(meshgate.MeshgateError) as err:
        ana.training_set(products="customers.customer", provenance=True).plan()
    assert err.value.code == "INVALID_ARGUMENT" and "a row filter applies to you" in err.value.message
    for user in (carl, ana):
        user.close()


PIT_ENTITIES = "SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate FROM sales.orders"


def test_a_point_in_time_training_set(client):
    manifest = client.training_set(
        entities=PIT_ENTITIES, event_time="o_orderdate",
        features=["customers.customer.c_mktsegment", "customers.customer.c_nationkey"],
        splits={"train": 0.5, "test": 0.5}, split_key="o_orderkey", shards=4,
    ).plan()
    assert "point_in_time(" in manifest.sql["train"]
    got = pa.concat_tables([manifest.to_arrow("train"), manifest.to_arrow("test")])
    assert got.column_names == ["o_orderkey", "c_custkey", "o_orderdate", "c_mktsegment", "c_nationkey"]
    expected = duckdb_expected(
        "SELECT o.o_orderkey, o.o_custkey AS c_custkey, o.o_orderdate, c.c_mktsegment, c.c_nationkey "
        "FROM sales.orders o LEFT JOIN customers.customer c ON o.o_custkey = c.c_custkey")
    import mgtest

    mgtest.assert_same_rows(got, expected)
    products = {f"{p['domain']}.{p['product']}" for p in manifest.snapshot["products"]}
    assert products == {"sales.orders", "customers.customer"}


def test_bad_feature_requests_are_clear_errors(demo_server, client):
    def plan(**kwargs):
        with pytest.raises(meshgate.MeshgateError) as err:
            client.training_set(entities=PIT_ENTITIES, event_time="o_orderdate", **kwargs).plan()
        return err.value

    bad_ttl = plan(features=["customers.customer.c_mktsegment"], ttl="forever")
    assert bad_ttl.code == "INVALID_ARGUMENT" and "forever" in bad_ttl.message
    unknown = plan(features=["customers.customer.no_such_column"])
    assert unknown.code == "INVALID_ARGUMENT" and "no_such_column" in unknown.message
    keyless = plan(features=["supply.part.p_name"])  # supply.part declares no entity key
    assert keyless.code == "INVALID_ARGUMENT" and "supply.part" in keyless.message
    carl = meshgate.connect(demo_server.uri, username="carl", password="carl-demo")
    with pytest.raises(meshgate.MeshgateError) as err:
        carl.training_set(entities=PIT_ENTITIES, event_time="o_orderdate",
                          features=["customers.customer.c_mktsegment"]).plan()
    assert err.value.code == "NOT_FOUND" and "customers.customer" in err.value.message
    carl.close()
    with pytest.raises(ValueError, match="'domain.product.column'"):
        client.training_set(entities=PIT_ENTITIES, event_time="o_orderdate", features=["c_mktsegment"])
    with pytest.raises(ValueError, match="exactly one of"):
        client.training_set("SELECT 1", products="sales.lineitem")
    with pytest.raises(ValueError, match="add up to"):
        client.training_set(products="sales.lineitem", splits={"a": 0.5, "b": 0.4}, split_key="l_orderkey")


def test_connect_over_tls_with_a_client_certificate_or_a_token(start_server, tmp_path):
    from mgtest import demo_mesh_doc, write_yaml
    from tlscerts import CertificateAuthority

    ca = CertificateAuthority("meshgate ml CA")
    ca_file = ca.write(tmp_path / "ca.crt")
    server_cert = ca.server(tmp_path / "server")
    sam_cert = ca.client(tmp_path / "clients", "sam")
    doc = demo_mesh_doc()
    doc["auth"]["client_certificates"] = {"name_from": "subject_cn", "users": True}
    config = write_yaml(tmp_path / "mesh.yaml", doc)
    server = start_server(config, name="ml-tls", args=["--tls-cert", str(server_cert.cert), "--tls-key",
                                                         str(server_cert.key), "--tls-client-ca", str(ca_file)])
    assert server.uri.startswith("grpc+tls://")
    by_certificate = meshgate.connect(server.uri, tls_root_certs=ca_file, cert_chain=sam_cert.cert,
                                      private_key=sam_cert.key)
    assert by_certificate.principal() == "sam"
    manifest = by_certificate.training_set(products="customers.nation", shards=2).plan()
    own_region = by_certificate.sql("SELECT count(*) AS n FROM customers.nation").column("n")[0].as_py()
    assert manifest.principal == "sam" and manifest.to_arrow().num_rows == own_region == 5  # his region's nations
    by_password = meshgate.connect(server.uri, username="ana", password="ana-demo", tls_root_certs=ca.pem,
                                   cert_chain=sam_cert.cert_pem, private_key=sam_cert.key_pem)
    assert by_password.principal() == "ana"  # credentials decide over the certificate
    token = by_password._authorization.removeprefix("Bearer ")
    by_token = meshgate.connect(server.uri, token=token, tls_root_certs=ca.pem, cert_chain=sam_cert.cert_pem,
                                private_key=sam_cert.key_pem)
    assert by_token.principal() == "ana"
    with pytest.raises(meshgate.MeshgateError) as err:
        meshgate.connect(server.uri, tls_root_certs=ca.pem).principal()  # no certificate: the handshake fails
    assert err.value.code == "UNAVAILABLE" and "failed to connect" in err.value.message
    for c in (by_certificate, by_password, by_token):
        c.close()
    server.stop()


def test_entities_named_by_product_carry_provenance_and_ttls_compile_either_way(client):
    manifest = client.training_set(
        entities="sales.customer_features", event_time="feature_date",
        features=["customers.customer.c_mktsegment"], provenance=True, shards=3,
    ).plan()
    table = manifest.to_arrow()
    assert table.num_rows == client.sql("SELECT count(*) AS n FROM sales.customer_features").column("n")[0].as_py()
    version = descriptor_version(TESTDATA / "domains" / "sales" / "products" / "customer_features.yaml")
    assert set(zip(table.column("_source_product").to_pylist(), table.column("_source_version").to_pylist())) == {
        ("customer_features", version)}
    files: dict[str, pa.Table] = {}
    for row in table.slice(0, 3000).to_pylist():
        path = "/" + row["_source_file"]
        if path not in files:
            files[path] = pq.read_table(path, columns=["c_custkey", "feature_date", "created_at"])
        assert files[path].slice(row["_source_row"], 1).to_pylist()[0] == {
            k: row[k] for k in ("c_custkey", "feature_date", "created_at")}

    def features(ttl):
        return client.training_set(entities=PIT_ENTITIES, event_time="o_orderdate",
                                   features=["sales.customer_features.orders_90d"], ttl=ttl, shards=2).plan().to_arrow()

    from datetime import timedelta

    one = features("30 days")
    assert features({"sales.customer_features": "30 days"}).sort_by("o_orderkey").equals(one.sort_by("o_orderkey"))
    assert features(timedelta(days=30)).sort_by("o_orderkey").equals(one.sort_by("o_orderkey"))
    longer = features("365 days")
    assert one.column("orders_90d").null_count > longer.column("orders_90d").null_count  # older rows expire



def test_an_expired_token_is_renewed_with_the_password_and_before_pickling(start_server, tmp_path, monkeypatch):
    import pickle

    from mgtest import demo_mesh_doc, flight_client, flight_sql_query, write_yaml

    doc = demo_mesh_doc()
    doc["auth"]["token_ttl_secs"] = 1
    server = start_server(write_yaml(tmp_path / "mesh.yaml", doc), name="ml-token")
    client = meshgate.connect(server.uri, username="stella", password="stella-demo")
    first = client._authorization
    manifest = client.training_set(products="customers.region", shards=2).plan()

    def expired() -> bool:
        probe = flight_client(server.uri, bearer=first.removeprefix("Bearer "))
        try:
            flight_sql_query(probe, "SELECT 1")
            return False
        except Exception:
            return True
        finally:
            probe.close()

    wait_for(expired, "the first token to expire", timeout=30)
    assert manifest.to_arrow().num_rows == 5  # DoGet: refused with the old token, then logged in again
    assert client._authorization != first
    monkeypatch.setattr(meshgate.client, "_REFRESH_AFTER_SECS", 0.0)
    second = client._authorization
    copy = pickle.loads(pickle.dumps(client))
    assert copy._authorization != second and copy._authorization == client._authorization
    assert copy._credentials is None and copy.principal() == "stella"
    client.close()
    server.stop()

def test_a_shard_read_is_recorded_with_its_training_set(start_server, tmp_path):
    from mgtest import DEMO_CONFIG

    events_file = tmp_path / "lineage.jsonl"
    server = start_server(DEMO_CONFIG, name="ml-lineage",
                          args=["--audit-dir", str(tmp_path / "audit"), "--lineage-file", str(events_file)])
    stella = meshgate.connect(server.uri, username="stella", password="stella-demo")
    manifest = stella.training_set(products="customers.region", purpose="ml_training", shards=2).plan()
    shard = manifest.shards()[1]
    assert shard.training_set == f"{manifest.id}/all/1-of-2"
    shard.read(stella).read_all()
    stella.close()
    server.stop()
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    tagged = [e["run"]["facets"] for e in events if "meshgate_training_set" in e["run"].get("facets", {})]
    assert tagged and {f["meshgate_training_set"]["trainingSet"] for f in tagged} == {shard.training_set}
    assert {f["meshgate_purpose"]["purpose"] for f in tagged} == {"ml_training"}
    records = [json.loads(line) for path in (tmp_path / "audit").glob("*") for line in path.read_text().splitlines()]
    assert [r["training_set"] for r in records if r.get("training_set")] == [shard.training_set]
