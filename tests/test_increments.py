"""The incremental builds' ledger (rapport.transform.increments): when a build may read only what landed
since the last complete one, and when it must read everything. Small DuckDB files, hand-set load times."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from rapport.extractors.landing import ensure_schema
from rapport.extractors.rollback import rollback_runs
from rapport.transform import increments

T1, T2, T3 = datetime(2026, 11, 1, 1), datetime(2026, 11, 2, 1), datetime(2026, 11, 3, 1)


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as c:
        ensure_schema(c)  # the raw tables as the extractors land them
        c.execute(
            "insert into raw.shop_orders (id, updated_at, _run_id, _extracted_at) values (1, ?, 'r1', ?)", [T1, T1]
        )
        yield c


def _land(con, run_id: str, at: datetime) -> None:
    con.execute(
        "insert into raw.shop_orders (id, updated_at, _run_id, _extracted_at) values (2, ?, ?, ?)", [at, run_id, at]
    )


def test_the_first_build_reads_everything_and_the_next_only_what_landed_after_it(con) -> None:
    first = increments.plan(con, run_id="r1", engine="duckdb")
    assert (first.since, first.batch_at, first.full_refresh) == (None, T1, True)
    assert increments.commit(con, "r1")
    _land(con, "r2", T2)
    second = increments.plan(con, run_id="r2", engine="duckdb")
    assert (second.since, second.batch_at, second.reason) == (T1, T2, "incremental")
    assert second.dbt_vars() == {"since": "2026-11-01 01:00:00"}


def test_a_failed_build_commits_nothing_and_the_next_reads_from_the_last_complete_one(con) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    increments.commit(con, "r1")
    _land(con, "r2", T2)
    increments.plan(con, run_id="r2", engine="duckdb")  # r2's build fails: no commit
    _land(con, "r3", T3)
    assert not increments.commit(con, "other-run")
    third = increments.plan(con, run_id="r3", engine="duckdb")
    assert (third.since, third.batch_at) == (T1, T3)


def test_later_tasks_of_the_same_run_reuse_its_plan(con) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    increments.commit(con, "r1")
    _land(con, "r2", T2)
    staging = increments.plan(con, run_id="r2", engine="duckdb", continue_pending=True)
    _land(con, "r3", T3)  # landed while r2's layers build: not r2's batch
    marts = increments.plan(con, run_id="r2", engine="duckdb", continue_pending=True)
    assert marts == staging and marts.batch_at == T2


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"full_refresh": True}, "--full-refresh"),
        ({"engine": "spark"}, "the engine changed (duckdb -> spark)"),
        (
            {"overrides": {"max_identifier_fanout": 3}},
            "the dbt project, the UDFs, their libraries or the dbt vars changed",
        ),
    ],
)
def test_what_makes_a_build_read_everything(con, kwargs, reason) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    increments.commit(con, "r1")
    _land(con, "r2", T2)
    plan = increments.plan(con, run_id="r2", **{"engine": "duckdb", **kwargs})
    assert (plan.since, plan.reason) == (None, reason)


def test_rolling_back_rows_a_build_read_makes_the_next_build_read_everything(con) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    increments.commit(con, "r1")
    _land(con, "r2", T2)
    rollback_runs(con, ["r2"], by="r2")  # landed after the build: nothing it read is gone
    assert increments.plan(con, run_id="r3", engine="duckdb").reason == "incremental"
    rollback_runs(con, ["r1"], by="r3")  # the build had read r1's rows
    assert increments.plan(con, run_id="r4", engine="duckdb").reason == "no complete incremental build yet"


@pytest.mark.parametrize("library", ["phonenumbers", "email-validator", "scipy", "duckdb"])
def test_upgrading_a_library_the_models_compute_with_makes_a_build_read_everything(con, monkeypatch, library) -> None:
    """A new phonenumbers release re-assigns number ranges: rows built before it must not keep the old answers."""
    increments.plan(con, run_id="r1", engine="duckdb")
    increments.commit(con, "r1")
    _land(con, "r2", T2)
    real = increments._installed_version
    monkeypatch.setattr(increments, "_installed_version", lambda name: "99.0" if name == library else real(name))
    plan = increments.plan(con, run_id="r2", engine="duckdb")
    assert (plan.since, plan.reason) == (None, "the dbt project, the UDFs, their libraries or the dbt vars changed")


def test_installed_versions_are_read_from_the_environment() -> None:
    import importlib.metadata

    assert increments._installed_version("duckdb") == importlib.metadata.version("duckdb")
    assert increments._installed_version("no-such-package-rapport") is None


# --- the bound of the stable ids' scoped tests (docs/quality.md "Written since, by build time") ----------

S1, S2 = datetime(2026, 12, 1, 9, 30, 0, 123456), datetime(2026, 12, 2, 9, 30)


def _write_pairs(con, *stamps: datetime | None) -> None:
    """int_customer_ids_assigned's build times as dbt leaves them (a pair per stamp; other columns omitted)."""
    con.execute("create schema if not exists intermediate")
    con.execute("create table if not exists intermediate.int_customer_ids_assigned (last_assigned_at timestamp)")
    con.executemany("insert into intermediate.int_customer_ids_assigned values (?)", [[s] for s in stamps])


