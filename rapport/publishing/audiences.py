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
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from rapport.core.warehouse import table_exists
from rapport.reports.prediction_data import HIGH_VALUE_CHURN, LIKELY_TO_BUY, REVENUE_AT_RISK_SQL
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

_SELECT = """
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
        s.as_of_date,
        p.churn_risk,
        p.p_alive::decimal(6, 4) as p_alive,
        p.p_order_90d::decimal(6, 4) as p_order_90d,
        p.predicted_clv_365d_usd::decimal(18, 2) as predicted_clv_365d_usd,
        (case when p.p_alive is not null then {revenue_at_risk} end)::decimal(18, 2)
            as revenue_at_risk_usd
    from marts.customer_segments as s
    inner join marts.customers as c on s.customer_id = c.customer_id
    left join {predictions} as p on s.customer_id = p.customer_id
    where c.email_status = 'subscribed' and s.marketing_email is not null and ({condition})
    order by {order}, s.customer_id
"""
_SEGMENT_ORDER = "s.rfm_segment, s.monetary_usd desc"

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


def audience_paths(out_dir: Path) -> list[Path]:
    """Every file `export_audiences` writes into `out_dir` (for the contract's segments), in its order."""
    slugs = [slugify(segment) for segment in SEGMENTS] + [a.slug for a in PREDICTED_AUDIENCES]
    return [Path(out_dir) / f"{slug}.csv" for slug in slugs]


def _records(con: duckdb.DuckDBPyConnection, condition: str, order: str) -> list[dict[str, object]]:
    has_predictions = table_exists(con, *_PREDICTIONS.split("."))
    sql = _SELECT.format(
        predictions=_PREDICTIONS if has_predictions else _NO_PREDICTIONS,
        condition=condition,
        order=order,
        revenue_at_risk=REVENUE_AT_RISK_SQL,
    )
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _rows(records: list[dict[str, object]], key_of: str | None) -> tuple[dict[str, list[list[object]]], int]:
    """Records -> CSV rows per file (by the record's `key_of` column, or all in one file keyed ""), each
    address once per file; and how many records had an address that is not a valid email address."""
    files: dict[str, list[list[object]]] = {}
    seen: dict[str, set[str]] = {}
    invalid = 0
    for record in records:
        if not is_valid_email(str(record["email"])):
            invalid += 1
            continue
        name = str(record[key_of]) if key_of else ""
        address = str(record["email"]).strip().lower()
        if address in seen.setdefault(name, set()):
            continue
        seen[name].add(address)
        record["first_name"] = first_name_of(record["full_name"])  # type: ignore[arg-type]
        files.setdefault(name, []).append([_cell(record[column]) for column in COLUMNS])
    return files, invalid


def export_audiences(con_or_db_path: duckdb.DuckDBPyConnection | str | Path, out_dir: Path) -> list[Path]:
    """Write `{out_dir}/{slug}.csv` for every rfm_segment, then the PREDICTED_AUDIENCES files; return the
    paths in that order (`audience_paths`, plus a file for any segment name the contract does not list).

    `con_or_db_path` is an open DuckDB connection holding the `marts` schema, or the path of a DuckDB file
    (opened read-only, e.g. the published `rapport.duckdb`).
    """
    from rapport.reports.files import remove_stale_temp_files

    remove_stale_temp_files(out_dir)  # a killed export's half-written files hold full addresses
    with _connection(con_or_db_path) as con:
        segment_records = _records(con, "true", _SEGMENT_ORDER)
        predicted_records = [_records(con, a.condition, a.order) for a in PREDICTED_AUDIENCES]

    found, invalid = _rows(segment_records, "segment")
    # every contract segment gets a file, empty ones too; a segment name this module does not know is still exported
    by_segment = {segment: found.pop(segment, []) for segment in SEGMENTS} | found
    files = {f"{slugify(segment)}.csv": rows for segment, rows in by_segment.items()}
    for audience, records in zip(PREDICTED_AUDIENCES, predicted_records, strict=True):
        rows, _ = _rows(records, None)  # the same people as above: their invalid addresses are counted once
        files[f"{audience.slug}.csv"] = rows.get("", [])

    if invalid:  # counted per source in marts.email_address_quality
        log.warning("audience files: left out %d customer(s) whose marketing address is not a valid email address",
                    invalid)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in files.items():
        path = out_dir / name
        _write_atomically(path, rows)
        paths.append(path)
    return paths
