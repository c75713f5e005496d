"""Undoing what extraction runs landed, when their raw data failed its checks.

The raw checks validate the rows landed by runs that no passing raw check has validated yet. When they
fail, leaving those rows in place would stop every later run on the same rows, with no way out but an
empty warehouse. Instead the step that runs the checks rolls those runs back: their raw rows and rejects
are deleted, the extractor state (watermarks, cursors) returns to what it was before them and the ESP
files they loaded are forgotten, so the next run reads the same source records again. Fixed at the source,
they land; still broken, the checks stop the run again, with nothing lost either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from rapport.extractors.landing import utc_now
from rapport.extractors.schemas import RAW_TABLES
from rapport.transform.increments import forget_if_read

# A run is validated when its raw checks ran and every failure was a warning (as expectations' frames read it).
_UNVALIDATED = """
    select distinct _run_id from raw.{table} as landed
    where not exists (
        select 1 from ops.check_results as c
        where c.gate = 'raw' and c.run_id = landed._run_id
        group by c.run_id having bool_and(c.success or c.severity = 'warn'))"""


@dataclass
class Rollback:
    runs: list[str]
    raw_rows: dict[str, int] = field(default_factory=dict)  # "raw.<table>" -> rows deleted
    rejects: int = 0
    states_restored: list[str] = field(default_factory=list)  # "source.key"
    esp_files: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.raw_rows.values())


def was_rolled_back(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from ops.raw_rollbacks where run_id = ? or rolled_back_by = ?", [run_id, run_id]
        ).fetchall()[0][0]
    )


def unvalidated_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs whose landed raw rows no passing raw check has validated."""
    has_results = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ops' and table_name = 'check_results'"
    ).fetchall()[0][0]
    query = _UNVALIDATED if has_results else "select distinct _run_id from raw.{table}"  # nothing checked yet
    runs: set[str] = set()
    for table in RAW_TABLES:
        runs.update(r for (r,) in con.execute(query.format(table=table)).fetchall())
    return sorted(runs)


def rollback_runs(con: duckdb.DuckDBPyConnection, runs: list[str], *, by: str) -> Rollback:
    """Delete what `runs` landed and restore the extractor state from before them, in one transaction;
    recorded in ops.raw_rollbacks (`by`: the run whose checks failed)."""
    result = Rollback(runs=list(runs))
    if not runs:
        return result
    con.begin()
    try:
        con.execute("create or replace temp table _rolled_back (run_id varchar)")
        con.executemany("insert into _rolled_back values (?)", [[r] for r in runs])
        for table in RAW_TABLES:
            # incremental models only hear of rows that land: a build that read these reads everything next
            forget_if_read(con, f"raw.{table}", "_run_id in (select run_id from _rolled_back)")
            n = con.execute(f"delete from raw.{table} where _run_id in (select run_id from _rolled_back)").fetchall()[
                0
            ][0]
            if n:
                result.raw_rows[f"raw.{table}"] = n
            result.rejects += con.execute(
                f"delete from quarantine.{table}_rejects where run_id in (select run_id from _rolled_back)"
            ).fetchall()[0][0]
        # each key back to its value before the first change one of these runs made
        restored = con.execute(
            """select source, key, old_value, old_run_id, old_updated_at from ops.extract_state_history
               where run_id in (select run_id from _rolled_back)
               qualify row_number() over (partition by source, key order by changed_at, rowid) = 1
               order by source, key"""
        ).fetchall()
        for source, key, old, old_run, old_at in restored:
            if old is None and old_run is None:  # the key did not exist before
                con.execute("delete from ops.extract_state where source = ? and key = ?", [source, key])
            else:
                con.execute(
                    "update ops.extract_state set value = ?, run_id = ?, updated_at = ? where source = ? and key = ?",
                    [old, old_run, old_at, source, key],
                )
            result.states_restored.append(f"{source}.{key}")
        con.execute("delete from ops.extract_state_history where run_id in (select run_id from _rolled_back)")
        # a file loaded (or loaded again) by these runs is read again next time; merging it twice is harmless
        result.esp_files = con.execute(
            "delete from ops.esp_manifest where run_id in (select run_id from _rolled_back)"
        ).fetchall()[0][0]
        con.execute("drop table _rolled_back")
        con.executemany(
            "insert into ops.raw_rollbacks values (?, ?, ?, ?, ?)",
            [[r, by, utc_now(), sum(result.raw_rows.values()), result.rejects] for r in runs],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return result
