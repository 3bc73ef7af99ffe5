"""Train a churn model on a governed, point-in-time training set from meshgate's demo mesh.

One row per order of sales.orders: will the customer order again within 90 days? The
features are what was known about the customer on the order's date (sales.customer_features
at most 90 days old, and customers.customer), joined by the server with point_in_time, so
no feature comes from the future the label describes. The training set is planned into a
manifest saved next to the model; reading that manifest again gives the very same rows.

The demo mesh's orders are generated at random, so nothing in it predicts churn: expect an
AUC near 0.5. What carries over to real data is the pipeline.

    meshgate serve                                    # the demo mesh on grpc://127.0.0.1:50051
    python examples/train_churn.py --out churn-model  # as sam (a data scientist)

Needs `pip install './python[torch]'`. See docs/ml.md and examples/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import torch

import meshgate

# The label, computed in the server by a second point-in-time lookup, 91 days after the
# order: sales.customer_features has a row dated the day after each day a customer
# ordered, so a row at most 89 days old at that horizon exists exactly when the customer
# ordered again on one of the 90 days after this order. Orders from the last 90 days of
# the data (it ends on 1998-08-02) are left out: their future is not known yet.
# point_in_time takes its entities as a string literal, hence the doubled quotes.
HORIZON = (
    "SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate, o_orderdate + INTERVAL '91' DAY AS horizon "
    "FROM sales.orders WHERE o_orderdate < DATE '1998-05-01'"
)
ENTITIES = (
    "SELECT o_orderkey, c_custkey, o_orderdate, orders_90d IS NULL AS churned FROM point_in_time("
    + "'" + HORIZON.replace("'", "''") + "', 'horizon', 'sales.customer_features.orders_90d', '89 days')"
)
FEATURES = [  # domain.product.column: each as it was on o_orderdate
    "sales.customer_features.orders_90d",
    "sales.customer_features.spend_90d",
    "sales.customer_features.days_since_last_order",
    "customers.customer.c_acctbal",
    "customers.customer.c_mktsegment",
]
LABEL = "churned"


class Encoder:
    """Turns a batch (a dict of column -> tensor or list) into a float matrix: numeric
    columns standardized with a 0/1 'missing' column beside them (a feature older than the
    TTL, or hidden from the caller, is NULL), text columns one-hot. Fitted on the train
    split; a column whose policy masks it into text for the caller becomes categorical."""

    def __init__(self, table: pa.Table, columns: list[str]):
        self.numeric: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, list[str]] = {}
        for name in columns:
            column = table.column(name)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                self.categories[name] = sorted(v for v in pc.unique(column).to_pylist() if v is not None)
            else:
                values = pc.cast(column, pa.float64())
                mean, std = pc.mean(values).as_py(), pc.stddev(values).as_py()
                self.numeric[name] = (mean or 0.0, std or 1.0)
        self.width = 2 * len(self.numeric) + sum(len(c) for c in self.categories.values())

    def __call__(self, batch: dict[str, Any]) -> torch.Tensor:
        parts = []
        for name, (mean, std) in self.numeric.items():
            x = batch[name].to(torch.float32)
            missing = torch.isnan(x)
            parts += [torch.where(missing, 0.0, (x - mean) / std), missing.to(torch.float32)]
        for name, categories in self.categories.items():
            codes = torch.tensor([categories.index(v) if v in categories else -1 for v in batch[name]])
            parts.append((codes[:, None] == torch.arange(len(categories))).to(torch.float32))  # NULL: all 0
        return torch.cat([p if p.dim() == 2 else p[:, None] for p in parts], dim=1)


def evaluate(model: torch.nn.Module, encoder: Encoder, manifest: meshgate.Manifest, split: str) -> dict[str, float]:
    """Accuracy at 0.5, the accuracy of always answering the more frequent class, and ROC
    AUC (the chance that a churned order scores above a kept one)."""
    scores, labels = [], []
    with torch.no_grad():
        for batch in manifest.to_torch(split, batch_size=4096):
            scores.append(torch.sigmoid(model(encoder(batch)).squeeze(1)))
            labels.append(batch[LABEL])
    p, y = torch.cat(scores), torch.cat(labels)
    ranks = torch.empty_like(p)
    ranks[p.argsort()] = torch.arange(1, len(p) + 1, dtype=p.dtype)
    positives, negatives = int(y.sum()), int((~y).sum())
    auc = (ranks[y].sum().item() - positives * (positives + 1) / 2) / (positives * negatives)
    rate = positives / len(y)
    return {"rows": len(y), "accuracy": ((p > 0.5) == y).float().mean().item(), "baseline": max(rate, 1 - rate), "auc": auc}


def digest(table: pa.Table) -> str:
    """SHA-256 of the table's rows in order (its Arrow IPC stream, one record batch)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051")
    parser.add_argument("--user", default="sam")
    parser.add_argument("--password", help="default: $MESHGATE_PASSWORD, else the demo's USER-demo")
    parser.add_argument("--out", type=Path, default=Path("churn-model"), help="where the model and manifest go")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    password = args.password or os.environ.get("MESHGATE_PASSWORD") or f"{args.user}-demo"
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    with meshgate.connect(args.uri, username=args.user, password=password) as client:
        # 1. Plan: the server takes a snapshot of the products read and signs 8 shards per
        #    split. A customer's orders all land in one split (split_key), so no customer
        #    is seen in training and then scored in test.
        manifest = client.training_set(
            entities=ENTITIES, event_time="o_orderdate", features=FEATURES, ttl="90 days",
            purpose="ml_training", seed=args.seed, shards=8,
            splits={"train": 0.8, "validation": 0.1, "test": 0.1}, split_key="c_custkey", split_salt="churn-v1",
        ).plan()
        manifest_path = manifest.save(args.out / "manifest.json")
        print(f"planned {manifest!r} as {manifest.principal} for {manifest.purpose}")
        for product in manifest.snapshot["products"]:
            print(f"  reads {product['domain']}.{product['product']} {product['version']}")

        # 2. Fit the encoder on the train split (small enough to read whole: to_arrow). A
        #    feature is NULL when the customer had no feature row in the 90 days before the
        #    order, or when a policy hides the row from the caller (the demo shows sam the
        #    customers of his own market segment only).
        train = manifest.to_arrow("train")
        columns = [f.rsplit(".", 1)[1] for f in FEATURES]
        print(f"train: {train.num_rows} orders, {pc.mean(pc.cast(train.column(LABEL), pa.int8())).as_py():.1%} churned")
        for name in columns:
            print(f"  {name}: known for {1 - train.column(name).null_count / train.num_rows:.0%} of them")
        encoder = Encoder(train, columns)

        # 3. Train a small MLP from seeded, shuffled batches read by DataLoader workers
        #    (started with forkserver: gRPC connections do not survive fork).
        model = torch.nn.Sequential(torch.nn.Linear(encoder.width, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        dataset = manifest.to_torch("train", batch_size=256, shuffle_buffer=2048)
        loader = dataset.loader(num_workers=args.workers)
        for epoch in range(args.epochs):
            dataset.set_epoch(epoch)  # a new shuffle each epoch, the same on every run
            total, batches = 0.0, 0
            for batch in loader:
                loss = loss_fn(model(encoder(batch)).squeeze(1), batch[LABEL].to(torch.float32))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, batches = total + loss.item(), batches + 1
            print(f"epoch {epoch}: loss {total / batches:.4f}")

        # 4. Evaluate on the held-out customers and save the model beside its manifest.
        for split in ("validation", "test"):
            m = evaluate(model, encoder, manifest, split)
            print(f"{split}: {m['rows']} orders, accuracy {m['accuracy']:.3f} "
                  f"(majority class {m['baseline']:.3f}), AUC {m['auc']:.3f}")
        model_path = args.out / "model.pt"
        torch.save({"model": model.state_dict(), "numeric": encoder.numeric, "categories": encoder.categories,
                    "manifest_id": manifest.id}, model_path)
        print(f"saved {model_path} and {manifest_path}")

        # 5. Later (tickets expire): read the training split again from the saved manifest.
        #    from_manifest checks that no file, version or policy changed, else it raises
        #    SnapshotChanged naming what did.
        again = meshgate.from_manifest(client, manifest_path).to_arrow("train")
        assert again.equals(train), "the manifest read back different rows"
        print(f"re-read train from {manifest_path.name}: {again.num_rows} rows, identical "
              f"(sha256 {digest(again)[:16]} = {digest(train)[:16]})")


if __name__ == "__main__":  # required: DataLoader workers start with forkserver
    main()
