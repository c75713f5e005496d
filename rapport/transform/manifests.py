"""Parse the dbt project once per process, and across runs only what changed, not once per dbt command.

Every dbt command parses the project first (about 3-5 s here, most of a small build's time). dbt's own partial
parsing starts over whenever `--vars` change, and every run passes its own `run_id`, `as_of`, `since` and
`written_after`. So the project is parsed without those (RUN_VARS): they are used only in the models' and
tests' SQL, which dbt renders again for each command with that command's vars, never in a ref, source or
config that parsing records (tests/dbt/test_manifest_reuse.py compares the two parses). The parse's files stay
under the warehouse's dbt directory, so dbt's partial parsing reuses them in the next run (about 0.8 s instead
of 3), and a `rapport run` invokes dbt four times (three layers, docs) with one parse: the first invocation
parses and the others get the parsed manifest (`dbtRunner(manifest=...)`).

The cache key is what dbt itself would re-parse for: the project's files, the profile, target and the
other vars, and the environment (`RAPPORT_*`, `DBT_*`: `env_var()` in the profile and models).

A fresh warehouse has no parse of its own, and dbt would parse it in full even for a project parsed a minute
before for another warehouse (or by `python -m rapport.orchestration.dbt_tasks`, which bootstrap runs): its
partial-parse state is rejected when the profile's connection values change (the database path, DuckDB
settings). Those values are read only by profiles.yml and only used to connect; parsing records nothing of
them but the database's name (the file's stem). So dbt parses with them at fixed placeholder values
(`parse_environment`; the database file keeps its real name) and the parse state is shared by every
warehouse of the checkout (`shared_state`): a first build re-parses only what changed since any parse of the
project (about 1 s instead of 4-5). Should a model, macro or dbt_project.yml read one of those variables
(dbt records it in the manifest's `env_vars`), the project is parsed again with the real values and nothing
is shared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from rapport.core.environ import environ_set
from rapport.transform.project import project_fingerprint

log = logging.getLogger("rapport.transform.manifests")

_lock = threading.Lock()
_cache: dict[str, tuple[dict[str, Any], Any]] = {}  # key -> (key parts, Manifest); one entry: the current run's
_VALUE_FLAGS = ("--profiles-dir", "--profile", "--target", "--vars")
# vars that change with every run and that only the models' SQL reads (rendered per command, not parsed)
RUN_VARS = ("as_of", "run_id", "since", "written_after")
# profiles.yml's database path: in a parse, a placeholder path with the same file name (parse_environment)
_DATABASE_PATH_VARS = ("RAPPORT_WORK_DB",)
DEFAULT_DATABASE_FILE = "rapport_work.duckdb"  # rapport.core.config.Settings.work_db's name
PLACEHOLDER_DIR = "/rapport-dbt-parse"  # never opened: parsing connects to no database
STATE_FILE = "partial_parse.msgpack"  # dbt's partial-parse state, in a parse's target path


def _flag_values(args: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for i, arg in enumerate(args):
        for flag in _VALUE_FLAGS:
            if arg == flag and i + 1 < len(args):
                values[flag] = args[i + 1]
            elif arg.startswith(flag + "="):
                values[flag] = arg.split("=", 1)[1]
    return values


def key_parts(project_dir: Path, args: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """What the parsed manifest depends on: project files, profile, target, vars and dbt's environment."""
    flags = _flag_values(args)
    profiles = Path(flags.get("--profiles-dir", project_dir)) / "profiles.yml"
    profile = flags.get("--profile") or _yaml_value(project_dir / "dbt_project.yml", "profile")
    relevant_env = sorted((k, v) for k, v in env.items() if k.startswith(("RAPPORT_", "DBT_")))
    parts = {
        "project": project_fingerprint(project_dir),
        "project_dir": str(project_dir.resolve()),
        "profiles": hashlib.sha256(profiles.read_bytes()).hexdigest() if profiles.exists() else None,
        "profile": profile,
        # the default target as written (a Jinja expression reads the environment, which is in the key too)
        "target": flags.get("--target") or _yaml_value(profiles, str(profile), "target"),
        "vars": parse_vars(flags.get("--vars")),
        "env": relevant_env,
    }
    return json.loads(json.dumps(parts, default=str))  # plain JSON values: comparable and hashable as text


def parse_vars(text: str | None) -> Any:
    """The vars a parse is given: the command's, without RUN_VARS."""
    value = _yaml(text)
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in RUN_VARS} or None
    return value


def _yaml(text: str | None) -> Any:
    if not text:
        return None
    import yaml  # dbt's own dependency; --vars takes YAML (a superset of JSON)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _yaml_value(path: Path, *keys: str) -> Any:
    try:
        value = _yaml(path.read_text())
    except OSError:
        return None
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def profile_env_vars(profiles_yml: Path) -> list[str]:
    """The environment variables profiles.yml reads (`env_var('NAME'...)`), sorted."""
    try:
        text = profiles_yml.read_text()
    except OSError:
        return []
    return sorted(set(re.findall(r"""env_var\(\s*\\?['"](\w+)\\?['"]""", text)))


