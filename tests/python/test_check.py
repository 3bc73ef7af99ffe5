"""`meshgate check` and config validation: every error, with its path, in one run —
product descriptors and stores, and policy errors (unknown column or attribute, a filter
that is not boolean, subqueries, volatile functions, aggregates, duplicate rule ids)."""

from __future__ import annotations

import copy
import re

import pytest

from mgtest import (
    BROKEN_PRODUCTS,
    write_broken_mesh,
    DATA,
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    Server,
    ServerStartError,
    product_line,
    product_lines,
    run_meshgate,
    write_yaml,
)


def _out(res) -> str:
    return res.stdout + res.stderr


def _line_with(output: str, *needles: str) -> str | None:
    """First line containing every needle (case-insensitive)."""
    for line in output.splitlines():
        low = line.lower()
        if all(n.lower() in low for n in needles):
            return line
    return None


def test_check_demo_mesh(meshgate_bin):
    res = run_meshgate(meshgate_bin, "check", "--config", str(DEMO_CONFIG))
    out = _out(res)
    assert res.returncode == 0, out
    for domain, product in sorted(DEMO_PRODUCTS):
        assert product_line(out, domain, product), f"no report line for {domain}.{product}:\n{out}"


# --------------------------------------------------------------------------------------
# a valid base config and one mutation per kind of mistake
# --------------------------------------------------------------------------------------


def _base_config(tmp_path) -> dict:
    pdir = tmp_path / "supply-products"
    write_yaml(
        pdir / "supplier.yaml",
        {
            "name": "supplier",
            "location": f"{DATA / 'supply' / 'supplier'}/",
            "format": "csv",
            "csv": {"has_header": True},
        },
    )
    return {
        "catalog": "mesh",
        "domains": {
            "sales": {
                "owner": "sales@example.com",
                "products": [
                    {
                        "name": "orders",
                        "location": f"{DATA / 'sales' / 'orders'}/",
                        "format": "parquet",
                        "partitions": [{"name": "o_year", "type": "int32"}],
                    }
                ],
            },
            "customers": {
                "owner": "crm@example.com",
                "products": [
                    {
                        "name": "customer",
                        "status": "active",
                        "location": f"{DATA / 'customers' / 'customer'}/",
                        "format": "parquet",
                        "schema": [
                            {"name": "c_custkey", "type": "int64", "nullable": False},
                            {"name": "c_email", "type": "utf8"},
                        ],
                    },
                    {"name": "nation", "location": f"{DATA / 'customers' / 'nation'}/", "format": "parquet"},
                    {
                        "name": "region",
                        "status": "draft",
                        "location": f"{DATA / 'customers' / 'region'}/",
                        "format": "parquet",
                    },
                ],
            },
            "supply": {"owner": "supply@example.com", "products_dir": str(pdir)},
        },
    }


def _product(cfg, domain, name):
    return next(p for p in cfg["domains"][domain]["products"] if p["name"] == name)


def _unknown_field(cfg):
    cfg["domains"]["sales"]["ownr"] = "typo@example.com"


def _ftp_location(cfg):
    _product(cfg, "sales", "orders")["location"] = "ftp://files.example.com/orders/"


def _bad_type(cfg):
    _product(cfg, "customers", "customer")["schema"][1]["type"] = "strng"


def _duplicate_product(cfg):
    cfg["domains"]["customers"]["products"].append(copy.deepcopy(_product(cfg, "customers", "nation")))


def _bad_status(cfg):
    _product(cfg, "customers", "region")["status"] = "live"


def _missing_products_dir(cfg):
    cfg["domains"]["supply"]["products_dir"] = "does/not/exist"


# mistake -> (mutation, needles one output line must contain, case-insensitive)
MISTAKES = {
    "unknown_field": (_unknown_field, ["domains.sales", "ownr"]),
    "ftp_scheme": (_ftp_location, ["domains.sales.products.orders.location", "ftp"]),
    "bad_type": (_bad_type, ["domains.customers.products.customer.schema.c_email.type", "strng"]),
    "duplicate_product": (_duplicate_product, ["domains.customers.products", "nation", "duplicate"]),
    "bad_status": (_bad_status, ["domains.customers.products.region.status", "live"]),
    "missing_products_dir": (_missing_products_dir, ["domains.supply.products_dir", "does/not/exist"]),
}


def test_check_base_config_is_valid(meshgate_bin, tmp_path):
    """Control: without mutations the config passes, so each failure below is the mutation's."""
    cfg = write_yaml(tmp_path / "mesh.yaml", _base_config(tmp_path))
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    assert res.returncode == 0, _out(res)
    for domain, product in [("sales", "orders"), ("customers", "customer"), ("customers", "nation"),
                            ("customers", "region"), ("supply", "supplier")]:
        assert product_line(_out(res), domain, product), _out(res)


