"""The governance-overhead phase: the same TPC-H queries as an unrestricted principal
and as one with row filters and column masks on every large product.

The governed principal's filters keep (almost) every row and its masks touch columns
the queries read, so both principals do the same amount of work and the ratio is the
price of enforcement: the policy filter, the mask projection, the barrier (no
statistics from the files below it; only filters that cannot fail, such as plain
comparisons and join bounds on unmasked columns, below the policy filter).
"""

from __future__ import annotations

import subprocess

GOVERNED_USER = "governed"
GOVERNED_PASSWORD = "governed-bench"

# Appended to the bench mesh file. The anonymous principal is unrestricted.
GOVERNANCE_YAML = """
auth:
  anonymous: {{ name: bench, groups: [unrestricted] }}
  users:
    - name: {user}
      password_hash: "{hash}"
      groups: [analyst]
      attributes: {{ min_custkey: 0 }}
governance:
  attributes: {{ min_custkey: int64 }}
  policies:
    - grants: [{{ id: bench-readers, effect: permit }}]
      row_filters:
        - {{ id: unrestricted-rows, mode: permissive, when: "'unrestricted' in principal.groups", filter: "true" }}
        - {{ id: analyst-rows, mode: permissive, when: "'analyst' in principal.groups", filter: "true" }}
        - {{ id: lineitem-quantities, mode: restrictive, products: [sales.lineitem], when: "'analyst' in principal.groups", filter: "l_quantity >= 0" }}
        - {{ id: orders-since-1992, mode: restrictive, products: [sales.orders], when: "'analyst' in principal.groups", filter: "o_orderdate >= DATE '1992-01-01'" }}
        - {{ id: customers-from-key, mode: restrictive, products: [customers.customer], when: "'analyst' in principal.groups", filter: "c_custkey > principal.min_custkey" }}
      columns:
        - {{ id: all-columns, select: "*", action: allow }}
        - {{ id: lineitem-comment, products: [sales.lineitem], select: [l_comment], action: {{ mask: keyed_hash }}, when: "'analyst' in principal.groups" }}
        - {{ id: order-clerk, products: [sales.orders], select: [o_clerk], action: {{ mask: show_last, n: 3 }}, when: "'analyst' in principal.groups" }}
        - {{ id: customer-phone, products: [customers.customer], select: [c_phone], action: {{ mask: keyed_hash }}, when: "'analyst' in principal.groups" }}
        - {{ id: customer-name, products: [customers.customer], select: [c_name], action: {{ mask: show_first, n: 9 }}, when: "'analyst' in principal.groups" }}
        - {{ id: supplier-comment, products: [supply.supplier], select: [s_comment], action: {{ mask: redact, value: "-" }}, when: "'analyst' in principal.groups" }}
"""


def governance_yaml(meshgate_bin: str) -> str:
    """The block above with a fresh argon2 hash from `meshgate hash-password`."""
    out = subprocess.run(
        [meshgate_bin, "hash-password"], input=GOVERNED_PASSWORD, capture_output=True, text=True, check=True
    )
    return GOVERNANCE_YAML.format(user=GOVERNED_USER, hash=out.stdout.strip())


def phase_governance(args, uri: str, load_query, median, geomean, first_line, log) -> dict:
    from meshbench.engines import Meshgate

    principals = {
        "unrestricted": Meshgate(uri),
        "governed": Meshgate(uri, user=GOVERNED_USER, password=GOVERNED_PASSWORD),
    }
    out: dict = {"queries": {}}
    try:
        for n in args.queries:
            qid = f"q{n:02d}"
            sql = load_query(n)
            q: dict = {"median": {}, "rows": {}, "errors": {}}
            for name, eng in principals.items():
                try:
                    q["rows"][name] = eng.run(sql).num_rows  # warm-up
                    times = []
                    for _ in range(args.runs):
                        import time

                        t0 = time.perf_counter()
                        eng.run(sql)
                        times.append(time.perf_counter() - t0)
                    q["median"][name] = median(times)
                except Exception as e:  # noqa: BLE001
                    q["errors"][name] = first_line(e)
            m = q["median"]
            if len(m) == 2:
                q["ratio"] = m["governed"] / m["unrestricted"]
            out["queries"][qid] = q
            log(f"{qid} " + "  ".join(f"{k} {v:.3f}s" for k, v in m.items())
                + (f"  ratio {q['ratio']:.2f}" if "ratio" in q else "")
                + "".join(f"\n      {k}: {v}" for k, v in q["errors"].items()))
    finally:
        for eng in principals.values():
            eng.close()
    complete = [q for q in out["queries"].values() if "ratio" in q]
    out["geomean_ratio"] = geomean([q["ratio"] for q in complete])
    out["geomean_queries"] = len(complete)
    return out


def render(g: dict, fmt) -> list[str]:
    L = ["## Governance overhead", ""]
    L.append("The same queries as an unrestricted principal and as one with a restrictive row filter "
             "on lineitem, orders and customer and masks on columns the queries read "
             "(benches/meshbench/governance.py). Medians in seconds.")
    L.append("")
    L.append("| query | unrestricted | governed | governed / unrestricted | rows (unrestricted / governed) |")
    L.append("|---|---:|---:|---:|---|")
    for qid, q in g["queries"].items():
        m = q["median"]
        rows = f"{q['rows'].get('unrestricted', '—')} / {q['rows'].get('governed', '—')}"
        L.append(f"| {qid} | {fmt(m.get('unrestricted'))} | {fmt(m.get('governed'))} | "
                 f"{fmt(q.get('ratio'), '.2f')} | {rows} |")
    L.append("")
    L.append(f"Geometric mean governed/unrestricted over {g['geomean_queries']} queries: "
             f"**{fmt(g['geomean_ratio'], '.2f')}**")
    L.append("")
    return L
