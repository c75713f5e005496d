"""The dbt project as Airflow tasks, rendered by astronomer-cosmos from dbt's manifest.

Two granularities (`RAPPORT_DBT_TASKS`), both cosmos LOCAL operators running dbt in the task's process
(`InvocationMode.DBT_RUNNER`), against profiles.yml's target for RAPPORT_ENGINE (`work`: DuckDB, `spark`):

- `layer` (default): one `dbt build` task per layer (staging → intermediate → marts), each running the
  layer's models, unit tests and data tests; a test whose parents span layers runs in the layer of its
  last parent (`layer_selections`). A retry of a failed layer task rebuilds only what failed
  (rapport.orchestration.dbt_retry).
- `model`: one task per model (`dbt build --select <model>`: its unit tests, the model, its tests), tests
  with several parents in their own task after all of them, source tests in one task per source.

docs/airflow.md gives the measured cost of each. The manifest comes from `dbt parse`
(`ensure_manifest()`); when it is missing or older than the project's files, the DAG still imports and
runs the whole project as one `dbt_build` task instead.

The run's dbt vars (`as_of`, `run_id`) and the working database's path are not known when the DAG file
is parsed: an interceptor computes them from the task's run context, exactly as the Python tasks do.

With RAPPORT_ENGINE=spark the group starts with `spark_load` (raw tables and the incremental models' state
from the working DuckDB file into Spark) and ends with `spark_collect` (the built tables back into it),
and the interceptor starts the task process's SparkSession (with the UDFs) before dbt runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rapport.core.config import engine_from
from rapport.core.environ import environ_set
from rapport.orchestration.dbt_retry import UNSUCCESSFUL, narrow_layer_retry, save_run_results
from rapport.transform.project import DBT_PROJECT_DIR, project_files
from rapport.transform.runner import release_duckdb

log = logging.getLogger("rapport.orchestration.dbt_tasks")

PROFILE_NAME = "rapport"
LAYERS = ("staging", "intermediate", "marts")
GRANULARITIES = ("layer", "model")
DEFAULT_GRANULARITY = "layer"


def manifest_path() -> Path:
    """Where the manifest lives: `RAPPORT_DBT_MANIFEST`, else dbt_project/target/airflow/ (git-ignored; not
    dbt's own target/manifest.json, which any `dbt` command run in the project directory rewrites)."""
    return Path(os.environ.get("RAPPORT_DBT_MANIFEST") or DBT_PROJECT_DIR / "target" / "airflow" / "manifest.json")


def granularity(env: dict[str, str] | None = None) -> str:
    value = (env if env is not None else os.environ).get("RAPPORT_DBT_TASKS", DEFAULT_GRANULARITY).strip().lower()
    if value not in GRANULARITIES:
        raise ValueError(f"RAPPORT_DBT_TASKS={value!r}: use one of {', '.join(GRANULARITIES)}")
    return value


def manifest_is_current(manifest: Path | None = None, project_dir: Path | None = None) -> bool:
    """True when the manifest exists and no project file changed after it was written."""
    manifest = manifest or manifest_path()
    project_dir = project_dir or DBT_PROJECT_DIR
    try:
        written = manifest.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(p.stat().st_mtime <= written for p in project_files(project_dir))


def generate_manifest(manifest: Path | None = None, project_dir: Path | None = None) -> Path:
    """`dbt parse` into a scratch target directory, then move the manifest into place atomically.

    dbt's partial-parse state is kept beside the manifest (`partial_parse.msgpack`) and handed to the next
    parse, so regenerating after an edit re-reads only the changed files (about 1 s instead of 4 here). Each
    parse works on its own copy and the state is replaced atomically: two processes regenerating at once do
    not share a half-written file. Parsing opens no database: it runs with the profile's placeholders of
    rapport.transform.manifests.parse_environment and the target the dbt tasks run, as a build's parse does,
    so its state is also shared with the first build of a fresh warehouse (manifests.shared_state).
    """
    from rapport.transform.manifests import DEFAULT_DATABASE_FILE, parse_project

    manifest = manifest or manifest_path()
    project_dir = project_dir or DBT_PROJECT_DIR
    manifest.parent.mkdir(parents=True, exist_ok=True)
    state = manifest.with_name("partial_parse.msgpack")
    scratch = Path(tempfile.mkdtemp(prefix="rapport-dbt-parse-"))
    (scratch / "target").mkdir()
    if state.exists():
        shutil.copyfile(state, scratch / "target" / state.name)
    env = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "RAPPORT_WORK_DB": str(manifest.parent / DEFAULT_DATABASE_FILE)}  # fmt: skip
    try:
        with environ_set(env):
            target = dbt_target()
            args = ["parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                    "--profile", PROFILE_NAME, "--target", target, "--log-path", str(scratch / "logs"),
                    "--quiet", "--no-use-colors"]  # fmt: skip
            result = parse_project(project_dir, args, scratch / "target")
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception or 'see the messages above'}")
        for name, target_file in (("manifest.json", manifest), (state.name, state)):
            tmp = target_file.with_name(f".{target_file.name}.{os.getpid()}.tmp")
            shutil.copyfile(scratch / "target" / name, tmp)
            os.replace(tmp, target_file)  # readers (a DAG parse) see the old or the new file, never half of one
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("wrote the dbt manifest %s", manifest)
    return manifest


