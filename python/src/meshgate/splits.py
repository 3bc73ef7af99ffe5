"""Splits on the client: the same hash the server's ``mesh_split_hash`` computes, to tell
which split a key is in without asking the server (docs/ml.md, "Splits")."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

__all__ = ["split_hash"]


def _text(value: object) -> bytes:
    """The key's text as Arrow casts it to utf8, for the types whose text Python writes
    the same way; NULL is the single byte 0x00."""
    if value is None:
        return b"\x00"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, str, Decimal)):
        return str(value).encode("utf-8")
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat().encode("ascii")
    raise TypeError(
        f"split keys are integers, strings, decimals, dates, booleans or None here, not {type(value).__name__}: "
        "ask the server (SELECT mesh_split_hash(...)) for other types"
    )


def split_hash(salt: str, *keys: object) -> float:
    """``mesh_split_hash(salt, key...)``: SHA-256 of the salt, then 0x1F and each key's
    text; the first 8 bytes big-endian, the top 53 bits divided by 2**53 (in [0, 1))."""
    if not keys:
        raise ValueError("mesh_split_hash needs at least one key")
    data = salt.encode("utf-8") + b"".join(b"\x1f" + _text(key) for key in keys)
    return (int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 11) / 2**53
