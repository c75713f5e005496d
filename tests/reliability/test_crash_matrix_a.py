"""Crash anywhere, the sources and the first tasks: SIGKILL `rapport run` inside a task, rerun the same
interval, and get exactly the marts and raw rows of an uninterrupted run, with no lock left held.

The tasks come from the DAG files (reliability_runs.pipeline_tasks); reliability_runs.plan_chains splits them
in pipeline order between this file and test_crash_matrix_b.py (one chain of kills each), so the two xdist
workers share the load. This chain holds every extract, each killed in its first execution.
"""

from __future__ import annotations

import pytest
from reliability_crash_chain import assert_kill_recovered, run_chain
from reliability_runs import pipeline_tasks, plan_chains

pytestmark = pytest.mark.slow

SHARD = 0
CHAINS = plan_chains(pipeline_tasks())[SHARD]
TARGETS = [(i, t.task_id) for i, chain in enumerate(CHAINS) for t in chain]


@pytest.fixture(scope="module")
def chains(reference, tmp_path_factory):
    return [run_chain(chain, reference, tmp_path_factory.mktemp(f"crash{SHARD}-{i}")) for i, chain in enumerate(CHAINS)]


@pytest.mark.parametrize(("chain_index", "task_id"), TARGETS, ids=[t for _, t in TARGETS])
def test_killed_inside_the_task_then_rerun_equals_a_clean_run(chains, chain_index, task_id):
    assert_kill_recovered(chains[chain_index], task_id)


def test_every_task_the_run_executes_is_killed_exactly_once(reference):
    tasks = [t.task_id for t in pipeline_tasks()]
    # the listener saw the reference run execute exactly the discovered tasks
    assert sorted(reference.tasks_run) == sorted(tasks)
    assert {"start_run", "extract_orders", "dbt.marts", "publish", "finish_run"} <= set(tasks)
    planned = [t.task_id for shard in plan_chains(pipeline_tasks()) for chain in shard for t in chain]
    assert sorted(planned) == sorted(tasks)
