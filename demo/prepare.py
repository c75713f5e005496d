"""What `rapport demo` does with the demo sources before it runs the pipeline on them.

- No demo yet: generate one (as `rapport generate` does).
- A demo with the same people/seed/months (or none given) that ends before the requested day: continue
  its history to that day (extend.py): the warehouse already holding its earlier days stays valid.
- The same end: nothing to write.
- An earlier end, or other people/seed/months: a different history under the same ids. Generated afresh
  when no working warehouse holds the old one yet; otherwise `DemoConflict`, before anything is touched,
  with what the user can do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from rapport.demo.extend import ContinuationError, extend, read_parameters, sources_end
from rapport.demo.generate import generate

DEFAULTS = {"people": 3000, "seed": 7, "months": 15}


class DemoConflict(RuntimeError):
    """The requested demo would rewrite the history a working warehouse already holds."""


def prepare_demo(
    out_dir: Path,
    *,
    people: int | None = None,
    seed: int | None = None,
    months: int | None = None,
    end: date | None = None,
    work_db: Path,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Bring the demo sources in `out_dir` to `end` (default: today, UTC); returns what was done:
    "generated", "continued" or "unchanged". People/seed/months left None mean "as recorded" (or the
    defaults for a new demo). Raises DemoConflict when `work_db` exists and the demo cannot be continued."""
    say = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    end = end or datetime.now(UTC).date()
    asked = {"people": people, "seed": seed, "months": months}
    recorded = read_parameters(out_dir)
    current = sources_end(out_dir) if recorded else None
    if recorded is None or current is None:
        _generate(out_dir, {k: v if v is not None else DEFAULTS[k] for k, v in asked.items()}, end, say)
        return "generated"
    wanted = {k: v if v is not None else int(recorded[k]) for k, v in asked.items()}
    differs = {k: (int(recorded[k]), v) for k, v in wanted.items() if v != int(recorded[k])}
    if not differs and end == current:
        say(f"the demo sources in {out_dir} already end on {end}: nothing to generate")
        return "unchanged"
    if not differs and end > current:
        say(
            f"continuing the demo shop's history from {current} to {end} (same shop, {(end - current).days} "
            f"more day(s); its earlier days are kept as they are)"
        )
        try:
            summary = extend(out_dir, end, progress=say)
        except ContinuationError as exc:
            raise DemoConflict(f"cannot continue the demo: {exc}. {_fresh_start(out_dir, work_db)}") from exc
        added = ", ".join(f"{k} {v:,}" for k, v in summary.added.items() if v)
        say(f"demo sources continued in {summary.seconds:.1f}s, now ending on {end}: {added}")
        return "continued"
    if not work_db.exists():
        _generate(out_dir, wanted, end, say)
        return "generated"
    raise DemoConflict(_conflict_message(out_dir, work_db, recorded, current, wanted, end, differs))


def _generate(out_dir: Path, params: dict[str, int], end: date, say: Callable[[str], None]) -> None:
    say(f"generating demo sources for {params['people']} people into {out_dir}")
    summary = generate(
        out_dir, people=params["people"], seed=params["seed"], end=end, months=params["months"], progress=say
    )
    counts = ", ".join(f"{k} {v:,}" for k, v in summary.counts.items())
    say(f"demo sources ready in {summary.seconds:.1f}s ({summary.start} to {summary.end}): {counts}")


def _conflict_message(
    out_dir: Path,
    work_db: Path,
    recorded: dict,
    current: date,
    wanted: dict[str, int],
    end: date,
    differs: dict[str, tuple[int, int]],
) -> str:
    why = (
        ", ".join(f"--{k} {new} (it was made with {old})" for k, (old, new) in differs.items())
        if differs
        else f"--end {end} is before the day its sources already end on ({current})"
    )
    same = f"--people {recorded['people']} --seed {recorded['seed']} --months {recorded['months']}"
    return (
        f"not generating the demo: the warehouse already holds the demo in {out_dir}, and {why}. That would be "
        f"a different shop history under the same ids, which the raw data checks reject. Nothing was changed.\n"
        f"What you can do:\n"
        f"  - keep this warehouse: run `rapport demo {same}` with no --end or an --end on or after {current} "
        f"(it continues the same shop's history);\n"
        f"  - {_fresh_start(out_dir, work_db)}"
    )


def _fresh_start(out_dir: Path, work_db: Path) -> str:
    work_dir = work_db.parent
    return (
        f"try the other demo in a new warehouse: set RAPPORT_WAREHOUSE_DIR to an empty directory; or start "
        f"this warehouse over: delete {out_dir} and {work_dir}. This also deletes the erasure key "
        f"{work_dir / 'erasure.key'}, and with it the record of the people `rapport forget` erased: do it only "
        f"if you mean to."
    )
