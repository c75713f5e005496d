"""What a run may reuse: the inputs fingerprint moves with every change the marts depend on and with
nothing else; the recorded state of each output; the reuse decision of rapport.pipeline.reuse."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from rapport.core.run_context import RunContext
from rapport.extractors.schemas import raw_ddl
from rapport.pipeline.reuse import reusable_marts
from rapport.transform import build_state
from rapport.transform.project import DBT_PROJECT_DIR

AS_OF = date(2026, 3, 1)
ENV = {"RAPPORT_HELPDESK_URL": "http://127.0.0.1:1234"}


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for stmt in raw_ddl():
        c.execute(stmt)
    c.execute(
        "insert into raw.shop_orders (id, status, currency, total, created_at, updated_at, _run_id, _extracted_at) "
        "values (1, 'paid', 'USD', 10, '2026-01-01', '2026-01-01', 'r1', '2026-01-02 00:00:00')"
    )
    yield c
    c.close()


def _fp(con, as_of: date = AS_OF, env: dict[str, str] = ENV) -> str:
    return build_state.inputs_fingerprint(con, as_of=as_of, env=env)


def test_same_inputs_same_fingerprint_and_source_settings_do_not_count(con):
    before = _fp(con)
    assert _fp(con) == before
    # where a source is read from changes what lands, not what the landed rows make
    assert _fp(con, env={"RAPPORT_HELPDESK_URL": "http://127.0.0.1:9999", "RAPPORT_DUCKDB_THREADS": "1"}) == before


@pytest.mark.parametrize(
    "change",
    [
        # a new version of a record (the extractor's merge: a new row stamped with its load time)
        "insert into raw.shop_orders (id, status, currency, total, created_at, updated_at, _run_id, _extracted_at) "
        "values (1, 'refunded', 'USD', 10, '2026-01-01', '2026-01-03', 'r2', '2026-01-04 00:00:00')",
        # a changed record replaced in place by the merge: same count, a later load time
        "update raw.shop_orders set status = 'fulfilled', _extracted_at = '2026-01-05 00:00:00'",
        "delete from raw.shop_orders",  # an erasure
        "insert into quarantine.shop_orders_rejects values ('orders', '{}', 'bad', 'orders:2', 'r2', now())",
    ],
)
def test_any_change_to_the_landed_data_changes_the_fingerprint(con, change):
    before = _fp(con)
    con.execute(change)
    assert _fp(con) != before


def test_erasure_records_count_because_erasing_blanks_values_in_place(con):
    from rapport.privacy.store import DDL

    for stmt in DDL:
        con.execute(stmt)
    before = _fp(con)
    con.execute("insert into ops.erasure_purges values ('r2', now(), 'raw.shop_orders', 0, 1)")
    assert _fp(con) != before


def test_as_of_date_and_output_settings_change_the_fingerprint(con):
    before = _fp(con)
    assert _fp(con, as_of=date(2026, 3, 2)) != before
    assert _fp(con, env={**ENV, "RAPPORT_REPORT_LANGUAGE": "ko"}) != before
    assert _fp(con, env={**ENV, "RAPPORT_ENGINE": "spark"}) != before


def test_project_and_code_changes_change_the_fingerprint(con, monkeypatch):
    before = _fp(con)
    monkeypatch.setattr(build_state, "project_fingerprint", lambda *a: "another project")
    assert _fp(con) != before
    monkeypatch.undo()
    monkeypatch.setattr(build_state, "code_fingerprint", lambda *a: "other code")
    assert _fp(con) != before


def test_docs_fingerprint_follows_relations_and_columns_not_rows(con):
    con.execute("create schema marts")
    con.execute("create table marts.customers (customer_id varchar)")
    before = build_state.docs_fingerprint(con, env=ENV)
    con.execute("insert into marts.customers values ('c1')")
    con.execute("insert into raw.shop_orders select * replace (2 as id) from raw.shop_orders")
    con.execute("create table ops.check_results_extra (x int)")  # rapport's own bookkeeping is not documented
    assert build_state.docs_fingerprint(con, env=ENV) == before
    con.execute("alter table marts.customers add column lifetime_revenue_usd double")
    assert build_state.docs_fingerprint(con, env=ENV) != before


def test_recorded_state_per_output_and_clearing(con):
    assert build_state.recorded(con, "marts") is None  # no table yet
    build_state.clear(con, "marts")  # nothing to clear: no error
    build_state.record(con, "marts", "f1", "run-1")
    build_state.record(con, "report", "f1", "run-1")
    build_state.record(con, "marts", "f2", "run-2")
    assert (build_state.recorded(con, "marts"), build_state.recorded_run(con, "marts")) == ("f2", "run-2")
    build_state.clear(con, "marts")
    assert build_state.recorded(con, "marts") is None
    assert build_state.recorded(con, "report") == "f1"
    with pytest.raises(ValueError, match="unknown build step"):
        build_state.record(con, "everything", "f", "r")


def test_invalidate_before_a_build_forgets_marts_and_report(tmp_path):
    from rapport.core.config import load_settings

    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path)})
    build_state.invalidate(settings)  # no warehouse yet: nothing to do
    settings.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.work_db)) as c:
        for step in ("marts", "report", "docs"):
            build_state.record(c, step, "f", "r")
    build_state.invalidate(settings)
    with duckdb.connect(str(settings.work_db)) as c:
        kept = {s: build_state.recorded(c, s) for s in ("marts", "report", "docs")}
    assert kept == {"marts": None, "report": None, "docs": "f"}  # the docs depend on the schema, not the data


def test_marts_are_reused_only_for_exactly_their_inputs_and_never_on_a_full_refresh(con, monkeypatch):
    monkeypatch.setattr(build_state.os, "environ", dict(ENV))
    ctx = RunContext.create("run-2", as_of=AS_OF)
    assert reusable_marts(con, ctx) is None  # nothing built yet
    build_state.record(con, "marts", build_state.inputs_fingerprint(con, as_of=AS_OF), "run-1")
    assert reusable_marts(con, ctx) == build_state.recorded(con, "marts")
    assert reusable_marts(con, RunContext.create("run-2", as_of=date(2026, 3, 2))) is None
    assert reusable_marts(con, RunContext.create("run-2", as_of=AS_OF, full_refresh=True)) is None
    con.execute("delete from raw.shop_orders")
    assert reusable_marts(con, ctx) is None


def _dbt_by_hand(work_db: Path, scratch: Path, *command: str) -> None:
    """The dbt command line, as a user runs it against the working file (not through rapport)."""
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DO_NOT_TRACK": "1", "RAPPORT_WORK_DB": str(work_db)}
    args = [str(dbt), *command, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.slow
def test_a_dbt_build_run_by_hand_makes_the_next_run_build_and_check_again(tmp_path, monkeypatch):
    """`dbt run` outside rapport (e.g. `dbt build --vars ...` against the working file, docs/identity.md)
    changes the marts without touching the inputs: the project's on-run-start hook forgets the reuse state,
    so the next run's mart checks are not skipped as "unchanged". A `dbt test` changes nothing and keeps it."""
    monkeypatch.setattr(build_state.os, "environ", dict(ENV))
    work_db = tmp_path / "work.duckdb"
    with duckdb.connect(str(work_db)) as c:
        for stmt in raw_ddl():
            c.execute(stmt)
    ctx = RunContext.create("run-2", as_of=AS_OF)

    def record_checked_marts() -> None:
        with duckdb.connect(str(work_db)) as c:
            for step in ("marts", "report", "docs"):
                build_state.record(c, step, build_state.inputs_fingerprint(c, as_of=AS_OF), "run-1")
            assert reusable_marts(c, ctx) is not None

    record_checked_marts()
    _dbt_by_hand(work_db, tmp_path, "run", "--select", "stg_shop__fx_rates")
    with duckdb.connect(str(work_db)) as c:
        assert c.execute("select count(*) from staging.stg_shop__fx_rates").fetchall() == [(0,)]  # it built
        assert reusable_marts(c, ctx) is None
        kept = {s: build_state.recorded(c, s) for s in ("marts", "report", "docs")}
    assert kept["marts"] is None and kept["report"] is None and kept["docs"] is not None

    record_checked_marts()
    _dbt_by_hand(work_db, tmp_path, "test", "--select", "stg_shop__fx_rates")
    with duckdb.connect(str(work_db)) as c:
        assert reusable_marts(c, ctx) is not None  # tests only read: the checked marts stay reusable
