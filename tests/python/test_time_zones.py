"""Time zones: zone-aware values keep their zone (issue: TIMESTAMPTZ literals, casts
and to_timestamp() came back as naive timestamps).

Sessions start in the server's `--time-zone` (UTC by default); a session sets its own
with the `time_zone` option (SetSessionOptions, kept in the signed cookie) or a call
with the `x-meshgate-time-zone` header. The zone travels in the ticket, so DoGet plans
exactly what GetFlightInfo described. Through ADBC and pyarrow.flight.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import DEMO_CONFIG, adbc_connect, flight_grpc_code, server_message
from test_sessions import INVALID_VALUE, Session, failure

ZONED = (
    "SELECT TIMESTAMP WITH TIME ZONE '2024-03-10 12:00:00+02:00' AS literal, "
    "CAST('2024-03-10 12:00:00' AS TIMESTAMPTZ) AS cast_, "
    "to_timestamp('2024-03-10T12:00:00Z') AS parsed, "
    "now() AS now_"
)


@pytest.fixture(scope="module")
def server(start_server):
    srv = start_server(DEMO_CONFIG, name="time-zones")
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="module")
def paris_server(start_server):
    srv = start_server(DEMO_CONFIG, name="time-zones-paris", args=["--time-zone", "Europe/Paris"])
    yield srv
    srv.stop(check=True)


def zones(table: pa.Table) -> dict[str, str | None]:
    return {field.name: getattr(field.type, "tz", "not a timestamp") for field in table.schema}


def test_zone_aware_values_keep_their_zone_in_utc_by_default(server):
    conn = adbc_connect(server.uri, "stella")
    try:
        with conn.cursor() as cur:
            cur.execute(ZONED)
            table = cur.fetch_arrow_table()
    finally:
        conn.close()
    assert zones(table) == {"literal": "UTC", "cast_": "UTC", "parsed": "UTC", "now_": "UTC"}
    row = table.to_pylist()[0]
    # the +02:00 literal is the same instant as 10:00 UTC
    assert row["literal"] == dt.datetime(2024, 3, 10, 10, 0, tzinfo=dt.timezone.utc)
    assert row["parsed"] == dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.timezone.utc)


def test_the_server_zone_applies_and_a_session_or_call_sets_its_own(paris_server):
    session = Session(paris_server.uri, "stella")
    try:
        table = session.query(ZONED)
        assert set(zones(table).values()) == {"Europe/Paris"}
        # 12:00 in Paris (winter time, UTC+1) is 11:00 UTC
        instant = table.column("cast_")[0].as_py()
        assert instant.astimezone(dt.timezone.utc) == dt.datetime(2024, 3, 10, 11, 0, tzinfo=dt.timezone.utc)

        assert session.set({"time_zone": "America/New_York"}) == {}
        assert session.get()["time_zone"] == "America/New_York"
        table = session.query(ZONED)
        assert set(zones(table).values()) == {"America/New_York"}
        # the ticket carries the zone: the schema GetFlightInfo announced is what DoGet sent
        info = session.info(ZONED)
        assert info.schema == table.schema

        # a call header wins over the session
        table = session.query(ZONED, headers=[("x-meshgate-time-zone", "+05:30")])
        assert set(zones(table).values()) == {"+05:30"}
        hour = session.scalar(
            "SELECT extract(hour FROM CAST('2024-06-15 02:00:00+00:00' AS TIMESTAMPTZ)) AS h",
            headers=[("x-meshgate-time-zone", "America/New_York")],
        )
        assert hour == 22  # 02:00 UTC is 22:00 the evening before in New York (EDT)
    finally:
        session.close()


def test_unknown_zones_are_refused_and_the_server_keeps_serving(server, start_server, tmp_path):
    session = Session(server.uri, "stella")
    try:
        assert session.set({"time_zone": "Mars/Olympus_Mons"}) == {"time_zone": INVALID_VALUE}
        error = failure(session.query, "SELECT 1 AS one", headers=[("x-meshgate-time-zone", "Nowhere/Else")])
        assert flight_grpc_code(error) == "INVALID_ARGUMENT", error
        assert "x-meshgate-time-zone" in server_message(error) and "Nowhere/Else" in server_message(error)
        assert session.scalar("SELECT 1 AS one") == 1
    finally:
        session.close()
    from mgtest import Server, ServerStartError, meshgate_bin_path

    bad = Server(meshgate_bin_path(), DEMO_CONFIG, log_dir=tmp_path, name="bad-zone", args=["--time-zone", "Atlantis"])
    with pytest.raises(ServerStartError) as refused:
        bad.start()
    assert "Atlantis" in str(refused.value)
