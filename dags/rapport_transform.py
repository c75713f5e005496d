"""rapport_transform: check the landed data, build the dbt models, predict, check the marts, publish, report.

Scheduled on Airflow assets: it runs when `rapport_daily` has updated all three source assets
(`rapport://sources/orders`, `.../helpdesk`, `.../esp`), for the run those asset events name. Trigger it
by hand to rebuild and republish from the data already landed (after fixing a dbt model, say) without
touching the sources; conf `{"as_of": "YYYY-MM-DD"}` recomputes segments and predictions as of another day.

The dbt project is rendered by astronomer-cosmos, one task per layer (or per model with
RAPPORT_DBT_TASKS=model): a failed model fails its task, and a retry reruns only what failed. publish
updates the asset `rapport://marts/published`: schedule BI refreshes or exports on it.

Wiring only: steps are `rapport.pipeline.steps` functions, dbt tasks come from `rapport.orchestration.dbt_tasks`.
"""

from __future__ import annotations

from airflow.sdk import AssetAll, chain, dag, get_current_context, task

from rapport.orchestration.assets import MARTS_ASSET, SOURCE_ASSETS
from rapport.orchestration.dag_policy import TIMEOUTS, TRANSFORM_DAG_ID, default_args, start_date, warehouse_pool
from rapport.orchestration.dbt_retry import forget_retry_state
from rapport.orchestration.dbt_tasks import dbt_task_group
from rapport.orchestration.task_context import open_transform, run_context, task_settings, write_run_status
from rapport.pipeline import steps as pipeline

POOL = warehouse_pool()


def _ctx():
    settings = task_settings()
    return settings, run_context(get_current_context(), settings)


@dag(
    dag_id=TRANSFORM_DAG_ID,
    schedule=AssetAll(*SOURCE_ASSETS.values()),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    default_args=default_args(POOL),
    tags=["rapport"],
    doc_md=__doc__,
)
def rapport_transform():
    @task(execution_timeout=TIMEOUTS["start"])
    def resolve_run() -> dict:
        settings, ctx = _ctx()
        open_transform(settings, ctx, get_current_context())
        return ctx.to_dict()

    @task(execution_timeout=TIMEOUTS["check"])
    def check_raw() -> dict:
        settings, ctx = _ctx()
        forget_retry_state(settings, ctx.run_id)  # rerun after new raw data: dbt retries rebuild whole layers
        return pipeline.check_raw(settings, ctx)

    # none_failed: dbt tasks are skipped when nothing changed since the marts were built and checked
    @task(execution_timeout=TIMEOUTS["predict"], trigger_rule="none_failed")
    def predict() -> dict:
        return pipeline.predict(*_ctx())

    @task(execution_timeout=TIMEOUTS["check"], trigger_rule="none_failed")
    def check_marts() -> dict:
        return pipeline.check_marts(*_ctx())

    @task(outlets=[MARTS_ASSET], execution_timeout=TIMEOUTS["publish"])
    def publish() -> str:
        settings, ctx = _ctx()
        path = pipeline.publish(settings, ctx)
        get_current_context()["outlet_events"][MARTS_ASSET].extra = {"run_id": ctx.run_id, "path": path}
        return path

    @task(execution_timeout=TIMEOUTS["report"])
    def report() -> dict:
        return pipeline.write_outputs(*_ctx())

    @task(execution_timeout=TIMEOUTS["start"])
    def finish_run() -> None:
        settings, ctx = _ctx()
        pipeline.finish_run(settings, ctx)
        write_run_status(settings, ctx.run_id, "success")

    chain(
        resolve_run(),
        check_raw(),
        dbt_task_group(pool=POOL),
        predict(),
        check_marts(),
        publish(),
        report(),
        finish_run(),
    )


rapport_transform()
