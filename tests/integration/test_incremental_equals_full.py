"""Issue #16 phase 2, "Done when": daily incremental builds give the same tables as a full rebuild.

One small demo warehouse (300 people, 2 months) is built (a copy of the session's build, tests/demo300_build.py),
then:
- day 1: the demo continues one day (`rapport demo --end D+1`: new orders and people, order status changes,
  new ESP events and audiences) and the real pipeline builds incrementally;
- day 2: raw rows landed by hand for what the demo does not make on a given day: an old order's status
  change, a late ESP event of an old campaign, a late audience row, a new helpdesk ticket version, an ESP
  unsubscribe, and a shop account edited to share another account's email (the two customers merge); then
  `dbt build` incrementally (rapport.transform.runner.dbt_build, real dbt).
After each day, the working file is copied and rebuilt with `--full-refresh` with the same vars (run id, as
of): every table of staging, intermediate and marts must hold the same rows in both (floating-point
columns to 8 decimals, since a sum in another row order differs in the last bits; the history tables'
wall-clock build times, and which build last computed an id assignment, left out: BUILD_TIMES). Customer
ids are compared as they are, with no mapping: --full-refresh keeps the id assignments (full_refresh=false,
as docs/identity.md says), so a rebuild on the same state assigns the same ids, though the incremental
build computed only the clusters whose id can change (checked: few on day 2) and the rebuild every cluster.

Each day's build must have been incremental (the ledger ops.transform_increments says so, and the staging
tables hold the hand-landed rows), so the test fails if the increments were silently turned off.
About 3 minutes on 2 cores (two pipeline runs, one incremental and two full dbt builds; one pipeline run less
when another file already built the shared demo).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from demo300_build import DAY, demo300_copy, demo_env, run_demo
from incremental_days import BUILD_TIMES, HAND_EDITS, HAND_LANDED
from row_equality import table_differences

from rapport.core.config import load_settings
from rapport.transform.runner import dbt_dirs

pytestmark = pytest.mark.slow

SCHEMAS = ("staging", "intermediate", "marts")
HAND_RUN = "manual__hand-edits"

BUILD = """
import sys
from datetime import date
from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build

dbt_build(load_settings(), run_id=sys.argv[1], as_of=date.fromisoformat(sys.argv[2]),
          full_refresh=sys.argv[3] == "full")
"""


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def _build(wh: Path, run_id: str, as_of: date, *, full: bool) -> None:
    _run([sys.executable, "-c", BUILD, run_id, as_of.isoformat(), "full" if full else "incremental"], demo_env(wh))


def _work(wh: Path) -> Path:
    return wh / "work" / "rapport_work.duckdb"


def _ledger(wh: Path) -> dict[str, object]:
    with duckdb.connect(str(_work(wh)), read_only=True) as con:
        cur = con.execute("select * from ops.transform_increments where state = 'committed'")
        names = [d[0] for d in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def _full_rebuild(wh: Path, copy: Path, run_id: str, as_of: date) -> None:
    shutil.rmtree(copy, ignore_errors=True)
    _work(copy).parent.mkdir(parents=True)
    shutil.copyfile(_work(wh), _work(copy))
    _build(copy, run_id, as_of, full=True)
    assert _ledger(copy)["since"] is None  # it did read everything


def _differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Table -> (rows only in a, rows only in b), for every table of SCHEMAS that differs, build times left out."""
    return table_differences(a, b, SCHEMAS, BUILD_TIMES)


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    root = tmp_path_factory.mktemp("incr")
    # the full run: a copy of the session's demo build (the same `rapport demo` this file ran itself before)
    wh, copy = demo300_copy(tmp_path_factory, root / "warehouse"), root / "rebuilt"
    assert _ledger(wh)["since"] is None  # the first build reads everything
    run_demo(wh, DAY + timedelta(days=1))
    day1 = _ledger(wh)
    _full_rebuild(wh, copy, str(day1["run_id"]), DAY + timedelta(days=1))
    diff1 = _differences(_work(wh), _work(copy))

    with duckdb.connect(str(_work(wh))) as con:
        for sql in HAND_EDITS:
            assert con.execute(sql.format(run=HAND_RUN)).fetchone()[0] == 1, sql
    log = dbt_dirs(load_settings({"RAPPORT_WAREHOUSE_DIR": str(wh)}))[1] / "dbt.log"
    logged = log.read_text() if log.exists() else ""
    _build(wh, HAND_RUN, DAY + timedelta(days=2), full=False)
    day2 = _ledger(wh)
    new_log = log.read_text()
    new_log = new_log[len(logged) :] if new_log.startswith(logged) else new_log  # dbt may rotate its log
    day2["customers_computed"] = [int(n) for n in re.findall(r"\bcustomers: incremental, recomputing (\d+) ", new_log)]
    day2["orders_computed"] = [
        int(n) for n in re.findall(r"int_orders_enriched: incremental, recomputing (\d+) orders", new_log)
    ]
    with duckdb.connect(str(_work(wh)), read_only=True) as con:
        day2["ids_computed"] = con.execute(
            "select count(*) filter (where last_assigned_run_id = ?), count(*) "
            "from intermediate.int_customer_ids_assigned where is_current", [HAND_RUN]).fetchone()  # fmt: skip
        day2["customers"] = con.execute("select count(*) from marts.customers").fetchone()[0]
        day2["orders"] = con.execute("select count(*) from intermediate.int_orders_enriched").fetchone()[0]
    _full_rebuild(wh, copy, HAND_RUN, DAY + timedelta(days=2))
    diff2 = _differences(_work(wh), _work(copy))
    return wh, day1, diff1, day2, diff2


