"""How the crash matrix's kill targets are split into chains (reliability_runs.plan_chains), on made-up task
lists: the invariants the matrix files rely on, checked without running anything."""

from __future__ import annotations

from reliability_runs import PipelineTask, plan_chains


def _tasks(names: str, sources: set[str]) -> list[PipelineTask]:
    return [PipelineTask("d", name, i, name in sources) for i, name in enumerate(names.split())]


PIPELINE = _tasks(
    "start e1 e2 e3 resolve checks dbt1 dbt2 dbt3 predict checks2 publish report finish", {"e1", "e2", "e3"}
)


def test_each_task_is_in_exactly_one_chain_one_chain_per_shard_in_pipeline_order():
    shards = plan_chains(PIPELINE)
    assert [len(shard) for shard in shards] == [1, 1]
    planned = [t for shard in shards for chain in shard for t in chain]
    assert sorted(t.task_id for t in planned) == sorted(t.task_id for t in PIPELINE)
    for shard in shards:
        positions = [t.position for t in shard[0]]
        assert positions == sorted(positions)


def test_every_extract_is_in_the_first_chain_and_the_rest_is_cut_in_pipeline_order():
    first, second = (shard[0] for shard in plan_chains(PIPELINE))
    assert {"e1", "e2", "e3"} <= {t.task_id for t in first}
    assert not any(t.lands_source for t in second)
    # a cut, not an interleaving: every task of the second chain comes after every task of the first
    assert max(t.position for t in first) < min(t.position for t in second)
    assert first[0].task_id == "start" and second[-1].task_id == "finish"


def test_the_cut_balances_the_estimated_cost():
    # 3 sources and 11 other tasks, costs 10 + 4 * position, 55 per chain for its final run:
    # first = sources (14+18+22) + start, resolve..dbt3 (10+26+30+34+38+42) + 55 = 289,
    # second = predict..finish (46+50+54+58+62) + 55 = 325; one task more in the first chain gives 335 / 279
    first, second = (shard[0] for shard in plan_chains(PIPELINE))
    assert [t.task_id for t in second] == ["predict", "checks2", "publish", "report", "finish"]


def test_few_tasks_the_first_chain_keeps_the_sources_and_a_shard_may_get_no_kill():
    # start costs 10, e1 14, each chain 55 more. Shard 0: [e1] = 69; its share of what is left is
    # (69 + 10 + 2 * 55) / 3 = 63 < 79 with start. Shard 1: share (55 + 10 + 55) / 2 = 60 < 65 with start.
    # Shard 2 takes the rest. (A shard without kills starts no run: its file has no test.)
    tiny = _tasks("start e1", {"e1"})
    assert [[t.task_id for t in shard[0]] for shard in plan_chains(tiny, shards=3)] == [["e1"], [], ["start"]]
    # a 10, b 14, c 18, d 22: share of shard 0 = (55 + 64 + 55) / 2 = 87; a, b = 79, a, b, c = 97
    no_sources = _tasks("a b c d", set())
    assert [[t.task_id for t in shard[0]] for shard in plan_chains(no_sources)] == [["a", "b"], ["c", "d"]]
