"""Columnar reads from the orders database: SQLite through ADBC, PostgreSQL through COPY, both into Arrow.

Both paths hand back Arrow batches whose columns are all *text* (NULL kept apart from ''), so that typing
happens once, in DuckDB (`coerce`), with the same rules for both databases: that is what makes the SQLite
and PostgreSQL paths land identical rows. Each source reads inside one read-only transaction (a consistent
snapshot), so orders and their items come from the same moment.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote as urlquote

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from rapport.extractors.errors import SourceConfigError, redact_url

log = logging.getLogger(__name__)

_JULIAN_UNIX_EPOCH = 2440587.5
# SQLite's julianday() is a double (~50 µs resolution at today's dates): the SQL window is widened by this
# slack and the exact window is applied in DuckDB after typing.
_SLACK = timedelta(seconds=1)


def qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Regroup the driver's record batches (any size) into tables of `rows` rows (the last one shorter)."""
    buf: list[pa.RecordBatch] = []
    n = 0
    for b in batches:
        while b.num_rows:
            take = b.slice(0, rows - n)  # zero-copy
            b = b.slice(take.num_rows)
            buf.append(take)
            n += take.num_rows
            if n == rows:
                yield pa.Table.from_batches(buf)
                buf, n = [], 0
    if buf:
        yield pa.Table.from_batches(buf)


class SqlSource:
    """Common interface. `select` is a list of (output name, source column or None for a missing one)."""

    dialect = ""

    def __enter__(self) -> SqlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def ts_window(self, column: str, lo: datetime | None, hi: datetime) -> str:
        raise NotImplementedError

    def ts_after(self, column: str, ts: datetime) -> str:
        """Rows whose `column` is later than `ts` (records dated in the future), a superset of them."""
        raise NotImplementedError

    def count(self, table: str) -> int:
        return int(self._query(f"select count(*) from {qi(table)}")[0][0])

    def _query(self, sql: str) -> list[tuple]:
        """All rows of a small query, inside the source's transaction."""
        raise NotImplementedError

    def date_upto(self, column: str, hi: date) -> str:
        raise NotImplementedError

    def stream(self, select: list[tuple[str, str | None]], from_where: str, batch_rows: int) -> Iterator[pa.Table]:
        raise NotImplementedError


