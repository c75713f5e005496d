"""Environment variables set for a block of code: dbt reads env_var() from os.environ at invocation and at
parse time, so rapport's dbt calls set their values around the call and restore the caller's after."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def environ_set(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with `changes` (None: unset) for the block, the caller's values restored after: dbt reads
    env_var() from os.environ at invocation and at parse time."""
    saved = {k: os.environ.get(k) for k in changes}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
