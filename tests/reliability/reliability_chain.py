"""Crash anywhere: SIGKILL `rapport run` inside each task, rerun the same interval, compare with a clean run.

See `reliability_runs.plan_chains` for why kills are chained. Per kill this records where it landed and what
the warehouse looked like right after (locks, duplicate raw keys, the published file); per chain, how the
final rerun ended and what it published.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reliability_checks import (
    differences,
    held_locks,
    published_fingerprints,
    published_runs,
    raw_duplicates,
    raw_fingerprints,
    temp_files,
)
from reliability_runs import INTERVAL_END, PipelineTask, RapportProcess, clean_env, log_tail

SEED = 20261101
RUN_ARGS = ["run", "--interval-end", INTERVAL_END]
MAX_ATTEMPTS = 3  # a kill that lands after its task ended (a very short task) is tried again at once


@dataclass
class Kill:
    task_id: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    landed_inside: bool = False
    never_started: str | None = None  # the run ended before the task started: why
    group_alive: bool = False
    held_locks: list[str] = field(default_factory=list)
    raw_duplicates: dict[str, int] = field(default_factory=dict)
    published_diff: dict[str, Any] | None = None  # vs the reference, when a published file existed
    rerun_states: dict[str, str] = field(default_factory=dict)  # task states of the next run of the chain


@dataclass
class Chain:
    tasks: list[str]
    warehouse: Path
    kills: dict[str, Kill] = field(default_factory=dict)
    final_rc: int | None = None
    final_states: dict[str, str] = field(default_factory=dict)
    final_output: str = ""
    published_diff: dict[str, Any] = field(default_factory=dict)
    raw_diff: dict[str, Any] = field(default_factory=dict)
    raw_duplicates: dict[str, int] = field(default_factory=dict)
    held_locks: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    published_runs: list[tuple[str, str, str | None]] = field(default_factory=list)  # run_id, status, error
    seconds: float = 0.0


def _kill_inside(task: PipelineTask, env: dict[str, str], duration: float, rng: random.Random,
                 kill: Kill, warehouse: Path) -> list[RapportProcess]:  # fmt: skip
    """Start a run, wait for `task` to start, sleep a seeded fraction of its usual duration, SIGKILL the group.

    A kill that lands after the task has ended (its duration varies with the machine's load) is tried again
    with no delay, on the warehouse as it was before the missed attempt: otherwise the retry would find the
    task's work already done (an extract with nothing left to land). Returns the processes started.
    """
    snapshot = warehouse.parent / "before-kill"
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(warehouse, snapshot, symlinks=True)
    procs = []
    for attempt in range(MAX_ATTEMPTS):
        delay = duration * rng.uniform(0.1, 0.7) if attempt == 0 else 0.0
        if attempt:
            shutil.rmtree(warehouse)
            shutil.copytree(snapshot, warehouse, symlinks=True)
        proc = RapportProcess(RUN_ARGS, env)
        procs.append(proc)
        started = proc.wait_for("running", task.task_id, timeout=600)
        if started is None:
            rc = proc.wait(timeout=600)
            kill.never_started = f"run exited {rc} before {task.task_id} started:\n{proc.stdout[-3000:]}"
            break
        time.sleep(delay)
        proc.kill()
        state = proc.states().get(task.task_id)
        kill.attempts.append({"delay_s": round(delay, 3), "state_at_kill": state,
                              "killed_after_s": round(proc.seconds, 1)})  # fmt: skip
        kill.group_alive = kill.group_alive or proc.group_alive()
        if state == "running":
            kill.landed_inside = True
            break
    shutil.rmtree(snapshot, ignore_errors=True)
    return procs


def run_chain(tasks: list[PipelineTask], reference: Any, workdir: Path) -> Chain:
    """Kill a run inside each of `tasks` in turn on one fresh warehouse, then run it to the end."""
    t0 = time.monotonic()
    wh = reference.new_warehouse(workdir)
    env = clean_env(wh)
    work_db, published = wh / "work" / "rapport_work.duckdb", wh / "published" / "rapport.duckdb"
    chain = Chain([t.task_id for t in tasks], wh)
    runs: list[tuple[str, RapportProcess]] = []  # every run of the chain, in order, with the kill it served
    for task in tasks:
        kill = Kill(task.task_id)
        rng = random.Random(f"{SEED}:{task.task_id}")
        duration = reference.durations.get(task.task_id, 0.5)
        # only the last attempt counts: the warehouse was put back as it was before any missed one
        runs.append((task.task_id, _kill_inside(task, env, duration, rng, kill, wh)[-1]))
        kill.held_locks = held_locks(wh)
        if work_db.exists():
            kill.raw_duplicates = raw_duplicates(work_db)
        if published.exists():
            kill.published_diff = differences(reference.published, published_fingerprints(published))
        chain.kills[task.task_id] = kill
    final = RapportProcess(RUN_ARGS, env)
    runs.append(("final", final))
    chain.final_rc = final.wait(timeout=900)
    chain.final_states = final.states()
    chain.final_output = final.stdout[-3000:] + final.stderr[-2000:] + "\n--- run log ---\n" + log_tail(wh)
    # The rerun after a kill: the first later run of the chain that got to the killed task (parallel extracts
    # run in any order, so the next run may have been killed before it reached it).
    for i, (label, _proc) in enumerate(runs[:-1]):
        later = (p.states().get(label) for _, p in runs[i + 1 :])
        chain.kills[label].rerun_states = {label: next((s for s in later if s), "never reached")}
    chain.published_diff = (differences(reference.published, published_fingerprints(published))
                            if published.exists() else {"published file": "missing"})  # fmt: skip
    chain.raw_diff = differences(reference.raw, raw_fingerprints(work_db))
    chain.raw_duplicates = raw_duplicates(work_db)
    chain.held_locks = held_locks(wh)
    chain.temp_files = temp_files(wh / "published", wh / "reports", wh / "audiences", wh / "runs")
    if published.exists():
        chain.published_runs = published_runs(published)
    chain.seconds = time.monotonic() - t0
    summary = {k: v for k, v in asdict(chain).items() if k != "final_output"}
    (workdir / "chain.json").write_text(json.dumps(summary, indent=1, default=str))
    return chain


def assert_kill_recovered(chain: Chain, task_id: str) -> None:
    """Everything a kill inside `task_id` and the reruns after it must satisfy."""
    kill = chain.kills[task_id]
    assert kill.never_started is None, kill.never_started
    assert kill.landed_inside, f"no kill landed inside {task_id}: {kill.attempts}"
    assert not kill.group_alive, "a process of the killed run survived the SIGKILL of its group"
    # Right after the kill: the OS dropped the flocks, nothing landed twice, and the published file (if any
    # run of this chain had published yet) is a complete one, never a half-written file.
    assert kill.held_locks == [], f"locks still held after the kill: {kill.held_locks}"
    assert kill.raw_duplicates == {}, f"raw keys landed twice after a kill in {task_id}: {kill.raw_duplicates}"
    assert not kill.published_diff, f"the published file differs from a clean run's: {kill.published_diff}"
    assert kill.rerun_states == {task_id: "success"}, f"the rerun after the kill: {kill.rerun_states}"
    # After the chain's last, uninterrupted rerun: exactly what one clean run publishes and lands.
    assert chain.final_rc == 0, chain.final_output
    # every task succeeds; dbt tasks may skip themselves when an earlier run of the chain already built and
    # checked the marts from these very rows (rapport.pipeline.reuse): the published marts are compared below
    not_success = {t: s for t, s in chain.final_states.items() if s != "success"}
    assert all(s == "skipped" and t.startswith("dbt.") for t, s in not_success.items()), (
        chain.final_states,
        chain.final_output,
    )
    assert chain.published_diff == {}, f"published marts differ from the clean run's: {chain.published_diff}"
    assert chain.raw_diff == {}, f"raw tables differ from the clean run's: {chain.raw_diff}"
    assert chain.raw_duplicates == {}, chain.raw_duplicates
    assert chain.held_locks == [], chain.held_locks
    assert chain.temp_files == [], f"temporary files left behind: {chain.temp_files}"
    # ops.runs tells what happened: the killed runs ended (as failed), none is shown running for ever
    assert chain.published_runs and chain.published_runs[-1][1] == "success", chain.published_runs
    assert [r for r in chain.published_runs if r[1] == "running"] == [], chain.published_runs
