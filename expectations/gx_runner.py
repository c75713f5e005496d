"""The module that imports Great Expectations (3-7 s, ~200 MB; with `gx_between`): the gate imports it lazily.

One file-backed GX context per warehouse per process, under `{warehouse}/gx`; Data Docs go to
`{warehouse}/data_docs`. Each suite is validated against a Parquet frame (a pandas Parquet asset whose
path is a `file://` URL, so the context still loads when a frame file is absent). All suites of a gate
are validation definitions of one checkpoint, so Data Docs are rendered once per gate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rapport.expectations.catalog import SEVERITY, SuiteSpec, expectation_label
from rapport.expectations.results import Outcome

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# GX logs at INFO while it imports and validates (docs decorators, metric resolution): silence it first.
logging.getLogger("great_expectations").setLevel(logging.ERROR)

# GX imports its SQL and Spark integrations whenever SQLAlchemy and PySpark are installed (Airflow brings the
# one, the Spark extra the other), though the gates validate pandas frames only: ~0.45 s of CPU, a fifth of GX's
# import, in a process that has loaded neither (an Airflow task has SQLAlchemy already: only PySpark's share is
# saved there; docs/quality.md). GX supports their absence (both are optional extras of great-expectations), so
# they are hidden while it imports.
UNUSED_INTEGRATIONS = ("pyspark", "sqlalchemy")


@contextmanager
def _not_importable(modules: tuple[str, ...]) -> Iterator[None]:
    """`modules` raise ImportError inside the block (a None entry in sys.modules), and import normally after
    it. One already imported is left as it is: the code that imported it, and GX, go on using it. The entries
    are process-wide: a thread importing one of them during the block would get ImportError (the raw gate's
    frame export, which runs beside GX's import, imports neither)."""
    hidden = [m for m in modules if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for m in hidden:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]


with warnings.catch_warnings(), _not_importable(UNUSED_INTEGRATIONS):
    warnings.simplefilter("ignore")
    import great_expectations as gx
    from great_expectations.checkpoint import Checkpoint, UpdateDataDocsAction
    from great_expectations.core.freshness_diagnostics import (
        CheckpointFreshnessDiagnostics,
        ValidationDefinitionFreshnessDiagnostics,
    )
    from great_expectations.core.owner_resolution import owner_from_batch_definition
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.core.validation_definition import ValidationDefinition
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
    from great_expectations.exceptions import DataContextError
    from great_expectations.execution_engine import pandas_execution_engine

# GX fingerprints every frame under 1 GB it validates (md5 over pandas' hash of every row: 1-2 s per 100k
# customers' marts) only to store it in the result's batch markers, which nothing here reads; GX has no
# setting for it. The frames are identified by the run id and their Parquet path instead.
pandas_execution_engine.HASH_THRESHOLD = 0

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rapport.expectations import gx_between

gx_between.install()  # range checks on nullable number columns: one comparison per column, not per value

DATASOURCE = "rapport_frames"
SITE = "rapport"
BATCH = "whole_frame"
KEEP_RUNS = 30  # validation results (and their Data Docs pages) kept per suite
# SUMMARY results keep 20 offending values and their row indices. Unless told not to, GX's pandas engine also
# builds the query of the unexpected rows of each column expectation (filtering the whole frame once more),
# which SUMMARY then drops from the result: not asking for it leaves results and Data Docs as they were and
# saves seconds of a mart gate at 1M people (docs/quality.md).
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20, "return_unexpected_index_query": False}


_contexts: dict[Path, object] = {}
_checkpoints: dict[tuple[Path, str], object] = {}


