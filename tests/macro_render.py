"""Render a dbt macro of the project to SQL the way dbt renders it on DuckDB, without dbt (for fast tests
that run the macro's SQL on a plain DuckDB connection)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[1]
MACROS = ROOT / "dbt_project" / "macros"


def render_macro(macro_file: str, call: str, dbt_globals: dict[str, object] | None = None) -> str:
    """`call` (e.g. "normalized_email('x')") rendered with the macros of `macro_file`, the project's vars and
    the engine macros' default__ (DuckDB) forms (macros/cross_engine.sql, looked up when called: the macros
    call each other through `rapport.` and adapter.dispatch). `dbt_globals`: more of dbt's context (e.g.
    `run_query`, `log`) for a macro that uses it."""
    dbt_vars = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"]
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.globals["var"] = lambda name, default=None: dbt_vars.get(name, default)
    engine: dict[str, object] = {}

    class Namespace:
        def __getattr__(self, name: str) -> object:
            return getattr(engine["module"], name)

    env.globals.update({
        "return": lambda value: value,
        "dbt": SimpleNamespace(type_string=lambda: "varchar"),
        "adapter": SimpleNamespace(dispatch=lambda name, package=None: getattr(Namespace(), f"default__{name}")),
        "rapport": Namespace(),
    })  # fmt: skip
    env.globals.update(dbt_globals or {})
    engine["module"] = env.from_string((MACROS / "cross_engine.sql").read_text()).module
    return env.from_string((MACROS / macro_file).read_text() + "{{ " + call + " }}").render().strip()
