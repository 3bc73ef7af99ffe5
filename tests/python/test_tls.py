"""TLS and mutual TLS on the Flight SQL port (docs/tls.md), through the real binary with
ADBC (grpc+tls:// and its TLS options) and pyarrow.flight (tls_root_certs,
cert_chain/private_key).

Certificates are made by the test run (tlscerts.py): a CA, a server certificate for
127.0.0.1/localhost, client certificates for stella, ana, svc-trainer and nobody, an
expired one, one from another CA. The mTLS server serves the demo mesh with
`auth.client_certificates` mapping a CN equal to a demo user to that user and
`svc-[a-z]+` to an analyst principal; governance follows the certificate's principal.

Refusals (expired certificate, wrong CA, no certificate, an untrusted server
certificate, plaintext to the TLS port, an unmapped certificate) each fail with a clear
error while the server goes on serving. Reloading (SIGHUP) swaps the server certificate
for new connections while an open connection keeps working; a broken file is refused
naming it. Configuration mistakes stop the server at start with the path or file.
"""

from __future__ import annotations

import copy
import re
import shutil
import signal
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.flight as flight
import pytest
from adbc_driver_flightsql import DatabaseOptions

import govmodel
from mgtest import (
    DEMO_CONFIG,
    Server,
    ServerStartError,
    adbc_connect,
    adbc_grpc_code,
    adbc_query,
    assert_same_rows,
    demo_mesh_doc,
    describe_exc,
    flight_sql_query,
    server_message,
    write_yaml,
)
from tlscerts import CertificateAuthority, Files

SQL = "SELECT c_custkey, c_mktsegment, c_nationkey FROM customers.customer"
TRAINER = govmodel.principal("svc-trainer", ["analyst"], region_key=1, segment="AUTOMOBILE")
CLIENT_CERTIFICATES = {
    "name_from": "subject_cn",
    "users": True,
    "rules": [{"match": "svc-[a-z]+", "groups": ["analyst"], "attributes": {"region_key": 1, "segment": "AUTOMOBILE"}}],
}
RELOAD_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority("meshgate test CA")
    other = CertificateAuthority("another CA")
    clients = root / "clients"
    return SimpleNamespace(
        root=root,
        ca=ca,
        ca_file=ca.write(root / "ca.crt"),
        other=other,
        server=ca.server(root / "server"),
        stella=ca.client(clients, "stella"),
        ana=ca.client(clients, "ana"),
        trainer=ca.client(clients, "svc-trainer"),
        nobody=ca.client(clients, "nobody"),
        expired=ca.client(clients, "ana", expired=True),
        foreign=other.client(root / "foreign", "stella"),
    )


def mtls_mesh(directory: Path, client_certificates=CLIENT_CERTIFICATES) -> Path:
    doc = demo_mesh_doc()
    doc["auth"]["client_certificates"] = copy.deepcopy(client_certificates)
    return write_yaml(directory / "mesh.yaml", doc)


def tls_args(server: Files, client_ca: Path | None = None) -> list[str]:
    args = ["--tls-cert", str(server.cert), "--tls-key", str(server.key)]
    return args + (["--tls-client-ca", str(client_ca)] if client_ca else [])


@pytest.fixture(scope="module")
def mtls_server(start_server, pki, tmp_path_factory):
    config = mtls_mesh(tmp_path_factory.mktemp("mtls-mesh"))
    srv = start_server(config, env=govmodel.MASK_ENV, name="mtls", args=tls_args(pki.server, pki.ca_file))
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="module")
def tls_server(start_server, pki):
    """TLS without client certificates, on the demo mesh (Basic credentials)."""
    srv = start_server(DEMO_CONFIG, env=govmodel.MASK_ENV, name="tls", args=tls_args(pki.server))
    yield srv
    srv.stop(check=True)


def pyarrow_client(uri: str, roots: bytes, cert: Files | None = None, **kwargs) -> flight.FlightClient:
    if cert is not None:
        kwargs.update(cert_chain=cert.cert_pem, private_key=cert.key_pem)
    return flight.FlightClient(uri, tls_root_certs=roots, **kwargs)


