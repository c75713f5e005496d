"""The Pareto/NBD likelihood is computed in blocks of rows, several at a time (threads): the result must be the
blocks' results in row order, each exactly as computed alone, whatever the number of blocks."""

from __future__ import annotations

import numpy as np
import pytest

from rapport.predictions import pareto_nbd

PARAMS = np.array([0.55, 10.6, 0.61, 11.7])  # r, alpha, s, beta: near the CDNOW fit (Fader & Hardie 2005)
# 23 customers: one-time buyers (x 0), regulars, a purchase on the last day (t_x == T), a first-day customer (T 0)
X = np.array([0, 0, 1, 2, 3, 5, 8, 13, 0, 1, 4, 7, 2, 0, 6, 9, 1, 3, 0, 2, 11, 0, 4], dtype="float64")
T_X = np.array([0, 0, 3.5, 10, 20, 30.5, 36, 38, 0, 1, 25, 39, 12, 0, 33, 37, 2, 15, 0, 5, 38.5, 0, 38.9])
T = np.array([38.9, 10, 38, 38.9, 38.9, 38.9, 38.9, 38.9, 2, 20, 30, 39, 38, 0, 38.9, 38.9, 38.9, 38.9, 25, 7,
              38.9, 38.9, 38.9])


@pytest.mark.parametrize("gradient", [False, True])
@pytest.mark.parametrize("chunk", [1, 4, 5, 23, 1000])
def test_blocks_join_in_row_order_as_computed_alone(monkeypatch, chunk: int, gradient: bool) -> None:
    monkeypatch.setattr(pareto_nbd, "_CHUNK", chunk)
    monkeypatch.setattr(pareto_nbd, "_WORKERS", 3)
    got = pareto_nbd._parts(PARAMS, X, T_X, T, gradient=gradient)
    # the same blocks one after the other, in this thread
    alone = [
        pareto_nbd._block_parts(*PARAMS, X[lo : lo + chunk], T_X[lo : lo + chunk], T[lo : lo + chunk], gradient)
        for lo in range(0, len(X), chunk)
    ]
    assert len(got) == (3 if gradient else 2)
    for i, column in enumerate(got):
        np.testing.assert_array_equal(column, np.concatenate([block[i] for block in alone]))
    # and row by row, each customer alone (its values do not depend on its neighbours)
    for row in (0, 7, 13, 22):
        one = pareto_nbd._block_parts(*PARAMS, X[row : row + 1], T_X[row : row + 1], T[row : row + 1], gradient)
        for i, column in enumerate(got):
            np.testing.assert_allclose(column[row], one[i][0], rtol=1e-14, atol=0)


def test_no_customers_gives_empty_columns() -> None:
    alive, ll = pareto_nbd._parts(PARAMS, np.array([]), np.array([]), np.array([]))
    assert alive.shape == ll.shape == (0,)