def test_a_mesh_without_an_auth_section_is_valid(meshgate_bin, tmp_path):
    """No `auth:` means no users, no anonymous access and no JWT: a closed mesh, but a
    valid one (it was refused with `auth.token_ttl_secs: must be at least 1`)."""
    doc = {"catalog": "mesh", "domains": {"customers": {"owner": "crm@example.com", "products": [
        {"name": "nation", "location": f"{DATA / 'customers' / 'nation'}/", "format": "parquet"},
    ]}}}
    cfg = write_yaml(tmp_path / "mesh.yaml", doc)
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    assert res.returncode == 0, _out(res)
    assert product_line(_out(res), "customers", "nation"), _out(res)


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_check_single_mistake(meshgate_bin, tmp_path, mistake):
    doc = _base_config(tmp_path)
    mutate, needles = MISTAKES[mistake]
    mutate(doc)
    cfg = write_yaml(tmp_path / "mesh.yaml", doc)
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    out = _out(res)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    assert _line_with(out, *needles), f"no line with {needles}:\n{out}"


def _all_mistakes_config(tmp_path):
    doc = _base_config(tmp_path)
    for mutate, _ in MISTAKES.values():
        mutate(doc)
    return write_yaml(tmp_path / "mesh.yaml", doc)


def test_check_reports_every_mistake(meshgate_bin, tmp_path):
    cfg = _all_mistakes_config(tmp_path)
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    out = _out(res)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    missing = [name for name, (_, needles) in MISTAKES.items() if not _line_with(out, *needles)]
    assert not missing, f"not reported: {missing}\n--- output ---\n{out}"


def test_serve_refuses_bad_config(meshgate_bin, tmp_path, log_dir):
    cfg = _all_mistakes_config(tmp_path)
    srv = Server(meshgate_bin, cfg, log_dir=log_dir, name="bad-config")
    try:
        with pytest.raises(ServerStartError) as ei:
            srv.start()
    finally:
        if srv.proc is not None and srv.proc.poll() is None:  # it started after all
            srv.stop(check=False)
    err = ei.value
    assert err.returncode not in (None, 0), str(err)
    out = err.stdout + err.stderr
    assert "meshgate listening on" not in out
    missing = [name for name, (_, needles) in MISTAKES.items() if not _line_with(out, *needles)]
    assert not missing, f"not reported: {missing}\n--- output ---\n{out}"


def test_check_relative_paths(meshgate_bin, tmp_path):
    """Relative locations and products_dir resolve against the file that names them."""
    (tmp_path / "conf" / "products").mkdir(parents=True)
    data_link = tmp_path / "data"
    data_link.symlink_to(DATA)
    write_yaml(
        tmp_path / "conf" / "products" / "region.yaml",
        {"name": "region", "location": "../../data/customers/region/", "format": "parquet"},
    )
    cfg = write_yaml(
        tmp_path / "conf" / "mesh.yaml",
        {
            "domains": {
                "geo": {
                    "owner": "geo@example.com",
                    "products_dir": "products",
                    "products": [{"name": "nation", "location": "../data/customers/nation/", "format": "parquet"}],
                }
            }
        },
    )
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    assert res.returncode == 0, _out(res)
    assert product_line(_out(res), "geo", "region") and product_line(_out(res), "geo", "nation"), _out(res)


@pytest.mark.parametrize("store_used", [True, False], ids=["store_used", "store_unused"])
def test_check_unknown_store_option(meshgate_bin, tmp_path, store_used):
    """docs/config.md: "An option name the store does not know is an error" (used or not)."""
    doc = _base_config(tmp_path)
    doc["stores"] = {"s3://some-bucket": {"region": "us-east-1", "endpoitn": "http://127.0.0.1:9"}}
    if store_used:
        doc["domains"]["sales"]["products"].append(
            {"name": "remote", "location": "s3://some-bucket/remote/", "format": "parquet",
             "schema": [{"name": "id", "type": "int64"}]}
        )
    cfg = write_yaml(tmp_path / "mesh.yaml", doc)
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    assert res.returncode == 1, _out(res)
    assert _line_with(_out(res), "stores", "endpoitn"), _out(res)


def test_check_broken_mesh(meshgate_bin, tmp_path):
    """Corrupt files and schema drift are reported per product; exit code 1."""
    cfg = write_broken_mesh(tmp_path)
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    out = _out(res)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    for product, needles in BROKEN_PRODUCTS.items():
        lines = product_lines(out, "broken", product)
        assert lines, f"no report line for broken.{product}:\n{out}"
        for extra in needles[1:]:  # the column difference is named on a line naming the product
            assert any(re.search(rf"\b{re.escape(extra)}\b", l) for l in lines), f"{extra!r} not in {lines!r}"
    assert product_line(out, "healthy", "region"), out
    assert product_line(out, "broken", "nation"), out