def adbc_tls(uri: str, roots: bytes, cert: Files | None = None, **kwargs):
    db_kwargs = {DatabaseOptions.TLS_ROOT_CERTS.value: roots.decode()}
    if cert is not None:
        db_kwargs[DatabaseOptions.MTLS_CERT_CHAIN.value] = cert.cert_pem.decode()
        db_kwargs[DatabaseOptions.MTLS_PRIVATE_KEY.value] = cert.key_pem.decode()
    return adbc_connect(uri, db_kwargs=db_kwargs, **kwargs)


def pyarrow_rows(uri: str, roots: bytes, cert: Files | None, sql: str = SQL, **kwargs):
    client = pyarrow_client(uri, roots, cert, **kwargs)
    try:
        return flight_sql_query(client, sql)
    finally:
        client.close()


def assert_still_serving(srv, pki) -> None:
    """A good client is served after a refusal."""
    assert_same_rows(pyarrow_rows(srv.uri, pki.ca.pem, pki.stella), govmodel.expected("stella", SQL))


def flight_refusal(uri: str, roots: bytes, cert: Files | None) -> Exception:
    with pytest.raises(flight.FlightError) as info:
        pyarrow_rows(uri, roots, cert, "SELECT 1")
    return info.value


def adbc_refusal(uri: str, roots: bytes, cert: Files | None) -> Exception:
    with pytest.raises(Exception) as info:
        conn = adbc_tls(uri, roots, cert)
        try:
            adbc_query(conn, "SELECT 1")
        finally:
            conn.close()
    return info.value


# --------------------------------------------------------------------------------------
# the principal from the client certificate
# --------------------------------------------------------------------------------------


def test_ready_line_and_uri_name_tls(mtls_server):
    assert mtls_server.uri.startswith("grpc+tls://127.0.0.1:")
    assert "meshgate listening on grpc+tls://" in mtls_server.stdout_text()


@pytest.mark.parametrize("user", ["ana", "stella"])
def test_adbc_over_mtls_is_governed_as_the_certificates_user(mtls_server, pki, user):
    conn = adbc_tls(mtls_server.uri, pki.ca.pem, getattr(pki, user))
    try:
        table = adbc_query(conn, SQL)
    finally:
        conn.close()
    assert_same_rows(table, govmodel.expected(user, SQL))


def test_ana_and_stella_see_different_rows(mtls_server, pki):
    ana = pyarrow_rows(mtls_server.uri, pki.ca.pem, pki.ana)
    stella = pyarrow_rows(mtls_server.uri, pki.ca.pem, pki.stella)
    assert_same_rows(ana, govmodel.expected("ana", SQL))
    assert_same_rows(stella, govmodel.expected("stella", SQL))
    assert 0 < ana.num_rows < stella.num_rows
    assert set(ana.column("c_mktsegment").to_pylist()) == {"BUILDING"}


def test_a_rule_maps_a_service_certificate_to_its_groups_and_attributes(mtls_server, pki):
    table = pyarrow_rows(mtls_server.uri, pki.ca.pem, pki.trainer)
    assert_same_rows(table, govmodel.expected(TRAINER, SQL))
    assert set(table.column("c_mktsegment").to_pylist()) == {"AUTOMOBILE"}


def test_credentials_decide_over_the_certificate(mtls_server, pki):
    """Basic credentials on a connection with ana's certificate: the call is stella's."""
    client = pyarrow_client(mtls_server.uri, pki.ca.pem, pki.ana)
    try:
        header = client.authenticate_basic_token("stella", "stella-demo")
        table = flight_sql_query(client, SQL, flight.FlightCallOptions(headers=[header]))
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.authenticate_basic_token("stella", "wrong")
    finally:
        client.close()
    assert_same_rows(table, govmodel.expected("stella", SQL))


def test_the_handshake_answers_a_certificate_principal_with_a_token(mtls_server, pki):
    """A token issued at a handshake on svc-trainer's connection stays svc-trainer's
    when presented on another principal's connection."""
    # Repeated: the server once ended the call while the client was still sending, and
    # the reset lost the answer now and then.
    for _ in range(20):
        client = pyarrow_client(mtls_server.uri, pki.ca.pem, pki.trainer)
        try:
            token = next(iter(_handshake(client)))
        finally:
            client.close()
    other = pyarrow_client(mtls_server.uri, pki.ca.pem, pki.stella)
    try:
        options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer " + token)])
        assert_same_rows(flight_sql_query(other, SQL, options), govmodel.expected(TRAINER, SQL))
    finally:
        other.close()