def ensure_manifest(manifest: Path | None = None) -> Path:
    """The manifest, regenerated first if it is missing or stale (the runner and the docker init call this)."""
    manifest = manifest or manifest_path()
    if not manifest_is_current(manifest):
        generate_manifest(manifest)
    return manifest


# --- run time -----------------------------------------------------------------------------------------


# Flags the interceptor manages on build/test commands (set afresh on every attempt: operators are reused).
_NO_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]
_FULL_REFRESH = "--full-refresh"


def inject_run_context(context: Any, operator: Any) -> None:
    """Cosmos interceptor: dbt vars and environment of this run, computed like every other task's.

    Production builds leave dbt unit tests out (they check SQL on fixtures; the test suite runs them) and
    pass `--full-refresh` when the build reads everything (a full-refresh run, or what
    rapport.transform.increments decides), else the var `since` of an incremental build. When
    nothing changed since the marts were built and checked (rapport.pipeline.reuse), the task is skipped;
    otherwise what was built before is forgotten first, so a build that stops half-way is never reused.
    """
    from rapport.orchestration.task_context import run_context, task_settings
    from rapport.transform.runner import dbt_env

    settings = task_settings()
    ctx = run_context(context, settings)
    increment = _checked_by_an_earlier_task(context, settings, ctx)
    if increment is None:
        _skip_or_invalidate(settings, ctx, operator.task_id)
        increment = _increment(settings, ctx)
        _remember_checked(context, settings, ctx, increment)
    operator.vars = {**(operator.vars or {}), "as_of": ctx.as_of.isoformat(), "run_id": ctx.run_id,
                     **increment.dbt_vars()}  # fmt: skip
    operator.env = {**(operator.env or {}), **dbt_env(settings)}
    if settings.engine == "spark":
        from rapport.transform.spark import spark_session

        spark_session(settings, dbt_env(settings))  # dbt-spark's getOrCreate() picks it up, UDFs included
    command = list(getattr(operator, "base_cmd", None) or [])[:1]
    flags = _without_managed(list(operator.dbt_cmd_flags or []))
    if command in (["build"], ["test"]):
        flags += _NO_UNIT_TESTS
    if increment.full_refresh and command in (["build"], ["run"]):
        flags.append(_FULL_REFRESH)
    operator.dbt_cmd_flags = flags
    layer_select = getattr(operator, "layer_select", None)
    if layer_select:
        narrow_layer_retry(operator, settings, ctx.run_id, layer_select)
    from rapport.core.progress import progress

    operator.rapport_started = time.monotonic()
    progress(f"dbt {_label(operator.task_id)} ...")


# The build plan of the DAG run whose dbt task last ran in this process, once that task had checked that the
# marts were not reusable and forgotten them (`rapport run` runs all the layers of a run in one process). The
# tasks after it in the same DAG run would find the same: nothing but the dbt tasks runs between them, they
# record no build state (the marts stay forgotten), and the plan stays pending for the run (committed by
# `predict`, after them). So they skip the two openings of the working file and their queries. A task
# of another DAG run, or in another process (a deployment's task), checks for itself.
_checked: dict[tuple[str, str, str, str], Any] = {}


