"""The three ways of running the same SQL text over the same files.

    meshgate    over Flight SQL with the ADBC client (adbc_driver_flightsql)
    datafusion  in-process with datafusion-python, tables registered as <domain>.<table>
    duckdb      in-process, views <domain>.<table> over read_parquet()

Each engine has run(sql) -> pyarrow.Table and batches(sql) -> iterator of
pyarrow.RecordBatch (for streaming a large result without keeping it).
"""

from __future__ import annotations

import os

from . import data


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Meshgate:
    name = "meshgate"

    def __init__(self, uri: str, user: str | None = None, password: str | None = None):
        import adbc_driver_flightsql.dbapi as flightsql

        # autocommit=True: Flight SQL has no transactions here; without it the DB-API
        # wrapper tries to turn autocommit off and warns that it cannot.
        login = {"username": user, "password": password} if user else None
        self._connect = lambda: flightsql.connect(uri, db_kwargs=login, autocommit=True)
        self.uri = uri
        self.conn = self._connect()
        self.cur = self.conn.cursor()

    def connect(self):
        """A new, independent connection (for concurrent clients)."""
        return self._connect()

    def run(self, sql: str):
        self.cur.execute(sql)
        return self.cur.fetch_arrow_table()

    def batches(self, sql: str):
        self.cur.execute(sql)
        reader = self.cur.fetch_record_batch()
        try:
            yield from reader
        finally:
            reader.close()

    def close(self) -> None:
        for c in (self.cur, self.conn):
            try:
                c.close()
            except Exception:
                pass


class DataFusion:
    name = "datafusion"

    def __init__(self, data_dir: str):
        from datafusion import SessionContext

        self.ctx = SessionContext()
        for domain, spec in data.DOMAINS.items():
            self.ctx.sql(f"CREATE SCHEMA {domain}")
            for table in spec["products"]:
                loc = os.path.abspath(data.table_dir(data_dir, table)) + "/"
                self.ctx.sql(
                    f"CREATE EXTERNAL TABLE {domain}.{table} STORED AS PARQUET LOCATION {_sql_str(loc)}"
                )

    def run(self, sql: str):
        return self.ctx.sql(sql).to_arrow_table()

    def batches(self, sql: str):
        for batch in self.ctx.sql(sql).execute_stream():
            yield batch.to_pyarrow()

    def close(self) -> None:
        pass


class DuckDB:
    name = "duckdb"

    def __init__(self, data_dir: str):
        import duckdb

        self.con = duckdb.connect()
        for domain, spec in data.DOMAINS.items():
            self.con.execute(f"CREATE SCHEMA {domain}")
            for table in spec["products"]:
                pattern = os.path.join(os.path.abspath(data.table_dir(data_dir, table)), "*.parquet")
                self.con.execute(
                    f"CREATE VIEW {domain}.{table} AS SELECT * FROM read_parquet({_sql_str(pattern)})"
                )

    def run(self, sql: str):
        return self.con.sql(sql).to_arrow_table()

    def batches(self, sql: str):
        reader = self.con.sql(sql).to_arrow_reader(122_880)
        try:
            yield from reader
        finally:
            reader.close()

    def close(self) -> None:
        self.con.close()
