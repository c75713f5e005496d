"""Sequencing the steps: everything that knows about Airflow and about running the pipeline as a whole.

- `dag_policy`: schedule, retries, timeouts and the writer pool shared by the DAG files (`dags/`);
- `task_context`: what a task needs from Airflow's context (settings, run context, failure recording);
- `assets`: the Airflow assets the DAGs produce and consume; `connections`: Airflow connections as an
  alternative to the RAPPORT_* variables;
- `dbt_tasks`, `dbt_operators`, `dbt_retry`: the dbt project rendered as Airflow tasks by cosmos;
- `local_runner`: `rapport run` / `backfill`, the real DAGs run in-process (`metadata_db`: its Airflow
  metadata DB; `execution_api`: the in-process execution API its tasks call); `airflow_stack`: a real
  Airflow stack on loopback for tests;
- `forget`: the `rapport forget` command (erase, rebuild, republish).

May import `rapport.pipeline` and everything below it; only `rapport.cli` and the DAG files import it.
"""