def _handshake(client: flight.FlightClient) -> list[bytes]:
    """A Flight Handshake without credentials; the tokens the server answered."""

    class NoCredentials(flight.ClientAuthHandler):
        def __init__(self):
            super().__init__()
            self.tokens = []

        def authenticate(self, outgoing, incoming):
            outgoing.write(b"")  # a HandshakeRequest, as clients send one
            self.tokens.append(incoming.read())

        def get_token(self):
            return b""

    handler = NoCredentials()
    client.authenticate(handler, flight.FlightCallOptions(timeout=20))
    assert handler.tokens and handler.tokens[0].startswith(b"mgt2."), handler.tokens
    return handler.tokens


def test_an_unmapped_certificate_without_credentials_is_unauthenticated(mtls_server, pki):
    error = flight_refusal(mtls_server.uri, pki.ca.pem, pki.nobody)
    assert isinstance(error, flight.FlightUnauthenticatedError), describe_exc(error)
    assert server_message(error) == "invalid credentials"
    error = adbc_refusal(mtls_server.uri, pki.ca.pem, pki.nobody)
    assert adbc_grpc_code(error) == "UNAUTHENTICATED", describe_exc(error)
    # With Basic credentials on top, the certificate only opens the connection.
    client = pyarrow_client(mtls_server.uri, pki.ca.pem, pki.nobody)
    try:
        header = client.authenticate_basic_token("ana", "ana-demo")
        table = flight_sql_query(client, SQL, flight.FlightCallOptions(headers=[header]))
    finally:
        client.close()
    assert_same_rows(table, govmodel.expected("ana", SQL))


# --------------------------------------------------------------------------------------
# refusals: each with a clear error, the server keeps serving
# --------------------------------------------------------------------------------------


def test_an_expired_client_certificate_is_refused(mtls_server, pki):
    error = flight_refusal(mtls_server.uri, pki.ca.pem, pki.expired)
    assert isinstance(error, flight.FlightUnavailableError), describe_exc(error)
    error = adbc_refusal(mtls_server.uri, pki.ca.pem, pki.expired)
    assert adbc_grpc_code(error) == "UNAVAILABLE", describe_exc(error)
    assert "expired" in str(error).lower(), describe_exc(error)
    assert_logged(mtls_server, "TLS handshake failed", "certificate expired")
    assert_still_serving(mtls_server, pki)


def test_a_client_certificate_from_another_ca_is_refused(mtls_server, pki):
    error = flight_refusal(mtls_server.uri, pki.ca.pem, pki.foreign)
    assert isinstance(error, flight.FlightUnavailableError), describe_exc(error)
    error = adbc_refusal(mtls_server.uri, pki.ca.pem, pki.foreign)
    assert adbc_grpc_code(error) == "UNAVAILABLE", describe_exc(error)
    # Go sends no certificate the server's CA hints do not name; others send it anyway.
    assert re.search(r"tls: (certificate required|unknown certificate authority)", str(error)), describe_exc(error)
    assert_logged(mtls_server, "TLS handshake failed", "UnknownIssuer")
    assert_still_serving(mtls_server, pki)


def test_no_client_certificate_is_refused_when_required(mtls_server, pki):
    error = flight_refusal(mtls_server.uri, pki.ca.pem, None)
    assert isinstance(error, flight.FlightUnavailableError), describe_exc(error)
    error = adbc_refusal(mtls_server.uri, pki.ca.pem, None)
    assert adbc_grpc_code(error) == "UNAVAILABLE", describe_exc(error)
    assert "certificate required" in str(error).lower(), describe_exc(error)
    assert_logged(mtls_server, "TLS handshake failed", "no certificate")
    assert_still_serving(mtls_server, pki)


def test_a_server_certificate_the_client_does_not_trust_is_refused(mtls_server, pki):
    error = flight_refusal(mtls_server.uri, pki.other.pem, pki.stella)
    assert isinstance(error, flight.FlightUnavailableError), describe_exc(error)
    error = adbc_refusal(mtls_server.uri, pki.other.pem, pki.stella)
    assert adbc_grpc_code(error) == "UNAVAILABLE", describe_exc(error)
    assert "certificate" in str(error).lower(), describe_exc(error)
    assert_still_serving(mtls_server, pki)


