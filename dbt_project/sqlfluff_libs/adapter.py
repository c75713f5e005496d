"""Stand-ins for dbt's `adapter` when sqlfluff lints the models (`library_path` in .sqlfluff): a dispatched
engine macro (macros/cross_engine.sql) renders as a call without arguments, `quote` as DuckDB quotes it."""

from collections.abc import Callable


def dispatch(macro_name: str, macro_namespace: str | None = None) -> Callable[..., str]:
    return lambda *args, **kwargs: f"{macro_name}()"


def quote(identifier: str) -> str:
    return f'"{identifier}"'
