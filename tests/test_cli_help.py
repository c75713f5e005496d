"""`rapport --help` (issue #17): every command listed with a description, every setting of the README named."""

from __future__ import annotations

import re
import subprocess
import sys

from rapport.cli import SETTINGS_HELP, build_parser
from rapport.core.config import PROJECT_ROOT


def _subparsers() -> dict:
    parser = build_parser()
    [action] = [a for a in parser._actions if a.dest == "command"]
    return action.choices


def test_every_command_is_listed_and_described():
    top = subprocess.run(
        [sys.executable, "-m", "rapport.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name, sub in _subparsers().items():
        assert re.search(rf"^  rapport {name} +\S", top, re.MULTILINE), name  # in the overview, with a line
        assert sub.description and len(sub.description) > 40, name  # `rapport NAME --help` says what it does


def _readme_settings() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n\n|", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"`(RAPPORT_[A-Z_]+)`", table)


def test_the_help_names_every_setting_of_the_readme_table():
    readme = _readme_settings()
    assert "RAPPORT_ORDERS_DB_URL" in readme and "RAPPORT_FRESHNESS_ERROR_HOURS" in readme
    assert sorted(name for name, _ in SETTINGS_HELP) == sorted(readme)
    for command in ("run", "backfill"):
        text = _subparsers()[command].format_help()
        assert all(name in text for name in readme), command
    assert all(name in build_parser().format_help() for name in readme)


def test_every_setting_the_configuration_reads_is_in_the_readme_table():
    source = (PROJECT_ROOT / "rapport" / "core" / "config.py").read_text(encoding="utf-8")
    assert set(re.findall(r'"(RAPPORT_[A-Z_]+)"', source)) <= set(_readme_settings())
