"""Issue #16 phase 2, "Done when": daily incremental builds give the same tables as a full rebuild.

One small demo warehouse (300 people, 2 months) is built, then:
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
About 3 minutes on 2 cores (two pipeline runs, one incremental and two full dbt builds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from row_equality import table_differences

from rapport.core.config import load_settings
from rapport.transform.runner import dbt_dirs

pytestmark = pytest.mark.slow

RAPPORT = [sys.executable, "-m", "rapport.cli"]
DAY = date(2026, 11, 1)
SCHEMAS = ("staging", "intermediate", "marts")
HAND_RUN = "manual__hand-edits"
# when a build wrote a row of the history tables (wall-clock, so different in the rebuild made after it), and
# which build last computed an id assignment (an incremental build computes only the clusters whose id can
# change, a --full-refresh one every cluster: last_assigned_run_id differs by design; the ids do not)
BUILD_TIMES = {
    "intermediate.int_customer_ids_assigned": "first_assigned_at, last_assigned_at, last_assigned_run_id",
    "marts.customer_id_history": "first_assigned_at, last_assigned_at, retired_at",
    "marts.segment_history": "recorded_at",
    "marts.segment_history_dates": "recorded_at",
    # the ids' latest build time that marts.customers last read (its increment's watermark)
    "intermediate.customers__seen_assignments": "last_assigned_at",
}

BUILD = """
import sys
from datetime import date
from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build

dbt_build(load_settings(), run_id=sys.argv[1], as_of=date.fromisoformat(sys.argv[2]),
          full_refresh=sys.argv[3] == "full")
"""

# Raw rows a source would land on a later day, each a new version of an existing record (or a late file).
HAND_EDITS = [
    # an old paid order is refunded
    """insert into raw.shop_orders select * replace (
           'refunded' as status, total as refunded_total, updated_at + interval 30 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (select min(id) from raw.shop_orders where status = 'paid')
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # a late ESP file: a click on the oldest campaign, from someone in its audience
    """insert into raw.esp_events select * replace (
           'late-' || sg_event_id as sg_event_id, 'click' as event, "timestamp" + 3600 as "timestamp",
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_events
       where campaign_id = (select min(campaign_id) from raw.esp_events) and event = 'delivered'
       qualify row_number() over (order by sg_event_id) = 1""",
    # a late audience row of that campaign
    """insert into raw.esp_audiences select * replace (
           'late.member@example.com' as email, '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_audiences where campaign_id = (select min(campaign_id) from raw.esp_events)
       qualify row_number() over (order by email) = 1""",
    # a helpdesk ticket is solved
    """insert into raw.helpdesk_tickets select * replace (
           'solved' as status, updated_at + interval 2 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.helpdesk_tickets where id = (select min(id) from raw.helpdesk_tickets)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # an ESP contact unsubscribes
    """insert into raw.esp_contacts select * replace (
           'unsubscribed' as status, updated_at + interval 1 day as updated_at, snapshot_date + 1 as snapshot_date,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_contacts where contact_id = (select min(contact_id) from raw.esp_contacts)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # the newest shop account takes the oldest account's email: the two customers merge
    """insert into raw.shop_customers select n.* replace (
           (select email from raw.shop_customers where id = (select min(id) from raw.shop_customers) limit 1)
               as email,
           n.updated_at + interval 1 day as updated_at, '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_customers as n where n.id = (select max(id) from raw.shop_customers)
       qualify row_number() over (order by n.updated_at desc, n._extracted_at desc) = 1""",
]


def _env(wh: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env.update({"RAPPORT_WAREHOUSE_DIR": str(wh), "DO_NOT_TRACK": "1"})
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def _demo(wh: Path, day: date) -> None:
    _run([*RAPPORT, "demo", "--people", "300", "--months", "2", "--end", day.isoformat(),
          "--interval-end", f"{day.isoformat()}T00:00:00"], _env(wh))  # fmt: skip


def _build(wh: Path, run_id: str, as_of: date, *, full: bool) -> None:
    _run([sys.executable, "-c", BUILD, run_id, as_of.isoformat(), "full" if full else "incremental"], _env(wh))


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
    wh, copy = root / "warehouse", root / "rebuilt"
    _demo(wh, DAY)
    assert _ledger(wh)["since"] is None  # the first build reads everything
    _demo(wh, DAY + timedelta(days=1))
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
    day2["customers_computed"] = [int(n) for n in re.findall(r"customers: incremental, recomputing (\d+) ", new_log)]
    with duckdb.connect(str(_work(wh)), read_only=True) as con:
        day2["ids_computed"] = con.execute(
            "select count(*) filter (where last_assigned_run_id = ?), count(*) "
            "from intermediate.int_customer_ids_assigned where is_current", [HAND_RUN]).fetchone()  # fmt: skip
        day2["customers"] = con.execute("select count(*) from marts.customers").fetchone()[0]
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
                      "stg_esp__contacts", "stg_shop__customers")
        }  # fmt: skip
    assert landed == dict.fromkeys(landed, 1)  # every hand-landed version reached staging incrementally
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
    assert diff2 == {}
