"""Bulk typing of source values into a raw table's columns, in DuckDB SQL (never per row in Python).

Every extractor hands its batch to DuckDB as text (or JSON) and builds one `typed_query`: a select that casts
each column to the type `schemas.RAW_TABLES` declares and computes `_reason`, the reason a record cannot be
landed (missing required key, unparseable timestamp, non-numeric amount, invalid JSON, ...), or NULL.
Rows with a reason go to quarantine; the rest are merged by `landing.merge_batch`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from rapport.extractors.schemas import RAW_TABLES

_COLUMN_RE = re.compile(r'"?(\w+)"?\s+([a-z]+(?:\(\d+,\s*\d+\))?)(\s+not null)?')

# Columns the layout declares nullable but without which a record means nothing (it could never be matched
# to anything downstream); these are rejected like the `not null` ones.
EXTRA_REQUIRED: dict[str, tuple[str, ...]] = {
    "esp_events": ("event", "timestamp"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool

    @property
    def ident(self) -> str:
        return quote(self.name)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """A SQL string literal (for values that cannot be bound, like text inside generated selects)."""
    return "'" + value.replace("'", "''") + "'"


@cache
def columns(table: str) -> tuple[Column, ...]:
    """The data columns of `raw.<table>`, parsed from schemas.RAW_TABLES so the two never diverge."""
    ddl, _key = RAW_TABLES[table]
    extra = EXTRA_REQUIRED.get(table, ())
    return tuple(
        Column(m.group(1), m.group(2).replace(" ", ""), bool(m.group(3)) or m.group(1) in extra)
        for m in _COLUMN_RE.finditer(ddl)
    )


def natural_key(table: str) -> tuple[str, ...]:
    return RAW_TABLES[table][1]


def cast_expr(value: str, sql_type: str) -> str:
    """SQL that casts text/JSON `value` to `sql_type`, or NULL when it cannot be cast.

    Timestamps: ISO 8601 with `Z`, `+00:00`, another offset, `T` or space separator, or none (read as UTC:
    callers run under `landing.utc_session`). The result is a naive UTC TIMESTAMP.
    """
    if sql_type == "varchar":
        return f"({value})::varchar"
    if sql_type == "json":
        return f"try_cast({value} as json)"
    if sql_type == "timestamp":
        return f"(try_cast({value} as timestamptz) at time zone 'UTC')"
    if sql_type == "date":
        return f"coalesce(try_cast({value} as date), (try_cast({value} as timestamptz) at time zone 'UTC')::date)"
    return f"try_cast({value} as {sql_type})"


def typed_query(
    table: str,
    values: dict[str, str],
    *,
    from_sql: str,
    source_sql: str,
    raw_sql: str,
    loc_sql: str,
    raw_final: str = "_raw_src::varchar",
    ord_sql: str,
    extra_sql: str = "null",
    pre_reason_sql: str = "null",
    where: str | None = None,
    post_where: str | None = None,
) -> str:
    """A select over `from_sql` yielding the typed data columns of `table` plus `_source`, `_extra`, `_raw`,
    `_loc`, `_ord` and `_reason`.

    `values` maps column name -> SQL expression giving the source value as text (or JSON); a column not in
    `values` is NULL. `raw_sql` is kept per row as `_raw_src`; `raw_final` turns it into the quarantine's
    `raw` text, evaluated only for rejected rows (serialising every good row would be wasted work).
    `pre_reason_sql` is a reason found before typing (invalid UTF-8, invalid JSON, wrong field count) and
    wins over the column checks. `where` filters source rows (not counted as read);
    `post_where` filters on typed columns (e.g. the exact extraction window), also before counting.
    """
    cols = columns(table)
    unknown = set(values) - {c.name for c in cols}
    if unknown:
        raise ValueError(f"{table}: no such columns {sorted(unknown)}")
    src_items = [f"({values.get(c.name, 'null')}) as {quote('v_' + c.name)}" for c in cols]
    typed_items = [f"{cast_expr(quote('v_' + c.name), c.type)} as {c.ident}" for c in cols]
    checks: list[str] = []
    for c in cols:
        v = quote("v_" + c.name)
        if c.required:
            checks.append(f"case when {v} is null then 'missing {c.name}' end")
        if c.type not in ("varchar",):
            checks.append(
                f"case when {v} is not null and {c.ident} is null "
                f"then 'bad {c.name} (' || left({v}::varchar, 60) || ')' end"
            )
    reason = f"coalesce(_pre_reason, nullif(concat_ws('; ', {', '.join(checks)}), ''))"
    keep = ", ".join(c.ident for c in cols)
    return f"""
        with src as (
            select {', '.join(src_items)},
                   ({source_sql})::varchar as _source, ({extra_sql})::json as _extra,
                   ({raw_sql}) as _raw_src, ({loc_sql})::varchar as _loc, ({ord_sql})::bigint as _ord,
                   ({pre_reason_sql})::varchar as _pre_reason
            from {from_sql}
            {'where ' + where if where else ''}
        ),
        typed as (
            select *, {', '.join(typed_items)} from src
        ),
        checked as (
            select *, {reason} as _reason from typed
            {'where ' + post_where if post_where else ''}
        )
        select {keep}, _source, _extra, case when _reason is not null then ({raw_final})::varchar end as _raw,
               _loc, _ord, _reason
        from checked
    """