def _file_context(root: Path):
    """The file-backed context under `root/gx`. GX rewrites `great_expectations.yml` in place (open, truncate,
    write), so a process killed at that moment leaves it cut short and every later load fails. The file
    holds only what this module sets again (the Data Docs site, flags, the frames' data source), so a broken
    one is set aside, named in the log, and made afresh."""
    try:
        return gx.get_context(mode="file", project_root_dir=str(root))
    except Exception as exc:  # noqa: BLE001 (a cut-short file fails in many ways: KeyError, TypeError, GX errors)
        config = root / "gx" / "great_expectations.yml"
        if not config.exists():
            raise
        broken = config.with_name(f"{config.name}.broken-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
        config.replace(broken)
        logging.getLogger("rapport").warning(
            "Great Expectations' config could not be read (%s: %s), likely cut short by a killed process; "
            "set aside as %s and recreated",
            type(exc).__name__,
            exc,
            broken,
        )
        return gx.get_context(mode="file", project_root_dir=str(root))


def _context(warehouse_dir: Path):
    root = warehouse_dir.resolve()
    if root not in _contexts:
        ctx = _file_context(root)
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(root / "data_docs"),
            },
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": 200,
            },
        }
        # Only our site (GX's default `local_site` would be a second, stale copy under uncommitted/), no
        # analytics, no progress bars. Saved only when the stored config differs (a new or moved warehouse, an
        # upgrade): GX rewrites great_expectations.yml in place (`_file_context`), so a gate that leaves it
        # alone cannot leave it cut short, and saves the rewrite (~45 ms of CPU).
        progress_bars = {"globally": False, "metric_calculations": False}
        v = ctx.variables
        # read back from the YAML, each setting is a plain dict or value
        if v.data_docs_sites != {SITE: site} or v.analytics_enabled is not False or v.progress_bars != progress_bars:
            v.data_docs_sites = {SITE: site}
            v.analytics_enabled = False
            v.progress_bars = ProgressBarsConfig(**progress_bars)
            v.save()
        _contexts[root] = ctx
    return _contexts[root]


# Suites whose Data Docs page the gate's next build renders (set by `validate`): a suite's page shows only
# its expectations, so it is rendered when the stored suite is newer than the page or the page is missing,
# not on every run (a quarter of the Data Docs build at 100k people).
_suite_pages_due: set[str] = set()


def _suite_page_due(root: Path, name: str) -> bool:
    page = root / "data_docs" / "expectations" / f"{name}.html"
    stored = root / "gx" / "expectations" / f"{name}.json"
    try:
        return page.stat().st_mtime_ns < stored.stat().st_mtime_ns
    except FileNotFoundError:
        return True


class UpdateDataDocsOnce(UpdateDataDocsAction):
    """GX's UpdateDataDocsAction rebuilds the site (index included) once per validation result; with a
    dozen suites per gate that is most of the gate's time. This builds it once for the whole checkpoint:
    every validation result's page, the pages of the suites that changed, and the index."""

    type: Literal["rapport_update_data_docs_once"] = "rapport_update_data_docs_once"

    def run(self, checkpoint_result, action_context=None) -> dict:  # noqa: ARG002 (GX signature)
        identifiers: list = []
        for result_id, result in checkpoint_result.run_results.items():
            identifiers.append(result_id)
            if result.suite_name in _suite_pages_due:
                identifiers.append(ExpectationSuiteIdentifier(name=result.suite_name))
        self._build_data_docs(site_names=self.site_names, resource_identifiers=identifiers)
        return {}


def _fingerprint(spec: SuiteSpec) -> str:
    return hashlib.sha256(json.dumps(spec.expectations, sort_keys=True).encode()).hexdigest()


def _suite(ctx, spec: SuiteSpec):
    """The stored suite, replaced only when its JSON changed (GX's add_or_update compares expectations
    pairwise, which costs seconds per gate)."""
    fingerprint = _fingerprint(spec)
    try:
        stored = ctx.suites.get(spec.name)
    except DataContextError:
        stored = None
    if stored is not None and stored.meta.get("rapport_fingerprint") == fingerprint:
        return stored
    if stored is not None:
        ctx.suites.delete(spec.name)
    suite = gx.ExpectationSuite(
        name=spec.name,
        expectations=[dict(e) for e in spec.expectations],
        meta={"rapport_fingerprint": fingerprint, "source": spec.path.name},
    )
    if len(suite.expectations) != len(spec.expectations):
        # GX logs and drops an invalid expectation; a silently shorter suite must not pass as a gate.
        raise ValueError(
            f"suite {spec.name} ({spec.path}): {len(spec.expectations) - len(suite.expectations)} "
            "expectation(s) were rejected by Great Expectations"
        )
    return ctx.suites.add(suite)


