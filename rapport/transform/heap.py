"""The Python heap during an in-process dbt command (issue 16)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_frozen_lock = threading.Lock()
_frozen_depth = 0
_gives_back = False  # whether the outermost block froze an unfrozen heap (and so unfreezes it)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Python's cyclic garbage collector leaves the objects alive on entry alone until the block ends.

    A dbt command allocates a Jinja context (with a generator for each of the project's ~750 macros) and a
    handful of events per node, so the collector runs hundreds of times per build, and each of its full
    collections walked every object of the process, the parsed manifest and every imported module
    included: ~0.14 s each, about 1 s of CPU in a 100,000-person day build (issue 16; bench/RESULTS.md
    "Incremental day", 2026-12-07). Frozen (`gc.freeze`), those objects are skipped; they go back to the
    collector's oldest generation when the outermost block ends (`gc.unfreeze`), so nothing is kept longer
    than the dbt command. What dbt computes is unchanged: only when unreachable cycles are freed.
    A heap already frozen on entry (the in-process runner freezes what it loaded for a whole `rapport run`:
    rapport.orchestration.local_runner) is left frozen: its owner gives it back.
    """
    global _frozen_depth, _gives_back
    with _frozen_lock:
        if _frozen_depth == 0:
            _gives_back = gc.get_freeze_count() == 0
            gc.freeze()
        _frozen_depth += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_depth -= 1
            if _frozen_depth == 0 and _gives_back:
                gc.unfreeze()
