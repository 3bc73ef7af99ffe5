"""SIGHUP reloads the mesh, its policies and its users; a reload with an error is
refused whole and the previous configuration keeps serving.

The server is started on a copy of the demo mesh in a temporary directory; the tests
edit its policy files, send SIGHUP and wait for the server's log line saying the
reload happened (or was refused) before looking.
"""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from mgtest import TESTDATA, flight_client, flight_grpc_code, flight_sql_query

RELOAD_TIMEOUT = 60.0


def wait_for_log(server, text: str, after: int) -> None:
    """Waits until `text` appears in the server's stderr past offset `after`."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        if text in server.stderr_text()[after:]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no '{text}' in the server log within {RELOAD_TIMEOUT}s:\n{server.stderr_text()[after:]}")


def hangup(server, expect: str) -> None:
    mark = len(server.stderr_text())
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, expect, mark)


@pytest.fixture
def mesh_copy(tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate.py", "__pycache__"))
    return root


def test_a_policy_change_takes_effect_on_sighup_and_a_broken_one_is_refused(start_server, mesh_copy):
    server = start_server(mesh_copy / "mesh.yaml", name="reload")
    ana = flight_client(server.uri, "ana")
    before = flight_sql_query(ana, "SELECT count(*) AS n FROM supply.part").column("n")[0].as_py()
    assert before > 0

    # The supply domain forbids analysts its parts: after the reload they are gone.
    supply = mesh_copy / "domains/supply/policies/supply.yaml"
    original = supply.read_text()
    supply.write_text(original + """
grants:
  - { id: parts-hidden-from-analysts, effect: forbid, products: [part], when: "'analyst' in principal.groups" }
""")
    hangup(server, "reloaded")
    with pytest.raises(Exception) as hidden:
        flight_sql_query(ana, "SELECT count(*) AS n FROM supply.part")
    assert flight_grpc_code(hidden.value) == "NOT_FOUND"

    # A broken policy (unknown column) is refused whole: the forbid keeps applying.
    broken = original.replace("select: [s_phone]", "select: [s_no_such_column]")
    assert broken != original
    supply.write_text(broken + """
grants:
  - { id: parts-hidden-from-analysts, effect: forbid, products: [part], when: "'analyst' in principal.groups" }
""")
    hangup(server, "reload refused")
    assert "s_no_such_column" in server.stderr_text()
    with pytest.raises(Exception) as still_hidden:
        flight_sql_query(ana, "SELECT count(*) AS n FROM supply.part")
    assert flight_grpc_code(still_hidden.value) == "NOT_FOUND"

    # Fixed again: the original policies serve, and existing bearer tokens still work.
    supply.write_text(original)
    hangup(server, "reloaded")
    assert flight_sql_query(ana, "SELECT count(*) AS n FROM supply.part").column("n")[0].as_py() == before
    ana.close()
    server.stop(check=True)
