"""rapport: a customer-data pipeline for CRM analytics.

Packages, by responsibility (docs/architecture.md has the map and the direction of dependencies):
`core` (configuration, the working warehouse, run identity, progress), `transform` (the dbt runner),
`privacy` (erasure records and purges), `publishing` (blue/green publishing, audience files),
`pipeline` (the run's steps), `orchestration` (Airflow and the commands that sequence steps), `cli`.
The source extractors, data checks, report and demo sources are the top-level directories `extractors/`,
`expectations/`, `reports/` and `demo/`, installed as `rapport.extractors` and so on.
"""