def test_a_demo_day_builds_incrementally_and_equals_a_full_rebuild(days) -> None:
    _wh, day1, diff1, _, _ = days
    assert day1["reason"] == "incremental" and day1["since"] is not None, json.dumps(day1, default=str)
    assert diff1 == {}


def test_late_files_status_changes_and_a_merge_equal_a_full_rebuild(days) -> None:
    wh, day1, _, day2, diff2 = days
    assert day2["reason"] == "incremental" and day2["since"] == day1["batch_at"], json.dumps(day2, default=str)
    with duckdb.connect(str(_work(wh)), read_only=True) as con:
        landed = {
            t: con.execute(f"select count(*) from staging.{t} where _run_id = ?", [HAND_RUN]).fetchone()[0]
            for t in ("stg_shop__orders", "stg_esp__events", "stg_esp__audiences", "stg_helpdesk__tickets",
                      "stg_esp__contacts", "stg_shop__customers", "stg_shop__fx_rates")
        }  # fmt: skip
    assert landed == HAND_LANDED  # every hand-landed version reached staging incrementally
    with duckdb.connect(str(_work(wh)), read_only=True) as con:
        merged = con.execute(
            "select count(distinct customer_id) from marts.customer_identities where source = 'orders.customer' "
            "and source_id in (select cast(min(id) as varchar) from raw.shop_customers "
            "union all select cast(max(id) as varchar) from raw.shop_customers)"
        ).fetchone()[0]
    assert merged == 1  # the two accounts that now share an email are one customer
    computed, current = day2["ids_computed"]
    assert 2 <= computed < current / 10  # the merged customer's ids were computed again, few others
    # marts.customers was built incrementally; it recomputed the customers the hand edits touched (the
    # merged one, the refund's, the ticket's, ...) and few others
    assert len(day2["customers_computed"]) == 1, day2["customers_computed"]
    assert 2 <= day2["customers_computed"][-1] < day2["customers"] / 10
    # int_orders_enriched was built by order (docs/marts-incremental.md): the six landed order versions, the
    # EUR orders from the corrected rate's date on, the orders of the records whose ids were recomputed; not all
    assert len(day2["orders_computed"]) == 1, day2["orders_computed"]
    assert 6 + 1 <= day2["orders_computed"][-1] < day2["orders"] / 2
    assert diff2 == {}
