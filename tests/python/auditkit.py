"""Helpers for the audit-log and OpenLineage tests (test_audit.py, test_openlineage.py).

- reading the JSON lines meshgate writes, waiting until a query's lines are there;
- the official OpenLineage schemas shipped in testdata/openlineage, as jsonschema
  validators whose `$ref`s resolve from those files only (no network);
- `LineageReceiver`: a loopback HTTP endpoint (http.server in a thread) that keeps
  every event POSTed to it.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.flight as flight
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

import mgtest

OPENLINEAGE_DIR = mgtest.TESTDATA / "openlineage"
PURPOSE_HEADER = b"x-meshgate-purpose"

# facet key -> the schema file that defines it (the facets meshgate emits)
FACET_SCHEMAS = {
    "sql": "SQLJobFacet.json",
    "errorMessage": "ErrorMessageRunFacet.json",
    "version": "DatasetVersionDatasetFacet.json",
    "schema": "SchemaDatasetFacet.json",
    "columnLineage": "ColumnLineageDatasetFacet.json",
}


def read_jsonl(path: Path) -> list[dict]:
    """Every complete line of a JSON-lines file (none if it does not exist yet)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def audit_records(audit_dir: Path) -> list[dict]:
    """The records of the rotated audit files (oldest first), then of audit.jsonl."""
    files = sorted(audit_dir.glob("audit-*.jsonl")) + [audit_dir / "audit.jsonl"]
    return [record for file in files for record in read_jsonl(file)]


def wait_for_record(audit_dir: Path, sql: str, principal: str, count: int = 1) -> list[dict]:
    """Waits until `count` records of `sql` by `principal` are written; returns them."""
    def found():
        records = [r for r in audit_records(audit_dir) if r["sql"] == sql and r["principal"] == principal]
        return records if len(records) >= count else None
    return mgtest.wait_for(found, f"{count} audit record(s) of {principal}: {sql}", timeout=30)


def purpose_options(purpose: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[(PURPOSE_HEADER, purpose.encode())])


def rfc3339_ms_utc(text: str) -> bool:
    """`2026-12-02T02:15:00.123Z`: UTC, milliseconds."""
    if not (text.endswith("Z") and len(text) == 24):
        return False
    datetime.fromisoformat(text.replace("Z", "+00:00"))
    return True


class OpenLineageSchemas:
    """The shipped schemas, every `$ref` resolved from testdata/openlineage."""

    def __init__(self, directory: Path = OPENLINEAGE_DIR):
        self.documents = {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}
        resources = [(doc["$id"], Resource.from_contents(doc)) for doc in self.documents.values()]
        registry = Registry().with_resources(resources)  # no retrieve: an unknown $ref fails
        checker = Draft202012Validator.FORMAT_CHECKER
        self.event = Draft202012Validator(self.documents["OpenLineage.json"], registry=registry, format_checker=checker)
        self.facets = {
            key: Draft202012Validator(self.documents[file], registry=registry, format_checker=checker)
            for key, file in FACET_SCHEMAS.items()
        }

    def validate(self, event: dict) -> None:
        """Raises jsonschema.ValidationError (or AssertionError) if `event` breaks the spec."""
        self.event.validate(event)
        assert event["schemaURL"].startswith(self.documents["OpenLineage.json"]["$id"]), event["schemaURL"]
        assert rfc3339_ms_utc(event["eventTime"]), event["eventTime"]
        facet_sets = [event["run"].get("facets", {}), event["job"].get("facets", {})]
        for dataset in event.get("inputs", []) + event.get("outputs", []):
            facet_sets.append(dataset.get("facets", {}))
        for facets in facet_sets:
            for key, facet in facets.items():
                assert key in self.facets, f"facet {key} has no shipped schema"
                self.facets[key].validate({key: facet})
                document = self.documents[FACET_SCHEMAS[key]]
                assert facet["_schemaURL"].split("#")[0] == document["$id"], (key, facet["_schemaURL"])
                assert facet["_producer"] == event["producer"]


class LineageReceiver:
    """A loopback HTTP server keeping every JSON body POSTed to /api/v1/lineage."""

    def __init__(self):
        self.events: list[dict] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.paths.append(self.path)
                    receiver.events.append(json.loads(body))
                self.send_response(201)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/lineage"
        self.thread = threading.Thread(target=self.server.serve_forever, name="lineage-receiver", daemon=True)

    def __enter__(self) -> "LineageReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[dict]:
        with self._lock:
            return list(self.events)
