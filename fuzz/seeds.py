#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into CORPUS_DIR/<target>/, made from the
inputs the test suite and the demo mesh already hold: the differential corpus and
TPC-H queries (SQL, as each demo user), the demo's mesh, descriptor and policy files
(YAML), and the demo policies' conditions and expressions. Targets whose input is a
structure (tickets, handles, cookies, commands, DoPut batches) start from nothing:
libFuzzer builds their inputs from the structure.

    python3 fuzz/seeds.py CORPUS_DIR [MAX_PER_TARGET]

With MAX_PER_TARGET, an even spread of that many seeds per target (for short runs:
libFuzzer runs every seed once before it starts fuzzing).
"""

import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Demo users in name order, as the harness numbers them: ana, carl, sam, stella.
PRINCIPALS = (0, 1, 3)


def write(corpus: Path, target: str, data: bytes) -> None:
    SEEDS.setdefault(target, []).append(data)


SEEDS: dict[str, list[bytes]] = {}


def save(corpus: Path, target: str, data: bytes) -> None:
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{hashlib.sha1(data).hexdigest()}").write_bytes(data)


def statements() -> list[str]:
    out = []
    for path in sorted((ROOT / "tests/python/differential").glob("*.sql")) + sorted(
            (ROOT / "benches/queries").glob("*.sql")):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
        out += [part.strip() for part in text.split(";") if part.strip()]
    return out


def main() -> None:
    corpus = Path(sys.argv[1])
    sql = statements()
    # The locked surface: statements that must be refused, and the system tables.
    sql += [
        "CREATE TABLE t AS SELECT 1", "INSERT INTO sales.orders VALUES (1)", "DROP TABLE sales.orders",
        "COPY (SELECT 1) TO '/tmp/x.csv'", "SET datafusion.execution.target_partitions = 1",
        "SELECT * FROM '/etc/passwd'", "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc'",
        "SELECT 1; SELECT 2", "EXPLAIN SELECT * FROM sales.orders", "SHOW TABLES", "SHOW SCHEMAS",
        "SELECT * FROM system.mesh_catalog", "SELECT * FROM information_schema.columns",
        "SELECT * FROM point_in_time('sales.orders', 'o_orderdate', 'sales.customer_features.orders_90d')",
    ]
    for statement in sql:
        for principal in PRINCIPALS:
            write(corpus, "governed_sql", bytes([principal]) + statement.encode())
    yaml_files = [ROOT / "testdata/mesh.yaml", *sorted((ROOT / "testdata").glob("policies/*.yaml")),
                  *sorted((ROOT / "testdata/domains").rglob("*.yaml"))]
    for path in yaml_files:
        write(corpus, "mesh_yaml", path.read_bytes())
    pattern = re.compile(r"""\b(when|filter|expression|condition)\s*:\s*"((?:[^"\\]|\\.)*)\"""")
    for path in yaml_files:
        for kind, text in pattern.findall(path.read_text()):
            selector = 0 if kind in ("when", "condition") else 1
            write(corpus, "policy_expr", bytes([selector]) + text.encode())
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    for target, seeds in SEEDS.items():
        step = max(1, len(seeds) // limit) if limit else 1
        for data in seeds[::step][:limit]:
            save(corpus, target, data)


if __name__ == "__main__":
    main()
