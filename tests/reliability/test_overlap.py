"""Overlapping runs: one process writes a warehouse at a time.

Two locks, two behaviours (README, "Reliability and data protection"):
- the run lock (`work/run.lock`, taken by `rapport run` and `rapport backfill` for their whole length): a
  second command on the same warehouse does not wait, it exits at once with status 3 and names the lock;
- the writer lock (`work/writer.lock`, taken by each step that opens the working DuckDB file): another process
  waits for it up to 30 s, then fails with WarehouseBusy naming the holder's pid.
Under both, DuckDB's own file lock refuses a second writing process outright.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import pytest
from reliability_checks import held_locks, lock_holders
from reliability_runs import INTERVAL_END, RAPPORT, RapportProcess, clean_env, log_tail

from rapport.core.config import load_settings
from rapport.core.warehouse import WarehouseBusy, open_warehouse, writer_lock

HOLD = textwrap.dedent("""
    import sys
    from rapport.core.config import load_settings
    from rapport.core.warehouse import writer_lock
    with writer_lock(load_settings({"RAPPORT_WAREHOUSE_DIR": sys.argv[1]})):
        print("locked", flush=True)
        sys.stdin.readline()  # hold the lock until the test writes a line (or kills this process)
""")


def _holder(warehouse) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_writer_lock_refuses_a_second_process_and_names_the_holder(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    holder = _holder(settings.warehouse_dir)
    try:
        t0 = time.monotonic()
        with pytest.raises(WarehouseBusy) as busy, writer_lock(settings, wait_seconds=1.0):
            pass
        waited = time.monotonic() - t0
        assert 1.0 <= waited < 5.0  # it waited the bounded time, then gave up
        message = str(busy.value)
        assert f"pid {holder.pid}" in message
        assert str(settings.work_db) in message
        assert "only one rapport run may write it at a time" in message
    finally:
        holder.kill()
        holder.wait()


def test_writer_lock_waits_for_the_holder_to_finish(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    holder = _holder(settings.warehouse_dir)

    def release_later() -> None:
        time.sleep(1.5)
        holder.stdin.write("done\n")
        holder.stdin.flush()

    threading.Thread(target=release_later, daemon=True).start()
    t0 = time.monotonic()
    try:
        with writer_lock(settings, wait_seconds=20):
            waited = time.monotonic() - t0
    finally:
        holder.wait(timeout=30)
    assert 1.3 <= waited < 10


def test_writer_lock_of_a_killed_process_is_free_at_once(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    holder = _holder(settings.warehouse_dir)
    assert held_locks(settings.warehouse_dir) == ["writer.lock"]
    holder.kill()  # SIGKILL: no chance to unlock or clean up
    holder.wait()
    assert held_locks(settings.warehouse_dir) == []
    t0 = time.monotonic()
    with writer_lock(settings, wait_seconds=0.5):
        pass
    assert time.monotonic() - t0 < 0.5


def test_duckdb_refuses_a_second_writer_even_past_the_advisory_lock(tmp_path):
    """The writer lock is advisory; a process that skips it (or a dbt task, which opens the file itself) still
    cannot write the file while another process has it open: DuckDB's own lock refuses."""
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); con.execute('create table t as select 1 x'); "
            "print('open', flush=True); sys.stdin.readline()")  # fmt: skip
    settings.work_db.parent.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", code, str(settings.work_db)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "open"
        with pytest.raises(duckdb.IOException, match="lock"), open_warehouse(settings) as con:
            con.execute("create table u as select 2 y")
    finally:
        other.kill()
        other.wait()
    con = duckdb.connect(str(settings.work_db), read_only=True)
    assert con.execute("select table_name from information_schema.tables").fetchall() == [("t",)]
    con.close()


@pytest.mark.slow
def test_second_run_and_backfill_refuse_to_start_while_a_run_is_active(reference, tmp_path):
    """Both commands exit at once (status 3) naming the run lock; a writer from outside waits, then names
    the run's pid. Probed while the run is inside check_raw, which holds both locks."""
    wh = reference.new_warehouse(tmp_path)
    env = clean_env(wh)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(wh)})
    first = RapportProcess(["run", "--interval-end", INTERVAL_END], env)
    pid = first.proc.pid  # `rapport run` runs every task in its own process
    work = wh / "work"
    try:
        assert first.wait_for("running", "check_raw", timeout=600), first.stdout + log_tail(wh)
        # check_raw imports Great Expectations, then validates for seconds holding the writer lock
        deadline = time.monotonic() + 120
        while pid not in lock_holders(work / "writer.lock") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_holders(work / "writer.lock") == [pid]
        # Another writer waits for the lock, then gives up naming the run's process.
        with pytest.raises(WarehouseBusy, match=f"pid {pid}"), writer_lock(settings, wait_seconds=0.5):
            pass
        # A second run or backfill does not wait at all.
        assert lock_holders(work / "run.lock") == [pid]
        for args in (["run", "--interval-end", INTERVAL_END], ["backfill", "--start", "2026-10-31", "--end",
                                                               "2026-10-31"]):  # fmt: skip
            t0 = time.monotonic()
            second = subprocess.run(RAPPORT + args, env=env, capture_output=True, text=True, timeout=120)
            elapsed = time.monotonic() - t0
            assert second.returncode == 3, (args, second.stdout, second.stderr)
            assert "another rapport run is active" in second.stdout, second.stdout
            assert str(work / "run.lock") in second.stdout, second.stdout
            assert elapsed < 20, f"{args[0]} took {elapsed:.1f}s to refuse: it should not wait"
    finally:
        # The rest of the run is the crash matrix's business (it completes, or recovers when killed): stop here.
        first.kill()
    # The refused commands left no trace (their log files are created only once they hold the lock), the run
    # they overlapped had no task fail meanwhile, and its locks died with it.
    assert [p.name.split("-")[0] for p in (wh / "logs").glob("*.log")] == ["run"]
    assert "failed" not in first.states().values(), first.states()
    assert {"start_run", "extract_orders", "extract_helpdesk", "extract_esp"} <= {
        t for t, state in first.states().items() if state == "success"
    }
    assert held_locks(wh) == []
