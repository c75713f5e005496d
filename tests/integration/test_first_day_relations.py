"""Issue 16: the first day after a full run creates no relation, so its publish keeps the dbt docs.

A day's publish regenerates the dbt docs when the docs fingerprint changed (rapport.transform.build_state:
the project plus every relation's columns in the working file, `ops` aside). A relation that only an
incremental build creates (a state table, a change list, a scratch table left behind) first appears on the
first day after a full run and makes that day pay for the docs (~5 s at 1M people): the segment history's
state tables did until the first build wrote them too (72c5264).

A small demo warehouse (300 people, 2 months) gets a full run (`rapport demo`: a copy of the session's build,
tests/demo300_build.py); then raw rows are landed by
hand for changed records (a refund, a late ESP event and audience row, a solved ticket, an unsubscribe, two
shop accounts that merge: tests/incremental_days.py) and the demo continues one day (`rapport demo --end
D+1`: new orders and people, status changes), through the real pipeline. Its build must have been
incremental and have read the hand-landed rows; the relations and columns outside `ops` must be the ones
the full run left (read here from information_schema, not through docs_fingerprint), and the docs must
still be the ones the full run recorded.

About 1 minute on 2 cores (two pipeline runs; one when another file already built the shared demo).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from demo300_build import DAY, demo300_copy, run_demo
from incremental_days import HAND_EDITS, HAND_LANDED

pytestmark = pytest.mark.slow

HAND_RUN = "manual__hand-edits"

# what dbt's documentation shows of the warehouse: every relation and column outside ops and the catalogs
CATALOG = """select table_schema, table_name, column_name, data_type from information_schema.columns
             where table_catalog = current_database()
               and table_schema not in ('information_schema', 'pg_catalog', 'ops')"""


def _state(wh: Path) -> dict[str, object]:
    """The catalog outside ops, the committed increment and the run that last generated the docs."""
    with duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True) as con:
        catalog = set(con.execute(CATALOG).fetchall())
        reason, since = con.execute(
            "select reason, since from ops.transform_increments where state = 'committed'").fetchone()  # fmt: skip
        docs_run = con.execute("select run_id from ops.build_state where step = 'docs'").fetchone()
        landed = {
            t: con.execute(f"select count(*) from staging.{t} where _run_id = ?", [HAND_RUN]).fetchone()[0]
            for t in ("stg_shop__orders", "stg_esp__events", "stg_esp__audiences", "stg_helpdesk__tickets",
                      "stg_esp__contacts", "stg_shop__customers", "stg_shop__fx_rates")
        }  # fmt: skip
        runs = con.execute("select run_id, orders_extracted from ops.runs order by started_at").fetchall()
    return {"catalog": catalog, "reason": reason, "since": since, "docs_run": docs_run and docs_run[0],
            "landed": landed, "runs": [r[0] for r in runs], "orders_landed": runs[-1][1]}  # fmt: skip


def _relations(catalog: set[tuple[str, str, str, str]]) -> set[tuple[str, str]]:
    return {(schema, table) for schema, table, _column, _type in catalog}


@pytest.fixture(scope="module")
def first_day(tmp_path_factory):
    # the full run: a copy of the session's demo build (the same `rapport demo` this file ran itself before)
    wh = demo300_copy(tmp_path_factory, tmp_path_factory.mktemp("firstday") / "warehouse")
    full = _state(wh)
    with duckdb.connect(str(wh / "work" / "rapport_work.duckdb")) as con:
        for sql in HAND_EDITS:
            assert con.execute(sql.format(run=HAND_RUN)).fetchone()[0] == 1, sql
    run_demo(wh, DAY + timedelta(days=1))
    return full, _state(wh)


def test_the_first_day_builds_incrementally_from_new_and_changed_records(first_day) -> None:
    full, day = first_day
    assert full["since"] is None  # the full run read everything
    assert day["reason"] == "incremental" and day["since"] is not None, day["reason"]
    assert day["landed"] == HAND_LANDED  # every hand-landed version reached staging
    assert len(day["runs"]) == len(full["runs"]) + 1
    assert day["orders_landed"] > 0  # the demo's day landed orders too (new ones and status changes)


def test_the_first_day_creates_no_relation_or_column(first_day) -> None:
    full, day = first_day
    assert full["catalog"]  # the full run built the layers
    before, after = _relations(full["catalog"]), _relations(day["catalog"])
    assert ("marts", "customers") in before
    assert sorted(after - before) == []  # relations first created by the day's build
    assert sorted(before - after) == []  # relations the day's build dropped
    assert sorted(day["catalog"] ^ full["catalog"]) == []  # columns added, dropped or retyped


def test_the_first_day_keeps_the_dbt_docs(first_day) -> None:
    full, day = first_day
    assert full["docs_run"] == full["runs"][-1]  # the full run generated them
    assert day["docs_run"] == full["docs_run"]  # the day did not
