"""Crash anywhere: SIGKILL `rapport run` inside each task, rerun the same interval, compare with a clean run.

See `reliability_runs.plan_chains` for why kills are chained. Per kill this records where it landed and what
the warehouse looked like right after (locks, duplicate raw keys, the published file); per chain, how the
final rerun ended and what it published. The extracts of a chain are killed in whichever order the run
starts them, each in its first execution, so that one chain can hold all of them.
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
    lands_source: bool = False
    attempts: list[dict[str, Any]] = field(default_factory=list)
    landed_inside: bool = False
    never_started: str | None = None  # the run ended before the task started: why
    # an extract: earlier runs of the chain (or of this kill's run) that had started it or another extract
    # not killed yet; none, so each extract was killed with its whole source still to land
    sources_started_before: list[str] = field(default_factory=list)
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


def _kill_inside(candidates: list[PipelineTask], env: dict[str, str], durations: dict[str, float],
                 warehouse: Path) -> tuple[Kill, RapportProcess]:  # fmt: skip
    """Start a run, wait for the first of `candidates` to start, sleep a seeded fraction of that task's usual
    duration, SIGKILL the group. `candidates` is one task, or the extracts of the chain not killed yet (the
    run starts those in no fixed order: whichever comes first is killed in its first execution).

    A kill that lands after the task has ended (its duration varies with the machine's load) is tried again
    with no delay, on the warehouse as it was before the missed attempt: otherwise the retry would find the
    task's work already done (an extract with nothing left to land). Returns the kill and the run that
    counts (the last attempt's).
    """
    snapshot = warehouse.parent / "before-kill"
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(warehouse, snapshot, symlinks=True)
    ids = {t.task_id for t in candidates}
    lands_source = {t.task_id: t.lands_source for t in candidates}
    kill = Kill(candidates[0].task_id, lands_source=candidates[0].lands_source)
    attempts: list[dict[str, Any]] = []
    group_alive = False
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            shutil.rmtree(warehouse)
            shutil.copytree(snapshot, warehouse, symlinks=True)
        proc = RapportProcess(RUN_ARGS, env)
        started = proc.wait_for_any("running", ids, timeout=600)
        if started is None:
            rc = proc.wait(timeout=600)
            kill.never_started = f"run exited {rc} before any of {sorted(ids)} started:\n{proc.stdout[-3000:]}"
            break
        target = started.task_id
        rng = random.Random(f"{SEED}:{target}")
        delay = durations.get(target, 0.5) * rng.uniform(0.1, 0.7) if attempt == 0 else 0.0
        time.sleep(delay)
        proc.kill()
        states = proc.states()
        attempts.append({"task_id": target, "delay_s": round(delay, 3), "state_at_kill": states.get(target),
                         "killed_after_s": round(proc.seconds, 1)})  # fmt: skip
        group_alive = group_alive or proc.group_alive()
        kill = Kill(target, lands_source=lands_source[target], attempts=attempts, group_alive=group_alive)
        # the other candidates must not have started in this run: they would have landed their source
        kill.sources_started_before = sorted(t for t in ids - {target} if t in states)
        if states.get(target) == "running":
            kill.landed_inside = True
            break
    shutil.rmtree(snapshot, ignore_errors=True)
    return kill, proc


def run_chain(tasks: list[PipelineTask], reference: Any, workdir: Path) -> Chain:
    """Kill a run inside each of `tasks` in turn on one fresh warehouse, then run it to the end."""
    t0 = time.monotonic()
    wh = reference.new_warehouse(workdir)
    env = clean_env(wh)
    work_db, published = wh / "work" / "rapport_work.duckdb", wh / "published" / "rapport.duckdb"
    chain = Chain([t.task_id for t in tasks], wh)
    runs: list[tuple[str, RapportProcess]] = []  # every run of the chain, in order, with the kill it served
    sources_left = [t for t in tasks if t.lands_source]
    for task in tasks:
        candidates = list(sources_left) if task.lands_source else [task]
        # only the last attempt counts: the warehouse was put back as it was before any missed one
        kill, proc = _kill_inside(candidates, env, reference.durations, wh)
        sources_left = [t for t in sources_left if t.task_id != kill.task_id]
        if kill.lands_source:  # and no earlier run of the chain started it
            kill.sources_started_before += [label for label, p in runs if kill.task_id in p.states()]
        runs.append((kill.task_id, proc))
        kill.held_locks = held_locks(wh)
        if work_db.exists():
            kill.raw_duplicates = raw_duplicates(work_db)
        if published.exists():
            kill.published_diff = differences(reference.published, published_fingerprints(published))
        chain.kills[kill.task_id] = kill
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
    assert task_id in chain.kills, f"{task_id} was never the target of a kill: {sorted(chain.kills)}"
    kill = chain.kills[task_id]
    assert kill.never_started is None, kill.never_started
    assert kill.landed_inside, f"no kill landed inside {task_id}: {kill.attempts}"
    assert not kill.group_alive, "a process of the killed run survived the SIGKILL of its group"
    # an extract is killed in its first execution, before any other extract not killed yet ran (it would have
    # landed that one's source): each was killed with its whole source still to land
    assert kill.sources_started_before == [], f"started before the kill in {task_id}: {kill.sources_started_before}"
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