def _checked_key(context: Any, settings: Any, ctx: Any) -> tuple[str, str, str, str]:
    dag_run = context["dag_run"]
    return (str(getattr(dag_run, "dag_id", "")), str(dag_run.run_id), str(settings.work_db), ctx.run_id)


def _checked_by_an_earlier_task(context: Any, settings: Any, ctx: Any) -> Any:
    return _checked.get(_checked_key(context, settings, ctx))


def _remember_checked(context: Any, settings: Any, ctx: Any, increment: Any) -> None:
    _checked.clear()  # one DAG run at a time
    _checked[_checked_key(context, settings, ctx)] = increment


def _without_managed(flags: list[str]) -> list[str]:
    """`flags` without the ones this interceptor sets (an operator keeps them from an earlier run)."""
    out: list[str] = []
    i = 0
    while i < len(flags):
        if flags[i] == _FULL_REFRESH:
            i += 1
        elif flags[i : i + 2] == _NO_UNIT_TESTS:
            i += 2
        else:
            out.append(flags[i])
            i += 1
    return out


def _skip_or_invalidate(settings: Any, ctx: Any, task_id: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from rapport.core.progress import progress
    from rapport.core.warehouse import open_warehouse
    from rapport.pipeline import reuse
    from rapport.transform import build_state

    if not settings.work_db.exists():
        return
    with open_warehouse(settings) as con:
        if reuse.reusable_marts(con, ctx):
            message = reuse.unchanged_message(con)
            progress(f"dbt {_label(task_id)} skipped: {message}")
            raise AirflowSkipException(f"dbt skipped: {message}")
        build_state.clear(con, "marts", "report")


def _increment(settings: Any, ctx: Any) -> Any:
    """The build's plan (rapport.transform.increments): planned by the run's first dbt task, the
    same for every later one (and for retries); committed by the step after the dbt tasks (predict)."""
    from rapport.core.warehouse import open_warehouse
    from rapport.transform import increments

    with open_warehouse(settings) as con:
        return increments.plan(con, run_id=ctx.run_id, engine=settings.engine, full_refresh=ctx.full_refresh,
                               continue_pending=True)  # fmt: skip


def _label(task_id: str) -> str:
    return task_id.split(".", 1)[-1]


def after_dbt(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos callback after every dbt invocation: keep layer run results, release the DuckDB file."""
    try:
        task = context["ti"].task if context else None
        if context:
            _report_progress(Path(project_dir) / "target" / "run_results.json", context["ti"].task_id, task)
        if task is not None and getattr(task, "layer_select", None):
            save_run_results(Path(project_dir) / "target" / "run_results.json", context,
                             narrowed=task.select != task.layer_select)  # fmt: skip
    finally:
        release_duckdb()


def _report_progress(results_file: Path, task_id: str, task: Any) -> None:
    """One progress line per dbt task, like the other steps' (`rapport run` shows them on the terminal)."""
    from rapport.core.progress import progress

    seconds = time.monotonic() - getattr(task, "rapport_started", time.monotonic())
    try:
        results = json.loads(results_file.read_text()).get("results", [])
    except (OSError, ValueError):
        results = []
    bad = [r["unique_id"].split(".")[-1] for r in results if str(r.get("status", "")).lower() in UNSUCCESSFUL]
    if bad:
        progress(f"dbt {_label(task_id)} FAILED after {seconds:.1f}s: {len(bad)} of {len(results)} nodes "
                 f"did not succeed ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''})")  # fmt: skip
    else:
        progress(f"dbt {_label(task_id)} done in {seconds:.1f}s: {len(results)} nodes")


# --- parse time ---------------------------------------------------------------------------------------


def _cosmos_configs(manifest: Path) -> dict[str, Any]:
    from cosmos import ExecutionConfig, ExecutionMode, InvocationMode, ProfileConfig, ProjectConfig

    return {
        "project_config": ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR, manifest_path=manifest, install_dbt_deps=False, partial_parse=True
        ),
        "profile_config": ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=dbt_target(),
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
        ),
    }


def dbt_target(env: dict[str, str] | None = None) -> str:
    """The profiles.yml target the dbt tasks run: RAPPORT_ENGINE's (read when the DAG file is parsed)."""
    return "spark" if engine_from(env) == "spark" else "work"


