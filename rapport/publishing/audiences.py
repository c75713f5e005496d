"""Audience exports: for each RFM segment, a CSV of the customers a marketer may upload to an email tool, and
two from the customer predictions: high-value customers likely to churn, and customers likely to buy again.

Read from the marts (`customers` + `customer_segments` + `customer_predictions`), usually the freshly
published file. The prediction files use the report's conditions (rapport.reports.prediction_data), so
their counts match the report's "Who to act on: predictions"; every file has the same columns, the
predictions among them (empty where a customer has none). Only people
who can be emailed are exported: email status `subscribed` and a `marketing_email` (the address of a
subscribed ESP contact that no unsubscribed or cleaned contact shares), so unsubscribed, cleaned and
no-contact customers never appear; nor does an address that is not a valid email address (`is_valid_email`:
`=HYPERLINK(...)@x.com` is no address to upload). Cells a spreadsheet would read as a formula get a leading
apostrophe, except valid addresses (`-dash@x.com`, `+tag@x.com` are real addresses an ESP must get intact;
an unquoted address cannot hold the spaces, quotes or parentheses of a function call). Every segment gets
a file on every run, empty ones with a header only, so a file never lingers from an earlier run. Files are
written atomically (temp file, then os.replace): an uploader reading the folder sees the previous or the new
file, never half of one.

DuckDB does the work (issue 16: a Python loop per cell was most of the report stage at a million people): it
selects, validates and de-duplicates the rows, formats every cell and quotes it as Python's csv module does, and
returns the lines as one Arrow array, grouped by file; Python writes each file's run of its bytes as they are.
The text is byte for byte what the former per-row Python code wrote
(`neutralise`, `first_name_of` and tests/test_audiences_sql.py hold the definitions). Addresses are checked with
the project's `is_valid_email`: plain ones (`PLAIN_ADDRESS`, which that function accepts without asking the
validator) in SQL, the rest through it as a UDF registered for the export's duration.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb import sqltypes
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from rapport.core.warehouse import table_exists
from rapport.reports.prediction_data import HIGH_VALUE_CHURN, LIKELY_TO_BUY, REVENUE_AT_RISK_SQL
from rapport.transform.udfs import PLAIN_ADDRESS, is_valid_email

log = logging.getLogger(__name__)

# All rfm_segment values, in the order the report lists them.
SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Cannot Lose Them",
    "Hibernating",
    "No Purchases",
)

COLUMNS: tuple[str, ...] = (
    "email",
    "first_name",
    "full_name",
    "segment",
    "lifecycle_stage",
    "value_tier",
    "engagement_tier",
    "recency_days",
    "order_count",
    "lifetime_revenue_usd",
    "avg_order_value_usd",
    "last_order_at",
    "country",
    "customer_id",
    "as_of_date",
    # from marts.customer_predictions, empty where the customer has none (no paid order, or no fit)
    "churn_risk",
    "p_alive",
    "p_order_90d",
    "predicted_clv_365d_usd",
    "revenue_at_risk_usd",  # what the report calls revenue at risk (rapport.reports.prediction_data)
)


@dataclass(frozen=True)
class PredictedAudience:
    """An audience file chosen by the predictions: `condition` on `s` (segments) and `p` (predictions)."""

    slug: str
    condition: str
    order: str


# In this order after the segment files. Most valuable to act on first.
PREDICTED_AUDIENCES: tuple[PredictedAudience, ...] = (
    PredictedAudience(
        "likely-to-churn-high-value", HIGH_VALUE_CHURN, f"{REVENUE_AT_RISK_SQL} desc, s.monetary_usd desc"
    ),
    PredictedAudience("likely-to-buy-again", LIKELY_TO_BUY, "p.p_order_90d desc, p.expected_revenue_90d_usd desc"),
)
_PREDICTIONS = "marts.customer_predictions"
# A file published before the predictions existed: the same columns, no rows.
_NO_PREDICTIONS = (
    "(select null::varchar as customer_id, null::varchar as churn_risk, null::double as p_alive, "
    "null::double as p_order_90d, null::double as predicted_clv_365d_usd, null::double as expected_revenue_90d_usd "
    "where false)"
)

# The candidate rows of one kind of file, typed as in the marts: `file` names the file a row goes to, `position`
# is the row's place in the file's order (before invalid addresses and repeated addresses are left out).
_RECORDS = """
    select
        {file} as file,
        s.marketing_email as email,
        nullif(regexp_extract(c.full_name, '{first_word}', 1), '') as first_name,
        c.full_name,
        s.rfm_segment as segment,
        s.lifecycle_stage,
        s.value_tier,
        s.engagement_tier,
        s.recency_days,
        c.order_count,
        c.lifetime_revenue_usd,
        c.avg_order_value_usd,
        c.last_order_at,
        c.country,
        s.customer_id,
        s.as_of_date,
        p.churn_risk,
        p.p_alive::decimal(6, 4) as p_alive,
        p.p_order_90d::decimal(6, 4) as p_order_90d,
        p.predicted_clv_365d_usd::decimal(18, 2) as predicted_clv_365d_usd,
        (case when p.p_alive is not null then {revenue_at_risk} end)::decimal(18, 2)
            as revenue_at_risk_usd,
        row_number() over (order by {order}, s.customer_id) as position
    from marts.customer_segments as s
    inner join marts.customers as c on s.customer_id = c.customer_id
    left join {predictions} as p on s.customer_id = p.customer_id
    where c.email_status = 'subscribed' and s.marketing_email is not null and ({condition})