def _validation_definition(ctx, name: str, batch, suite):
    try:
        stored = ctx.validation_definitions.get(name)
    except DataContextError:
        stored = None
    if stored is not None and stored.suite.id == suite.id and stored.data.id == batch.id:
        return stored
    if stored is not None:
        ctx.validation_definitions.delete(name)
    return ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))


def _part_names(name: str, n: int) -> list[str]:
    """Asset and validation definition names of a suite's frame parts (the suite's own name if one)."""
    return [name] if n == 1 else [f"{name}.part{i + 1}of{n}" for i in range(n)]


def _checkpoint(warehouse_dir: Path, gate: str, specs: list[SuiteSpec], frame_paths: dict[str, tuple[Path, ...]]):
    """Register data assets, suites, validation definitions and the gate's checkpoint (once per process and
    layout of frame parts)."""
    key = (warehouse_dir.resolve(), gate, tuple((s.name, len(frame_paths[s.name])) for s in specs))
    if key in _checkpoints:
        return _checkpoints[key]
    ctx = _context(warehouse_dir)
    try:
        ds = ctx.data_sources.get(DATASOURCE)
    except KeyError:
        ds = ctx.data_sources.add_pandas(DATASOURCE)
    vds = []
    for spec in specs:
        suite = _suite(ctx, spec)
        paths = frame_paths[spec.name]
        for part, path in zip(_part_names(spec.name, len(paths)), paths, strict=True):
            url = path.resolve().as_uri()
            try:
                asset = ds.get_asset(part)
                if str(asset.path) != url:
                    ds.delete_asset(part)
                    raise LookupError
            except LookupError:
                asset = ds.add_parquet_asset(part, path=url, dtype_backend="numpy_nullable")
            try:
                batch = asset.get_batch_definition(BATCH)
            except KeyError:
                batch = asset.add_batch_definition_whole_dataframe(BATCH)
            vds.append(_validation_definition(ctx, part, batch, suite))
    name = f"rapport_{gate}_gate"
    try:
        checkpoint = ctx.checkpoints.get(name)
    except DataContextError:
        checkpoint = None
    if (
        checkpoint is None
        or [v.id for v in checkpoint.validation_definitions] != [v.id for v in vds]
        or [a.type for a in checkpoint.actions] != [UpdateDataDocsOnce.__fields__["type"].default]
        or checkpoint.result_format != RESULT_FORMAT
    ):
        if checkpoint is not None:
            ctx.checkpoints.delete(name)
        # the stored checkpoint is replaced: a cached object of another layout of this gate is stale now
        for stale in [k for k in _checkpoints if k[:2] == key[:2]]:
            del _checkpoints[stale]
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=vds,
                actions=[UpdateDataDocsOnce(name="update_data_docs", site_names=[SITE])],
                result_format=RESULT_FORMAT,
            )
        )
    _checkpoints[key] = checkpoint
    return checkpoint


@contextmanager
def _one_batch_in_memory() -> Iterator[None]:
    """GX's execution engine keeps every batch it has loaded (the whole pandas frame) for the life of the
    data source: over a gate, every frame at once (8.8 GB for a first load of 1M people). Validations run one
    after the other, so only the batch being validated is kept, and nothing once the gate is done."""
    from great_expectations.core.batch_manager import BatchManager

    original = BatchManager.save_batch_data
    managers: set[BatchManager] = set()

    def save_batch_data(self: BatchManager, batch_id: str, batch_data: object) -> None:
        self._batch_data_cache.clear()
        self._batch_cache.clear()
        managers.add(self)
        original(self, batch_id=batch_id, batch_data=batch_data)

    BatchManager.save_batch_data = save_batch_data  # type: ignore[method-assign]
    try:
        yield
    finally:
        BatchManager.save_batch_data = original  # type: ignore[method-assign]
        for m in managers:
            m._batch_data_cache.clear()
            m._batch_cache.clear()