class SqliteSource(SqlSource):
    """ADBC's SQLite driver streams Arrow. It infers a column's type from the first rows it sees, so every
    value is cast to text in SQL, and a sentinel first row of non-NULL text fixes all column types (a column
    that starts with a run of NULLs would otherwise be inferred as int64 and fail on the first string)."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        if not Path(path).is_file():  # a file that is not there will not appear on a retry
            raise SourceConfigError(
                f"orders database not found: {path} (RAPPORT_ORDERS_DB_URL): point RAPPORT_ORDERS_DB_URL at the "
                "shop's database (sqlite:///path/shop.db or postgresql+psycopg://...), or run `rapport generate`"
            )
        self._conn = adbc_sqlite.connect(f"file:{urlquote(str(Path(path).resolve()))}?mode=ro")
        try:
            self._cur = self._conn.cursor()
            # bigger driver batches: fewer Python round trips per million rows
            self._cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
            # SQLite opens lazily: read the schema now, so that a file that is not a database, or one locked
            # by a writer, fails here (where the extractor retries) rather than in the middle of a read
            self._cur.execute("select count(*) from sqlite_master")
            self._cur.fetchall()
        except Exception:
            self._conn.close()
            raise
        # autocommit is off: the driver holds one read transaction, a consistent snapshot for all reads

    def close(self) -> None:
        self._cur.close()
        self._conn.rollback()
        self._conn.close()

    def _query(self, sql: str) -> list[tuple]:
        self._cur.execute(sql)
        return self._cur.fetchall()

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self._query(f"select name from pragma_table_info('{table}')")]

    @staticmethod
    def _jd(ts: datetime) -> float:
        """julianday() of a naive UTC datetime."""
        return (ts - datetime(1970, 1, 1)).total_seconds() / 86400.0 + _JULIAN_UNIX_EPOCH

    def ts_window(self, column: str, lo: datetime | None, hi: datetime) -> str:
        # text that SQLite cannot read as a time (or a non-text value) is selected too, so that typing can
        # quarantine it instead of it being silently skipped forever
        c = qi(column)
        jd = f"julianday({c})"
        bounds = f"{jd} <= {self._jd(hi + _SLACK)!r}"
        if lo is not None:
            bounds = f"{jd} > {self._jd(lo - _SLACK)!r} and {bounds}"
        return f"(typeof({c}) <> 'text' or {jd} is null or ({bounds}))"

    def ts_after(self, column: str, ts: datetime) -> str:
        return f"(typeof({qi(column)}) = 'text' and julianday({qi(column)}) > {self._jd(ts - _SLACK)!r})"

    def date_upto(self, column: str, hi: date) -> str:
        c = qi(column)
        return f"(typeof({c}) <> 'text' or date({c}) is null or date({c}) <= '{hi.isoformat()}')"

    def stream(self, select: list[tuple[str, str | None]], from_where: str, batch_rows: int) -> Iterator[pa.Table]:
        sentinel = ", ".join(["'' as _sentinel"] + [f"'' as {qi(n)}" for n, _ in select])
        body = ", ".join(["null"] + [f"cast({'t.' + qi(c) if c else 'null'} as text)" for _n, c in select])
        self._cur.execute(f"select {sentinel} union all select {body} from {from_where}")
        reader = self._cur.fetch_record_batch()
        first = True
        for table in _rebatch(iter(reader), batch_rows):
            if first and table.num_rows and table.column("_sentinel")[0].is_valid:
                table = table.slice(1)  # SQLite returns the first select of a UNION ALL first
            first = False
            if table.column("_sentinel").null_count != table.num_rows:  # not where expected: filter it out
                table = table.filter(table.column("_sentinel").is_null())
            yield table.drop_columns(["_sentinel"])


class _CopyReader(io.RawIOBase):
    """A file object over psycopg's COPY chunks, so pyarrow's streaming CSV reader can consume them."""

    def __init__(self, chunks: Iterator[memoryview | bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buf:
            try:
                self._buf = bytes(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class PostgresSource(SqlSource):
    """`COPY (select ...) TO STDOUT (FORMAT csv)` streamed through pyarrow's CSV reader: columnar, no
    per-row Python, constant memory. Runs in a REPEATABLE READ, READ ONLY transaction in UTC."""

    dialect = "postgresql"

    def __init__(self, url: sa.URL) -> None:
        self._engine = sa.create_engine(url.set(drivername="postgresql+psycopg"), poolclass=sa.NullPool)
        try:
            self._raw = self._engine.raw_connection()
        except Exception:
            self._engine.dispose()
            raise
        self._pg = self._raw.driver_connection
        self._pg.rollback()  # whatever the dialect ran on connect: the snapshot must start below
        with self._pg.cursor() as cur:
            cur.execute("set transaction isolation level repeatable read, read only")
            cur.execute("set time zone 'UTC'")

    def close(self) -> None:
        try:
            self._pg.rollback()
        finally:
            self._raw.close()
            self._engine.dispose()

    def _query(self, sql: str) -> list[tuple]:
        with self._pg.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    def columns(self, table: str) -> list[str]:
        with self._pg.cursor() as cur:
            cur.execute(f"select * from {qi(table)} limit 0")
            return [d.name for d in cur.description or []]

    def ts_window(self, column: str, lo: datetime | None, hi: datetime) -> str:
        # untyped literals take the column's type (timestamp or timestamptz: both fine in UTC), keeping
        # an index on the column usable
        c = qi(column)
        cond = f"{c} <= '{hi.isoformat(sep=' ')}+00'"
        if lo is not None:
            cond = f"{c} > '{lo.isoformat(sep=' ')}+00' and {cond}"
        return f"({cond})"

    def ts_after(self, column: str, ts: datetime) -> str:
        return f"({qi(column)} > '{ts.isoformat(sep=' ')}+00')"

    def date_upto(self, column: str, hi: date) -> str:
        return f"({qi(column)} <= '{hi.isoformat()}')"

    def stream(self, select: list[tuple[str, str | None]], from_where: str, batch_rows: int) -> Iterator[pa.Table]:
        names = [n for n, _ in select]
        body = ", ".join(f"{'t.' + qi(c) if c else 'null'}::text as {qi(n)}" for n, c in select)
        sql = f"copy (select {body} from {from_where}) to stdout (format csv)"
        with self._pg.cursor() as cur, cur.copy(sql) as copy:
            reader = pacsv.open_csv(
                io.BufferedReader(_CopyReader(iter(copy)), 1 << 20),
                read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22, use_threads=False),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                # COPY csv writes NULL unquoted-empty and '' as "": keep them apart
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
            yield from _rebatch(iter(reader), batch_rows)


def open_source(url: str) -> SqlSource:
    """Open the orders database named by a SQLAlchemy URL (sqlite:///path or postgresql[+psycopg]://...)."""
    expected = "sqlite:///path/shop.db or postgresql+psycopg://user@host/db"
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise SourceConfigError(
            f"RAPPORT_ORDERS_DB_URL={redact_url(url)!r} is not a database URL: expected {expected}"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise SourceConfigError(f"RAPPORT_ORDERS_DB_URL needs a file path: {parsed!r} (expected {expected})")
        return SqliteSource(parsed.database)
    if backend == "postgresql":
        return PostgresSource(parsed)
    raise SourceConfigError(
        f"RAPPORT_ORDERS_DB_URL: unsupported orders database {backend!r} (supported: sqlite, postgresql: {expected})"
    )
