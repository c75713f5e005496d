"""The real dbt project, split into layer tasks, still builds and tests everything exactly once, in order.

dbt itself resolves the selections (`dbt ls` with the flags the layer tasks use), so this checks rapport's
selections against dbt's selector, not against rapport's own reading of the manifest. It also checks that
dbt accepts a narrowed retry selection and that it picks the failed model and its children in the layer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

LS = """
import json, os, sys
from dbt.cli.main import dbtRunner
project, target, selections = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {}
for key, (select, extra) in selections.items():
    args = ["ls", "--project-dir", project, "--profiles-dir", project, "--target-path", target,
            "--log-path", target + "/logs", "--quiet", "--output", "json", "--output-keys", "unique_id",
            "--resource-types", "model", "test", "unit_test", "source"] + extra
    if select:
        args += ["--select", select]
    res = dbtRunner().invoke(args)
    assert res.success, (key, res.exception)
    out[key] = sorted(json.loads(line)["unique_id"] for line in res.result)
print(json.dumps(out))
"""


def _dbt_ls(tmp_path: Path, selections: dict[str, tuple[str, list[str]]]) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update({"DO_NOT_TRACK": "1", "RAPPORT_WORK_DB": str(tmp_path / "ls.duckdb")})
    proc = subprocess.run([sys.executable, "-c", LS, str(ROOT / "dbt_project"), str(tmp_path / "target"),
                           json.dumps(selections)], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from rapport.orchestration.dbt_tasks import generate_manifest, layer_selections

    tmp = tmp_path_factory.mktemp("dbt_layers")
    manifest = generate_manifest(tmp / "manifest.json")
    layers = layer_selections(manifest)
    selections = {layer: (select, ["--indirect-selection", "cautious"]) for layer, select in layers}
    selections["all"] = ("", [])
    return tmp, json.loads(manifest.read_text()), layers, _dbt_ls(tmp, selections)


def test_the_layers_are_staging_intermediate_marts(project):
    _, _, layers, _ = project
    assert [layer for layer, _ in layers] == ["staging", "intermediate", "marts"]


def test_every_model_and_test_runs_in_exactly_one_layer(project):
    _, _, layers, ls = project
    everything = {uid for uid in ls["all"] if not uid.startswith("source.")}
    selected = [uid for layer, _ in layers for uid in ls[layer] if not uid.startswith("source.")]
    assert len(selected) == len(set(selected)), "a node runs in two layers"
    assert set(selected) == everything


def test_no_test_runs_before_all_its_parents_are_built(project):
    _, manifest, layers, ls = project
    order = {uid: i for i, (layer, _) in enumerate(layers) for uid in ls[layer]}
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    for uid, i in order.items():
        if uid.split(".")[0] not in ("test", "unit_test"):
            continue
        for parent in nodes[uid]["depends_on"]["nodes"]:
            if parent.startswith("model."):
                assert order[parent] <= i, (uid, parent)


def test_a_narrowed_retry_selects_the_failed_model_and_its_children_in_the_layer(project):
    from rapport.orchestration.dbt_retry import retry_selection

    tmp, manifest, layers, ls = project
    marts = dict(layers)["marts"]
    mart_models = [uid for uid in ls["marts"] if uid.startswith("model.")]
    # the mart with the most descendants inside the layer, so the check covers children
    children = {uid: set(manifest["child_map"].get(uid, ())) for uid in manifest["nodes"]}

    def descendants(uid: str) -> set[str]:
        found, todo = set(), [uid]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    failed = max(mart_models, key=lambda uid: len(descendants(uid) & set(mart_models)))
    state = tmp / "state"
    state.mkdir()
    results = {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                            "dbt_version": "1.11.16", "generated_at": "2026-11-01T00:00:00Z",
                            "invocation_id": "x", "env": {}},
               "elapsed_time": 1.0, "args": {},
               "results": [{"unique_id": uid, "status": "error" if uid == failed else "success", "timing": [],
                            "thread_id": "t", "execution_time": 0.1, "adapter_response": {}, "message": "",
                            "failures": None, "compiled": True, "compiled_code": "", "relation_name": None,
                            "batch_results": None} for uid in ls["marts"]]}  # fmt: skip
    (state / "run_results.json").write_text(json.dumps(results))
    select = retry_selection(results, marts)
    ls_retry = _dbt_ls(tmp, {"retry": (select, ["--indirect-selection", "cautious", "--state", str(state)])})
    rebuilt = {uid for uid in ls_retry["retry"] if uid.startswith("model.")}
    assert rebuilt == ({failed} | descendants(failed)) & set(mart_models)
    assert len(rebuilt) < len(mart_models)


def test_a_regenerated_manifest_follows_edits_with_the_kept_parse_state(tmp_path):
    """The kept partial-parse state must never hide an edit: a model added, its ref changed, then removed."""
    import shutil

    from rapport.orchestration.dbt_tasks import generate_manifest

    project = tmp_path / "project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    manifest, state = tmp_path / "out" / "manifest.json", tmp_path / "out" / "partial_parse.msgpack"

    def nodes() -> dict:
        return json.loads(generate_manifest(manifest, project).read_text())["nodes"]

    assert "model.rapport.zz_probe" not in nodes() and state.exists()
    probe = project / "models" / "marts" / "zz_probe.sql"
    probe.write_text("select customer_id from {{ ref('customers') }}\n")
    assert nodes()["model.rapport.zz_probe"]["depends_on"]["nodes"] == ["model.rapport.customers"]
    probe.write_text("select campaign_id from {{ ref('campaign_performance') }}\n")
    assert nodes()["model.rapport.zz_probe"]["depends_on"]["nodes"] == ["model.rapport.campaign_performance"]
    probe.unlink()
    assert "model.rapport.zz_probe" not in nodes()