def parse_environment(env: Mapping[str, str], profiles_yml: Path) -> dict[str, str | None]:
    """What to set (None: unset) in `env` for a parse whose state fits every warehouse: the variables
    profiles.yml reads go to its defaults, or to a placeholder where it has none; the database path keeps its
    file name (dbt takes the database's name from it, and the manifest records that name)."""
    text = profiles_yml.read_text() if profiles_yml.exists() else ""
    no_default = set(re.findall(r"""env_var\(\s*\\?['"](\w+)\\?['"]\s*\)""", text))
    changes: dict[str, str | None] = {}
    for name in profile_env_vars(profiles_yml):
        if name in _DATABASE_PATH_VARS:
            changes[name] = f"{PLACEHOLDER_DIR}/{Path(env.get(name) or DEFAULT_DATABASE_FILE).name}"
        elif name in no_default and name in env:  # only one target needs it (Spark's warehouse directory)
            changes[name] = f"{PLACEHOLDER_DIR}/{name.lower()}"
        else:
            changes[name] = None
    return changes


def shared_state(project_dir: Path, parse_args: Sequence[str]) -> Path:
    """Where the checkout keeps the newest parse state (with parse_environment) for every warehouse: under
    the project's git-ignored target/, one per profile, target and vars (dbt parses in full when they
    change, so parses with other vars, e.g. a test's, keep their own)."""
    flags = _flag_values(parse_args)
    named = {k: v for k, v in flags.items() if k in ("--profile", "--target", "--vars")}
    digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()[:16]
    return project_dir / "target" / "parse-state" / f"{flags.get('--target', 'default')}-{digest}" / STATE_FILE


def seed_state(shared: Path, target_path: Path) -> bool:
    """Copy the shared parse state into a parse's target path that has none; dbt checks it before use (dbt
    version, vars, profile, target, every file's checksum) and parses in full when it does not fit."""
    own = target_path / STATE_FILE
    if own.exists() or not shared.exists():
        return False
    target_path.mkdir(parents=True, exist_ok=True)
    tmp = own.with_name(f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        shutil.copyfile(shared, tmp)
        os.replace(tmp, own)
    except OSError:
        with suppress(OSError):
            tmp.unlink()
        return False
    return True


def share_state(target_path: Path, shared: Path) -> None:
    """Publish a parse's state for the next warehouse, atomically (parses of other processes read it); a
    read-only checkout keeps none."""
    own = target_path / STATE_FILE
    if not own.exists():
        return
    tmp = shared.with_name(f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        shared.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(own, tmp)
        os.replace(tmp, shared)
    except OSError as exc:
        with suppress(OSError):
            tmp.unlink()
        log.info("dbt's parse state not shared (%s): the next fresh warehouse parses in full", exc)


def parse_project(project_dir: Path, parse_args: list[str], target_path: Path) -> Any:
    """`dbt parse` (parse_args: everything but --target-path) in parse_environment, starting from the shared
    parse state and sharing its own after; dbt's result. When the project reads a profile variable itself
    (the manifest's env_vars), the parse is done again in the real environment and not shared."""
    from dbt.cli.main import dbtRunner

    from rapport.transform.heap import frozen_heap

    profiles = Path(_flag_values(parse_args).get("--profiles-dir", project_dir)) / "profiles.yml"
    changes = parse_environment(os.environ, profiles)
    shared = shared_state(project_dir, parse_args)
    args = [*parse_args, "--target-path", str(target_path)]
    seed_state(shared, target_path)
    with environ_set(changes), frozen_heap():
        result = dbtRunner().invoke(args)
    manifest = result.result if result.success else None
    used = sorted(set(changes) & set(getattr(manifest, "env_vars", None) or {}))
    if used:
        log.warning("the dbt project reads %s, which profiles.yml reads too: parsed with the real values",
                    ", ".join(used))  # fmt: skip
        (target_path / STATE_FILE).unlink(missing_ok=True)  # parsed with the placeholders
        with frozen_heap():
            return dbtRunner().invoke(args)
    if manifest is not None:
        share_state(target_path, shared)
    return result


def parsed_manifest(project_dir: Path, args: Sequence[str], scratch: Path) -> Any:
    """The manifest `args` (a dbt command's arguments) would parse, from this process's cache or by running
    `dbt parse` with the same profile, target and vars (writing its files under `scratch`; parse_project).
    Call it in the environment the command runs in. None if the parse fails: the command then parses (and
    reports the error) itself."""
    parts = key_parts(project_dir, args, os.environ)
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    with _lock:
        if key in _cache:
            return _cache[key][1]
        for old_parts, _ in _cache.values():  # say why the manifest of the run before does not fit
            changed = sorted(k for k in parts if parts[k] != old_parts.get(k))
            log.info("parsing the dbt project again: %s changed", ", ".join(changed))
    flags = _flag_values(args)
    parse = ["parse", "--project-dir", str(project_dir), "--log-path", str(scratch / "logs"), "--quiet",
             "--no-use-colors"]  # fmt: skip
    # profile and target always named (dbt's parse state records whether they were): a build run by rapport,
    # one run by cosmos (which names them) and the DAG's manifest then parse alike and share one state
    for flag in ("--profile", "--target"):
        value = parts[flag.removeprefix("--")]
        if flag not in flags and isinstance(value, str) and value and "{" not in value:
            flags[flag] = value
    for flag, value in flags.items():
        if flag == "--vars":
            if parts["vars"] is None:
                continue
            value = json.dumps(parts["vars"], sort_keys=True, default=str)
        parse += [flag, value]
    result = parse_project(project_dir, parse, scratch / "target")
    if not result.success or result.result is None:
        log.warning("dbt parse failed (%s); the dbt command parses the project itself", result.exception)
        return None
    with _lock:
        _cache.clear()  # one run at a time: keep only the newest manifest
        _cache[key] = (parts, result.result)
    return result.result


def clear() -> None:
    """Forget the cached manifest (tests; after the project changed in this process)."""
    with _lock:
        _cache.clear()