def test_serve_without_config_serves_demo_mesh(meshgate_bin, log_dir):
    """`meshgate serve` with no --config serves testdata/mesh.yaml (found from the repo/cwd)."""
    from mgtest import cmd_get_tables, flight_client, flight_command, flight_sql_query, with_system_tables

    srv = Server(meshgate_bin, None, log_dir=log_dir, name="no-config")
    srv.start()
    try:
        client = flight_client(srv.uri, user="stella")  # the demo mesh's steward
        try:
            _, t, _ = flight_command(client, cmd_get_tables(catalog="mesh"))
            got = set(zip(t.column("db_schema_name").to_pylist(), t.column("table_name").to_pylist()))
            assert got == with_system_tables(DEMO_PRODUCTS)
            n = flight_sql_query(client, "SELECT COUNT(*) AS n FROM customers.nation").column("n").to_pylist()
            assert n == [25]
        finally:
            client.close()
    finally:
        srv.stop(check=True)


# --------------------------------------------------------------------------------------
# policy errors (docs/governance.md): each fails the load, reported with its path
# --------------------------------------------------------------------------------------

POLICY_MISTAKES = {
    # rule -> needles its report line must contain (case-insensitive)
    "unknown-column": ({"id": "f1", "mode": "permissive", "filter": "nope_col = 1"}, ["row_filters[0]", "nope_col"]),
    "not-boolean": ({"id": "f2", "mode": "permissive", "filter": "r_regionkey + 1"}, ["row_filters[1]", "boolean"]),
    "unknown-attribute": ({"id": "f3", "mode": "permissive", "filter": "r_regionkey = principal.shoe_size"},
                          ["row_filters[2]", "shoe_size"]),
    "subquery": ({"id": "f4", "mode": "permissive", "filter": "r_regionkey IN (SELECT 1)"},
                 ["row_filters[3]", "subquer"]),
    "volatile": ({"id": "f5", "mode": "permissive", "filter": "random() > 0.5"}, ["row_filters[4]", "random"]),
    "aggregate": ({"id": "f6", "mode": "permissive", "filter": "count(*) > 1"}, ["row_filters[5]"]),
    "duplicate-id": ({"id": "f1", "mode": "permissive", "filter": "true"}, ["row_filters[6]", "duplicate", "f1"]),
}


def _policy_mesh(tmp_path, rules, *, in_domain=False) -> str:
    policy = {"grants": [{"id": "g", "effect": "permit"}], "row_filters": rules,
              "columns": [{"id": "c", "select": "*", "action": "allow"}]}
    domain = {"owner": "qa@example.com",
              "products": [{"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"}]}
    doc = {"catalog": "mesh", "auth": {"anonymous": {"name": "t", "groups": ["analyst"]}},
           "governance": {"attributes": {"region_key": "int64"}, "policies": [] if in_domain else [policy]},
           "domains": {"geo": dict(domain, policies=[policy]) if in_domain else domain}}
    return write_yaml(tmp_path / "mesh.yaml", doc)


@pytest.mark.parametrize("in_domain", [False, True], ids=["mesh-wide", "domain"])
def test_policy_errors_are_reported_with_their_path(meshgate_bin, tmp_path, log_dir, in_domain):
    cfg = _policy_mesh(tmp_path, [rule for rule, _ in POLICY_MISTAKES.values()], in_domain=in_domain)
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    out = _out(res)
    assert res.returncode == 1, out
    prefix = "domains.geo.policies[0]" if in_domain else "governance.policies[0]"
    missing = [name for name, (_, needles) in POLICY_MISTAKES.items() if not _line_with(out, prefix, *needles)]
    assert not missing, f"not reported: {missing}\n--- output ---\n{out}"
    srv = Server(meshgate_bin, cfg, log_dir=log_dir, name="bad-policy")
    try:
        with pytest.raises(ServerStartError) as ei:
            srv.start()
    finally:
        if srv.proc is not None and srv.proc.poll() is None:  # it started after all
            srv.stop(check=False)
    assert ei.value.returncode not in (None, 0) and "meshgate listening on" not in ei.value.stdout


def test_valid_policy_mesh_passes(meshgate_bin, tmp_path):
    """Control: the same mesh with a valid rule loads, so the failures above are the rules'."""
    cfg = _policy_mesh(tmp_path, [{"id": "ok", "mode": "permissive", "filter": "r_regionkey = principal.region_key"}])
    res = run_meshgate(meshgate_bin, "check", "--config", str(cfg))
    assert res.returncode == 0, _out(res)
