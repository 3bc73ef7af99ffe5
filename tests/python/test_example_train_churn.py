"""examples/train_churn.py run as a reader of examples/README.md runs it: a subprocess
against the demo mesh, as the data scientist sam, with DataLoader workers. Then its
output is checked: the manifest and model it saved, the identical re-read it reported,
and the label its comments promise (computed again by DuckDB on the demo files)."""

from __future__ import annotations

import re
import subprocess
import sys

import torch

import meshgate
from mgtest import REPO_ROOT, duckdb_expected

EXAMPLE = REPO_ROOT / "examples" / "train_churn.py"
SPLITS = ["train", "validation", "test"]

# churned: the customer placed no other order in the 90 days after this one; orders from
# 1998-05-01 on are left out (the example's HORIZON query).
CHURN = """
SELECT o.o_orderkey, NOT EXISTS (
    SELECT 1 FROM sales.orders n
    WHERE n.o_custkey = o.o_custkey AND n.o_orderdate > o.o_orderdate
      AND n.o_orderdate <= o.o_orderdate + INTERVAL 90 DAY) AS churned
FROM sales.orders o WHERE o.o_orderdate < DATE '1998-05-01'
"""


def test_train_churn_example(demo_server, tmp_path):
    out = tmp_path / "churn-model"
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--uri", demo_server.uri, "--user", "sam", "--password", "sam-demo",
         "--out", str(out), "--epochs", "1", "--workers", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}"
    print(run.stdout)

    manifest = meshgate.Manifest.load(out / "manifest.json")  # raises if edited
    assert (manifest.principal, manifest.purpose) == ("sam", "ml_training")
    assert manifest.split_names == SPLITS and manifest.shard_count == 8
    assert manifest["definition"]["ttl"] == "90 days"
    saved = torch.load(out / "model.pt")
    assert saved["manifest_id"] == manifest.id
    assert set(saved["numeric"]) == {"orders_90d", "spend_90d", "days_since_last_order", "c_acctbal"}
    assert saved["categories"] == {"c_mktsegment": ["AUTOMOBILE"]}  # sam sees his own segment only

    reread = re.search(r"^re-read train from manifest\.json: (\d+) rows, identical \(sha256 (\w+) = (\w+)\)$",
                       run.stdout, re.MULTILINE)
    assert reread, run.stdout
    assert int(reread.group(1)) > 0 and reread.group(2) == reread.group(3)
    for split in ("validation", "test"):
        scores = re.search(rf"^{split}: (\d+) orders, accuracy ([\d.]+) .*AUC ([\d.]+)$", run.stdout, re.MULTILINE)
        assert scores and int(scores.group(1)) > 0 and 0 <= float(scores.group(3)) <= 1, run.stdout

    # The saved manifest read again as sam: every order once, each customer in one split,
    # and the label the example computes with point_in_time is the churn it describes.
    with meshgate.connect(demo_server.uri, username="sam", password="sam-demo") as client:
        again = meshgate.from_manifest(client, out / "manifest.json")
        splits = {name: again.to_arrow(name) for name in SPLITS}
    assert splits["train"].num_rows == int(reread.group(1))
    customers = [set(t.column("c_custkey").to_pylist()) for t in splits.values()]
    assert all(not (a & b) for i, a in enumerate(customers) for b in customers[i + 1:])
    labels = {}
    for table in splits.values():
        labels.update(zip(table.column("o_orderkey").to_pylist(), table.column("churned").to_pylist()))
    expected = dict(duckdb_expected(CHURN).rows)
    assert sum(t.num_rows for t in splits.values()) == len(labels) == len(expected)
    assert labels == expected
