"""`sqlfluff lint` (its own command line, every argument passed on) with jinja's compiled code shared between
the files it lints: what test_lint.py runs instead of the bare `sqlfluff` script.

sqlfluff's jinja templater builds a fresh environment for every file it lints and compiles every macro file of
`load_macros_from_path` into it, twice (once to learn the macro names, once with them bound): 56 jinja
compilations of the same 28 macro files per model, most of the CPU a small model costs. Jinja compiles a
template's source to Python code that depends only on that source, its name and the environment's syntax
settings, never on the values it will run with (the per-file context is passed when the code runs), so the
code is compiled once per process here and every file's own environment still runs it with its own context.
Nothing outlives the process (CI lints a fresh clone: no cache from earlier runs), and every file, rule and
rendered variant is linted exactly as the bare command does (tests/architecture/test_lint.py compares both).
"""

from __future__ import annotations

import sys
from functools import wraps
from typing import Any

import jinja2

_compile = jinja2.Environment.compile
_compiled: dict[tuple[Any, ...], Any] = {}


def _syntax(env: jinja2.Environment) -> tuple[Any, ...]:
    """Everything of an environment that the generated code depends on (the lexer's and compiler's settings)."""
    return (
        env.block_start_string, env.block_end_string, env.variable_start_string, env.variable_end_string,
        env.comment_start_string, env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
        env.trim_blocks, env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline,
        tuple(sorted(env.extensions)), env.optimized, env.autoescape, env.finalize, env.undefined,
        env.is_async, env.code_generator_class, env.context_class, frozenset(env.filters), frozenset(env.tests),
    )  # fmt: skip


@wraps(_compile)
def _shared_compile(
    self: jinja2.Environment,
    source: Any,
    name: str | None = None,
    filename: str | None = None,
    raw: bool = False,
    defer_init: bool = False,
) -> Any:
    if not isinstance(source, str):  # an already parsed template (a jinja2.nodes.Template): not shared
        return _compile(self, source, name, filename, raw, defer_init)
    key = (_syntax(self), source, name, filename, raw, defer_init)
    if key not in _compiled:
        _compiled[key] = _compile(self, source, name, filename, raw, defer_init)
    return _compiled[key]


# on import, not in main(): sqlfluff's `--processes N` workers are spawned interpreters that import this file
# (as __mp_main__) and then lint their share of the files with the same sharing
jinja2.Environment.compile = _shared_compile  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    from sqlfluff.cli.commands import cli

    cli(argv, prog_name="sqlfluff")


if __name__ == "__main__":
    main(sys.argv[1:])