def test_a_completed_build_records_the_latest_build_time_and_the_next_build_tests_after_it(con) -> None:
    first = increments.plan(con, run_id="r1", engine="duckdb")
    assert first.written_after is None and "written_after" not in first.dbt_vars()  # reads and tests everything
    _write_pairs(con, S1, datetime(2026, 11, 30), None)  # r1's pairs, a retired pair's older stamp, no stamp
    assert increments.commit(con, "r1")
    _land(con, "r2", T2)
    second = increments.plan(con, run_id="r2", engine="duckdb")
    assert (second.since, second.written_after) == (T1, S1)
    assert second.dbt_vars() == {"since": "2026-11-01 01:00:00", "written_after": "2026-12-01 09:30:00.123456"}
    # the later tasks of the same run (the DAG's layers, a retry) test from the same bound
    assert increments.plan(con, run_id="r2", engine="duckdb", continue_pending=True).written_after == S1


def test_a_failed_build_keeps_the_bound_of_the_last_completed_one(con) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    _write_pairs(con, S1)
    increments.commit(con, "r1")
    _land(con, "r2", T2)
    increments.plan(con, run_id="r2", engine="duckdb")
    _write_pairs(con, S2)  # r2 wrote pairs, then a test failed: no commit
    _land(con, "r3", T3)
    third = increments.plan(con, run_id="r3", engine="duckdb")
    assert (third.since, third.written_after) == (T1, S1)  # r2's pairs are after S1: r3 tests them
    _write_pairs(con, datetime(2026, 12, 3, 9, 30))
    increments.commit(con, "r3")
    assert increments.plan(con, run_id="r4", engine="duckdb").written_after == datetime(2026, 12, 3, 9, 30)


def test_a_build_that_reads_everything_tests_everything(con) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    _write_pairs(con, S1)
    increments.commit(con, "r1")
    refresh = increments.plan(con, run_id="r2", engine="duckdb", full_refresh=True)
    assert (refresh.since, refresh.written_after, refresh.dbt_vars()) == (None, None, {"since": None})


def test_without_the_ids_table_or_a_stamp_the_next_build_tests_after_since(con) -> None:
    increments.plan(con, run_id="r1", engine="duckdb")
    increments.commit(con, "r1")  # no int_customer_ids_assigned
    _land(con, "r2", T2)
    assert increments.plan(con, run_id="r2", engine="duckdb").dbt_vars() == {"since": "2026-11-01 01:00:00"}
    _write_pairs(con, None)
    increments.commit(con, "r2")
    assert increments.plan(con, run_id="r3", engine="duckdb").written_after is None


def test_a_ledger_written_before_the_bound_existed_gains_its_columns(con) -> None:
    con.execute("create schema if not exists ops")
    con.execute(
        """create table ops.transform_increments (state varchar primary key, batch_at timestamp, since timestamp,
           logic varchar, engine varchar, reason varchar, run_id varchar, recorded_at timestamp)"""
    )
    con.execute(
        "insert into ops.transform_increments values ('committed', ?, null, ?, 'duckdb', 'x', 'r0', ?)",
        [T1, increments.logic_fingerprint(), T1],
    )
    _land(con, "r1", T2)
    plan = increments.plan(con, run_id="r1", engine="duckdb")
    assert (plan.reason, plan.since, plan.written_after) == ("incremental", T1, None)
    _write_pairs(con, S1)
    assert increments.commit(con, "r1")
    assert increments.plan(con, run_id="r2", engine="duckdb").written_after == S1