def test_a_plaintext_client_is_told_to_use_tls(mtls_server, pki):
    plain = mtls_server.uri.replace("grpc+tls://", "grpc://")
    client = flight.FlightClient(plain)
    try:
        with pytest.raises(flight.FlightUnavailableError) as info:
            flight_sql_query(client, "SELECT 1")
    finally:
        client.close()
    assert "this port requires TLS: connect with grpc+tls://" in str(info.value), describe_exc(info.value)
    conn = adbc_connect(plain)
    try:
        with pytest.raises(Exception) as info:
            adbc_query(conn, "SELECT 1")
    finally:
        conn.close()
    assert adbc_grpc_code(info.value) == "UNAVAILABLE", describe_exc(info.value)
    assert "this port requires TLS" in str(info.value), describe_exc(info.value)
    assert_still_serving(mtls_server, pki)


def test_a_silent_connection_does_not_hold_up_others(mtls_server, pki):
    """A client that connects and sends nothing waits out its own handshake timeout;
    meanwhile others are served."""
    silent = [socket.create_connection(("127.0.0.1", mtls_server.port)) for _ in range(3)]
    try:
        started = time.monotonic()
        assert_still_serving(mtls_server, pki)
        assert time.monotonic() - started < 5
    finally:
        for s in silent:
            s.close()


