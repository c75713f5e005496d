"""Running `rapport` as a user does, watching its tasks from outside, and killing it inside one of them.

`RapportProcess` starts the command in its own process group (so a SIGKILL takes dbt, Chromium and every
other child with it) and listens on a pipe for the test-only Airflow listener in airflow_plugins/, which
writes one line when a task instance starts and one when it ends. That is the kill signal: exact task ids,
no parsing of human-readable progress lines, and every task of both DAGs, including the dbt tasks cosmos
renders, is seen the same way.

The kill targets are discovered from the DAG files themselves (`pipeline_tasks`), so a new task is covered
without touching the tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = Path(__file__).resolve().parent / "airflow_plugins"
RAPPORT = [sys.executable, "-m", "rapport.cli"]

# The tiny demo every reliability test runs on: ~50 s for a whole `rapport run` on this 2-core machine, almost
# all of it fixed cost (Airflow start, dbt invocations, Great Expectations import), so less data saves nothing.
DEMO_ARGS = ["--people", "100", "--months", "3", "--seed", "5", "--end", "2026-10-31"]
INTERVAL_END = "2026-11-01T00:00:00"


def clean_env(warehouse: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without RAPPORT_*/AIRFLOW* settings, pointed at `warehouse`.

    TMPDIR goes under the warehouse's parent: what a killed run leaves in temp directories (cosmos' copies of
    the dbt project, Chromium profiles) is removed with the test's own temporary directory.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    tmp = warehouse.parent / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(RAPPORT_WAREHOUSE_DIR=str(warehouse), TMPDIR=str(tmp), DO_NOT_TRACK="1")
    env.update(extra)
    return env


@dataclass(frozen=True)
class TaskEvent:
    at: float  # wall clock of the rapport process
    kind: str  # running | success | failed
    dag_id: str
    task_id: str


class RapportProcess:
    """`rapport <args>` in its own process group, with its task events and output collected as they come."""

    def __init__(self, args: Sequence[str], env: dict[str, str], *, events: bool = True) -> None:
        self.args = list(args)
        env = dict(env)
        pass_fds: tuple[int, ...] = ()
        read_fd = None
        if events:
            read_fd, write_fd = os.pipe()
            env.update(RAPPORT_TEST_EVENTS_FD=str(write_fd), AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS_DIR))
            pass_fds = (write_fd,)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            RAPPORT + self.args, env=env, pass_fds=pass_fds, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.pgid = self.proc.pid  # start_new_session: the child leads its own group
        self.events: list[TaskEvent] = []
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._cond = threading.Condition()
        self._events_done = read_fd is None
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True),
        ]
        if read_fd is not None:
            os.close(pass_fds[0])  # only the child writes; EOF comes when it (and its group) is gone
            self._threads.append(threading.Thread(target=self._read_events, args=(read_fd,), daemon=True))
        for thread in self._threads:
            thread.start()

    def _drain(self, stream, sink: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.append(chunk)

    def _read_events(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as fh:
            for raw in fh:
                at, kind, dag_id, task_id = raw.decode().split()
                with self._cond:
                    self.events.append(TaskEvent(float(at), kind, dag_id, task_id))
                    self._cond.notify_all()
        with self._cond:
            self._events_done = True
            self._cond.notify_all()

    def wait_for(self, kind: str, task_id: str, timeout: float) -> TaskEvent | None:
        """The first `kind` event of `task_id`, or None when the run ends (or `timeout` passes) without one."""
        return self.wait_for_any(kind, {task_id}, timeout)

    def wait_for_any(self, kind: str, task_ids: set[str], timeout: float) -> TaskEvent | None:
        """The first `kind` event of any of `task_ids`, or None when the run ends (or `timeout` passes) first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.kind == kind and event.task_id in task_ids:
                        return event
                left = deadline - time.monotonic()
                if self._events_done or left <= 0:
                    return None
                self._cond.wait(left)

    def kill(self) -> None:
        """SIGKILL the whole process group, then reap the child and collect what it wrote."""
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._join()

    def wait(self, timeout: float = 900) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._join()
        return rc

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)

    def group_alive(self) -> bool:
        """Whether a process of the run's group is still alive after a kill (a Chromium or dbt child that escaped
        it). Zombies don't count: they hold no file or lock, and reaping orphans is the init process's job."""
        for _ in range(50):
            if not _live_members(self.pgid):
                return False
            time.sleep(0.1)
        return True

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def stdout(self) -> str:
        return b"".join(self._out).decode(errors="replace")

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace")

    def states(self) -> dict[str, str]:
        """Last event of each task: success, failed or running (the last means it was killed inside it)."""
        with self._cond:
            return {e.task_id: e.kind for e in self.events}

    def durations(self) -> dict[str, float]:
        started: dict[str, float] = {}
        out: dict[str, float] = {}
        with self._cond:
            for e in self.events:
                if e.kind == "running":
                    started[e.task_id] = e.at
                elif e.task_id in started:
                    out[e.task_id] = e.at - started[e.task_id]
        return out


def _live_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        # pid (comm) state ppid pgrp ...: comm may contain spaces, so split after its closing parenthesis
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def run_to_end(args: Sequence[str], env: dict[str, str], timeout: float = 900) -> RapportProcess:
    proc = RapportProcess(args, env)
    proc.wait(timeout)
    return proc