"""
# The lines of the files after their header: each valid address once per file (its first row in the file's order),
# every cell as the text the CSV holds, quoted as Python's csv module quotes it (QUOTE_MINIMAL: a field holding the
# delimiter, the quote or a line break is quoted, quotes doubled), lines ended by csv's "\r\n". Rows `file`,
# `position`, `line`, by file and then in the file's order, so that each file's text is one contiguous run of the
# lines' bytes (issue 16: cheaper than string_agg per file); then a row with no file whose `line` is the number of
# rows left out because their address is no valid email address.
_FILE_LINES = """
    with records as ({records}),

    addressed as materialized (
        select *, {address_key} as address_key
        from records
    ),

    -- positions are unique; a group by, since `qualify row_number() ... = 1` took several times as long at 1M rows
    first_positions as (
        select min(position) as position
        from addressed
        where address_key is not null
        group by file, address_key
    ),

    first_per_address as (
        select *
        from addressed
        semi join first_positions using (position)
    ),

    cells as (
        select
            file,
            position,
            {cells}
        from first_per_address
    ),

    lines as (
        select file, position, concat_ws(',', {fields}) || chr(13) || chr(10) as line
        from cells
    ),

    invalid_addresses as (
        select null as file, null as position, count(*)::varchar as line
        from addressed
        where address_key is null
    )

    select file, position, line
    from (select * from lines union all select * from invalid_addresses)
    order by file nulls last, position
"""
_SEGMENT_ORDER = "s.rfm_segment, s.monetary_usd desc"
# A segment file per rfm_segment; a null segment went to `none.csv` (str(None)) and still does.
_SEGMENT_FILE = "coalesce(s.rfm_segment, 'None')"

# A cell a spreadsheet would read as a formula (CSV injection): text starting with one of these.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# Python's white space (str.isspace, what str.split() and str.strip() use), as RE2 escapes for first_name;
# tests/test_audiences_sql.py checks it against Python.
PYTHON_WHITESPACE = (
    0x09,
    0x0A,
    0x0B,
    0x0C,
    0x0D,
    0x1C,
    0x1D,
    0x1E,
    0x1F,
    0x20,
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
_WHITESPACE_CLASS = "".join(f"\\x{{{c:x}}}" for c in PYTHON_WHITESPACE)
_FIRST_WORD = f"^[{_WHITESPACE_CLASS}]*([^{_WHITESPACE_CLASS}]+)"

# UDFs registered on the connection for the export's duration: the project's is_valid_email for the few cells the
# SQL fast paths leave to it. Private names, so a connection that has the project's UDFs keeps them.
_VALID_UDF = "_rapport_audiences_is_valid_email"
_KEY_UDF = "_rapport_audiences_address_key"


def slugify(name: str) -> str:
    """File-name form of a segment: 'Cannot Lose Them' -> 'cannot-lose-them'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "segment"


def neutralise(value: object) -> object:
    """Text that a spreadsheet would evaluate gets a leading apostrophe, unless it is a valid email address;
    numbers and dates stay as they are. (The definition: the files apply it in SQL, `_text_sql`, which
    tests/test_audiences_sql.py checks against this function.)"""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES) and not is_valid_email(value):
        return "'" + value
    return value


def first_name_of(full_name: str | None) -> str | None:
    """The first word of the full name (the whole name when it has one word, e.g. many Korean names).
    (The definition: the files take it in SQL, `_FIRST_WORD`, checked against this function.)"""
    if not full_name or not full_name.strip():
        return None
    return full_name.split()[0]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _text_sql(expr: str) -> str:
    """`neutralise` in SQL; the validity check (a Python UDF) runs only on text starting like a formula
    (`unicode()` is the first code point, what str.startswith compares)."""
    like_formula = f"unicode({expr}) in ({', '.join(str(ord(prefix)) for prefix in _FORMULA_PREFIXES)})"
    return (
        f"case when {like_formula} then (case when {_VALID_UDF}({expr}) then {expr} else '''' || {expr} end) "
        f"else coalesce({expr}, '') end"
    )


