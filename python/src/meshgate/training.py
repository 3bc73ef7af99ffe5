"""Training sets: what to read (SQL, a product, or entities joined with features at a
point in time), for what purpose, split how, in how many shards; planned into a
:class:`~meshgate.Manifest`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import _wire, sqlgen
from .errors import MeshgateError, SnapshotChanged
from .snapshot import snapshot_changes

if TYPE_CHECKING:
    from .client import Client
    from .manifest import Manifest

__all__ = ["TrainingSet", "ALL"]

# The name of the only split of a training set without splits.
ALL = "all"
DEFAULT_SALT = "meshgate"
_PLAN_ATTEMPTS = 3


class TrainingSet:
    """A governed training set, defined by exactly one of:

    - ``sql``: any shardable query (no ORDER BY, LIMIT, aggregation or DISTINCT over the
      whole result); the driving product is the first product in its FROM;
    - ``products="domain.product"``, with optional ``columns`` and ``where``;
    - ``entities`` (a product name or a SELECT) with ``event_time`` and ``features``
      (``"domain.product.column"`` names) and an optional ``ttl``: a point-in-time
      correct feature join, computed by the server's ``point_in_time`` table function.

    Args:
        purpose: what the data is for (e.g. ``"ml_training"``): sent with every call as
            ``x-meshgate-purpose``; policies may test ``principal.purpose``.
        seed: the default seed of the loaders' shuffles (recorded in the manifest).
        splits: split names to fractions adding up to 1, e.g.
            ``{"train": 0.8, "validation": 0.1, "test": 0.1}``; a row's split is decided by
            ``mesh_split_hash(split_salt, split_key...)``, so it never moves between runs
            or when data is added. Without splits there is one split, ``"all"``.
        split_key: the column(s) whose values decide a row's split (required with splits).
        split_salt: the hash's salt (default ``"meshgate"``); change it for a new split.
        shards: how many canonical shards each split is served as (1 to 1024),
            independent of how many ranks and workers read them.
        provenance: every row also carries ``_source_file`` and ``_source_row`` (where
            it was read), and, for ``products`` and ``entities`` training sets, the driving
            product's ``_source_domain``, ``_source_product`` and ``_source_version``.
    """

    def __init__(
        self,
        client: Client,
        sql: str | None = None,
        *,
        products: str | None = None,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        entities: str | None = None,
        event_time: str | None = None,
        features: Sequence[str] | None = None,
        ttl: str | timedelta | Mapping[str, str | timedelta] | None = None,
        purpose: str | None = None,
        seed: int = 0,
        splits: Mapping[str, float] | None = None,
        split_key: str | Sequence[str] | None = None,
        split_salt: str | None = None,
        shards: int = 16,
        provenance: bool = False,
    ):
        given = [name for name, v in (("sql", sql), ("products", products), ("entities", entities)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "a training set is defined by exactly one of sql=, products= or entities= (with features=), "
                f"got {', '.join(given) or 'none'}"
            )
        if products is None and (columns is not None or where is not None):
            raise ValueError("columns= and where= go with products=")
        if entities is None and (event_time is not None or features is not None or ttl is not None):
            raise ValueError("event_time=, features= and ttl= go with entities=")
        if entities is not None and (event_time is None or not features):
            raise ValueError("entities= needs event_time= and features=")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed is a non-negative integer, not {seed!r}")
        if not isinstance(shards, int) or not 1 <= shards <= _wire.MAX_SHARDS:
            raise ValueError(f"shards is a whole number from 1 to {_wire.MAX_SHARDS}, not {shards!r}")
        if purpose is not None and (not isinstance(purpose, str) or not purpose.strip()):
            raise ValueError("purpose is a non-empty string")
        self.client = client
        self.kind = "sql" if sql is not None else "products" if products is not None else "features"
        self._sql = sql.strip().rstrip(";").strip() if sql is not None else None
        self.products = products
        if products is not None:
            sqlgen.product_ref(products)
        self.columns = list(columns) if columns is not None else None
        self.where = where
        self.entities = entities
        self.event_time = event_time
        self.features = list(features) if features is not None else None
        self.ttl = sqlgen.ttl_text(ttl)
        self.purpose = purpose
        self.seed = seed
        self.shards = shards
        self.provenance = bool(provenance)
        if splits is not None:
            self.split_ranges = sqlgen.split_ranges(splits)
            self.splits: dict[str, float] | None = {k: float(v) for k, v in splits.items()}
            keys = [split_key] if isinstance(split_key, str) else list(split_key or [])
            if not keys:
                raise ValueError("splits need split_key= (the column(s) a row's split is decided by)")
            self.split_key: list[str] | None = keys
            self.split_salt: str | None = DEFAULT_SALT if split_salt is None else split_salt
        else:
            if split_key is not None or split_salt is not None:
                raise ValueError("split_key= and split_salt= go with splits=")
            self.split_ranges = {ALL: (0.0, 1.0)}
            self.splits = None
            self.split_key = None
            self.split_salt = None
        self.base_sql()  # validates the definition before any call

    # -- SQL -----------------------------------------------------------------------------

    def definition(self) -> dict[str, Any]:
        """The arguments that define the training set (as recorded in the manifest)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "sql":
            out["sql"] = self._sql
        elif self.kind == "products":
            out.update(products=self.products, columns=self.columns, where=self.where)
        else:
            out.update(entities=self.entities, event_time=self.event_time, features=self.features, ttl=self.ttl)
        return out

    def driving_product(self) -> str | None:
        """The product whose files are sharded and whose provenance constants are added:
        ``products``, or ``entities`` when it names a product (None otherwise)."""
        if self.kind == "products":
            return self.products
        if self.kind == "features" and self.entities is not None and "." in self.entities and " " not in self.entities.strip():
            return self.entities.strip()
        return None

    def base_sql(self, constants: Mapping[str, str] | None = None, condition: str | None = None) -> str:
        """The training set's query (all splits), with the constant columns and a condition."""
        if self.kind == "products":
            assert self.products is not None
            return sqlgen.product_query(self.products, self.columns, self.where, self.provenance, constants, condition)
        if self.kind == "features":
            assert self.entities is not None and self.event_time is not None and self.features is not None
            entities = self.entities
            if self.provenance and self.driving_product() is not None:
                # a product's star has the provenance columns when the call asks for them
                entities = f"SELECT * FROM {sqlgen.table_ref(entities)}"
            sql = sqlgen.point_in_time_query(entities, self.event_time, self.features, self.ttl, constants)
        else:
            assert self._sql is not None
            sql = self._sql
        return sqlgen.split_query(sql, condition) if condition else sql

    def split_sql(self, constants: Mapping[str, str] | None = None) -> dict[str, str]:
        """Split name -> the query that reads exactly that split."""
        if self.splits is None:
            return {ALL: self.base_sql(constants)}
        assert self.split_key is not None and self.split_salt is not None
        return {
            name: self.base_sql(constants, sqlgen.split_condition(self.split_salt, self.split_key, lo, hi))
            for name, (lo, hi) in self.split_ranges.items()
        }

    def headers(self) -> list[tuple[str, str]]:
        """The call headers of every call for this training set (purpose, provenance)."""
        out = []
        if self.purpose is not None:
            out.append((_wire.PURPOSE_HEADER, self.purpose))
        if self.provenance:
            out.append((_wire.PROVENANCE_HEADER, "true"))
        return out

    # -- planning ------------------------------------------------------------------------

    def plan(self) -> Manifest:
        """Snapshot the data, plan every split into its shards, and return the manifest.

        Raises:
            MeshgateError: the server's refusal (``NOT_FOUND`` for a product the caller
                cannot see, ``INVALID_ARGUMENT`` for a query that cannot be sharded, ...).
            SnapshotChanged: the data kept changing while it was planned (three times).
        """
        from .manifest import Manifest, schema_record

        headers = self.headers()
        principal = self.client.principal()
        query = self.base_sql()
        for _ in range(_PLAN_ATTEMPTS):
            # the snapshot is taken before and after planning, so the manifest never pairs
            # tickets with a snapshot of other files (a write landed in between: plan again)
            snapshot = self.client.snapshot(query, headers)
            constants = self._constants(snapshot)
            sqls = self.split_sql(constants)
            tickets, schema = plan_splits(self.client, sqls, headers, self.shards)
            changes = snapshot_changes(snapshot, self.client.snapshot(query, headers))
            if not changes:
                break
        else:
            raise SnapshotChanged(changes)
        body: dict[str, Any] = {
            "format": Manifest.FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "server": self.client.uri,
            "principal": principal,
            "purpose": self.purpose,
            "definition": self.definition(),
            "query": query,
            "sql": sqls,
            "seed": self.seed,
            "splits": self.splits,
            "split_key": self.split_key,
            "split_salt": self.split_salt,
            "shards": self.shards,
            "provenance": self.provenance,
            "snapshot": snapshot,
            "schema": schema_record(schema),
            "tickets": tickets,
        }
        return Manifest.seal(body, client=self.client)

    def _constants(self, snapshot: Mapping[str, Any]) -> dict[str, str] | None:
        driving = self.driving_product()
        if not self.provenance or driving is None:
            return None
        domain, product = sqlgen.product_ref(driving)
        for p in snapshot.get("products", []):
            if p.get("domain") == domain and p.get("product") == product.split("@")[0]:
                values = (domain, product, str(p.get("version") or ""))
                return dict(zip(sqlgen.SOURCE_CONSTANTS, values))
        raise MeshgateError("INTERNAL", f"the server's snapshot does not list {driving}, the product this training set reads")

    def __repr__(self) -> str:
        return f"meshgate.TrainingSet({self.definition()!r}, splits={self.splits!r}, shards={self.shards})"


def plan_splits(
    client: Client, sqls: Mapping[str, str], headers: Sequence[tuple[str, str]], shards: int
) -> tuple[dict[str, list[str]], pa.Schema]:
    """GetFlightInfo for each split's query in ``shards`` shards: the base64 tickets per
    split, and the (one) result schema."""
    import base64

    tickets: dict[str, list[str]] = {}
    schema: pa.Schema | None = None
    for name, sql in sqls.items():
        info = client.flight_info(sql, [*headers, (_wire.SHARDS_HEADER, str(shards))])
        if len(info.endpoints) != shards:
            raise MeshgateError(
                "UNIMPLEMENTED",
                f"the server answered {len(info.endpoints)} endpoints for {shards} shards of split {name!r}: "
                f"it does not serve {_wire.SHARDS_HEADER}",
            )
        tickets[name] = [base64.b64encode(e.ticket.ticket).decode("ascii") for e in info.endpoints]
        if schema is None:
            schema = info.schema
        elif not schema.equals(info.schema):
            raise MeshgateError("INTERNAL", f"split {name!r} has another schema than the first split: {info.schema}")
    assert schema is not None
    return tickets, schema