def _operator_args(pool: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {
        "install_deps": False,  # no dbt packages, and `dbt deps` would need the internet
        "interceptors": [inject_run_context],
        "callback": after_dbt,
        "emit_datasets": False,  # rapport declares its own assets (rapport.orchestration.assets)
        "should_store_compiled_sql": False,
        # A dbt task skips itself when nothing changed since the marts were built (inject_run_context). The
        # tasks after it then run and skip themselves too, at once: under the default rule the scheduler
        # would mark them skipped one per loop, and `dag.test()` sleeps a second in each loop without a
        # runnable task. A failed upstream still stops them (upstream_failed).
        "trigger_rule": "none_failed",
    }
    if pool:
        args["pool"] = pool
    return args


_selections_seen: dict[tuple[str, int, int], list[tuple[str, str]]] = {}


def cached_layer_selections(manifest: Path) -> list[tuple[str, str]]:
    """`layer_selections`, remembered per manifest version: reading the manifest's JSON is most of a DAG
    parse, and `rapport run` parses the DAG files three times (its DagBag, then each `dag.test()`). Kept in
    this process and in a sidecar file beside the manifest (for the next process: a DAG processor parses
    the files again every few seconds); both are keyed on the manifest's size and modification time."""
    st = manifest.stat()
    key = (str(manifest.resolve()), st.st_mtime_ns, st.st_size)
    if key in _selections_seen:
        return _selections_seen[key]
    sidecar = manifest.with_name(f"{manifest.name}.layers.json")
    try:
        saved = json.loads(sidecar.read_text())
        if saved.get("manifest") == [st.st_mtime_ns, st.st_size]:
            selections = [(layer, select) for layer, select in saved["layers"]]
            _selections_seen[key] = selections
            return selections
    except (OSError, ValueError, KeyError, TypeError):
        pass
    selections = layer_selections(manifest)
    _selections_seen[key] = selections
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"manifest": [st.st_mtime_ns, st.st_size], "layers": selections}))
        os.replace(tmp, sidecar)
    except OSError:  # a read-only manifest location: the in-process cache still helps
        tmp.unlink(missing_ok=True)
    return selections


def layer_selections(manifest: Path) -> list[tuple[str, str]]:
    """(layer, dbt selection) per layer in build order, from the manifest.

    A layer is a folder directly under models/ (staging, intermediate, marts, then any other, sorted). Its
    selection names its models; with `--indirect-selection cautious` dbt adds the unit and data tests whose
    parents are all selected. A test whose parents lie in several layers (a relationships
    test from an intermediate model to a mart, a reconciliation across layers) is named explicitly in the
    layer of its last parent, when all of them are built; tests of sources go with the first layer.
    (dbt's `buildable` mode was tried and picks some of these up a layer too early.)
    """
    data = json.loads(manifest.read_text())
    nodes = data["nodes"]
    model_layer = {
        uid: Path(n["original_file_path"]).parts[1]
        for uid, n in nodes.items()
        if n["resource_type"] == "model" and len(Path(n["original_file_path"]).parts) > 2
    }
    folders = set(model_layer.values())
    layers = [layer for layer in LAYERS if layer in folders] + sorted(folders - set(LAYERS))
    rank = {uid: layers.index(layer) for uid, layer in model_layer.items()}
    names = {uid: nodes[uid]["name"] for uid in model_layer}
    rank.update({uid: -1 for uid in data.get("sources", {})})  # sources come before every layer
    explicit: dict[int, list[str]] = {}
    for n in nodes.values():
        if n["resource_type"] != "test":
            continue
        ranks = {rank[d] for d in n["depends_on"]["nodes"] if d in rank}
        if len(ranks) > 1:
            explicit.setdefault(max(max(ranks), 0), []).append(n["name"])
    selections = []
    for i, layer in enumerate(layers):
        # Models by name. Not `path:models/<layer>`: that also matches every test declared in the layer's
        # YAML files, including tests with a parent in a later layer (and intersecting it with
        # `resource_type:model` does not help: dbt expands tests per criterion before intersecting).
        models = sorted(names[uid] for uid, r in rank.items() if r == i and uid in names)
        parts = (["source:*"] if i == 0 else []) + models + sorted(explicit.get(i, []))
        selections.append((layer, " ".join(parts)))
    return selections


