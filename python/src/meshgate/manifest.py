"""Manifests: everything needed to read a training set again, as JSON; and its shards."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from . import _wire, readahead
from .errors import ManifestTampered, SnapshotChanged
from .snapshot import snapshot_changes

if TYPE_CHECKING:
    import datasets
    import pandas
    import polars
    import pyarrow.flight as flight

    from .client import Client
    from .torch_dataset import TorchDataset

__all__ = ["Manifest", "Shard", "from_manifest", "schema_record"]


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def schema_record(schema: pa.Schema) -> dict[str, Any]:
    """A schema as the manifest records it: readable fields and the exact Arrow IPC form."""
    return {
        "fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
        "ipc": base64.b64encode(schema.serialize().to_pybytes()).decode("ascii"),
    }


@dataclass(frozen=True)
class Shard:
    """One canonical shard of one split: a signed ticket any process of the same
    principal can redeem. Picklable; holds no credentials (:meth:`read` takes a client).

    Frameworks with their own workers (Ray, Dask, Spark) map a function over
    ``manifest.shards(split)`` and call ``shard.read(client)`` in each task.
    """

    uri: str
    split: str
    index: int
    count: int
    ticket: bytes
    purpose: str | None = None
    provenance: bool = False
    manifest_id: str | None = None

    @property
    def training_set(self) -> str | None:
        """``<manifest id>/<split>/<index>-of-<count>``: what the read is recorded as."""
        if self.manifest_id is None:
            return None
        return f"{self.manifest_id}/{self.split}/{self.index}-of-{self.count}"

    def headers(self) -> list[tuple[str, str]]:
        out = []
        if self.purpose is not None:
            out.append((_wire.PURPOSE_HEADER, self.purpose))
        if self.provenance:
            out.append((_wire.PROVENANCE_HEADER, "true"))
        if self.training_set is not None:
            out.append((_wire.TRAINING_SET_HEADER, self.training_set))
        return out

    def read(
        self, client: Client, *, started: Callable[[flight.FlightStreamReader], None] | None = None
    ) -> pa.RecordBatchReader:
        """Stream the shard's rows: DoGet of its ticket with the training set's purpose,
        naming the training set (``x-meshgate-training-set``) for the audit log and
        lineage. ``started``: see :meth:`Client.read_ticket`."""
        return client.read_ticket(self.ticket, self.headers(), started=started)


class Manifest:
    """A planned training set, as saved next to a model.

    The JSON object holds: ``format``, ``id`` (SHA-256 of the canonical JSON of every other
    field), ``created_at``, ``server``, ``principal``, ``purpose``, ``definition`` (the
    training set's arguments), ``query`` (its query over all splits), ``sql`` (split ->
    query), ``seed``, ``splits``, ``split_key``, ``split_salt``, ``shards``, ``provenance``,
    ``snapshot`` (products with their files or Delta versions, and the policy
    fingerprint), ``schema`` and ``tickets`` (split -> base64 shard tickets); a re-planned
    manifest also has ``replanned_from``. See docs/ml.md.
    """

    FORMAT = "meshgate.training-manifest/1"

    def __init__(self, body: Mapping[str, Any], *, client: Client | None = None):
        self._body = dict(body)
        self.client = client

    # -- identity and JSON ---------------------------------------------------------------

    @classmethod
    def seal(cls, body: Mapping[str, Any], *, client: Client | None = None) -> Manifest:
        """A manifest whose id is computed from ``body`` (which must not hold an id)."""
        content = {k: v for k, v in body.items() if k != "id"}
        digest = hashlib.sha256(_canonical(content)).hexdigest()
        return cls({"id": digest, **content}, client=client)

    def verify(self) -> None:
        """Raises :class:`ManifestTampered` unless the content hashes to the id."""
        if self._body.get("format") != self.FORMAT:
            raise ManifestTampered(f"not a {self.FORMAT} manifest (format {self._body.get('format')!r})")
        content = {k: v for k, v in self._body.items() if k != "id"}
        digest = hashlib.sha256(_canonical(content)).hexdigest()
        if digest != self._body.get("id"):
            raise ManifestTampered(
                f"manifest {self._body.get('id')!r} was modified after it was planned: its content hashes to {digest}"
            )

    def to_json(self, indent: int | None = 2) -> str:
        """The manifest as JSON text, fields in the order they were planned (splits in the
        order given); the id is computed over the canonical form, keys sorted."""
        return json.dumps(self._body, indent=indent, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the manifest's JSON object."""
        loaded: dict[str, Any] = json.loads(self.to_json(None))
        return loaded

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest as JSON to ``path``."""
        target = Path(path)
        target.write_text(self.to_json() + "\n", encoding="utf-8")
        return target

    @classmethod
    def from_json(cls, text: str, *, client: Client | None = None) -> Manifest:
        """A manifest from its JSON text; raises :class:`ManifestTampered` when edited."""
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestTampered(f"a manifest is a JSON object: {exc}") from exc
        if not isinstance(body, dict):
            raise ManifestTampered("a manifest is a JSON object")
        manifest = cls(body, client=client)
        manifest.verify()
        return manifest

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, client: Client | None = None) -> Manifest:
        """Read a saved manifest; raises :class:`ManifestTampered` when edited. Its
        tickets expire: use :func:`meshgate.from_manifest` to read it again later."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"), client=client)

    # -- fields ----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._body[key]

    @property
    def id(self) -> str:
        return str(self._body["id"])

    @property
    def principal(self) -> str:
        return str(self._body["principal"])

    @property
    def purpose(self) -> str | None:
        return self._body.get("purpose")

    @property
    def seed(self) -> int:
        return int(self._body["seed"])

    @property
    def shard_count(self) -> int:
        return int(self._body["shards"])

    @property
    def split_names(self) -> list[str]:
        return list(self._body["sql"])

    @property
    def sql(self) -> dict[str, str]:
        return dict(self._body["sql"])

    @property
    def snapshot(self) -> dict[str, Any]:
        return dict(self._body["snapshot"])

    @property
    def schema(self) -> pa.Schema:
        raw = base64.b64decode(self._body["schema"]["ipc"])
        return pa.ipc.read_schema(pa.py_buffer(raw))

    def split_of(self, *key: object) -> str:
        """The split a row with these split key values is in (computed here, with the
        manifest's salt and fractions: the server's ``mesh_split_hash``)."""
        from .sqlgen import split_ranges
        from .splits import split_hash

        if not self._body.get("splits"):
            return self.split_names[0]
        keys = self._body["split_key"]
        if len(key) != len(keys):
            raise ValueError(f"the split key is {keys}: give {len(keys)} value(s)")
        value = split_hash(self._body["split_salt"], *key)
        for name, (lo, hi) in split_ranges(self._body["splits"]).items():
            if lo <= value < hi:
                return name
        raise AssertionError(f"split hash {value} outside [0, 1)")

    def headers(self) -> list[tuple[str, str]]:
        out = []
        if self.purpose is not None:
            out.append((_wire.PURPOSE_HEADER, self.purpose))
        if self._body.get("provenance"):
            out.append((_wire.PROVENANCE_HEADER, "true"))
        return out

    # -- reading ---------------------------------------------------------------------------

    def _split(self, split: str | None) -> str:
        names = self.split_names
        if split is None:
            if len(names) != 1:
                raise ValueError(f"this training set has splits {names}: name one")
            return names[0]
        if split not in names:
            raise ValueError(f"no split {split!r} in this training set (splits: {names})")
        return split

    def _client(self, client: Client | None) -> Client:
        chosen = client or self.client
        if chosen is None:
            raise ValueError("this manifest has no client: pass client=, or read it with meshgate.from_manifest(client, ...)")
        return chosen

    def shards(self, split: str | None = None) -> list[Shard]:
        """The split's canonical shards, in order."""
        name = self._split(split)
        tickets = self._body["tickets"][name]
        return [
            Shard(
                uri=str(self._body["server"]),
                split=name,
                index=i,
                count=len(tickets),
                ticket=base64.b64decode(t),
                purpose=self.purpose,
                provenance=bool(self._body.get("provenance")),
                manifest_id=self.id,
            )
            for i, t in enumerate(tickets)
        ]

    def batches(
        self, split: str | None = None, *, client: Client | None = None, read_ahead: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """Every batch of the split, shard after shard, with ``read_ahead`` more shards
        streaming meanwhile (:mod:`meshgate.readahead`; 0 reads one shard at a time)."""
        readahead.check(read_ahead)
        reader_client = self._client(client)
        sources = [functools.partial(shard.read, reader_client) for shard in self.shards(split)]
        return readahead.in_order(sources, ahead=read_ahead)

    def to_arrow(self, split: str | None = None, *, client: Client | None = None) -> pa.Table:
        """The whole split as one ``pyarrow.Table`` (shards in order)."""
        return pa.Table.from_batches(list(self.batches(split, client=client)), schema=self.schema)

    def to_pandas(self, split: str | None = None, *, client: Client | None = None) -> pandas.DataFrame:
        """The whole split as a pandas DataFrame (needs pandas)."""
        return self.to_arrow(split, client=client).to_pandas()

    def to_polars(self, split: str | None = None, *, client: Client | None = None) -> polars.DataFrame:
        """The whole split as a polars DataFrame (needs polars)."""
        import polars as pl

        frame = pl.from_arrow(self.to_arrow(split, client=client))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def to_hf(self, split: str | None = None, *, client: Client | None = None) -> datasets.IterableDataset:
        """A Hugging Face ``datasets.IterableDataset`` over the split's shards; its
        ``n_shards`` is the shard count, so HF's own DataLoader workers and
        ``split_dataset_by_node`` divide the shards (needs datasets)."""
        from .hf import hf_dataset

        return hf_dataset(self.shards(split), self.schema, self._client(client))

    def to_torch(
        self,
        split: str | None = None,
        *,
        batch_size: int = 256,
        shuffle_buffer: int = 0,
        seed: int | None = None,
        drop_last: bool = False,
        output: Literal["tensors", "arrow"] = "tensors",
        columns: list[str] | None = None,
        shuffle_shards: bool | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        positions: bool = False,
        read_ahead: int = 1,
        client: Client | None = None,
    ) -> TorchDataset:
        """A ``torch.utils.data.IterableDataset`` of batches over the split (needs torch);
        see :class:`meshgate.torch_dataset.TorchDataset` for the arguments."""
        from .torch_dataset import TorchDataset

        return TorchDataset(
            self._client(client),
            self.shards(split),
            schema=self.schema,
            manifest_id=self.id,
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=self.seed if seed is None else seed,
            drop_last=drop_last,
            output=output,
            columns=columns,
            shuffle_shards=shuffle_shards,
            rank=rank,
            world_size=world_size,
            positions=positions,
            read_ahead=read_ahead,
        )

    def __repr__(self) -> str:
        return f"meshgate.Manifest(id={self.id[:12]}..., splits={self.split_names}, shards={self.shard_count})"


def from_manifest(client: Client, manifest: Manifest | str | os.PathLike[str]) -> Manifest:
    """Read a training set again, exactly as its manifest recorded it.

    Verifies the manifest's id, takes the server's snapshot of the same query and compares
    it with the recorded one (products, versions, files, Delta versions, policy
    fingerprint), then plans the same queries again (tickets expire) and checks that the
    shard count and the schema are the same.

    Returns:
        A manifest with fresh tickets (``replanned_from`` = the original id), bound to
        ``client``, reading exactly the rows the original read.

    Raises:
        ManifestTampered: the manifest was edited.
        SnapshotChanged: data, policies, principal or schema moved; ``.changes`` names each.
        MeshgateError: the server refused (e.g. a product is no longer visible).
    """
    from .training import plan_splits

    original = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
    original.verify()
    headers = original.headers()
    changes: list[str] = []
    principal = client.principal()
    if principal != original.principal:
        changes.append(f"planned by principal {original.principal!r}, now read by {principal!r}")
    current = client.snapshot(str(original["query"]), headers)
    changes += snapshot_changes(original.snapshot, current)
    if changes:
        raise SnapshotChanged(changes)
    tickets, schema = plan_splits(client, original.sql, headers, original.shard_count)
    if not schema.equals(original.schema):
        raise SnapshotChanged([f"the result schema changed: was {original.schema}, now {schema}"])
    body = original.to_dict()
    del body["id"]
    body.update(
        tickets=tickets,
        server=client.uri,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        replanned_from=original.id,
    )
    return Manifest.seal(body, client=client)
