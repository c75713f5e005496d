"""Airflow's in-process execution API with the routes of the one API version `rapport run`'s tasks speak.

`dag.test()` runs each task in this process, and the task's Task SDK client talks to the execution API (a
FastAPI app versioned by Cadwyn) through an in-process transport. Airflow builds that app once per process
(`airflow.sdk.execution_time.supervisor.in_process_api_server()`, cached), and on its first request Cadwyn
generates the routes and schemas of every API version the server supports: nine dated versions in Airflow
3.3, 2.8 s of CPU (0.7 s for two), in every `rapport run`. Every client here sends one version, the Task
SDK's own (`API_VERSION`, the newest). `prepare_execution_api()` builds the app and has Cadwyn generate
only the versions from the newest down to the client's, and down to the oldest version whose changes
bring an endpoint back (Cadwyn refuses a deleted route that no generated version restores): two of nine
in Airflow 3.3. A version's routes and migrations depend only on the changes of the versions newer than it,
so the client's are those of the whole app; tests/orchestration/test_execution_api.py compares them (paths,
methods, parameters, request and response schemas) and fails if an upgrade breaks any of this.

What it relies on: `in_process_api_server()` being that cached factory and its `.app` a `cadwyn.Cadwyn` app
whose routers are generated on the first request from its `versions` bundle (`VersionBundle.versions`
newest first, `version_values`, their reversed forms; `VersionChange.alter_endpoint_instructions` holding
`cadwyn.structure.endpoints.EndpointExistedInstruction` for a restored endpoint). Anything unexpected (a
client version the server does not list, an error while generating) leaves the whole app to Airflow: the
half-built one is dropped and the first task builds a complete one, as without this module.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

log = logging.getLogger("rapport.runner")


def prepare_execution_api() -> bool:
    """Build the in-process execution API now, with only the API versions its clients need (module
    docstring), and serve one request so that the routes are generated before the first task. Returns
    whether the versions were narrowed (False: Airflow builds the whole app, as without this)."""
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from airflow.sdk.execution_time import supervisor

    try:
        api = supervisor.in_process_api_server()
        app = api.app
        kept = versions_for_client(app.versions, API_VERSION)
        if kept is None:
            log.warning("the execution API does not list the Task SDK's version %s: building all versions", API_VERSION)
            return False
        app.versions = kept
        _request_health(api)  # Cadwyn generates the routes on the app's first request
        return True
    except Exception:  # never a reason for a run to fail: Airflow's own, complete app instead
        log.warning("could not narrow the execution API's versions: building all of them", exc_info=True)
        supervisor.in_process_api_server.cache_clear()
        return False


def versions_for_client(bundle: Any, client_version: str) -> Any:
    """A copy of Cadwyn's `VersionBundle` holding its newest versions down to `client_version` and to the
    oldest that restores an endpoint; None when `client_version` is not one of them or all are needed.
    A shallow copy: the version changes stay bound to the original bundle (Cadwyn allows one bundle per
    change) and share its context variable of the request's version."""
    from cadwyn.structure.endpoints import EndpointExistedInstruction

    values = [v.value for v in bundle.versions]  # newest first
    if client_version not in values:
        return None
    restoring = [
        i
        for i, version in enumerate(bundle.versions)
        if any(
            isinstance(instruction, EndpointExistedInstruction)
            for change in version.changes
            for instruction in change.alter_endpoint_instructions
        )
    ]
    keep = max([values.index(client_version), *restoring]) + 1
    if keep >= len(values):
        return None
    kept = copy.copy(bundle)
    kept.versions = tuple(bundle.versions[:keep])
    kept.reversed_versions = tuple(reversed(kept.versions))
    kept.version_values = tuple(values[:keep])
    kept.reversed_version_values = tuple(reversed(kept.version_values))
    kept._version_values_set = set(kept.version_values)
    return kept


def _request_health(api: Any) -> None:
    import httpx

    # not closed: the transport is the app's for the rest of the process (as the tasks' clients leave it)
    client = httpx.Client(transport=api.transport, base_url="http://in-process.invalid./")
    client.get("health").raise_for_status()