def dbt_task_group(pool: str | None = None, mode: str | None = None, manifest: Path | None = None) -> Any:
    """Create the dbt tasks inside the DAG being defined; returns what to chain (a TaskGroup or a task).

    Falls back to one `dbt_build` task (rapport.pipeline.steps.transform) when the manifest is missing or stale.
    """
    from airflow.sdk import TaskGroup, chain

    mode = mode or granularity()
    manifest = manifest or manifest_path()
    if not manifest_is_current(manifest):
        log.warning(
            "dbt manifest %s is missing or older than the dbt project: rendering one dbt_build task instead of "
            "cosmos tasks (regenerate it with `python -m rapport.orchestration.dbt_tasks`)",
            manifest,
        )
        return _single_build_task(pool)
    spark = dbt_target() == "spark"
    if mode == "model" and not spark:
        return _model_group(manifest, pool)
    with TaskGroup("dbt", tooltip="dbt build, one task per layer") as group:
        tasks = [_model_group(manifest, pool, "models")] if mode == "model" else _layer_tasks(manifest, pool)
        if spark:
            chain(_spark_exchange_task("spark_load", manifest, pool), tasks[0])
            chain(tasks[-1], _spark_exchange_task("spark_collect", manifest, pool))
    return group


def _spark_exchange_task(task_id: str, manifest: Path, pool: str | None) -> Any:
    """RAPPORT_ENGINE=spark: `spark_load` before the dbt tasks, `spark_collect` after them
    (rapport.transform.spark_exchange), under the working file's writer lock."""
    from airflow.sdk import task

    kwargs = {"pool": pool} if pool else {}

    @task(task_id=task_id, **kwargs)
    def spark_exchange() -> None:
        from rapport.core.progress import step
        from rapport.core.warehouse import writer_lock
        from rapport.orchestration.task_context import task_settings
        from rapport.transform import spark_exchange

        settings = task_settings()
        nodes = json.loads(manifest.read_text())
        with step(task_id.replace("_", " ")), writer_lock(settings):
            if task_id == "spark_load":
                spark_exchange.load_into_spark(settings, nodes)
            else:
                spark_exchange.collect_from_spark(settings, nodes)

    return spark_exchange()


def _model_group(manifest: Path, pool: str | None, group_id: str = "dbt") -> Any:
    from cosmos import DbtTaskGroup, LoadMode, RenderConfig, SourceRenderingBehavior, TestBehavior
    from cosmos.constants import TestIndirectSelection

    configs = _cosmos_configs(manifest)
    configs["execution_config"].test_indirect_selection = TestIndirectSelection.CAUTIOUS
    return DbtTaskGroup(
        group_id=group_id,
        **configs,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            emit_datasets=False,
        ),
        operator_args=_operator_args(pool),
    )


def _layer_tasks(manifest: Path, pool: str | None) -> list[Any]:
    from airflow.sdk import chain

    from rapport.orchestration.dbt_operators import DbtLayerBuildOperator

    configs = _cosmos_configs(manifest)
    tasks = [
        DbtLayerBuildOperator(
            task_id=layer,
            layer_select=select,
            project_dir=str(DBT_PROJECT_DIR),
            profile_config=configs["profile_config"],
            invocation_mode=configs["execution_config"].invocation_mode,
            doc_md=f"`dbt build --indirect-selection cautious --select {select}`; a retry rebuilds only what "
            "did not succeed in the previous attempt.",
            **_operator_args(pool),
        )
        for layer, select in cached_layer_selections(manifest)
    ]
    chain(*tasks)
    return tasks


def _single_build_task(pool: str | None) -> Any:
    from airflow.sdk import get_current_context, task

    from rapport.orchestration.task_context import run_context, task_settings
    from rapport.pipeline import steps as pipeline

    kwargs = {"pool": pool} if pool else {}

    @task(task_id="dbt_build", **kwargs)
    def dbt_build() -> None:
        settings = task_settings()
        pipeline.transform(settings, run_context(get_current_context(), settings))

    return dbt_build()


def main(argv: list[str] | None = None) -> int:
    """`python -m rapport.orchestration.dbt_tasks [--if-stale]`: write the manifest the DAG renders its dbt tasks
    from."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = ensure_manifest() if "--if-stale" in args else generate_manifest()
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
