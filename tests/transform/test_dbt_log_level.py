"""RAPPORT_DBT_LOG_LEVEL: the level of dbt's log file, `info` unless asked (dbt's own default, debug, logs every
statement: 19,521 lines in a 100k-person day build against 546), given to every in-process dbt command rapport runs.
What the file then holds is checked on real builds in tests/dbt/test_dbt_log_file.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rapport.core.config import load_settings
from rapport.transform import dbt_invocation


def _settings(tmp_path: Path, **env: str) -> Any:
    return load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), **env})


def test_info_unless_asked(tmp_path) -> None:
    assert _settings(tmp_path).dbt_log_level == "info"
    assert _settings(tmp_path, RAPPORT_DBT_LOG_LEVEL="").dbt_log_level == "info"
    assert _settings(tmp_path, RAPPORT_DBT_LOG_LEVEL=" Debug ").dbt_log_level == "debug"
    assert _settings(tmp_path, RAPPORT_DBT_LOG_LEVEL="none").dbt_log_level == "none"


def test_a_level_dbt_does_not_know_names_the_setting(tmp_path) -> None:
    with pytest.raises(ValueError, match="RAPPORT_DBT_LOG_LEVEL='verbose'"):
        _settings(tmp_path, RAPPORT_DBT_LOG_LEVEL="verbose")


@pytest.mark.parametrize(("env", "level"), [({}, "info"), ({"RAPPORT_DBT_LOG_LEVEL": "debug"}, "debug")])
def test_every_command_of_rapport_transform_gets_the_level(tmp_path, monkeypatch, env, level) -> None:
    calls: list[list[str]] = []

    class Runner:
        def __init__(self, manifest: Any = None) -> None:
            pass

        def invoke(self, args: list[str]) -> Any:
            calls.append(list(args))
            return SimpleNamespace(success=True, exception=None, result=None)

    monkeypatch.setattr("dbt.cli.main.dbtRunner", Runner)
    monkeypatch.setattr("rapport.transform.manifests.parsed_manifest", lambda *args: None)
    settings = _settings(tmp_path, **env)
    dbt_invocation.invoke(settings, ["build", "--select", "stg_shop__orders"])
    dbt_invocation.invoke(settings, ["parse"])
    for args in calls:
        assert args[args.index("--log-level-file") + 1] == level
        assert args[args.index("--log-path") + 1] == str(tmp_path / "dbt" / "logs")
    assert [args[0] for args in calls] == ["build", "parse"]
