"""Audience exports: for each RFM segment, a CSV of the customers a marketer may upload to an email tool.

Read from the marts (`customers` + `customer_segments`), usually the freshly published file. Only people
who can be emailed are exported: email status `subscribed` and a `marketing_email` (the address of a
subscribed ESP contact that no unsubscribed or cleaned contact shares), so unsubscribed, cleaned and
no-contact customers never appear; nor does an address that is not a valid email address (`is_valid_email`:
`=HYPERLINK(...)@x.com` is no address to upload). Cells a spreadsheet would read as a formula get a leading
apostrophe, except valid addresses (`-dash@x.com`, `+tag@x.com` are real addresses an ESP must get intact;
an unquoted address cannot hold the spaces, quotes or parentheses of a function call). Every segment gets
a file on every run, empty ones with a header only, so a file never lingers from an earlier run. Files are
written atomically (temp file, then os.replace): an uploader reading the folder sees the previous or the new
file, never half of one.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from rapport.transform.udfs import is_valid_email

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
)

_QUERY = """
    select
        s.marketing_email as email,
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
        s.as_of_date
    from marts.customer_segments as s
    inner join marts.customers as c on s.customer_id = c.customer_id
    where c.email_status = 'subscribed' and s.marketing_email is not null
    order by s.rfm_segment, s.monetary_usd desc, s.customer_id
"""

# A cell a spreadsheet would read as a formula (CSV injection): text starting with one of these.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def slugify(name: str) -> str:
    """File-name form of a segment: 'Cannot Lose Them' -> 'cannot-lose-them'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "segment"


def neutralise(value: object) -> object:
    """Text that a spreadsheet would evaluate gets a leading apostrophe, unless it is a valid email address;
    numbers and dates stay as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES) and not is_valid_email(value):
        return "'" + value
    return value


def first_name_of(full_name: str | None) -> str | None:
    """The first word of the full name (the whole name when it has one word, e.g. many Korean names)."""
    if not full_name or not full_name.strip():
        return None
    return full_name.split()[0]


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 250.5000 -> 250.5, 100.0000 -> 100
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return neutralise(value)


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


def _write_atomically(path: Path, rows: Sequence[Sequence[object]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_audiences(con_or_db_path: duckdb.DuckDBPyConnection | str | Path, out_dir: Path) -> list[Path]:
    """Write `{out_dir}/{slug}.csv` for every rfm_segment; return the paths in SEGMENTS order.

    `con_or_db_path` is an open DuckDB connection holding the `marts` schema, or the path of a DuckDB file
    (opened read-only, e.g. the published `rapport.duckdb`).
    """
    from rapport.reports.files import remove_stale_temp_files

    remove_stale_temp_files(out_dir)  # a killed export's half-written files hold full addresses
    with _connection(con_or_db_path) as con:
        cur = con.execute(_QUERY)
        names = [d[0] for d in cur.description]
        records = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    by_segment: dict[str, list[list[object]]] = {segment: [] for segment in SEGMENTS}
    seen: dict[str, set[str]] = {segment: set() for segment in SEGMENTS}
    invalid = 0
    for record in records:
        if not is_valid_email(str(record["email"])):
            invalid += 1
            continue
        segment = record["segment"]
        if segment not in by_segment:  # a segment name this module does not know: still exported
            by_segment[segment], seen[segment] = [], set()
        key = str(record["email"]).strip().lower()
        if key in seen[segment]:
            continue
        seen[segment].add(key)
        record["first_name"] = first_name_of(record["full_name"])
        by_segment[segment].append([_cell(record[column]) for column in COLUMNS])

    if invalid:  # counted per source in marts.email_address_quality
        log.warning("audience files: left out %d customer(s) whose marketing address is not a valid email address",
                    invalid)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for segment, rows in by_segment.items():
        path = out_dir / f"{slugify(segment)}.csv"
        _write_atomically(path, rows)
        paths.append(path)
    return paths
