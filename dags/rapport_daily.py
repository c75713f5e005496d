"""rapport_daily: extract the three sources, check, transform with dbt, check, publish, report.

Wiring only; every step is a function in `rapport.pipeline`. Steps run one after another because the
working warehouse file has a single writer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task

from rapport import pipeline
from rapport.airflow_glue import record_failure, run_context, task_settings

EXTRACT_RETRY = {"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True}


def _ctx():
    settings = task_settings()
    return settings, run_context(get_current_context(), settings)


@dag(
    dag_id="rapport_daily",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    default_args={"retries": 0, "on_failure_callback": record_failure, "execution_timeout": timedelta(hours=2)},
    tags=["rapport"],
    doc_md=__doc__,
)
def rapport_daily():
    @task
    def start_run() -> dict:
        settings, ctx = _ctx()
        pipeline.start_run(settings, ctx)
        return ctx.to_dict()

    @task(**EXTRACT_RETRY)
    def extract_orders() -> dict:
        return pipeline.extract(*_ctx(), "orders")

    @task(**EXTRACT_RETRY)
    def extract_helpdesk() -> dict:
        return pipeline.extract(*_ctx(), "helpdesk")

    @task(**EXTRACT_RETRY)
    def extract_esp() -> dict:
        return pipeline.extract(*_ctx(), "esp")

    @task
    def check_raw() -> dict:
        return pipeline.check_raw(*_ctx())

    @task
    def dbt_build() -> None:
        pipeline.transform(*_ctx())

    @task
    def check_marts() -> dict:
        return pipeline.check_marts(*_ctx())

    @task
    def publish() -> str:
        return pipeline.publish(*_ctx())

    @task
    def report() -> dict:
        return pipeline.write_outputs(*_ctx())

    @task
    def finish_run() -> None:
        pipeline.finish_run(*_ctx())

    (
        start_run()
        >> extract_orders()
        >> extract_helpdesk()
        >> extract_esp()
        >> check_raw()
        >> dbt_build()
        >> check_marts()
        >> publish()
        >> report()
        >> finish_run()
    )


rapport_daily()
