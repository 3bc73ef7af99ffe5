"""What goes on the wire: the Flight SQL command meshgate plans, and its call headers.

A Flight SQL ``CommandStatementQuery`` is a protobuf message wrapped in
``google.protobuf.Any``; both are small enough to encode by hand, so the package needs no
protobuf runtime.
"""

from __future__ import annotations

PURPOSE_HEADER = "x-meshgate-purpose"
SHARDS_HEADER = "x-meshgate-shards"
PROVENANCE_HEADER = "x-meshgate-provenance"
# Names the training set a shard read belongs to (recorded in the audit log and lineage).
TRAINING_SET_HEADER = "x-meshgate-training-set"
SNAPSHOT_ACTION = "meshgate.training_snapshot"
MAX_SHARDS = 1024

_STATEMENT_QUERY_TYPE = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _length_delimited(field: int, data: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(data)) + data


def statement_query(sql: str) -> bytes:
    """``Any{type_url, value: CommandStatementQuery{query: sql}}``, serialized."""
    command = _length_delimited(1, sql.encode("utf-8"))
    return _length_delimited(1, _STATEMENT_QUERY_TYPE.encode("ascii")) + _length_delimited(2, command)
