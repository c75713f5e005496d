"""The Python heap during an in-process dbt command (issue 16): the one place rapport freezes it around one."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_frozen_lock = threading.Lock()
_frozen_depth = 0
_gives_back = False  # whether the outermost block froze an unfrozen heap (and so, unless it keeps it, unfreezes it)
_keeps = False  # whether the outermost block keeps the heap frozen after it (keep_frozen)


@contextmanager
def frozen_heap(*, keep_frozen: bool = False) -> Iterator[None]:
    """Python's cyclic garbage collector leaves the objects alive on entry alone until the block ends.

    A dbt command allocates a Jinja context (with a generator for each of the project's ~750 macros) and a
    handful of events per node, so the collector runs hundreds of times per build, and each of its full
    collections walked every object of the process, the parsed manifest and every imported module
    included: ~0.14 s each, about 1 s of CPU in a 100,000-person day build (issue 16; bench/RESULTS.md
    "Incremental day", 2026-12-07). Frozen (`gc.freeze`), those objects are skipped. What dbt computes is
    unchanged: only when unreachable cycles are freed.

    At the end of the outermost block (nested blocks, on any thread, share it and change nothing themselves):
    - by default the objects go back to the collector's oldest generation (`gc.unfreeze`), so nothing is kept
      longer than the dbt command; but a heap already frozen on entry (the in-process runner freezes what it
      loaded for a whole `rapport run`: rapport.orchestration.local_runner) is left frozen: its owner gives
      it back;
    - with `keep_frozen`, what is alive then is frozen too and nothing is given back: for a command whose
      objects live as long as the process, the dbt layer tasks (rapport.orchestration.dbt_operators): the
      collections of the tasks after it (cosmos collects after each command) skip what it left, and a
      deployment's task process ends with its task. Whoever unfreezes the process's heap later (the
      in-process runner at the end of its runs) gives those back too.
    """
    global _frozen_depth, _gives_back, _keeps
    with _frozen_lock:
        if _frozen_depth == 0:
            _keeps = keep_frozen
            _gives_back = gc.get_freeze_count() == 0
            gc.freeze()
        _frozen_depth += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_depth -= 1
            if _frozen_depth == 0:
                if _keeps:
                    gc.freeze()  # what survived the block (its collections included), for the collections after it
                elif _gives_back:
                    gc.unfreeze()
