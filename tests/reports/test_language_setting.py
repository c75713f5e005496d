"""RAPPORT_REPORT_LANGUAGE and `--language`: validated with a message naming the setting, the option wins.
(The whole path, option to Airflow task to report, runs in test_demo_language.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rapport import cli

load_settings = cli.load_settings  # the command's own settings loader (where it lives is the CLI's business)


def test_setting_defaults_to_english_and_accepts_the_report_languages(tmp_path: Path) -> None:
    base = {"RAPPORT_WAREHOUSE_DIR": str(tmp_path)}
    assert load_settings(base).report_language == "en"
    assert load_settings({**base, "RAPPORT_REPORT_LANGUAGE": "ko"}).report_language == "ko"
    assert load_settings({**base, "RAPPORT_REPORT_LANGUAGE": " TH "}).report_language == "th"
    with pytest.raises(ValueError, match=r"RAPPORT_REPORT_LANGUAGE='kr' is not a report language; use one of en, ko"):
        load_settings({**base, "RAPPORT_REPORT_LANGUAGE": "kr"})


def test_a_wrong_language_stops_the_command_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setenv("RAPPORT_REPORT_LANGUAGE", "japanese")
    assert cli.main(["generate", "--people", "5"]) == 2
    assert "configuration error: RAPPORT_REPORT_LANGUAGE='japanese'" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()  # nothing was started
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--language", "jp"])
    assert stop.value.code == 2
    assert "invalid choice: 'jp'" in capsys.readouterr().err


def test_the_option_overrides_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setenv("RAPPORT_REPORT_LANGUAGE", "ko")
    seen = []
    monkeypatch.setattr(cli, "cmd_run", lambda args, settings: seen.append(settings.report_language) or 0)
    assert cli.main(["run", "--language", "th"]) == 0
    # the Airflow tasks read their settings from the environment, so the option must be there too
    assert seen == ["th"] and os.environ["RAPPORT_REPORT_LANGUAGE"] == "th"
