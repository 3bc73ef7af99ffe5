"""TPC-H data as a three-domain mesh, and the tools that make it.

Layout of a data directory (benches/data/sf<SF>/):

    mesh.yaml                          the mesh config meshgate serves
    sales/orders/orders.1.parquet      <domain>/<table>/<table>.<part>.parquet
    sales/lineitem/lineitem.1.parquet
    customers/{customer,nation,region}/...
    supply/{part,partsupp,supplier}/...
    .complete                          written last: the directory is usable
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

TPCHGEN_VERSION = "4.0.0"

DOMAINS = {
    "sales": {
        "owner": "sales-data@bench.example",
        "description": "Orders and line items (TPC-H)",
        "products": {
            "orders": "One row per order",
            "lineitem": "One row per order line",
        },
    },
    "customers": {
        "owner": "crm-team@bench.example",
        "description": "Customers and the geography they live in (TPC-H)",
        "products": {
            "customer": "One row per customer",
            "nation": "The 25 nations",
            "region": "The 5 regions",
        },
    },
    "supply": {
        "owner": "supply-chain@bench.example",
        "description": "Parts, suppliers and what each supplier stocks (TPC-H)",
        "products": {
            "part": "One row per part",
            "partsupp": "One row per (part, supplier) offer",
            "supplier": "One row per supplier",
        },
    },
}

TABLES = {t: d for d, spec in DOMAINS.items() for t in spec["products"]}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sf_label(sf: str) -> str:
    """'1' -> '1', '0.10' -> '0.1', '1.0' -> '1' (for directory and file names)."""
    v = float(sf)
    return str(int(v)) if v == int(v) else repr(v)


def table_dir(data_dir: str, table: str) -> str:
    return os.path.join(data_dir, TABLES[table], table)


def mesh_yaml(sf: str) -> str:
    lines = [
        f"# TPC-H SF{sf} as a three-domain data mesh; written by benches/tpch.py.",
        "# Locations are relative to this file's directory.",
        "catalog: mesh",
        "domains:",
    ]
    for domain, spec in DOMAINS.items():
        lines += [
            f"  {domain}:",
            f"    owner: {spec['owner']}",
            f"    description: {spec['description']}",
            "    products:",
        ]
        for name, desc in spec["products"].items():
            lines += [
                f"      - name: {name}",
                f"        description: {desc}",
                "        version: 1.0.0",
                f"        location: {domain}/{name}/",
                "        format: parquet",
            ]
    return "\n".join(lines) + "\n"


def write_mesh_yaml(data_dir: str, sf: str) -> str:
    path = os.path.join(data_dir, "mesh.yaml")
    with open(path, "w") as f:
        f.write(mesh_yaml(sf))
    return path


def is_complete(data_dir: str) -> bool:
    return os.path.exists(os.path.join(data_dir, ".complete"))


def check_layout(data_dir: str) -> None:
    missing = [
        t
        for t in TABLES
        if not os.path.isdir(table_dir(data_dir, t))
        or not any(n.endswith(".parquet") for n in os.listdir(table_dir(data_dir, t)))
    ]
    if missing:
        raise SystemExit(f"{data_dir}: no Parquet files for {', '.join(missing)}")


def ensure_tpchgen(tools_root: str) -> str:
    """tpchgen-cli TPCHGEN_VERSION: the one requirements.txt installs beside this Python
    (its PyPI wheel ships the binary), else under tools_root/bin, installed with cargo if
    absent."""
    beside = os.path.join(os.path.dirname(sys.executable), "tpchgen-cli")
    if os.path.exists(beside):
        out = subprocess.run([beside, "--version"], capture_output=True, text=True).stdout
        if TPCHGEN_VERSION in out:
            return beside
    exe = os.path.join(tools_root, "bin", "tpchgen-cli")
    if os.path.exists(exe):
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        if TPCHGEN_VERSION in out:
            return exe
        log(f"{exe} is {out.strip()!r}, want {TPCHGEN_VERSION}: reinstalling")
    log(f"installing tpchgen-cli {TPCHGEN_VERSION} into {tools_root} (cargo install, compiles once)")
    subprocess.run(
        [
            "cargo", "install", "tpchgen-cli",
            "--version", TPCHGEN_VERSION,
            "--locked",
            "--root", tools_root,
        ],
        check=True,
        stdout=sys.stderr,
    )
    return exe


def generate(tpchgen: str, sf: str, data_dir: str) -> None:
    """Generate TPC-H at scale factor sf into data_dir (atomically: via a staging dir)."""
    stage = data_dir.rstrip("/") + ".tmp"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    for domain, spec in DOMAINS.items():
        tables = ",".join(spec["products"])
        log(f"generating TPC-H SF{sf} {tables} -> {domain}/")
        # --parts 1 writes <out>/<table>/<table>.1.parquet: one folder per product.
        subprocess.run(
            [
                tpchgen, "parquet",
                "--scale-factor", sf,
                "--tables", tables,
                "--parts", "1",
                "--output-dir", os.path.join(stage, domain),
                "--no-progress",
            ],
            check=True,
            stdout=sys.stderr,
        )
    write_mesh_yaml(stage, sf)
    check_layout(stage)
    with open(os.path.join(stage, ".complete"), "w") as f:
        f.write(f"tpchgen-cli {TPCHGEN_VERSION} sf={sf}\n")
    shutil.rmtree(data_dir, ignore_errors=True)
    os.rename(stage, data_dir)


def dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for n in files:
            if n.endswith(".parquet"):
                total += os.path.getsize(os.path.join(root, n))
    return total


def build_meshgate(repo: str) -> str:
    """cargo build --profile dist -p meshgate; returns the binary path."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "meshgate-target"
    )
    log(f"building meshgate (cargo build --profile dist -p meshgate, target dir {target})")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    # The build compiles Substrait's protobuf definitions with protoc.
    subprocess.run([os.path.join(repo, "scripts", "protoc.sh")], check=True, stdout=sys.stderr)
    subprocess.run(
        ["cargo", "build", "--profile", "dist", "--locked", "-p", "meshgate"],
        cwd=repo,
        env=env,
        check=True,
        stdout=sys.stderr,
    )
    return os.path.join(target, "dist", "meshgate")
