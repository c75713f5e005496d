"""Does a source still look like itself? Checks at extraction, before anything is transformed.

- **Volume**: a source holds at least what earlier runs landed from it (rows are never deleted from the
  orders database, exports are never taken back). The extractors compare what the source holds now (files
  under the ESP export root, rows of each orders table, the helpdesk's export since a recent time) with what
  was landed (`volume_finding`). A drop of `RAPPORT_VOLUME_DROP_ERROR_PCT` (default 100: the source holds
  nothing) stops the run; `RAPPORT_VOLUME_DROP_WARN_PCT` (default 10) warns.
- **Freshness**: the data time of a source's newest landed record against the end of the run's data
  interval (`freshness_findings`): older than `RAPPORT_FRESHNESS_WARN_HOURS` (72) warns, older than
  `RAPPORT_FRESHNESS_ERROR_HOURS` (336) stops the run; 0 turns either off.
- **Future dates**: records dated more than `RAPPORT_CLOCK_SKEW_MINUTES` after the extraction are quarantined
  with a reason starting with `FUTURE_REASON` and never move a watermark or cursor (orders, helpdesk).

Errors stop the extract task at once (`SourceCheckError`, not retried) naming the source, what was expected
and the setting; warnings go to the terminal, `ops.runs.<source>_warnings` and the report.

Why not compare a run's own counts with earlier runs': a run lands what changed since the previous one, so
zero is right for a rerun a minute later, and a quiet day looks like an unmounted folder. What a source
holds tells them apart. Why not dbt's source freshness: it measures against the wall clock, so every
backfilled day (or a run with `--interval-end` in the past) would be stale, and it runs inside dbt, after
the extraction it should have stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from rapport.core.config import Settings
from rapport.extractors.landing import ExtractResult

FUTURE_REASON = "dated in the future"
SOURCE_SETTING = {"orders": "RAPPORT_ORDERS_DB_URL", "helpdesk": "RAPPORT_HELPDESK_URL", "esp": "RAPPORT_ESP_ROOT"}

# The data time of each source's newest record. ESP: the newest export file, by the date in its name (a
# daily snapshot is the export's heartbeat even on days without events; an hour partition ends an hour on).
NEWEST_SQL = {
    "orders": """select max(t) from (
        select max(updated_at) as t from raw.shop_orders union all select max(updated_at) from raw.shop_customers
        union all select max(rate_date)::timestamp from raw.shop_fx_rates)""",
    "helpdesk": """select max(t) from (
        select max(updated_at) as t from raw.helpdesk_users
        union all select max(updated_at) from raw.helpdesk_tickets)""",
    "esp": r"""select max(coalesce(
        try_strptime(regexp_extract(path, '^(?:contacts|campaigns)/[a-z]+_(\d{8})\.csv$', 1), '%Y%m%d'),
        try_strptime(regexp_extract(path, '^events/dt=(\d{4}-\d{2}-\d{2})/hour=', 1) || ' '
                     || lpad(regexp_extract(path, '/hour=(\d{1,2})/', 1), 2, '0'), '%Y-%m-%d %H')
            + interval 1 hour))
        from ops.esp_manifest""",
}


@dataclass(frozen=True)
class Finding:
    source: str
    severity: str  # "error" or "warn"
    message: str  # without the source's name

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


def drop_severity(settings: Settings, held: int, landed: int) -> str | None:
    """ "error", "warn" or None for a source holding `held` records where earlier runs landed `landed`."""
    if landed <= 0 or held >= landed:
        return None
    drop = 100.0 * (landed - held) / landed
    if drop >= settings.volume_drop_error_pct:
        return "error"
    return "warn" if drop >= settings.volume_drop_warn_pct else None


def volume_finding(
    settings: Settings, source: str, what: str, held: int, landed: int, advice: str, severity: str | None = None
) -> Finding | None:
    """A finding saying `what` (e.g. "table orders holds 0 rows, 44 were landed before") and `advice`, or None
    when the drop is within the settings. `severity` overrides the one `held` and `landed` give."""
    severity = severity or drop_severity(settings, held, landed)
    if severity is None:
        return None
    drop = 100.0 * (landed - held) / landed if landed else 0.0
    if severity == "error":
        pct = settings.volume_drop_error_pct
        return Finding(
            source,
            "error",
            f"{what} ({drop:.0f}% fewer): {advice}; RAPPORT_VOLUME_DROP_ERROR_PCT "
            f"(now {pct:g}) sets how large a drop stops the run",
        )
    pct = settings.volume_drop_warn_pct
    return Finding(source, "warn", f"{what} ({drop:.0f}% fewer, RAPPORT_VOLUME_DROP_WARN_PCT={pct:g}): {advice}")


def future_check(settings: Settings, cut: datetime) -> str:
    """SQL (for `coerce.typed_query(typed_checks_sql=...)`) giving the quarantine reason of a record whose
    typed `updated_at` is later than `cut` (the extraction's clock plus the tolerance). The reason does not
    change from run to run, so re-reading the record is a duplicate rejection, not a new one."""
    reason = (
        f"{FUTURE_REASON}: updated_at more than RAPPORT_CLOCK_SKEW_MINUTES={settings.clock_skew_minutes} "
        "after the extraction; it lands once that time has come"
    )
    return f"case when updated_at > timestamp '{cut:%Y-%m-%d %H:%M:%S}' then '{reason}' end"


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} hours"


def freshness_findings(
    con: duckdb.DuckDBPyConnection, settings: Settings, source: str, interval_end: datetime
) -> list[Finding]:
    """A warning or an error when the source's newest landed record is older than the freshness windows
    allow at `interval_end` (naive UTC); a warning when nothing was ever landed from it."""
    newest = con.execute(NEWEST_SQL[source]).fetchall()[0][0]
    setting = SOURCE_SETTING[source]
    if newest is None:
        return [Finding(source, "warn", f"nothing has been landed from this source yet: is {setting} right?")]
    age = interval_end - newest
    for severity, hours, name in (
        ("error", settings.freshness_error_hours, "RAPPORT_FRESHNESS_ERROR_HOURS"),
        ("warn", settings.freshness_warn_hours, "RAPPORT_FRESHNESS_WARN_HOURS"),
    ):
        if hours and age > timedelta(hours=hours):
            text = (
                f"no new data for {_age(age)}: the newest record is from {newest:%Y-%m-%d %H:%M} UTC, the "
                f"data interval ends {interval_end:%Y-%m-%d %H:%M} UTC ({name}={hours:g})"
            )
            if severity == "error":
                text += f"; does {setting} still receive data? Fix the source or raise {name} (0: off), then rerun"
            return [Finding(source, severity, text)]
    return []


def record_run(con: duckdb.DuckDBPyConnection, run_id: str, result: ExtractResult, findings: list[Finding]) -> None:
    """Write an extraction's counts and warnings into the run's `ops.runs` row."""
    source = result.source
    values: dict[str, object] = {
        f"{source}_extracted": result.rows_landed,
        f"{source}_quarantined": result.rows_quarantined,
        f"{source}_warnings": "\n".join(f.message for f in findings if f.severity == "warn") or None,
    }
    if source in ("orders", "helpdesk"):
        values[f"{source}_future_dated"] = result.future_dated
    if source == "orders":
        values["orders_reconciled"] = result.reconciled
    sets = ", ".join(f"{column} = ?" for column in values)
    con.execute(f"update ops.runs set {sets} where run_id = ?", [*values.values(), run_id])


def errors_of(findings: list[Finding]) -> str | None:
    """The message a run stops with, or None when the findings are warnings only."""
    errors = [str(f) for f in findings if f.severity == "error"]
    return "; ".join(errors) or None
