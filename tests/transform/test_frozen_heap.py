"""rapport.transform.heap.frozen_heap: the objects alive when a dbt command starts are left out of
the garbage collector's passes during the command, and handed back to it after, also when the command fails."""

from __future__ import annotations

import gc

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
