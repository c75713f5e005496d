"""Parse the dbt project once per process, and across runs only what changed, not once per dbt command.

Every dbt command parses the project first (about 3-5 s here, most of a small build's time). dbt's own
partial parsing starts over whenever `--vars` change, and every run passes its own `run_id`, `as_of` and
`since`. So the project is parsed without those three (RUN_VARS): they are used only in the models' SQL,
which dbt renders again for each command with that command's vars, never in a ref, source or config that
parsing records (tests/dbt/test_manifest_reuse.py compares the two parses). The parse's files stay under
the warehouse's dbt directory, so dbt's partial parsing reuses them in the next run (about 0.8 s instead of
3), and a `rapport run` invokes dbt four times (three layers, docs) with one parse: the first invocation
parses and the others get the parsed manifest (`dbtRunner(manifest=...)`).

The cache key is what dbt itself would re-parse for: the project's files, the profile, target and the
other vars, and the environment (`RAPPORT_*`, `DBT_*`: `env_var()` in the profile and models).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rapport.transform.project import project_fingerprint

log = logging.getLogger("rapport.transform.manifests")

_lock = threading.Lock()
_cache: dict[str, tuple[dict[str, Any], Any]] = {}  # key -> (key parts, Manifest); one entry: the current run's
_VALUE_FLAGS = ("--profiles-dir", "--profile", "--target", "--vars")
# vars that change with every run and that only the models' SQL reads (rendered per command, not parsed)
RUN_VARS = ("as_of", "run_id", "since")


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


def parsed_manifest(project_dir: Path, args: Sequence[str], scratch: Path) -> Any:
    """The manifest `args` (a dbt command's arguments) would parse, from this process's cache or by running
    `dbt parse` with the same profile, target and vars (writing its files under `scratch`). Call it in the
    environment the command runs in. None if the parse fails: the command then parses (and reports the
    error) itself."""
    parts = key_parts(project_dir, args, os.environ)
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    with _lock:
        if key in _cache:
            return _cache[key][1]
        for old_parts, _ in _cache.values():  # say why the manifest of the run before does not fit
            changed = sorted(k for k in parts if parts[k] != old_parts.get(k))
            log.info("parsing the dbt project again: %s changed", ", ".join(changed))
    from dbt.cli.main import dbtRunner

    flags = _flag_values(args)
    parse = ["parse", "--project-dir", str(project_dir), "--target-path", str(scratch / "target"),
             "--log-path", str(scratch / "logs"), "--quiet", "--no-use-colors"]  # fmt: skip
    for flag, value in flags.items():
        if flag == "--vars":
            if parts["vars"] is None:
                continue
            value = json.dumps(parts["vars"], sort_keys=True, default=str)
        parse += [flag, value]
    result = dbtRunner().invoke(parse)
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