@contextmanager
def _registered_as_fresh(checkpoint: Checkpoint) -> Iterator[None]:
    """Before running a checkpoint, and again before each of its validation definitions, GX checks that the
    objects in memory equal the stored ones: it reads back and parses the checkpoint, and each validation
    definition with its suite and batch definition, from their files, four times per definition per run
    (~0.5 s of CPU per gate at 100k people, docs/quality.md). `_checkpoint` has just made the store hold these
    very objects (loaded from it, or added to it, in this process), and the gate validates what they hold in
    memory (the suites built from `expectations/suites/`). So for this checkpoint and its own definitions the
    check is taken as passed, provided each was added to the store (has an id, as GX requires); any other
    object is checked by GX as before."""
    ours = {id(checkpoint), *(id(vd) for vd in checkpoint.validation_definitions)}
    checkpoint_is_fresh, definition_is_fresh = Checkpoint.is_fresh, ValidationDefinition.is_fresh

    def checkpoint_fresh(self: Checkpoint) -> CheckpointFreshnessDiagnostics:
        if id(self) in ours and self.id:
            return CheckpointFreshnessDiagnostics(errors=[])
        return checkpoint_is_fresh(self)

    def definition_fresh(self: ValidationDefinition) -> ValidationDefinitionFreshnessDiagnostics:
        if id(self) in ours and self.id and self.suite.id and self.data.id:
            # what GX's own check does first: the suite resolves through the definition's context
            self._record_suite_owner(owner_from_batch_definition(self.data))
            return ValidationDefinitionFreshnessDiagnostics(errors=[])
        return definition_is_fresh(self)

    Checkpoint.is_fresh = checkpoint_fresh  # type: ignore[method-assign]
    ValidationDefinition.is_fresh = definition_fresh  # type: ignore[method-assign]
    try:
        yield
    finally:
        Checkpoint.is_fresh = checkpoint_is_fresh  # type: ignore[method-assign]
        ValidationDefinition.is_fresh = definition_is_fresh  # type: ignore[method-assign]


def _prune_history(base: Path, keep: int) -> None:
    """Keep the newest `keep` run directories per suite: `base/<suite>/<run_name>/<run_time>/...`."""
    if not base.is_dir():
        return
    for suite_dir in (p for p in base.iterdir() if p.is_dir()):
        runs = sorted(
            (rt for rn in suite_dir.iterdir() if rn.is_dir() for rt in rn.iterdir() if rt.is_dir()),
            key=lambda p: p.name,
        )
        for old in runs[: max(len(runs) - keep, 0)]:
            shutil.rmtree(old, ignore_errors=True)
            if not any(old.parent.iterdir()):
                old.parent.rmdir()


def _plain(value: object) -> object:
    """numpy scalars and containers as plain Python values, for readable observed values."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _observed(result: dict, exception: str | None) -> tuple[str, int | None, int | None]:
    if exception:
        return f"could not evaluate: {exception}", None, None
    mismatched = (result.get("details") or {}).get("mismatched") or {}
    if mismatched.get("missing"):
        return f"missing columns: {', '.join(map(str, mismatched['missing']))}", None, None
    if "observed_value" in result:
        observed = _plain(result["observed_value"])
        if isinstance(observed, list) and len(observed) > 10:
            observed = f"{len(observed)} values"
        return f"observed {observed}", result.get("element_count"), None
    n, bad = result.get("element_count"), result.get("unexpected_count")
    if bad is None:
        return "no result", n, None
    text = f"{bad} of {n} rows unexpected"
    examples = result.get("partial_unexpected_list") or []
    if bad and examples:
        text += ", e.g. " + ", ".join(str(_plain(v)) for v in examples[:5])
    return text, n, bad


def _exception_message(validation_result) -> str | None:
    info = validation_result.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception"):
            return (c.get("exception_message") or "exception").strip().splitlines()[0]
    return None


def _combined(parts: list[tuple[dict, str | None, bool]]) -> tuple[dict, str | None, bool]:
    """One expectation's (result, exception, success) over a frame from its results over the frame's parts:
    counts add up (the parts split the rows, `SuiteSpec.splittable`), examples are the first parts';
    an aggregate result (observed value) is the first failing part's."""
    if len(parts) == 1:
        return parts[0]
    exception = next((e for _, e, _ in parts if e), None)
    success = all(ok for _, _, ok in parts)
    results = [r for r, _, _ in parts]
    if all("unexpected_count" in r for r in results):
        examples = [v for r in results for v in (r.get("partial_unexpected_list") or [])]
        merged = {
            "element_count": sum(r.get("element_count") or 0 for r in results),
            "unexpected_count": sum(r.get("unexpected_count") or 0 for r in results),
            "partial_unexpected_list": examples[:20],
        }
        return merged, exception, success
    first = next((r for r, _, ok in parts if not ok), results[0])
    return first, exception, success


