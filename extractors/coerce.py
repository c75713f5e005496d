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


_TS_MIN = "timestamptz '0001-01-01 00:00:00+00'"
_TS_MAX = "timestamptz '9999-12-31 23:59:59.999999+00'"


def natural_key(table: str) -> tuple[str, ...]:
    return RAW_TABLES[table][1]


def cast_expr(value: str, sql_type: str) -> str:
    """SQL that casts text/JSON `value` to `sql_type`, or NULL when it cannot be cast.

    Timestamps: ISO 8601 with `Z`, `+00:00`, another offset, `T` or space separator, or none (read as UTC:
    callers run under `landing.utc_session`). The result is a naive UTC TIMESTAMP. DuckDB's casts are more
    lenient than the contracts, and some of that leniency would land wrong values, so it is narrowed:
    integers must be written as integers ('1.5' would round to 2 and could collide with another id; '2.0' is
    what SQLite prints for a REAL and is accepted), timestamps and dates must start with a digit and fall in
    years 1-9999 ('epoch', 'infinity' and year 294247 parse), doubles must be finite ('NaN', 'inf').
    """
    if sql_type == "varchar":
        return f"({value})::varchar"
    if sql_type == "json":
        return f"try_cast({value} as json)"
    if sql_type in ("bigint", "integer"):
        return (
            f"case when regexp_full_match({value}::varchar, '\\s*[+-]?[0-9]+(\\.0*)?\\s*') "
            f"then try_cast({value} as {sql_type}) end"
        )
    digit = f"ascii(ltrim({value}::varchar)) between 48 and 57"
    if sql_type == "timestamp":
        ts = f"try_cast({value} as timestamptz)"
        return f"(case when {digit} and {ts} between {_TS_MIN} and {_TS_MAX} then {ts} end at time zone 'UTC')"
    if sql_type == "date":
        d = f"coalesce(try_cast({value} as date), (try_cast({value} as timestamptz) at time zone 'UTC')::date)"
        return f"(case when {digit} and {d} between date '0001-01-01' and date '9999-12-31' then {d} end)"
    if sql_type == "double":
        return f"(case when isfinite(try_cast({value} as double)) then try_cast({value} as double) end)"
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
    checks_sql: list[str] | None = None,
    typed_checks_sql: list[str] | None = None,
    group_sql: str | None = None,
) -> str:
    """A select over `from_sql` yielding the typed data columns of `table` plus `_source`, `_extra`, `_raw`,
    `_loc`, `_ord` and `_reason`.

    `values` maps column name -> SQL expression giving the source value as text (or JSON); a column not in
    `values` is NULL. `raw_sql` is kept per row as `_raw_src`; `raw_final` turns it into the quarantine's
    `raw` text, evaluated only for rejected rows (serialising every good row would be wasted work).
    `pre_reason_sql` is a reason found before typing (invalid UTF-8, invalid JSON, wrong field count) and
    wins over the column checks. `where` filters source rows (not counted as read);
    `post_where` filters on typed columns (e.g. the exact extraction window), also before counting.
    `checks_sql` are more reasons (NULL or text) computed over `from_sql`, like a JSON value's type;
    `typed_checks_sql` reasons computed over the typed columns (a date in the future), listed first.
    With `group_sql` (the file or page a record came from) the result also has `_grp` and `_miss`, the
    required columns a record that got past `pre_reason_sql` lacks: `contract.check_json_drift` reads them.
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
    extra_checks = f"concat_ws('; ', {', '.join(checks_sql)})" if checks_sql else "null"
    all_checks = ", ".join([*(typed_checks_sql or []), *checks])
    reason = f"coalesce(_pre_reason, nullif(concat_ws('; ', {all_checks}, _chk), ''))"
    keep = ", ".join(c.ident for c in cols)
    drift_src = drift_out = ""
    if group_sql:
        miss = ", ".join(
            f"case when {quote('v_' + c.name)} is null then {sql_str(c.name)} end" for c in cols if c.required
        )
        drift_src = f", ({group_sql})::varchar as _grp"
        drift_out = (
            f", _grp, case when _pre_reason is null then list_filter([{miss}], lambda x: x is not null) end as _miss"
        )
    return f"""
        with src as (
            select {", ".join(src_items)},
                   ({source_sql})::varchar as _source, ({extra_sql})::json as _extra,
                   ({raw_sql}) as _raw_src, ({loc_sql})::varchar as _loc, ({ord_sql})::bigint as _ord,
                   ({pre_reason_sql})::varchar as _pre_reason, nullif({extra_checks}, '') as _chk{drift_src}
            from {from_sql}
            {"where " + where if where else ""}
        ),
        typed as (
            select *, {", ".join(typed_items)} from src
        ),
        checked as (
            select *, {reason} as _reason from typed
            {"where " + post_where if post_where else ""}
        )
        select {keep}, _source, _extra, case when _reason is not null then ({raw_final})::varchar end as _raw,
               _loc, _ord, _reason{drift_out}
        from checked
    """


# The JSON shape each JSON column's contract gives (helpdesk tickets); a JSON null is always allowed.
JSON_SHAPES = {"via": "OBJECT", "satisfaction_rating": "OBJECT", "metric_set": "OBJECT", "tags": "ARRAY"}


def json_type_checks(table: str, types_sql: str) -> list[str]:
    """Reasons for JSON values of the wrong shape, for `typed_query(checks_sql=...)`. `types_sql` is a list
    of `json_type`s in the order of `columns(table)`. An object or array where the layout has a scalar is
    junk (its JSON text would otherwise land as if it were a name or an email); a JSON column must hold
    the shape its contract names."""
    out = []
    for i, c in enumerate(columns(table), start=1):
        t = f"{types_sql}[{i}]"
        if c.type == "json":
            shape = JSON_SHAPES.get(c.name)
            if shape:
                out.append(f"case when {t} not in ('NULL', '{shape}') then 'bad {c.name} (not an {shape.lower()})' end")
        else:
            out.append(f"case when {t} in ('OBJECT', 'ARRAY') then 'bad {c.name} (' || lower({t}) || ')' end")
    return out
