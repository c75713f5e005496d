"""The glue between Airflow's task context and rapport's pipeline steps (no Airflow servers needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.orchestration.assets import run_extra, run_from_events
from rapport.orchestration.task_context import (
    await_transform_poke,
    failure_message,
    open_transform,
    read_run_status,
    record_failure,
    redact,
    run_context,
    secrets_of,
    write_run_status,
)
from rapport.pipeline import steps as pipeline


def _ctx(run_id="manual__x", conf=None, events=None, start=None, end=None, run_after=None):
    dag_run = SimpleNamespace(run_id=run_id, conf=conf or {}, run_after=run_after)
    return {"dag_run": dag_run, "data_interval_start": start, "data_interval_end": end,
            "triggering_asset_events": events or {}}  # fmt: skip


SETTINGS = load_settings({"RAPPORT_WAREHOUSE_DIR": "/tmp/unused"})


def test_scheduled_run_uses_its_data_interval():
    ctx = run_context(_ctx("scheduled__2026-10-31T00:00:00+00:00", start=datetime(2026, 10, 31, tzinfo=UTC),
                           end=datetime(2026, 11, 1, tzinfo=UTC)), SETTINGS)  # fmt: skip
    assert ctx.run_id == "scheduled__2026-10-31T00:00:00+00:00"
    assert (ctx.interval_start, ctx.interval_end) == (datetime(2026, 10, 31), datetime(2026, 11, 1))
    assert ctx.as_of == date(2026, 11, 1)  # the end of the interval


def test_conf_wins_over_the_data_interval():
    conf = {"interval_end": "2026-11-01T12:00:00", "as_of": "2026-10-15"}
    ctx = run_context(_ctx(conf=conf, start=datetime(2026, 10, 31, tzinfo=UTC),
                           end=datetime(2026, 11, 1, tzinfo=UTC)), SETTINGS)  # fmt: skip
    assert ctx.interval_end == datetime(2026, 11, 1, 12)
    assert ctx.as_of == date(2026, 10, 15)


def _event(**extra):
    return SimpleNamespace(extra=extra)


def test_asset_triggered_run_continues_the_latest_extract_run_it_was_triggered_by():
    older = run_extra({"run_id": "scheduled__d1", "interval_start": "2026-10-30T00:00:00",
                       "interval_end": "2026-10-31T00:00:00", "as_of": "2026-10-31"}, landed=3)  # fmt: skip
    newer = run_extra({"run_id": "scheduled__d2", "interval_start": "2026-10-31T00:00:00",
                       "interval_end": "2026-11-01T00:00:00", "as_of": "2026-11-01"}, landed=0)  # fmt: skip
    events = {"rapport://sources/orders": [_event(**older), _event(**newer)],
              "rapport://sources/esp": [_event(**newer)], "rapport://sources/other": [_event(foo=1)]}  # fmt: skip
    ctx = run_context(_ctx("asset_triggered__x", events=events, run_after=datetime(2026, 11, 23, tzinfo=UTC)),
                      SETTINGS)  # fmt: skip
    assert ctx.run_id == "scheduled__d2"
    assert (ctx.interval_start, ctx.interval_end) == (datetime(2026, 10, 31), datetime(2026, 11, 1))
    assert ctx.as_of == date(2026, 11, 1)


def test_events_without_run_information_name_no_run():
    assert run_from_events({"a": [_event(), _event(run_id="x")]}) is None
    assert run_from_events(None) is None


def test_manual_transform_without_events_is_its_own_run_ending_at_run_after():
    ctx = run_context(_ctx("manual__t", run_after=datetime(2026, 11, 23, 8, 30, tzinfo=UTC)), SETTINGS)
    assert ctx.run_id == "manual__t"
    assert ctx.interval_end == datetime(2026, 11, 23, 8, 30)


def test_secrets_are_found_and_redacted():
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": "/tmp/unused", "RAPPORT_HELPDESK_TOKEN": "tok-12345",
                              "RAPPORT_ORDERS_DB_URL": "postgresql+psycopg://reader:pa55word@db/shop"})  # fmt: skip
    found = secrets_of(settings)
    assert found == ["tok-12345", "pa55word"]
    text = "GET failed with Bearer tok-12345 for postgresql+psycopg://reader:pa55word@db/shop"
    assert redact(text, found) == "GET failed with Bearer *** for postgresql+psycopg://reader:***@db/shop"


def test_failure_message_names_the_task_and_hides_secrets():
    ti = SimpleNamespace(task_id="extract_helpdesk", dag_id="rapport_daily", try_number=4)
    message = failure_message({"ti": ti, "exception": RuntimeError("401 for token s3cr3t-token")},
                              ["s3cr3t-token"])  # fmt: skip
    assert message == "task rapport_daily.extract_helpdesk (try 4) failed: RuntimeError: 401 for token ***"


def test_await_transform_waits_then_succeeds_or_fails(tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path)})
    assert await_transform_poke(settings, "run:1") is False
    write_run_status(settings, "run:1", "success")
    assert await_transform_poke(settings, "run:1") is True
    write_run_status(settings, "run:2", "failed", "task rapport_transform.dbt.marts failed: boom")
    with pytest.raises(AirflowFailException, match="dbt.marts failed: boom"):
        await_transform_poke(settings, "run:2")


def _runs(settings):
    con = duckdb.connect(str(settings.work_db), read_only=True)
    try:
        return con.execute("select run_id, status, error from ops.runs order by run_id").fetchall()
    finally:
        con.close()


def test_failure_callback_records_the_failure_in_ops_runs_and_the_status_marker(tmp_path, monkeypatch):
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setenv("RAPPORT_HELPDESK_TOKEN", "very-secret-token")
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    settings = load_settings()
    ctx = pipeline.RunContext.create("manual__r1", interval_end=datetime(2026, 11, 1))
    pipeline.start_run(settings, ctx)
    context = _ctx("manual__r1", conf={"interval_end": "2026-11-01T00:00:00"})
    context["ti"] = SimpleNamespace(task_id="extract_helpdesk", dag_id="rapport_daily", try_number=4)
    context["exception"] = ConnectionError("refused, token very-secret-token")
    record_failure(context)
    [(run_id, status, error)] = _runs(settings)
    assert (run_id, status) == ("manual__r1", "failed")
    assert error == "task rapport_daily.extract_helpdesk (try 4) failed: ConnectionError: refused, token ***"
    assert read_run_status(settings, "manual__r1")["status"] == "failed"


def test_a_standalone_transform_registers_its_run_and_a_continued_one_does_not(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path)})
    own = pipeline.RunContext.create("manual__t1", interval_end=datetime(2026, 11, 1))
    write_run_status(settings, "manual__t1", "failed", "an earlier attempt")
    assert open_transform(settings, own, _ctx("manual__t1")) is True
    assert read_run_status(settings, "manual__t1") is None  # a rerun waits for its new outcome
    continued = pipeline.RunContext.create("scheduled__d1", interval_end=datetime(2026, 11, 1))
    assert open_transform(settings, continued, _ctx("asset_triggered__x")) is False
    assert [r[:2] for r in _runs(settings)] == [("manual__t1", "running")]
