"""Crash anywhere, the last tasks: SIGKILL `rapport run` inside a task, rerun the same interval, and get
exactly the marts and raw rows of an uninterrupted run, with no lock left held.

The tasks come from the DAG files (reliability_runs.pipeline_tasks); reliability_runs.plan_chains splits them
in pipeline order between test_crash_matrix_a.py and this file (one chain of kills each), so the two xdist
workers share the load.
"""

from __future__ import annotations

import pytest
from reliability_crash_chain import assert_kill_recovered, run_chain
from reliability_runs import pipeline_tasks, plan_chains

pytestmark = pytest.mark.slow

SHARD = 1
CHAINS = plan_chains(pipeline_tasks())[SHARD]
TARGETS = [(i, t.task_id) for i, chain in enumerate(CHAINS) for t in chain]


@pytest.fixture(scope="module")
def chains(reference, tmp_path_factory):
    return [run_chain(chain, reference, tmp_path_factory.mktemp(f"crash{SHARD}-{i}")) for i, chain in enumerate(CHAINS)]


@pytest.mark.parametrize(("chain_index", "task_id"), TARGETS, ids=[t for _, t in TARGETS])
def test_killed_inside_the_task_then_rerun_equals_a_clean_run(chains, chain_index, task_id):
    assert_kill_recovered(chains[chain_index], task_id)
