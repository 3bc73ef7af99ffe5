"""The catalog web page in a real browser: tests/browser/catalog.mjs drives Debian's
chromium (headless, through playwright-core) against the real binary started with
`--http-bind`. It logs in on the page's form (the cookie chromium keeps is HttpOnly,
Secure and SameSite=Strict on http://127.0.0.1), searches by keyboard and finds a
product by a column name, opens product pages (quality and freshness badges, schema,
snippets with the advertised Flight URI), checks that ana and carl are not shown what
only stella may read, that the page fits a phone's width and follows a dark color
scheme, and logs out; any script error or CSP violation fails it.

It saves a screenshot of stella's sales.orders page: to docs/catalog-web.png when
MESHGATE_UPDATE_SCREENSHOT=1, else into the test's temporary directory.

Needs /usr/bin/chromium and tests/browser/node_modules (scripts/browser-deps.sh installs
both; scripts/test.sh runs it). Without them this test fails: it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mgtest import DEMO_CONFIG, DEMO_USERS, REPO_ROOT, adbc_connect, demo_password

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_DIR = REPO_ROOT / "tests" / "browser"
SCRIPT = BROWSER_DIR / "catalog.mjs"
SCREENSHOT = REPO_ROOT / "docs" / "catalog-web.png"
INSTALL = "run scripts/browser-deps.sh (it installs Debian's chromium and playwright-core)"


def browser_prerequisites() -> str:
    """The node binary; fails the test naming whatever is missing."""
    if not CHROMIUM.is_file():
        pytest.fail(f"the browser test needs chromium at {CHROMIUM}: {INSTALL}", pytrace=False)
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"the browser test needs node on PATH: {INSTALL}", pytrace=False)
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.fail(f"the browser test needs playwright-core in {BROWSER_DIR / 'node_modules'}: {INSTALL}",
                    pytrace=False)
    return node


def test_the_catalog_page_in_chromium(start_server, tmp_path):
    node = browser_prerequisites()
    server = start_server(DEMO_CONFIG, name="web-browser", args=["--http-bind", "127.0.0.1:0"])
    # A few reads, so the pages show usage and consumers.
    for user, times in [("ana", 3), ("sam", 2), ("stella", 1)]:
        with adbc_connect(server.uri, user) as conn, conn.cursor() as cur:
            for _ in range(times):
                cur.execute("SELECT o_orderstatus, count(*) AS n FROM sales.orders GROUP BY o_orderstatus")
                assert cur.fetch_arrow_table().num_rows > 0
    update = os.environ.get("MESHGATE_UPDATE_SCREENSHOT") == "1"
    screenshot = SCREENSHOT if update else tmp_path / "catalog-web.png"
    env = {**os.environ, "MESHGATE_BROWSER_PASSWORDS": json.dumps({u: demo_password(u) for u in DEMO_USERS})}
    run = subprocess.run([node, str(SCRIPT), server.http_uri, server.uri, str(screenshot)], cwd=BROWSER_DIR,
                         env=env, capture_output=True, text=True, timeout=300)
    print(run.stdout)
    assert run.returncode == 0, f"catalog.mjs failed:\n{run.stdout}\n{run.stderr}"
    assert screenshot.stat().st_size > 10_000
    server.stop()