_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)


def _cell_sql(expr: str, sql_type: str) -> str:
    """SQL giving the text Python wrote for this column's values (csv.writer of what the former per-cell
    formatting made of DuckDB's Python values): '' for null; a Decimal normalised, in fixed point
    (250.5000 -> 250.5, 100.0000 -> 100, 0.0000 -> 0; Python's 28-digit context never rounded the columns'
    at most 18 digits); datetime.isoformat(sep=" ") (microseconds only when not zero, then all six digits);
    date.isoformat(); str() of an integer; text `neutralise`d."""
    if sql_type == "VARCHAR":
        return _text_sql(expr)
    if sql_type.startswith("DECIMAL("):
        text = f"cast({expr} as varchar)"  # every digit of the scale, e.g. 250.5000
        if sql_type.rstrip(")").split(",")[1].strip() != "0":
            text = f"rtrim(rtrim({text}, '0'), '.')"
        return f"coalesce({text}, '')"
    if sql_type == "TIMESTAMP":
        return (
            f"coalesce(case when strftime({expr}, '%f') = '000000' then strftime({expr}, '%Y-%m-%d %H:%M:%S') "
            f"else strftime({expr}, '%Y-%m-%d %H:%M:%S.%f') end, '')"
        )
    if sql_type == "DATE":
        return f"coalesce(strftime({expr}, '%Y-%m-%d'), '')"
    if sql_type in _INTEGER_TYPES:
        return f"coalesce(cast({expr} as varchar), '')"
    # e.g. DOUBLE (Python wrote repr(float)) or TIMESTAMP WITH TIME ZONE: no SQL here is shown to give that text
    raise TypeError(f"audience files: no CSV text defined for a {sql_type} column ({expr}); add it to _cell_sql")


def _address_key_sql(expr: str) -> str:
    """The address as the files de-duplicate it (`address.strip().lower()`), null when `is_valid_email` says it
    is no address. An address of the plain shape (rapport.transform.udfs.PLAIN_ADDRESS: most of them) is valid
    by that function's own first test (`is_plain_address`) and is ASCII without white space, so its key is
    lower() in SQL; only the others go to the Python UDF."""
    special = ", ".join(_literal(name) for name in sorted(SPECIAL_USE_DOMAIN_NAMES))
    plain = f"regexp_full_match({expr}, {_literal(PLAIN_ADDRESS.pattern)})"
    # the pattern's group 1 (the top-level domain) is, after a full match, the letters ending the address (a dot
    # comes before them); regexp_extract of the group itself took 6 times as long
    top_level = f"lower(regexp_extract({expr}, '[A-Za-z]+$'))"
    return (
        f"case when {plain} and not list_contains([{special}], {top_level}) then lower({expr}) "
        f"else {_KEY_UDF}({expr}) end"
    )


def _address_key(address: str | None) -> str | None:
    return address.strip().lower() if address is not None and is_valid_email(address) else None


