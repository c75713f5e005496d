"""rapport_daily: every UTC day, land what changed in the three sources, then wait for the transform.

One run per data interval [D, D+1): start_run registers the run in ops.runs; the three extract tasks land
each source's changes up to the interval's end and update its Airflow asset (`rapport://sources/orders`,
`.../helpdesk`, `.../esp`); that triggers `rapport_transform` (checks, dbt, publish, report) for this run.
await_transform then waits for that transform to finish, so runs, catch-up and backfills are processed
strictly one day after another and this run's state is the whole pipeline's.

Wiring only: steps are `rapport.pipeline.steps` functions; policy (schedule, retries, timeouts, pool) is in
`rapport.orchestration.dag_policy`.
"""

from __future__ import annotations

from airflow.sdk import PokeReturnValue, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from rapport.extractors.errors import FatalSourceError
from rapport.orchestration.assets import SOURCE_ASSETS, run_extra
from rapport.orchestration.dag_policy import (
    AWAIT_TRANSFORM,
    DAILY_DAG_ID,
    TIMEOUTS,
    catchup,
    daily_timetable,
    default_args,
    extract_retries,
    start_date,
    warehouse_pool,
)
from rapport.orchestration.dbt_retry import forget_retry_state
from rapport.orchestration.task_context import await_transform_poke, clear_run_status, run_context, task_settings
from rapport.pipeline import steps as pipeline

POOL = warehouse_pool()


def _ctx():
    settings = task_settings()
    return settings, run_context(get_current_context(), settings)


@dag(
    dag_id=DAILY_DAG_ID,
    schedule=daily_timetable(),
    start_date=start_date(),
    catchup=catchup(),
    max_active_runs=1,
    max_active_tasks=1,
    default_args=default_args(POOL),
    tags=["rapport"],
    doc_md=__doc__,
)
def rapport_daily():
    @task(execution_timeout=TIMEOUTS["start"])
    def start_run() -> dict:
        settings, ctx = _ctx()
        clear_run_status(settings, ctx.run_id)  # a rerun of this run waits for its new transform
        pipeline.start_run(settings, ctx)
        return ctx.to_dict()

    def extract(source: str):
        asset = SOURCE_ASSETS[source]

        @task(task_id=f"extract_{source}", outlets=[asset], execution_timeout=TIMEOUTS["extract"], **extract_retries())
        def extract_source() -> dict:
            settings, ctx = _ctx()
            forget_retry_state(settings, ctx.run_id)  # new raw data: a dbt retry must rebuild whole layers
            try:
                counts = pipeline.extract(settings, ctx, source)
            except FatalSourceError as exc:  # a wrong setting, layout or content: a retry would fail the same way
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
            get_current_context()["outlet_events"][asset].extra = run_extra(ctx.to_dict(), **counts)
            return counts

        return extract_source()

    # Not in the warehouse pool: it only reads a status file, and must not hold the slot the transform needs.
    @task.sensor(pool="default_pool", mode="poke", **AWAIT_TRANSFORM)
    def await_transform() -> PokeReturnValue:
        settings, ctx = _ctx()
        return PokeReturnValue(is_done=await_transform_poke(settings, ctx.run_id))

    start_run() >> [extract("orders"), extract("helpdesk"), extract("esp")] >> await_transform()


rapport_daily()