def validate(
    warehouse_dir: Path,
    gate: str,
    specs: list[SuiteSpec],
    frame_paths: dict[str, tuple[Path, ...]],
    *,
    run_id: str,
    params: dict[str, object],
    frame_rows: dict[str, int] | None = None,
) -> tuple[list[Outcome], Path]:
    """Run the gate's checkpoint; outcomes (without samples) in suite order, plus the Data Docs index path.

    `frame_paths` holds each suite's frame: one Parquet file, or the parts of a split frame, each validated
    on its own (pandas holds one part at a time) and the results combined per expectation.
    `frame_rows`: the whole frame's row count of the suites whose files hold only the rows their expectations
    could object to (candidate_rows.py); their row-wise results report it as the element count, as a
    validation of the whole frame would (GX counted the candidate rows).
    """
    gx_root = warehouse_dir.resolve() / "gx"
    _prune_history(gx_root / "uncommitted" / "validations", KEEP_RUNS - 1)
    _prune_history(warehouse_dir.resolve() / "data_docs" / "validations", KEEP_RUNS - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checkpoint = _checkpoint(warehouse_dir, gate, specs, frame_paths)
        _suite_pages_due.clear()
        _suite_pages_due.update(s.name for s in specs if _suite_page_due(warehouse_dir.resolve(), s.name))
        with _one_batch_in_memory(), _registered_as_fresh(checkpoint):
            result = checkpoint.run(
                expectation_parameters=dict(params),
                run_id=RunIdentifier(run_name=run_id, run_time=datetime.now(UTC)),
            )
    by_part = {vr.meta["active_batch_definition"]["data_asset_name"]: vr for vr in result.run_results.values()}
    outcomes: list[Outcome] = []
    for spec in specs:
        order = {expectation_label(e): i for i, e in enumerate(spec.expectations)}
        per_label: dict[str, list] = {}
        configs: dict[str, object] = {}
        for part in _part_names(spec.name, len(frame_paths[spec.name])):
            for r in by_part[part].results:
                cfg = r.expectation_config
                label = expectation_label({"type": cfg.type, "kwargs": cfg.kwargs, "meta": cfg.meta})
                configs.setdefault(label, cfg)
                per_label.setdefault(label, []).append((r.result or {}, _exception_message(r), bool(r.success)))
        suite_outcomes = []
        for label, parts in per_label.items():
            cfg = configs[label]
            severity = SEVERITY.get(getattr(cfg.severity, "value", str(cfg.severity)), "warn")
            result, exception, success = _combined(parts)
            whole = (frame_rows or {}).get(spec.name)
            if whole is not None and "unexpected_count" in result:
                result = {**result, "element_count": whole}
            observed, n, bad = _observed(result, exception)
            suite_outcomes.append(Outcome(spec.name, label, severity, success, observed, n, bad))
        outcomes += sorted(suite_outcomes, key=lambda o: order.get(o.expectation, len(order)))
    return outcomes, warehouse_dir.resolve() / "data_docs" / "index.html"