def _arrow_udf(function: Callable[[str | None], object], returns: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    def call(values: pa.Array) -> pa.Array:
        return pa.array([function(value) for value in values.to_pylist()], type=returns)

    return call


@contextmanager
def _udfs(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The two UDFs, for the export's duration (a caller's connection is left as it was)."""
    con.create_function(
        _VALID_UDF,
        _arrow_udf(is_valid_email, pa.bool_()),
        [sqltypes.VARCHAR],
        sqltypes.BOOLEAN,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    try:
        con.create_function(
            _KEY_UDF,
            _arrow_udf(_address_key, pa.string()),
            [sqltypes.VARCHAR],
            sqltypes.VARCHAR,
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
        try:
            yield
        finally:
            con.remove_function(_KEY_UDF)
    finally:
        con.remove_function(_VALID_UDF)


@contextmanager
def _connection(con_or_db_path: duckdb.DuckDBPyConnection | str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(con_or_db_path, str | Path):
        con = duckdb.connect(str(con_or_db_path), read_only=True)
        try:
            yield con
        finally:
            con.close()
    else:
        yield con_or_db_path


def _header() -> bytes:
    text = io.StringIO(newline="")
    csv.writer(text).writerow(COLUMNS)
    return text.getvalue().encode("utf-8")


def _write_atomically(path: Path, lines: bytes | memoryview) -> None:
    """The header, then `lines` (the file's lines, UTF-8, ready), into a temp file that then replaces `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(_header())
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def audience_paths(out_dir: Path) -> list[Path]:
    """Every file `export_audiences` writes into `out_dir` (for the contract's segments), in its order."""
    slugs = [slugify(segment) for segment in SEGMENTS] + [a.slug for a in PREDICTED_AUDIENCES]
    return [Path(out_dir) / f"{slug}.csv" for slug in slugs]


def _records_sql(con: duckdb.DuckDBPyConnection, condition: str, order: str, file: str) -> str:
    has_predictions = table_exists(con, *_PREDICTIONS.split("."))
    return _RECORDS.format(
        file=file,
        first_word=_FIRST_WORD,
        predictions=_PREDICTIONS if has_predictions else _NO_PREDICTIONS,
        condition=condition,
        order=order,
        revenue_at_risk=REVENUE_AT_RISK_SQL,
    )


def _csv_field_sql(column: str) -> str:
    """csv.writer's QUOTE_MINIMAL of a text cell (never null): quoted when it holds a comma, a quote, CR or LF."""
    needs_quotes = " or ".join(f"contains({column}, {char})" for char in ("','", "'\"'", "chr(13)", "chr(10)"))
    return f"""case when {needs_quotes} then '"' || replace({column}, '"', '""') || '"' else {column} end"""


def _files_text(con: duckdb.DuckDBPyConnection, records: str) -> tuple[dict[str, memoryview], int]:
    """The files' lines after the header (UTF-8), by `file` in the order of the files' first rows (a file without
    rows is absent); and how many records were left out for an invalid address."""
    relation = con.sql(records)  # bound, not run: the columns' types choose their formatting
    types = dict(zip(relation.columns, (str(t) for t in relation.types), strict=True))
    cells = ",\n            ".join(f"{_cell_sql(column, types[column])} as {column}" for column in COLUMNS)
    # only text can hold a comma, a quote or a line break: numbers and dates never need quoting
    fields = ", ".join(_csv_field_sql(c) if types[c] == "VARCHAR" else c for c in COLUMNS)
    sql = _FILE_LINES.format(records=records, address_key=_address_key_sql("email"), cells=cells, fields=fields)
    table = con.sql(sql).to_arrow_table()
    invalid = int(table.column("line")[-1].as_py())  # the last row: the count, no file
    table = table.slice(0, table.num_rows - 1)
    if not table.num_rows:
        return {}, invalid
    # one Arrow array of all lines: its data buffer holds them back to back, so a file's text is a slice of it
    lines = table.column("line").cast(pa.large_string()).combine_chunks()
    offsets = memoryview(lines.buffers()[1]).cast("q")[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2])
    runs = pc.run_end_encode(table.column("file").combine_chunks())  # rows are grouped by file
    files, ends = runs.values.to_pylist(), runs.run_ends.to_pylist()
    starts = [0, *ends[:-1]]
    first_positions = pc.take(table.column("position"), pa.array(starts, pa.int64())).to_pylist() if starts else []
    texts = {
        file: data[offsets[start] : offsets[end]]
        for _, file, start, end in sorted(zip(first_positions, files, starts, ends, strict=True))
    }
    return texts, invalid


def export_audiences(con_or_db_path: duckdb.DuckDBPyConnection | str | Path, out_dir: Path) -> list[Path]:
    """Write `{out_dir}/{slug}.csv` for every rfm_segment, then the PREDICTED_AUDIENCES files; return the
    paths in that order (`audience_paths`, plus a file for any segment name the contract does not list).

    `con_or_db_path` is an open DuckDB connection holding the `marts` schema, or the path of a DuckDB file
    (opened read-only, e.g. the published `rapport.duckdb`). DuckDB selects, de-duplicates and formats the
    rows and returns their lines; Python writes them.
    """
    from rapport.reports.files import remove_stale_temp_files

    remove_stale_temp_files(out_dir)  # a killed export's half-written files hold full addresses
    with _connection(con_or_db_path) as con, _udfs(con):
        found, invalid = _files_text(con, _records_sql(con, "true", _SEGMENT_ORDER, _SEGMENT_FILE))
        # the same people as the segment files: their invalid addresses are counted once, above
        predicted = [_files_text(con, _records_sql(con, a.condition, a.order, "''"))[0] for a in PREDICTED_AUDIENCES]

    # every contract segment gets a file, empty ones too; a segment name this module does not know is still exported
    by_segment = {segment: found.pop(segment, b"") for segment in SEGMENTS} | found
    files = {f"{slugify(segment)}.csv": text for segment, text in by_segment.items()}
    for audience, texts in zip(PREDICTED_AUDIENCES, predicted, strict=True):
        files[f"{audience.slug}.csv"] = texts.get("", b"")

    if invalid:  # counted per source in marts.email_address_quality
        log.warning(
            "audience files: left out %d customer(s) whose marketing address is not a valid email address", invalid
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        path = out_dir / name
        _write_atomically(path, text)
        paths.append(path)
    return paths
