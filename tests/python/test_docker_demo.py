"""The container files in docker/, checked without a Docker engine (there is none in CI):
the compose file's mesh (docker/demo-s3/mesh.yaml, generated from the demo mesh) is up to
date and, with the demo's files in an S3-compatible store (moto's server on loopback
standing in for MinIO), serves exactly what the local demo mesh serves; every flag the
Dockerfile and compose file pass exists; the image's command line serves /healthz."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    DATA,
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    REPO_ROOT,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    free_port,
    meshgate_bin_path,
    s3_client,
)

DOCKER = REPO_ROOT / "docker"
S3_MESH = DOCKER / "demo-s3" / "mesh.yaml"
BUCKET = "meshgate-demo"
KEY, SECRET = "meshgate-demo", "meshgate-demo-secret"  # docker/compose.yaml's


def test_generated_mesh_is_up_to_date():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "demo-s3-mesh.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", text))


def test_every_flag_in_the_container_files_exists():
    help_text = subprocess.run([str(meshgate_bin_path()), "serve", "--help"], capture_output=True,
                               text=True, check=True).stdout
    known = _flags(help_text)
    dockerfile = (DOCKER / "Dockerfile").read_text()
    compose = (DOCKER / "compose.yaml").read_text()
    # Only the lines that run meshgate: the Dockerfile's CMD and comments showing
    # `meshgate ... serve`, and the compose service's command list.
    cmd = " ".join(re.findall(r'^CMD (\[.*\])$', dockerfile, re.M))
    shown = " ".join(line for line in dockerfile.splitlines() if "meshgate" in line and "serve" in line)
    service = compose.split("  meshgate:", 1)[1]
    used = _flags(cmd + " " + shown + " " + service.split("ports:", 1)[0])
    assert {"--bind", "--http-bind", "--config"} <= used
    assert used <= known, f"flags meshgate serve does not accept: {sorted(used - known)}"
    for source in re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, re.M):
        assert (REPO_ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_image_command_line_serves_healthz(start_server):
    """The Dockerfile's CMD (addresses moved to loopback, free ports) and HEALTHCHECK URL."""
    dockerfile = (DOCKER / "Dockerfile").read_text()
    cmd = re.search(r'^CMD \[(.*)\]$', dockerfile, re.M).group(1)
    argv = [a.strip().strip('"') for a in cmd.split(",")]
    assert argv[0] == "serve"
    http_port = free_port()
    args = []
    for flag, value in zip(argv[1::2], argv[2::2]):
        if flag == "--bind":
            continue  # the test harness binds the Flight port itself
        args += [flag, value.replace("0.0.0.0:8080", f"127.0.0.1:{http_port}")]
    srv = start_server(None, name="image-cmd", args=args)
    try:
        health = re.search(r"HEALTHCHECK.*\n.*curl -fsS (http://\S+)", dockerfile).group(1)
        url = health.replace("127.0.0.1:8080", f"127.0.0.1:{http_port}")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    finally:
        srv.stop(check=True)


@pytest.fixture(scope="module")
def demo_bucket(moto_endpoint):
    s3 = s3_client(moto_endpoint, KEY, SECRET)
    s3.create_bucket(Bucket=BUCKET)
    # What the compose file's seed service does: testdata/data → s3://meshgate-demo/data/
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"data/{path.relative_to(DATA).as_posix()}")
    return moto_endpoint


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def test_s3_demo_mesh_serves_what_the_local_demo_serves(demo_bucket, start_server):
    # One keyed_hash key per domain for both servers, so equal values mask equally.
    shared = {f"MESHGATE_MASK_KEY_{d.upper()}": f"test-docker-demo-{d}" for d in ("sales", "customers", "supply")}
    env = {"MESHGATE_DEMO_S3_ENDPOINT": demo_bucket, "MESHGATE_DEMO_S3_KEY": KEY,
           "MESHGATE_DEMO_S3_SECRET": SECRET, **shared}
    remote = start_server(S3_MESH, env=env, name="demo-s3")
    local = start_server(DEMO_CONFIG, env=shared, name="demo-local")
    try:
        tables = [f'{domain}."{product}"' for domain, product in sorted(DEMO_PRODUCTS)] + ['sales."orders@0"']
        for user in ("stella", "ana", "carl"):
            for table in tables:
                sql = f"SELECT * FROM {table}"
                try:
                    want = _sorted(flight_sql_query(flight_client(local.uri, user=user), sql))
                except (flight.FlightError, pa.ArrowException) as refused:  # hidden from this user: hidden there too
                    with pytest.raises((flight.FlightError, pa.ArrowException)) as also:
                        flight_sql_query(flight_client(remote.uri, user=user), sql)
                    assert flight_grpc_code(also.value) == flight_grpc_code(refused), (user, table)
                    continue
                got = _sorted(flight_sql_query(flight_client(remote.uri, user=user), sql))
                assert got.num_rows == want.num_rows, (user, table)
                assert want.num_rows > 0 or user != "stella", table
                assert got.equals(want), (user, table)
    finally:
        remote.stop(check=True)
        local.stop(check=True)
