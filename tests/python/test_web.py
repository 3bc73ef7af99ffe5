"""The catalog web page's HTTP API (docs/http.md, "Catalog web page"), through the real
binary started with `--http-bind 127.0.0.1:0`, with a plain HTTP client (http.client:
every header is the test's own, cookies included).

- Without credentials every /api call is 401 (JSON); the page and its assets load, with
  the security headers (CSP without inline script, nosniff, no referrer, no framing).
- POST /api/login (the form's JSON, or Basic/Bearer in Authorization) sets the session
  cookie HttpOnly; Secure; SameSite=Strict; Path=/ with a Max-Age within the token's
  life; cross-site and non-JSON logins are refused; logout clears it.
- The API shows exactly what the principal may read: the product versions and columns
  equal what the same user's SQL on mesh_catalog returns over ADBC (carl lacks
  customers.customer; ana lacks o_comment and c_comment; whole-product figures are
  NULL for who has rows hidden), a product one may not read is 404.
- A malformed, forged or oversized cookie is 401; an oversized header or body is a 4xx;
  the server keeps serving.
- The snippets connect to the Flight URI the server advertises and read the product
  with ADBC, polars and pandas (run here as written).
- A removed user's cookie stops working after a reload.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from mgtest import (
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    adbc_connect,
    bearer_for,
    demo_password,
    hash_password,
)
from test_reload import hangup, mesh_copy  # noqa: F401  (mesh_copy is a fixture)

HTTP_ARGS = ["--http-bind", "127.0.0.1:0"]
COOKIE = "meshgate_session"


@pytest.fixture(scope="module")
def server(start_server):
    srv = start_server(DEMO_CONFIG, name="web", args=HTTP_ARGS)
    yield srv
    srv.stop()


# --------------------------------------------------------------------------------------
# a plain HTTP client
# --------------------------------------------------------------------------------------


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        assert "application/json" in (self.headers.get("content-type") or ""), self.headers
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def call(srv, method: str, path: str, *, headers: dict[str, str] | None = None,
         body: bytes | str | None = None, cookie: str | None = None) -> Reply:
    url = urlsplit(srv.http_uri)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        sent = dict(headers or {})
        if cookie is not None:
            sent["Cookie"] = f"{COOKIE}={cookie}"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def login(srv, user: str, password: str | None = None, *, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"user": user, "password": demo_password(user) if password is None else password})
    return call(srv, "POST", "/api/login", headers={"Content-Type": "application/json", **(headers or {})}, body=body)


def session(srv, user: str) -> str:
    reply = login(srv, user)
    assert reply.status == 200, reply
    return cookie_value(reply)


def cookie_value(reply: Reply) -> str:
    (set_cookie,) = reply.headers.get_all("set-cookie")
    match = re.match(rf"{COOKIE}=([^;]*);", set_cookie)
    assert match, set_cookie
    return match.group(1)


def basic(user: str, password: str | None = None) -> str:
    raw = f"{user}:{demo_password(user) if password is None else password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def get(srv, path: str, cookie: str) -> dict:
    reply = call(srv, "GET", path, cookie=cookie)
    assert reply.status == 200, (path, reply)
    return reply.json()


# --------------------------------------------------------------------------------------
# no credentials, the page, the headers
# --------------------------------------------------------------------------------------


def test_every_api_call_needs_credentials_but_the_page_loads(server):
    for path in ["/api/me", "/api/catalog", "/api/products/sales/orders", "/api/products/no/such"]:
        reply = call(server, "GET", path)
        assert reply.status == 401, (path, reply)
        assert "credentials required" in reply.json()["error"]
        # Never Basic: a browser would answer it with its own login dialog.
        assert reply.headers["www-authenticate"].startswith("Bearer")
    page = call(server, "GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b'id="login-form"' in page.body


def test_security_headers_and_no_inline_script(server):
    page = call(server, "GET", "/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    # Every script is a file; no inline handlers or styles either.
    assert not re.search(rb"<script(?![^>]*\bsrc=)", page.body)
    assert not re.search(rb"\son[a-z]+=|\sstyle=", page.body)
    for path, kind in [("/assets/app.js", "text/javascript"), ("/assets/app.css", "text/css"),
                       ("/assets/icon.svg", "image/svg+xml")]:
        asset = call(server, "GET", path)
        assert asset.status == 200 and asset.headers["content-type"].startswith(kind), path
        assert asset.headers["x-content-type-options"] == "nosniff"
    # Data is rendered as text, never parsed as HTML.
    script = call(server, "GET", "/assets/app.js").body
    assert b"innerHTML" not in script and b"insertAdjacentHTML" not in script and b"eval(" not in script
    api = call(server, "GET", "/api/me")
    assert api.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in api.headers["content-security-policy"]
    assert call(server, "GET", "/api/no/such/call", cookie=session(server, "ana")).status == 404


# --------------------------------------------------------------------------------------
# login, the cookie, logout
# --------------------------------------------------------------------------------------


def test_login_sets_a_secure_session_cookie_within_the_tokens_life(server):
    reply = login(server, "ana")
    assert reply.status == 200, reply
    assert reply.json()["user"] == "ana"
    (set_cookie,) = reply.headers.get_all("set-cookie")
    attributes = [part.strip() for part in set_cookie.split(";")]
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= set(attributes), set_cookie
    (max_age,) = [int(a.split("=", 1)[1]) for a in attributes if a.startswith("Max-Age=")]
    assert 3500 < max_age <= 3600  # testdata/mesh.yaml: token_ttl_secs: 3600
    assert not any(a.lower().startswith("domain=") for a in attributes)
    token = cookie_value(reply)
    assert token.startswith("mgt2.")
    me = get(server, "/api/me", token)
    assert me["user"] == "ana" and me["groups"] == ["analyst"] and me["steward"] is False
    assert me["flight_uri"] == server.uri


def test_wrong_credentials_set_no_cookie(server):
    for reply in [login(server, "ana", "not-her-password"), login(server, "nobody", "x"),
                  login(server, "ana:x", "y")]:
        assert reply.status == 401, reply
        assert reply.headers.get_all("set-cookie") is None
        assert reply.json()["error"] == "invalid credentials"


def test_flight_credentials_work_on_the_api_and_at_login(server):
    token = bearer_for(server.uri, "sam")  # from a Flight handshake
    for authorization in [basic("sam"), f"Bearer {token}"]:
        reply = call(server, "GET", "/api/me", headers={"Authorization": authorization})
        assert reply.status == 200 and reply.json()["user"] == "sam", reply
        logged_in = call(server, "POST", "/api/login", body="{}",
                         headers={"Authorization": authorization, "Content-Type": "application/json"})
        assert logged_in.status == 200, logged_in
        assert get(server, "/api/me", cookie_value(logged_in))["user"] == "sam"
    bad = call(server, "GET", "/api/me", headers={"Authorization": "Bearer mgt2.forged.token"})
    assert bad.status == 401
    # The header wins over the cookie: a bad header is not rescued by a good cookie.
    both = call(server, "GET", "/api/me", headers={"Authorization": basic("sam", "wrong")},
                cookie=session(server, "ana"))
    assert both.status == 401


def test_login_and_logout_refuse_other_sites_and_non_json(server):
    body = json.dumps({"user": "ana", "password": "ana-demo"})
    host = urlsplit(server.http_uri).netloc
    for path in ["/api/login", "/api/logout"]:
        for headers, status in [
            ({"Content-Type": "text/plain"}, 415),
            ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ({}, 415),
            ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
            ({"Content-Type": "application/json", "Origin": "null"}, 403),
            ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
            ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403),
        ]:
            reply = call(server, "POST", path, headers=headers, body=body)
            assert reply.status == status, (path, headers, reply)
            assert reply.headers.get_all("set-cookie") is None
    same = login(server, "ana", headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert same.status == 200, same
    assert call(server, "POST", "/api/login", headers={"Content-Type": "application/json"},
                body='{"user": "ana"}').status == 400
    assert call(server, "POST", "/api/login", headers={"Content-Type": "application/json"},
                body="{}").status == 401


def test_logout_clears_the_cookie(server):
    reply = call(server, "POST", "/api/logout", headers={"Content-Type": "application/json"}, body="{}",
                 cookie=session(server, "ana"))
    assert reply.status == 204
    (set_cookie,) = reply.headers.get_all("set-cookie")
    assert set_cookie.startswith(f"{COOKIE}=;") and "Max-Age=0" in set_cookie and "HttpOnly" in set_cookie
    # The browser drops it; without it the API is closed again.
    assert call(server, "GET", "/api/me", cookie="").status == 401


# --------------------------------------------------------------------------------------
# governance: exactly what the principal may read
# --------------------------------------------------------------------------------------


def sql_rows(server, user: str, sql: str) -> list[dict]:
    with adbc_connect(server.uri, user) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table().to_pylist()


@pytest.mark.parametrize("user", ["ana", "carl", "stella"])
def test_the_catalog_is_what_the_users_sql_on_mesh_catalog_returns(server, user):
    catalog = get(server, "/api/catalog", session(server, user))
    versions = {(p["domain"], p["name"], v["version"]) for p in catalog["products"] for v in p["versions"]}
    expected = sql_rows(server, user, "SELECT domain, name, version FROM mesh_catalog.products")
    assert versions == {(r["domain"], r["name"], r["version"]) for r in expected}
    columns = {(p["domain"], p["name"]): p["columns"] for p in catalog["products"]}
    expected_columns: dict = {}
    for r in sql_rows(server, user, "SELECT domain, product, column_name FROM mesh_catalog.columns "
                                    "ORDER BY domain, product, ordinal_position"):
        expected_columns.setdefault((r["domain"], r["product"]), []).append(r["column_name"])
    assert columns == expected_columns
    assert {d["name"] for d in catalog["domains"]} == {p["domain"] for p in catalog["products"]}


def test_what_only_some_may_read_is_absent_for_the_others(server):
    ana, carl, stella = (session(server, u) for u in ("ana", "carl", "stella"))
    products = lambda cookie: {(p["domain"], p["name"]) for p in get(server, "/api/catalog", cookie)["products"]}
    assert products(stella) == DEMO_PRODUCTS
    assert products(ana) == DEMO_PRODUCTS
    # carl (contractor) reads sales.orders only: no product with personal data.
    assert products(carl) == {("sales", "orders")}
    assert call(server, "GET", "/api/products/customers/customer", cookie=carl).status == 404
    missing = call(server, "GET", "/api/products/customers/no_such_product", cookie=carl)
    hidden = call(server, "GET", "/api/products/customers/customer", cookie=carl)
    assert (missing.status, hidden.status) == (404, 404)
    assert hidden.json()["error"] == "no product customers.customer that you may read"

    def columns(cookie, product):
        return {c["column_name"]: c for c in get(server, f"/api/products/{product}", cookie)["columns"]}

    # Denied columns are absent; masked ones are flagged.
    assert "o_comment" in columns(stella, "sales/orders") and "o_comment" not in columns(ana, "sales/orders")
    assert "c_comment" in columns(stella, "customers/customer") and "c_comment" not in columns(ana, "customers/customer")
    assert columns(ana, "customers/customer")["c_acctbal"]["masked_for_you"] is True
    assert columns(stella, "customers/customer")["c_acctbal"]["masked_for_you"] is False
    # ana reads her own market segment only: the whole customer table's figures are not hers.
    mine = get(server, "/api/products/customers/customer", ana)["product"]
    all_rows = get(server, "/api/products/customers/customer", stella)["product"]
    assert mine["row_count"] is None and mine["bytes"] is None
    assert all_rows["row_count"] > 0
    # The search haystack carries column names only as seen.
    catalog = {(p["domain"], p["name"]): p for p in get(server, "/api/catalog", ana)["products"]}
    assert "o_comment" not in catalog[("sales", "orders")]["columns"]


def test_a_product_page_has_versions_quality_lineage_and_usage(server):
    stella = session(server, "stella")
    sql_rows(server, "stella", "SELECT count(*) FROM sales.orders")  # one recorded read
    orders = get(server, "/api/products/sales/orders", stella)
    product = orders["product"]
    assert product["is_current"] is True and product["owner"] == "sales-data@corp.example"
    versions = {v["version"]: v for v in product["versions"]}
    assert versions["0.9.0"]["status"] == "deprecated" and versions["0.9.0"]["sunset"] == "2027-03-31"
    assert product["quality_status"] in {"passing", "warning", "degraded", "unknown", "unchecked"}
    assert product["freshness_status"] in {"fresh", "stale", "unknown"}
    assert {c["column_name"] for c in orders["columns"]} >= {"o_orderkey", "o_totalprice"}
    by_name = {c["column_name"]: c for c in orders["columns"]}
    assert by_name["o_orderkey"]["is_key"] is True and by_name["o_orderkey"]["description"]
    readers = [e for e in orders["lineage"]["downstream"] if e["relation"] == "reads"]
    assert any(e["target"] == "stella" and e["queries"] >= 1 for e in readers), orders["lineage"]
    assert {u["window"] for u in orders["usage"]} == {"1h", "24h", "7d", "all"}
    customer = get(server, "/api/products/customers/customer", stella)
    checks = {q["check_name"]: q for q in customer["quality"]}
    assert checks, "customers.customer declares quality checks"
    assert all(isinstance(q["passed"], bool) for q in customer["quality"])


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def test_malformed_and_oversized_input_is_a_4xx_and_the_server_keeps_serving(server):
    ana = session(server, "ana")
    for bad in ["garbage", "mgt2.", "mgt2.AAAA.BBBB", ana[:-4] + "AAAA", "x" * 7000, "%00%ff", '"quoted"']:
        assert call(server, "GET", "/api/catalog", cookie=bad).status == 401, bad
    # A byte outside printable ASCII in the session cookie; a control byte hyper refuses.
    assert call(server, "GET", "/api/me", headers={"Cookie": "a=b; meshgate_session=caf\xe9"}).status == 401
    assert call(server, "GET", "/api/me", headers={"Cookie": "meshgate_session=\x7fzz"}).status == 400
    assert call(server, "GET", "/api/me", headers={"Cookie": "x" * 9000}).status == 401
    # Far past what hyper reads as headers, and past the body limit.
    huge_header = call(server, "GET", "/api/me", headers={"X-Padding": "p" * 200_000})
    assert 400 <= huge_header.status < 500, huge_header
    huge_body = call(server, "POST", "/api/login", headers={"Content-Type": "application/json"},
                     body=json.dumps({"user": "ana", "password": "p" * 100_000}))
    assert huge_body.status == 413, huge_body
    assert call(server, "POST", "/api/login", headers={"Content-Type": "application/json"},
                body=b"\xff\xfe{").status == 400
    assert call(server, "GET", "/api/products/sales", cookie=ana).status == 404
    assert get(server, "/api/me", ana)["user"] == "ana"


# --------------------------------------------------------------------------------------
# snippets
# --------------------------------------------------------------------------------------


def test_the_snippets_read_the_product_as_written(server):
    snippets = get(server, "/api/products/customers/nation", session(server, "ana"))["snippets"]
    assert [s["label"] for s in snippets] == ["ADBC", "polars", "pandas"]
    env = {**os.environ, "MESHGATE_PASSWORD": demo_password("ana")}
    names = {  # what each snippet's result holds, printed after it ran
        "ADBC": 'table.column("n_name").to_pylist()',
        "polars": 'df["n_name"].to_list()',
        "pandas": 'df["n_name"].tolist()',
    }
    for snippet in snippets:
        assert f'"{server.uri}"' in snippet["code"] and "ana-demo" not in snippet["code"]
        code = snippet["code"] + f"\nprint('NAMES', sorted({names[snippet['label']]}))\n"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, (snippet["label"], run.stderr)
        # ana sees the five European nations (customers.yaml: own-region-nations).
        (line,) = [line for line in run.stdout.splitlines() if line.startswith("NAMES ")]
        assert line == "NAMES ['FRANCE', 'GERMANY', 'ROMANIA', 'RUSSIA', 'UNITED KINGDOM']", (snippet["label"], line)


# --------------------------------------------------------------------------------------
# token lifecycle
# --------------------------------------------------------------------------------------


def test_a_removed_users_cookie_stops_working_after_a_reload(start_server, meshgate_bin, mesh_copy):  # noqa: F811
    # A user of the copy's own (the demo's users are named by its policy tests).
    config = mesh_copy / "mesh.yaml"
    original = config.read_text()
    dana = (f'    - name: dana\n      password_hash: "{hash_password(meshgate_bin, "dana-pw")}"\n'
            "      groups: [analyst]\n")
    assert "  users:\n" in original
    config.write_text(original.replace("  users:\n", "  users:\n" + dana, 1))
    srv = start_server(config, name="web-reload", args=HTTP_ARGS)
    reply = login(srv, "dana", "dana-pw")
    assert reply.status == 200, reply
    cookie = cookie_value(reply)
    assert get(srv, "/api/me", cookie)["user"] == "dana"
    config.write_text(original)
    hangup(srv, "reloaded")
    reply = call(srv, "GET", "/api/me", cookie=cookie)
    assert reply.status == 401 and reply.json()["error"] == "invalid credentials"
    assert get(srv, "/api/me", session(srv, "ana"))["user"] == "ana"
    srv.stop()
