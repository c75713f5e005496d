"""rapport.transform.heap.frozen_heap: the objects alive when a dbt command starts are left out of
the garbage collector's passes during the command, and handed back to it after, also when the command fails;
with keep_frozen (the dbt layer tasks), what survives the command is frozen too and nothing is given back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from rapport.transform.heap import frozen_heap


def test_objects_alive_on_entry_are_frozen_and_given_back() -> None:
    assert gc.get_freeze_count() == 0
    alive = [object() for _ in range(1000)]  # noqa: F841 (kept alive across the block)
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen >= 1000
        with frozen_heap():  # nested: the inner block neither freezes again nor gives back
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0


def test_given_back_when_the_command_fails() -> None:
    with pytest.raises(RuntimeError), frozen_heap():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("dbt failed")
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_by_its_caller_stays_frozen() -> None:
    """The in-process runner freezes for the whole run: a dbt command inside it must not unfreeze that."""
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_heap():
            assert gc.get_freeze_count() >= before
        assert gc.get_freeze_count() >= before > 0
    finally:
        gc.unfreeze()


class _Cycle:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _frozen(obj: object) -> bool:
    """Whether `obj` is in the collector's permanent generation (gc.get_objects() lists only the others)."""
    return gc.is_tracked(obj) and id(obj) not in {id(o) for o in gc.get_objects()}


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test starts and ends with nothing frozen (a kept freeze outlives the block that made it)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_keep_frozen_also_freezes_what_survives_and_gives_nothing_back(unfrozen) -> None:
    """A dbt layer task's form: what the command left alive stays out of the later tasks' collections."""
    before = [[] for _ in range(100)]
    with frozen_heap(keep_frozen=True):
        assert _frozen(before)
        made = [[] for _ in range(100)]  # made by the command, outlives it
        garbage = _Cycle()
        dead = weakref.ref(garbage)
        del garbage
        gc.collect()  # as cosmos's cleanup does at the end of the command
        assert not _frozen(made)
    assert dead() is None  # the command's garbage was collected, not frozen
    assert _frozen(made) and _frozen(before)


def test_keep_frozen_keeps_it_when_the_command_fails(unfrozen) -> None:
    with pytest.raises(RuntimeError), frozen_heap(keep_frozen=True):
        raise RuntimeError("dbt failed")
    assert gc.get_freeze_count() > 0


def test_only_the_outermost_block_decides_what_happens_at_its_end(unfrozen) -> None:
    with frozen_heap():  # gives back
        with frozen_heap(keep_frozen=True):
            inner = [[] for _ in range(10)]
        assert not _frozen(inner)  # an inner block freezes nothing more at its end ...
    assert gc.get_freeze_count() == 0  # ... and cannot keep what the outer one gives back
    with frozen_heap(keep_frozen=True):
        with frozen_heap():
            pass
        assert gc.get_freeze_count() > 0  # an inner block gives nothing back
        late = [[] for _ in range(10)]
    assert _frozen(late)


def test_keep_frozen_on_a_heap_its_caller_froze_adds_to_it(unfrozen) -> None:
    """`rapport run` freezes what it loaded; a layer freezes again before and after its command."""
    loaded = [[] for _ in range(10)]
    gc.freeze()
    with frozen_heap(keep_frozen=True):
        made = [[] for _ in range(10)]
    assert _frozen(loaded) and _frozen(made)
