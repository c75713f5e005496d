"""The steps of a rapport run as plain functions of (settings, run context) (`steps`): start, extract,
raw checks, transform, mart checks, publish, report and audiences, finish.

Called by the Airflow tasks and the commands in `rapport.orchestration`; calls the parts that do the work
(extractors, expectations, transform, privacy, publishing, reports) and `rapport.core`. Knows nothing of
Airflow.
"""