def assert_logged(srv, *parts: str) -> None:
    """Some line of the server's log holds every part."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(all(p in line for p in parts) for line in srv.stderr_text().splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no log line with {parts}:\n{srv.stderr_text()[-4000:]}")


# --------------------------------------------------------------------------------------
# TLS without client certificates: Basic credentials over TLS
# --------------------------------------------------------------------------------------


def test_basic_credentials_over_tls_with_pyarrow_and_adbc(tls_server, pki):
    client = pyarrow_client(tls_server.uri, pki.ca.pem)
    try:
        header = client.authenticate_basic_token("ana", "ana-demo")
        table = flight_sql_query(client, SQL, flight.FlightCallOptions(headers=[header]))
        with pytest.raises(flight.FlightUnauthenticatedError):
            flight_sql_query(client, "SELECT 1")  # no credentials
    finally:
        client.close()
    assert_same_rows(table, govmodel.expected("ana", SQL))
    conn = adbc_tls(tls_server.uri, pki.ca.pem, user="stella")
    try:
        assert_same_rows(adbc_query(conn, SQL), govmodel.expected("stella", SQL))
    finally:
        conn.close()


def test_a_client_certificate_is_not_asked_for_without_a_client_ca(tls_server, pki):
    """Without --tls-client-ca a certificate the client offers is not a credential."""
    client = pyarrow_client(tls_server.uri, pki.ca.pem, pki.stella)
    try:
        with pytest.raises(flight.FlightUnauthenticatedError) as info:
            flight_sql_query(client, "SELECT 1")
    finally:
        client.close()
    assert "credentials required" in server_message(info.value)


# --------------------------------------------------------------------------------------
# reloading certificates
# --------------------------------------------------------------------------------------


def hangup(srv, expect: str) -> None:
    mark = len(srv.stderr_text())
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while expect not in srv.stderr_text()[mark:]:
        assert time.monotonic() < deadline, f"no '{expect}' after SIGHUP:\n{srv.stderr_text()[mark:]}"
        time.sleep(0.05)
    return srv.stderr_text()[mark:]


def test_sighup_reloads_the_server_certificate_without_dropping_connections(start_server, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.crt", "server.key"):
        shutil.copy(pki.server.cert.parent / name, live / name)
    served = Files(live / "server.crt", live / "server.key")
    config = mtls_mesh(tmp_path)
    srv = start_server(config, env=govmodel.MASK_ENV, name="tls-reload", args=tls_args(served, pki.ca_file))
    try:
        kept = pyarrow_client(srv.uri, pki.ca.pem, pki.ana)
        assert_same_rows(flight_sql_query(kept, SQL), govmodel.expected("ana", SQL))

        # A new server certificate from a new CA.
        renewed = pki.other.server(tmp_path / "renewed")
        shutil.copy(renewed.cert, served.cert)
        shutil.copy(renewed.key, served.key)
        hangup(srv, "TLS certificates reloaded")

        # The open connection goes on; new ones get the new certificate.
        assert_same_rows(flight_sql_query(kept, SQL), govmodel.expected("ana", SQL))
        assert_same_rows(pyarrow_rows(srv.uri, pki.other.pem, pki.stella), govmodel.expected("stella", SQL))
        error = flight_refusal(srv.uri, pki.ca.pem, pki.stella)
        assert isinstance(error, flight.FlightUnavailableError), describe_exc(error)

        # A broken key is refused naming the file; the certificate in use stays.
        served.key.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
        log = hangup(srv, "TLS certificates not reloaded")
        assert str(served.key) in log, log
        assert_same_rows(pyarrow_rows(srv.uri, pki.other.pem, pki.stella), govmodel.expected("stella", SQL))
        assert_same_rows(flight_sql_query(kept, SQL), govmodel.expected("ana", SQL))
        kept.close()
    finally:
        srv.stop(check=True)


# --------------------------------------------------------------------------------------
# configuration mistakes
# --------------------------------------------------------------------------------------


def start_failure(meshgate_bin, log_dir, config: Path | None, args: list[str]) -> str:
    with pytest.raises(ServerStartError) as info:
        Server(meshgate_bin, config, log_dir=log_dir, name="tls-bad", args=args).start()
    assert info.value.returncode == 2, info.value.stderr
    return info.value.stderr


def test_client_certificates_need_a_client_ca(meshgate_bin, log_dir, pki, tmp_path):
    stderr = start_failure(meshgate_bin, log_dir, mtls_mesh(tmp_path), tls_args(pki.server))
    assert "auth.client_certificates" in stderr and "--tls-client-ca" in stderr, stderr


@pytest.mark.parametrize(
    "change, path, text",
    [
        ({"rules": [{"match": "svc-[a-z", "groups": ["analyst"]}]}, "auth.client_certificates.rules[0].match",
         "not a regular expression"),
        ({"name_from": "subject"}, "auth.client_certificates.name_from", "unknown variant"),
        ({"users": False, "rules": []}, "auth.client_certificates", "set `users: true` or add `rules`"),
        ({"rules": [{"match": "svc-.*", "attributes": {"region": 1}}]},
         "auth.client_certificates.rules[0].attributes.region", "unknown attribute"),
        ({"rules": [{"pattern": "svc-.*"}]}, "auth.client_certificates.rules[0]", "unknown field `pattern`"),
    ],
)
def test_bad_client_certificate_rules_are_errors_by_path(meshgate_bin, log_dir, pki, tmp_path, change, path, text):
    spec = {**CLIENT_CERTIFICATES, **change}
    stderr = start_failure(meshgate_bin, log_dir, mtls_mesh(tmp_path, spec), tls_args(pki.server, pki.ca_file))
    lines = [line for line in stderr.splitlines() if path in line]
    assert lines and any(text in line for line in lines), stderr


def test_unreadable_tls_files_stop_the_server_naming_the_file(meshgate_bin, log_dir, pki, tmp_path):
    missing = tmp_path / "missing.crt"
    stderr = start_failure(meshgate_bin, log_dir, DEMO_CONFIG, ["--tls-cert", str(missing), "--tls-key", str(pki.server.key)])
    assert f"meshgate: TLS: cannot read {missing}" in stderr, stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    stderr = start_failure(meshgate_bin, log_dir, DEMO_CONFIG, tls_args(pki.server, not_pem))
    assert f"{not_pem} holds no certificate" in stderr, stderr
    # Another certificate's key.
    stderr = start_failure(meshgate_bin, log_dir, DEMO_CONFIG,
                           ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.ana.key)])
    assert f"the key in {pki.ana.key} does not fit the certificate in {pki.server.cert}" in stderr, stderr
    # --tls-key without --tls-cert is a usage error.
    stderr = start_failure(meshgate_bin, log_dir, DEMO_CONFIG, ["--tls-key", str(pki.server.key)])
    assert "--tls-cert" in stderr, stderr
