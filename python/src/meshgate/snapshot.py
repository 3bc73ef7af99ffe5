"""Comparing two training snapshots: what changed in the data or the policies, one line
per difference, each naming the product and the file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["snapshot_changes"]


def _products(snapshot: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f"{p['domain']}.{p['product']}": p for p in snapshot.get("products", [])}


def _file_changes(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    if before.get("files") is None or after.get("files") is None:
        # the server lists no files to a principal from whom rows are hidden: only a digest
        if before.get("files_digest") != after.get("files_digest"):
            return [f"{name}: its files changed"]
        return []
    old = {f["path"]: f for f in before.get("files") or []}
    new = {f["path"]: f for f in after.get("files") or []}
    out = [f"{name}: file {path} added" for path in sorted(new.keys() - old.keys())]
    out += [f"{name}: file {path} removed" for path in sorted(old.keys() - new.keys())]
    for path in sorted(old.keys() & new.keys()):
        diffs = [
            f"{key} {old[path].get(key)!r} -> {new[path].get(key)!r}"
            for key in ("size", "modified", "e_tag")
            if old[path].get(key) != new[path].get(key)
        ]
        if diffs:
            out.append(f"{name}: file {path} changed ({', '.join(diffs)})")
    return out


def snapshot_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between the snapshot a manifest recorded and the current one."""
    changes: list[str] = []
    old, new = _products(before), _products(after)
    changes += [f"{name}: no longer read" for name in sorted(old.keys() - new.keys())]
    changes += [f"{name}: now read" for name in sorted(new.keys() - old.keys())]
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        if a.get("version") != b.get("version"):
            changes.append(f"{name}: version {a.get('version')} -> {b.get('version')}")
        if a.get("delta_version") != b.get("delta_version"):
            changes.append(f"{name}: Delta version {a.get('delta_version')} -> {b.get('delta_version')}")
        changes += _file_changes(name, a, b)
    if before.get("policy_fingerprint") != after.get("policy_fingerprint"):
        changes.append("policies that govern this data changed")
    return changes