def log_tail(warehouse: Path, chars: int = 4000) -> str:
    logs = sorted((warehouse / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text(errors="replace")[-chars:] if logs else "(no run log)"


# --- the tasks of the pipeline, from the DAG files ------------------------------------------------------

DISCOVER = """
import json, sys
from pathlib import Path
from rapport.core.config import PROJECT_ROOT, load_settings
from rapport.orchestration.local_runner import AWAIT_TASK, DAG_ID, TRANSFORM_DAG_ID, configure_airflow
configure_airflow(load_settings({"RAPPORT_WAREHOUSE_DIR": sys.argv[1]}))
from rapport.orchestration.dbt_tasks import ensure_manifest
ensure_manifest()  # what `rapport run` does first: the dbt tasks are rendered from the current manifest
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
assert not bag.import_errors, bag.import_errors
tasks = [{"dag_id": d, "task_id": t.task_id, "lands_source": d == DAG_ID and bool(t.outlets),
          "runner_skips": t.task_id == AWAIT_TASK}
         for d in (DAG_ID, TRANSFORM_DAG_ID) for t in bag.dags[d].topological_sort()]
Path(sys.argv[2]).write_text(json.dumps(tasks))
"""


@dataclass(frozen=True)
class PipelineTask:
    dag_id: str
    task_id: str
    position: int  # order in the pipeline: rapport_daily's tasks, then rapport_transform's
    lands_source: bool  # an extract: updates a source asset


def _discovery_key() -> str:
    """What the task list depends on: the DAG files, rapport's modules and the dbt model folders (layers)."""
    h = hashlib.sha256()
    files = sorted([*ROOT.glob("dags/*.py"), *ROOT.glob("rapport/*.py")])
    for path in files:
        h.update(path.name.encode() + path.read_bytes())
    models = ROOT / "dbt_project" / "models"
    h.update(" ".join(sorted(p.name for p in models.iterdir() if p.is_dir())).encode())
    return h.hexdigest()[:16]


def pipeline_tasks() -> list[PipelineTask]:
    """Every task `rapport run` executes, in pipeline order, from a DagBag of the real DAG files.

    Leaves out what the in-process runner marks done without running (rapport_daily's await_transform: the
    runner starts the transform itself). Parsing takes a few seconds, so the list is cached per version of
    the DAG code in the temp directory (both xdist workers collect every file).
    """
    cache = Path(tempfile.gettempdir()) / f"rapport-reliability-tasks-{_discovery_key()}.json"
    if not cache.exists():
        with tempfile.TemporaryDirectory(prefix="rapport-discover-") as tmp:
            out = Path(tmp) / "tasks.json"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
            proc = subprocess.run([sys.executable, "-c", DISCOVER, str(Path(tmp) / "wh"), str(out)], env=env,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
            if proc.returncode != 0:
                raise RuntimeError(f"could not list the DAGs' tasks: {proc.stderr[-3000:]}")
            partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            partial.write_text(out.read_text())
            os.replace(partial, cache)
    tasks = [t for t in json.loads(cache.read_text()) if not t["runner_skips"]]
    return [PipelineTask(t["dag_id"], t["task_id"], i, t["lands_source"]) for i, t in enumerate(tasks)]


# --- crash chains ---------------------------------------------------------------------------------------

# Rough cost in seconds of a run killed in the task at `position`, and of a whole run (measured: the first
# task starts ~9 s after launch, the whole run ends after ~50 s). Only used to balance the chains.
FULL_RUN_S = 55.0


def _kill_cost(task: PipelineTask) -> float:
    return 10.0 + 4.0 * task.position


def plan_chains(tasks: list[PipelineTask], shards: int = 2) -> list[list[list[PipelineTask]]]:
    """Group the kill targets into one chain per shard (one test file each), in pipeline order.

    A chain is one warehouse: a run killed inside its first task, the next run (the rerun of the same
    interval) killed inside its second task, and so on, then one run to the end, compared with an
    uninterrupted run. Each kill's rerun therefore runs every task up to the next kill point, and the last
    one runs everything. What a chain costs is mostly its runs' start-up (~9 CPU s each) and, once per
    chain, a whole dbt build: one chain per shard, so as few whole builds as there are test files.

    All source-landing tasks (extracts) go into the first chain, one after the other. `rapport run` starts
    them in no fixed order, so that chain kills whichever extract not killed yet starts first
    (reliability_crash_chain): each extract is killed in its very first execution, while it still has the
    whole source to land (each kill asserts it). The other tasks are cut in pipeline order between the
    chains so they cost about the same; the last chain then holds the tasks after the mart checks, whose
    runs reuse the marts an earlier run of the chain built and checked (rapport.pipeline.reuse), so its
    final run is a short one too.
    """
    sources = sorted((t for t in tasks if t.lands_source), key=lambda t: t.position)
    others = sorted((t for t in tasks if not t.lands_source), key=lambda t: t.position)

    def cost(chain: list[PipelineTask]) -> float:
        return FULL_RUN_S + sum(_kill_cost(t) for t in chain)

    # Cut `others` into `shards` consecutive slices, the first joined by the sources: each slice takes tasks
    # while it stays under an even share of what is left (the last takes the rest).
    chains: list[list[PipelineTask]] = []
    rest = list(others)
    for shard in range(shards):
        chain = list(sources) if shard == 0 else []
        left = shards - shard
        share = (cost(chain) + sum(_kill_cost(t) for t in rest) + (left - 1) * FULL_RUN_S) / left
        while rest and (left == 1 or cost([*chain, rest[0]]) <= share):
            chain.append(rest.pop(0))
        chains.append(sorted(chain, key=lambda t: t.position))
    return [[chain] for chain in chains]
