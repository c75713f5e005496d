"""`rapport run` has Cadwyn generate only the execution API versions its tasks' clients need, with the same
routes for their version as the whole app (rapport.orchestration.execution_api).

The version choice on a small hand-made Cadwyn bundle; the real app in a child process (Airflow reads its
configuration once per process): the Task SDK's API version served by the narrowed app has the same routes,
parameters and request and response schemas as in the app Airflow builds, and the tasks' clients reach the
narrowed app. An Airflow or Cadwyn upgrade that breaks what the module relies on fails here.
"""

from __future__ import annotations

import pytest
from cadwyn import HeadVersion, Version, VersionBundle, VersionChange, endpoint
from demo_builds import python_json

from rapport.orchestration.execution_api import versions_for_client


class _AddNewEndpoint(VersionChange):
    description = "a new endpoint (did not exist before)"
    instructions_to_migrate_to_previous_version = (endpoint("/new", ["GET"]).didnt_exist,)


class _RestoreOldEndpoint(VersionChange):
    description = "an endpoint deleted in this version: the older versions still have it"
    instructions_to_migrate_to_previous_version = (endpoint("/old", ["GET"]).existed,)


class _AddOtherEndpoint(VersionChange):
    description = "another new endpoint"
    instructions_to_migrate_to_previous_version = (endpoint("/other", ["GET"]).didnt_exist,)


BUNDLE = VersionBundle(
    HeadVersion(),
    Version("2024-04-01", _AddNewEndpoint),
    Version("2024-03-01", _RestoreOldEndpoint),
    Version("2024-02-01", _AddOtherEndpoint),
    Version("2024-01-01"),
)


def test_keeps_the_newest_versions_down_to_the_clients_and_to_the_one_restoring_an_endpoint():
    kept = versions_for_client(BUNDLE, "2024-04-01")
    # the client's version is the newest; 2024-03-01's change brings /old back for older versions
    assert kept.version_values == ("2024-04-01", "2024-03-01")
    assert [v.value for v in kept.versions] == ["2024-04-01", "2024-03-01"]
    assert kept.reversed_version_values == ("2024-03-01", "2024-04-01")
    assert [v.value for v in kept.reversed_versions] == ["2024-03-01", "2024-04-01"]
    assert kept._version_values_set == {"2024-04-01", "2024-03-01"}
    assert kept.api_version_var is BUNDLE.api_version_var  # the changes' `is_applied` reads this one
    assert BUNDLE.version_values == ("2024-04-01", "2024-03-01", "2024-02-01", "2024-01-01")  # left whole
    assert versions_for_client(BUNDLE, "2024-02-01").version_values == ("2024-04-01", "2024-03-01", "2024-02-01")


def test_none_when_every_version_is_needed_or_the_client_speaks_an_unknown_one():
    assert versions_for_client(BUNDLE, "2024-01-01") is None
    assert versions_for_client(BUNDLE, "2023-12-31") is None


DRIVER = """
import json
from rapport.core.config import load_settings
from rapport.orchestration.local_runner import configure_airflow

configure_airflow(load_settings())
from airflow.api_fastapi.execution_api.app import create_task_execution_api_app
from airflow.sdk.api.datamodels._generated import API_VERSION
from airflow.sdk.execution_time import supervisor
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from rapport.orchestration.execution_api import prepare_execution_api


def schema(annotation):
    return None if annotation is None else TypeAdapter(annotation).json_schema()


def routes(app):
    out = []
    for r in app.router.versioned_routers[API_VERSION].routes:
        if not isinstance(r, APIRoute):
            out.append([type(r).__name__, getattr(r, "path", None)])
            continue
        d = r.dependant
        params = sorted([p.name, str(p.field_info.annotation)]
                        for p in d.path_params + d.query_params + d.header_params + d.cookie_params)
        body = schema(r.body_field.field_info.annotation) if r.body_field else None
        out.append([r.path, sorted(r.methods), r.name, r.status_code, params, body, schema(r.response_model),
                    [getattr(x.dependency, "__qualname__", "") for x in r.dependencies]])
    return out


whole = create_task_execution_api_app()  # as Airflow builds it, all versions generated
whole._cadwyn_initialize()
narrowed = prepare_execution_api()
api = supervisor.in_process_api_server()
client = supervisor.InProcessTestSupervisor._api_client(None)  # what a task gets
print(json.dumps({
    "narrowed": narrowed,
    "versions": [len(whole.versions.versions), len(api.app.versions.versions)],
    "client_version": API_VERSION in api.app.versions.version_values,
    "same_routes": routes(whole) == routes(api.app),
    "routes": len(routes(api.app)),
    "tasks_reach_it": client._transport is api.transport,
    "health": client.get("health").json(),
}))
"""


@pytest.mark.slow
def test_the_narrowed_app_serves_the_task_sdks_version_as_the_whole_app_does(tmp_path):
    out = python_json(DRIVER, tmp_path / "warehouse")
    assert out["narrowed"] is True
    whole, narrowed = out["versions"]
    assert narrowed < whole  # fewer versions generated (Airflow 3.3: 2 of 9)
    assert out["client_version"] is True
    assert out["same_routes"] is True
    assert out["routes"] > 20  # the API's routes, not an empty router
    assert out["tasks_reach_it"] is True
    assert out["health"] == {"status": "healthy"}
