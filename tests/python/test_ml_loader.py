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
